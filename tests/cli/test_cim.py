"""``cimcodec mac`` / ``rtl-mac``: the golden and the RTL array give the same Y; bad
input exits 2 with one sentence."""

import json

import numpy as np
import pytest

from cimcodec.golden.blocks.cim import CimParams
from cimcodec.sim.cli import main


@pytest.fixture
def arrays(tmp_path):
    rng = np.random.default_rng(3)
    np.save(tmp_path / "W.npy", rng.integers(-128, 128, (16, 4)).astype(np.int8))
    np.save(tmp_path / "X.npy", rng.integers(0, 256, (12, 16)).astype(np.uint8))
    return tmp_path


def test_mac_is_the_golden_model(arrays, capsys):
    assert main(["mac", "--weights", str(arrays / "W.npy"), "--acts", str(arrays / "X.npy"),
                 "--adc-bits", "3", "-o", str(arrays / "Y.npy")]) == 0
    w, x = np.load(arrays / "W.npy"), np.load(arrays / "X.npy")
    np.testing.assert_array_equal(np.load(arrays / "Y.npy"), CimParams(16, 4, 3).compute(w, x))


def test_rtl_mac_matches_mac_with_stats(arrays, capsys, simulator):
    args = ["--weights", str(arrays / "W.npy"), "--acts", str(arrays / "X.npy"),
            "--adc-bits", "5"]
    assert main(["mac", *args, "-o", str(arrays / "Y.npy")]) == 0
    capsys.readouterr()
    assert main(["rtl-mac", *args, "-o", str(arrays / "Yr.npy"), "--sim", simulator,
                 "--stats"]) == 0
    stats = json.loads(capsys.readouterr().out)
    np.testing.assert_array_equal(np.load(arrays / "Yr.npy"), np.load(arrays / "Y.npy"))
    # The default two weight planes per clock: 8 activation bits x 4 plane groups.
    assert CimParams(16, 4, 5).clocks_per_vector == 32
    assert stats["clocks_per_vector"] == 32 and stats["macs_per_clock"] == 16 * 4 / 32


def test_rtl_mac_builds_the_planes_and_writes_asked_for(arrays, capsys):
    """Four planes per clock and two weights per write: the same Y, half the clocks per
    vector, and the stats name the build."""
    args = ["--weights", str(arrays / "W.npy"), "--acts", str(arrays / "X.npy"),
            "--adc-bits", "4"]
    assert main(["mac", *args, "-o", str(arrays / "Y.npy")]) == 0
    capsys.readouterr()
    assert main(["rtl-mac", *args, "-o", str(arrays / "Yr.npy"), "--sim", "verilator",
                 "--cim-planes", "4", "--cim-writes", "2", "--stats"]) == 0
    stats = json.loads(capsys.readouterr().out)
    np.testing.assert_array_equal(np.load(arrays / "Yr.npy"), np.load(arrays / "Y.npy"))
    assert (stats["planes_per_clock"], stats["writes_per_clock"]) == (4, 2)
    assert stats["clocks_per_vector"] == 16 and stats["macs_per_clock"] == 16 * 4 / 16


@pytest.mark.parametrize("option, value, message", [
    ("--cim-planes", "3", "Planes per clock must be 1, 2, 4 or 8, not 3."),
    ("--cim-writes", "3", "Writes per clock must be a power of two that divides the 4 "
                          "columns, not 3."),
    ("--cim-writes", "8", "Writes per clock must be a power of two that divides the 4 "
                          "columns, not 8."),
])
def test_rtl_mac_bad_build_exits_2(arrays, capsys, option, value, message):
    code = main(["rtl-mac", "--weights", str(arrays / "W.npy"), "--acts",
                 str(arrays / "X.npy"), "--adc-bits", "4", "-o", str(arrays / "Y.npy"),
                 "--sim", "icarus", option, value])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (arrays / "Y.npy").exists()


@pytest.mark.parametrize("weights, acts, bits, message", [
    (np.zeros((0, 4), np.int8), np.zeros((2, 0), np.uint8), "5",
     "Row count must be a positive integer, not 0."),
    (np.full((4, 2), 200, np.int16), np.zeros((2, 4), np.uint8), "5",
     "Weights must be 8-bit signed (-128..127)"),
    (np.zeros((4, 2), np.int8), np.zeros((2, 5), np.uint8), "5", "must have 4 entries"),
    (np.zeros((4, 2), np.int8), np.zeros((2, 4), np.uint8), "0", "between 1 and 16 bits"),
    (np.zeros((4, 2), np.int8), np.zeros((2, 4), np.uint8), "17", "between 1 and 16 bits"),
    (np.zeros((4, 2, 1), np.int8), np.zeros((2, 4), np.uint8), "5", "must be 2-D, not 3-D"),
])
def test_bad_input_exits_2(tmp_path, capsys, weights, acts, bits, message):
    np.save(tmp_path / "W.npy", weights)
    np.save(tmp_path / "X.npy", acts)
    for command in ("mac", "rtl-mac"):
        code = main([command, "--weights", str(tmp_path / "W.npy"), "--acts",
                     str(tmp_path / "X.npy"), "--adc-bits", bits, "-o", str(tmp_path / "Y.npy")])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
