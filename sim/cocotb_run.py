"""Build and run cocotb testbenches on Icarus or Verilator through
``cocotb_tools.runner``, wrapped as plain functions.

* One build directory per (simulator, Verilog text, simulator flags):
  ``build/sim/<sim>/<name>-<key>-<flags>``, the key a hash of the elaborated Verilog
  (:func:`sim.verilog.verilog_key`; the elaboration itself is cached by
  :func:`sim.verilog.design_key`), so an unchanged design is never rebuilt and pytest
  workers share builds (a file lock serialises the first build).
* Waveforms: ``WAVES=1`` in the environment, or ``waves=True``.
* :func:`run_jobs` writes the job file (see :mod:`tb.stream`), runs the testbench and
  returns what the DUT produced; it raises :class:`RtlMismatch` when the cocotb checker
  reported a difference from the golden model or the simulation failed.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from cimcodec.sim import tools
from cimcodec.sim.verilog import build_dir, elaborate, locked, verilog_key
from cimcodec.tb import Bench


class RtlMismatch(AssertionError):
    """The RTL disagreed with the golden model, timed out, or the simulator failed."""


def _build(bench: Bench, shape, sim: str, waves: bool):
    from cocotb_tools.runner import get_runner

    tools.setup(sim)
    verilog = elaborate(bench.name, bench.factory, shape)
    args = list(tools.VERILATOR_ARGS if sim == "verilator" else tools.ICARUS_ARGS)
    flags = hashlib.sha256(" ".join(args).encode()).hexdigest()[:6]
    key = f"{verilog_key(verilog)}-{flags}" + ("-waves" if waves else "")
    where = build_dir() / "sim" / sim / f"{bench.name}-{key}"
    runner = get_runner(sim)
    with locked(where / ".lock"):
        # The build's own copy, written once: its age is what the runner compares
        # with the build's, so the same Verilog from a new elaboration rebuilds nothing.
        source = where / f"{bench.name}.v"
        if not source.exists():
            shutil.copy(verilog, source)
        runner.build(
            sources=[source],
            hdl_toplevel=bench.name,
            build_dir=where,
            build_args=args,
            timescale=("1ns", "1ps"),
            waves=waves,
            log_file=where / "build.log",
        )
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
    env = {
        "CIMCODEC_VECTORS": str(vectors),
        "CIMCODEC_RESULTS": str(results),
    }
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
