"""Elaborate ``hw`` components to Verilog, cached, and lint it with Verilator.

A design is rebuilt only when its name, its elaboration parameters, the source of the
``hw`` and ``golden`` packages or the Amaranth version change: the cache key is a hash
of all of them, and the file lands in ``build/verilog/cache/<name>-<key>.v``.
"""

import dataclasses
import fcntl
import hashlib
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import amaranth

from . import tools

ROOT = Path(__file__).resolve().parent.parent
_SOURCE_PACKAGES = ("hw", "golden")


def build_dir() -> Path:
    """Where generated files go: ``$CIMCODEC_BUILD`` or ``build/`` at the top level."""
    return Path(os.environ.get("CIMCODEC_BUILD", ROOT / "build")).resolve()


def _params_text(params) -> str:
    if dataclasses.is_dataclass(params):
        return f"{type(params).__qualname__}{sorted(dataclasses.asdict(params).items())}"
    return repr(params)


def design_key(name: str, params) -> str:
    """Hash of everything the Verilog of ``name`` built with ``params`` depends on."""
    h = hashlib.sha256()
    h.update(f"{name}\0{_params_text(params)}\0{amaranth.__version__}\0".encode())
    for package in _SOURCE_PACKAGES:
        for path in sorted((ROOT / package).glob("*.py")):
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


@contextmanager
def locked(path: Path):
    """Hold an exclusive file lock on ``path`` (builds shared between pytest workers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def elaborate(name: str, factory, params) -> Path:
    """Verilog of ``factory(params)`` with top module ``name``, built once per key."""
    key = design_key(name, params)
    out = build_dir() / "verilog" / "cache" / f"{name}-{key}.v"
    with locked(out.with_suffix(".lock")):
        if not out.exists():
            from amaranth.back import verilog
            component = factory(params)
            text = verilog.convert(component, name=name, emit_src=False)
            tmp = out.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(out)
    return out


def lint(path: Path, top: str) -> None:
    """Run ``verilator --lint-only`` with the project's waivers; raise on any report."""
    binary = tools.setup_verilator()
    cmd = [str(binary), "--lint-only", *tools.VERILATOR_ARGS, "--top-module", top, str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"verilator --lint-only failed on {path}:\n{done.stderr}")
