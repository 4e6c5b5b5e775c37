"""The synthesis harness (the FPGA runs themselves are `make synth`, not the suite)."""

from amaranth.back import verilog
from amaranth.hdl import Value

from cimcodec.golden.blocks.lfsr import GeneratorShape
from cimcodec.hw.lfsr import ControlWordGenerator
from cimcodec.sim.synth import SynthHarness, _cells


def test_harness_has_two_pins_and_keeps_the_core():
    text = verilog.convert(SynthHarness(ControlWordGenerator(GeneratorShape(lfsr_width=4,
                                        fields=1, word_width=4, count_bits=3))),
                           name="harness", emit_src=False)
    header = text[text.index("module harness("):text.index(");")]
    assert sorted(p.strip() for p in header[len("module harness("):].split(",")) == \
        ["clk", "rst", "si", "so"]
    assert "module \\harness.core" in text
    # One chain bit per core input bit.
    shape = GeneratorShape(lfsr_width=4, fields=1, word_width=4, count_bits=3)
    core = ControlWordGenerator(shape)
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
