"""``cimcodec rtl-decode`` writes exactly what ``cimcodec decompress`` writes, for our
container files and for any baseline grayscale JPEG; corrupt files exit 2."""

import io
import json

import numpy as np
from PIL import Image

from cimcodec.golden.blocks.decompressor import HUFFMAN_SHAPE
from cimcodec.sim.cli import main
from cimcodec.sim.cocotb_run import RtlMismatch

# The decompressor size the RTL tests build (tests/rtl/test_decompressor.py), so the
# simulator builds are shared.
SIZE = ["--max-rows", "256", "--max-cols", "256"]


def _decode_both(tmp_path, capsys, name, simulator, *flags):
    src = str(tmp_path / name)
    assert main(["decompress", src, "-o", str(tmp_path / "golden.npy"), *flags]) == 0
    capsys.readouterr()
    assert main(["rtl-decode", src, "-o", str(tmp_path / "rtl.npy"), "--sim", simulator,
                 "--stats", *SIZE, *flags]) == 0
    stats = json.loads(capsys.readouterr().out)
    golden, rtl = np.load(tmp_path / "golden.npy"), np.load(tmp_path / "rtl.npy")
    assert rtl.dtype == golden.dtype and rtl.shape == golden.shape
    np.testing.assert_array_equal(rtl, golden)
    # One weight per sample out (the matrix, or the frame in RAW mode); the clock
    # counts cover at least one clock per byte and per weight.
    assert stats["weights"] == rtl.size and stats["sim"] == simulator
    assert stats["clocks"] >= stats["weights"] and stats["file_bytes"] > 0
    assert stats["clocks_per_weight"] == round(stats["clocks"] / stats["weights"], 4)
    assert stats["sample_phase_clocks"] <= stats["clocks"]
    return stats


def test_rtl_decode_equals_decompress(tmp_path, capsys, simulator):
    """Every case on Verilator; on Icarus, several times slower per clock, one
    container and ``--raw`` (each mode of the decoder once). The cases are the CLI's
    own: a container with a codebook, one without in ``--integer``, a plain JPEG in
    ``--raw`` and the plain JPEG build. The RTL's output for every remap scheme, with
    and without a codebook, and the plain JPEG build's, is checked on both simulators
    by tests/rtl/test_decompressor.py; ``--integer`` and the codebook are applied on
    the host, by the function ``decompress`` uses (``weights_from_samples``)."""
    every = simulator == "verilator"
    rng = np.random.default_rng(6)
    w = rng.normal(0, 0.05, (21, 37)).astype(np.float32)
    np.save(tmp_path / "w.npy", w)
    assert main(["compress", str(tmp_path / "w.npy"), "-o", str(tmp_path / "w.jpg"),
                 "--quality", "90", "--clusters", "8", "--remap", "split"]) == 0
    stats = _decode_both(tmp_path, capsys, "w.jpg", simulator)
    assert stats["weights"] == 21 * 37
    if every:
        # No weight sharing: no snap table, the samples themselves are the int8 weights.
        assert main(["compress", str(tmp_path / "w.npy"), "-o", str(tmp_path / "q.jpg"),
                     "--quality", "75", "--remap", "full"]) == 0
        _decode_both(tmp_path, capsys, "q.jpg", simulator, "--integer")

    img = np.clip(rng.normal(128, 40, (24, 40)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=75)
    (tmp_path / "p.jpg").write_bytes(buf.getvalue())
    stats = _decode_both(tmp_path, capsys, "p.jpg", simulator, "--raw")
    # Under two clocks per weight besides the Huffman decoder's table copy and fill.
    fill = HUFFMAN_SHAPE.max_start_clocks
    assert stats["weights"] == 24 * 40 and stats["clocks"] - fill < 2 * 24 * 40
    if not every:
        return
    # The plain JPEG build decodes it the same way (and a container as --raw does).
    assert main(["rtl-decode", str(tmp_path / "p.jpg"), "-o", str(tmp_path / "plain.npy"),
                 "--sim", simulator, "--plain", *SIZE]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "plain.npy"), np.load(tmp_path / "rtl.npy"))
    assert main(["decompress", str(tmp_path / "w.jpg"), "-o", str(tmp_path / "g.npy"),
                 "--raw"]) == 0
    assert main(["rtl-decode", str(tmp_path / "w.jpg"), "-o", str(tmp_path / "plain.npy"),
                 "--sim", simulator, "--plain", *SIZE]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "plain.npy"), np.load(tmp_path / "g.npy"))


def _one_line_error(capsys, tmp_path, *argv, code=2):
    """``cimcodec *argv`` fails with ``code``, one line on stderr, nothing on stdout,
    no output file."""
    try:
        got = main(list(argv))
    except SystemExit as e:                     # argparse's usage errors
        got = e.code
    out, err = capsys.readouterr()
    assert got == code, err
    assert out == "" and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x.npy").exists()
    return err


def test_rtl_decode_bad_input_is_one_sentence(tmp_path, capsys, monkeypatch):
    x = str(tmp_path / "x.npy")
    err = _one_line_error(capsys, tmp_path, "rtl-decode", str(tmp_path / "none.jpg"), "-o", x)
    assert "does not exist" in err
    (tmp_path / "text.jpg").write_text("not a jpeg")
    err = _one_line_error(capsys, tmp_path, "rtl-decode", str(tmp_path / "text.jpg"), "-o", x)
    assert "not a JPEG file" in err
    # A plain JPEG is refused without --raw, as decompress refuses it, before simulating.
    buf = io.BytesIO()
    Image.fromarray(np.full((16, 16), 100, np.uint8)).save(buf, "JPEG")
    (tmp_path / "p.jpg").write_bytes(buf.getvalue())
    err = _one_line_error(capsys, tmp_path, "rtl-decode", str(tmp_path / "p.jpg"), "-o", x)
    assert "not a cimcodec container" in err
    err = _one_line_error(capsys, tmp_path, "rtl-decode", str(tmp_path / "p.jpg"), "-o", x,
                          "--raw", "--max-rows", "12")
    assert "max rows must be a multiple of 8" in err
    err = _one_line_error(capsys, tmp_path, "rtl-decode", str(tmp_path / "p.jpg"), "-o", x,
                          "--sim", "modelsim")
    assert "invalid choice: 'modelsim'" in err
    # A mismatch or a simulator failure: exit 1, the first line of the report.
    def broken(*args, **kwargs):
        raise RtlMismatch("decompressor on icarus: job 0 failed (log sim.log)\nmore detail")

    monkeypatch.setattr("cimcodec.sim.rtl.run_jobs", broken)
    err = _one_line_error(capsys, tmp_path, "rtl-decode", str(tmp_path / "p.jpg"), "-o", x,
                          "--raw", code=1)
    assert "the RTL disagreed" in err and "job 0 failed" in err


def test_rtl_decode_of_a_corrupt_file_exits_2(tmp_path, capsys, simulator):
    img = np.full((16, 16), 100, np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=75)
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[:-40])
    err = _one_line_error(capsys, tmp_path, "rtl-decode", str(tmp_path / "cut.jpg"),
                          "-o", str(tmp_path / "x.npy"), "--raw", "--sim", simulator, *SIZE)
    assert "The RTL decoder stopped with error TRUNCATED" in err
