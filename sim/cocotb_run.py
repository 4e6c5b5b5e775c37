"""Build and run cocotb testbenches on Icarus or Verilator through
``cocotb_tools.runner``, wrapped as plain functions.

* One build directory per (simulator, Verilog text, how the simulator builds):
  ``<home>/sim/<sim>/<name>-<key>-<flags>``, ``flags`` from :func:`flags_key`, the key
  a hash of the elaborated Verilog (:func:`sim.verilog.verilog_key`; the elaboration
  itself is cached by :func:`sim.verilog.design_key`), so an unchanged design is never
  rebuilt and pytest workers share builds (a file lock serialises the first build).
* Verilator builds differ from cocotb's runner in four ways, each to cut the C++
  compile: only the top module's signals are public (a control file,
  ``public.vlt``; the runner's ``--public-flat-rw`` makes every signal public, and
  the benches touch only ports), the design's C++ is compiled as one file at ``-O0``
  (:data:`sim.tools.VERILATOR_MAKE_VARS`), with Verilator's headers precompiled once
  for every design (:mod:`sim.pch`, ``<home>/sim/verilator/pch``), and the
  objects go through ccache (:func:`sim.tools.ccache`, ``<home>/ccache``), so
  Verilator's run-time library, the same for every design, is compiled once. A
  finished build is marked and not run again (the runner would run Verilator again on
  every call). A design may have Verilator arguments of its own
  (:func:`sim.tools.verilator_args`), part of its flags key.
* Waveforms: ``WAVES=1`` in the environment, or ``waves=True``.
* The simulator's Python rewrites the ``assert`` statements of the benches alone
  (:data:`REWRITTEN`): with cocotb's default every module it imports was compiled from
  source at each start, more than half of a short run.
* :func:`run_jobs` writes the job file (see :mod:`tb.stream`), runs the testbench and
  returns what the DUT produced; it raises :class:`RtlMismatch` when the cocotb checker
  reported a difference from the golden model or the simulation failed.
"""

import dataclasses
import glob
import hashlib
import json
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import cimcodec.tb as tb_package
from cimcodec.sim import pch, tools
from cimcodec.sim.tools import locked
from cimcodec.sim.verilog import build_dir, elaborate, verilog_key
from cimcodec.tb import Bench


class RtlMismatch(AssertionError):
    """The RTL disagreed with the golden model, timed out, or the simulator failed."""


#: Marks a finished Verilator build (cocotb's runner would run Verilator again).
BUILT = ".built"

#: The files whose ``assert`` statements pytest rewrites in the simulator's Python
#: (``COCOTB_REWRITE_ASSERTION_FILES``): the benches, the modules of :mod:`cimcodec.tb`'s
#: own directory (escaped for pytest's glob, quoted for its option parser).
REWRITTEN = shlex.quote(glob.escape(str(Path(tb_package.__file__).parent)) + os.sep + "*.py")


def bench_environment(vectors: Path, results: Path) -> dict:
    """The environment a bench runs in, besides the runner's: its job and result files,
    and pytest's assertion rewriting for the benches only. cocotb's default (``*.py``)
    rewrites every module the simulator's Python imports; where PYTHONDONTWRITEBYTECODE
    is set (as on our machines) the rewritten bytecode is never kept, so numpy, Amaranth
    and the standard library were compiled from source at every start (2.0 against 0.9
    s a launch)."""
    return {
        "CIMCODEC_VECTORS": str(vectors),
        "CIMCODEC_RESULTS": str(results),
        "COCOTB_REWRITE_ASSERTION_FILES": REWRITTEN,
    }


def _public(top: str) -> str:
    """Verilator control file: the signals of module ``top`` readable and writable
    from cocotb (the benches drive and read nothing else)."""
    return f'`verilator_config\npublic_flat_rw -module "{top}" -var "*"\n'


def _verilator():
    """cocotb's Verilator runner with the project's build (module docstring)."""
    from cocotb_tools.runner import Verilator

    class Runner(Verilator):
        def _build_command(self):
            if (self.build_dir / BUILT).exists():
                return []
            verilate, make = super()._build_command()
            assert make[0] == "make", make
            verilate = [arg for arg in verilate if arg != "--public-flat-rw"]
            make = make + list(tools.VERILATOR_MAKE_VARS)
            cache = tools.ccache()
            if cache is not None:
                make.append(f"OBJCACHE={cache}")
                self.env.setdefault("CCACHE_DIR", str(build_dir() / "ccache"))
                # The design's file includes a precompiled header (sim.pch).
                self.env.setdefault("CCACHE_SLOPPINESS", "pch_defines,time_macros")
            wrap = [sys.executable, "-m", "cimcodec.sim.pch", str(pch_dir())]
            return [verilate, wrap + make]

    return Runner()


def pch_dir() -> Path:
    """Where the Verilator builds' shared precompiled headers go (:mod:`sim.pch`)."""
    return build_dir() / "sim" / "verilator" / "pch"


def flags_key(sim: str, top: str) -> str:
    """The part of a build directory's name that stands for how ``sim`` builds the
    design whose top module is ``top``: a hash of its arguments, make variables,
    control file and shared precompiled header, and for Verilator of the cocotb library
    its binary links (by an rpath into this environment's cocotb, so another
    environment, or a deleted one, needs a build of its own)."""
    if sim == "verilator":
        from cocotb_tools.config import libs_dir

        recipe = (*tools.verilator_args(top), *tools.VERILATOR_MAKE_VARS, _public(top),
                  str(libs_dir), pch.HEADER)
    else:
        recipe = tools.ICARUS_ARGS
    return hashlib.sha256(" ".join(recipe).encode()).hexdigest()[:6]


def _build(bench: Bench, shape, sim: str, waves: bool):
    from cocotb_tools.runner import get_runner

    tools.setup(sim)
    verilog = elaborate(bench.name, bench.factory, shape)
    if sim == "verilator":
        args, runner, control = (tools.verilator_args(bench.name), _verilator(),
                                 _public(bench.name))
    else:
        args, runner, control = tools.ICARUS_ARGS, get_runner(sim), None
    flags = flags_key(sim, bench.name)
    key = f"{verilog_key(verilog)}-{flags}" + ("-waves" if waves else "")
    where = build_dir() / "sim" / sim / f"{bench.name}-{key}"
    with locked(where / ".lock"):
        # The build's own copy, written once: its age is what the runner compares
        # with the build's, so the same Verilog from a new elaboration rebuilds nothing.
        source = where / f"{bench.name}.v"
        if not source.exists():
            shutil.copy(verilog, source)
        sources = [source]
        if control is not None:
            (where / "public.vlt").write_text(control)
            sources.insert(0, where / "public.vlt")
        # A finished Verilator build runs nothing; its log stays the build's own.
        built = sim == "verilator" and (where / BUILT).exists()
        runner.build(
            sources=sources,
            hdl_toplevel=bench.name,
            build_dir=where,
            build_args=list(args),
            timescale=("1ns", "1ps"),
            waves=waves,
            log_file=os.devnull if built else where / "build.log",
        )
        if sim == "verilator":
            (where / BUILT).touch()
    return runner, where


def run_jobs(bench: Bench, shape, jobs: list, sim: str, *, waves: bool | None = None) -> list:
    """Run ``jobs`` through ``bench`` built for ``shape`` on ``sim``.

    Returns one dict per job: ``{"outputs": {port: [payload, ...]}, "clocks": int}``.
    """
    if waves is None:
        waves = os.environ.get("WAVES", "0") not in ("", "0")
    runner, where = _build(bench, shape, sim, waves)
    runs = where / "runs"
    runs.mkdir(exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=runs))
    vectors, results = run_dir / "vectors.json", run_dir / "results.json"
    vectors.write_text(json.dumps({"shape": dataclasses.asdict(shape), "jobs": jobs}))
    env = bench_environment(vectors, results)
    failed = None
    try:
        runner.test(
            test_module=bench.test_module,
            hdl_toplevel=bench.name,
            build_dir=where,
            test_dir=run_dir,
            extra_env=env,
            waves=waves,
            results_xml=str(run_dir / "results.xml"),
            log_file=run_dir / "sim.log",
        )
    except SystemExit as e:
        failed = f"the simulation exited with {e.code}"
    if failed is None:
        from cocotb_tools.runner import get_results
        try:
            total, failures = get_results(run_dir / "results.xml")
        except RuntimeError as e:
            failed = str(e)
        else:
            if failures or not total:
                failed = f"{failures} of {total} cocotb tests failed"
    if failed:
        log = (run_dir / "sim.log").read_text() if (run_dir / "sim.log").exists() else ""
        keys = ("AssertionError", "ERROR", "FAIL", "Error")
        errors = [line.strip() for line in log.splitlines() if any(k in line for k in keys)]
        raise RtlMismatch(f"{bench.name} on {sim}: {failed} (log {run_dir / 'sim.log'})\n"
                          + "\n".join(errors[:20]))
    out = json.loads(results.read_text())["jobs"]
    if not waves:
        for path in run_dir.iterdir():
            path.unlink()
        run_dir.rmdir()
    return out
