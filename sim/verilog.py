"""Elaborate ``hw`` components to Verilog, cached, and lint it with Verilator.

A design is elaborated again only when its name, its elaboration parameters, the
Amaranth version or the source of a module it depends on change: the cache key
(:func:`design_key`) is a hash of all of them, and the file lands in
``build/verilog/cache/<name>-<key>.v``. The modules it depends on are the one that
defines its factory and every ``hw``, ``golden`` and ``tb`` module that one imports,
transitively (imports read from the source, wherever they are in a file, so a
function-level import counts too); a factory defined elsewhere depends on every module
of those packages. Simulator builds and synthesis results are keyed by the Verilog
text itself (:func:`verilog_key`), so an edit that leaves a design's Verilog as it was
(a docstring, another block) rebuilds nothing.

The key is read from the files on disk, while the Verilog comes from the modules this
process has loaded. A process whose loaded sources were edited after it started (a
long pytest run while someone edits ``hw/``) would store its old design under the new
sources' key, and every later process would take it for the new one. So such a
process elaborates without the cache: it neither reads nor writes it.
"""

import ast
import dataclasses
import functools
import hashlib
import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

import amaranth

import cimcodec
from cimcodec.sim import tools
from cimcodec.sim.tools import locked

#: The packages whose sources a design's key covers.
SOURCE_PACKAGES = ("cimcodec.hw", "cimcodec.golden", "cimcodec.tb")


def build_dir() -> Path:
    """Where generated files go: :func:`cimcodec.home` (``$CIMCODEC_HOME``, or the
    platform cache directory)."""
    return cimcodec.home()


def _params_text(params) -> str:
    if dataclasses.is_dataclass(params):
        return f"{type(params).__qualname__}{sorted(dataclasses.asdict(params).items())}"
    return repr(params)


def package_dirs() -> dict:
    """``{package: directory}`` of :data:`SOURCE_PACKAGES`, wherever they are installed."""
    return {name: Path(importlib.import_module(name).__path__[0]) for name in SOURCE_PACKAGES}


def _module_file(module: str, packages: dict) -> Path | None:
    """The source file of ``module`` if it is in one of the packages scanned."""
    for package, where in packages.items():
        if module == package or module.startswith(package + "."):
            parts = module[len(package):].split(".")[1:]
            for path in (where.joinpath(*parts).with_suffix(".py") if parts else None,
                         where.joinpath(*parts, "__init__.py")):
                if path is not None and path.is_file():
                    return path
    return None


def _imported(path: Path, module: str) -> set:
    """Every module name an ``import`` in ``path`` may load (``from a import b`` gives
    ``a`` and ``a.b``; relative imports resolved against ``module``)."""
    return _imports(path.read_bytes(), str(path), module, path.name == "__init__.py")


@functools.lru_cache(maxsize=1024)
def _imports(source: bytes, filename: str, module: str, is_package: bool) -> frozenset:
    """:func:`_imported` of a file's text, parsed once per text (every simulator run
    computes its design's key)."""
    package = module if is_package else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module
            names.add(stem)
            names.update(f"{stem}.{alias.name}" for alias in node.names)
    return frozenset(names)


def source_files(module: str | None) -> dict:
    """``{module name: file}`` of what ``module`` depends on: its own file and those of
    every module of the scanned packages it imports, transitively, with their packages'
    ``__init__``; every file of those packages when ``module`` is not in one of them (or
    is ``None``)."""
    packages = package_dirs()
    if module is None or _module_file(module, packages) is None:
        out = {}
        for package, where in packages.items():
            for path in where.rglob("*.py"):
                parts = path.relative_to(where).with_suffix("").parts
                name = ".".join((package, *parts))
                out[name.removesuffix(".__init__")] = path
        return dict(sorted(out.items()))
    seen, todo = {}, [module]
    while todo:
        name = todo.pop()
        path = _module_file(name, packages)
        if path is None or name in seen:
            continue
        seen[name] = path
        todo.extend(_imported(path, name))
        todo.append(name.rpartition(".")[0])
    return dict(sorted(seen.items()))


def design_key(name: str, params, factory=None) -> str:
    """Hash of everything the Verilog of ``name`` built by ``factory(params)`` depends on
    (every scanned module's source when ``factory`` is not given)."""
    h = hashlib.sha256()
    h.update(f"{name}\0{_params_text(params)}\0{amaranth.__version__}\0".encode())
    for name, path in source_files(getattr(factory, "__module__", None)).items():
        h.update(name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def verilog_key(path: Path) -> str:
    """Hash of a Verilog file's text: the key of what is built from it."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


#: When this module was loaded: a source file changed after it may differ from what the
#: process runs (see the module's docstring).
LOADED = time.time()


def edited_since_loaded(module: str | None) -> list:
    """The loaded modules among ``module``'s dependencies whose files changed after this
    process loaded :mod:`cimcodec.sim.verilog`."""
    return [name for name, path in source_files(module).items()
            if name in sys.modules and path.stat().st_mtime > LOADED]


def elaborate(name: str, factory, params) -> Path:
    """Verilog of ``factory(params)`` with top module ``name``, built once per key; in a
    process whose loaded sources were edited since, built apart and not cached
    (``build/verilog/uncached/<name>-<pid>-<key>.v``)."""
    key = design_key(name, params, factory)
    if edited_since_loaded(getattr(factory, "__module__", None)):
        out = build_dir() / "verilog" / "uncached" / f"{name}-{os.getpid()}-{key}.v"
        out.parent.mkdir(parents=True, exist_ok=True)
        _convert(out, name, factory, params)
        return out
    out = build_dir() / "verilog" / "cache" / f"{name}-{key}.v"
    with locked(out.with_suffix(".lock")):
        if not out.exists():
            _convert(out, name, factory, params)
    return out


def _convert(out: Path, name: str, factory, params) -> None:
    """Write the Verilog of ``factory(params)`` to ``out`` through a temporary file."""
    from amaranth.back import verilog

    tmp = out.with_suffix(".tmp")
    tmp.write_text(verilog.convert(factory(params), name=name, emit_src=False))
    tmp.replace(out)


def lint(path: Path, top: str) -> None:
    """Run ``verilator --lint-only`` with the project's waivers; raise on any report."""
    binary = tools.setup_verilator()
    cmd = [str(binary), "--lint-only", *tools.VERILATOR_ARGS, "--top-module", top, str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"verilator --lint-only failed on {path}:\n{done.stderr}")
