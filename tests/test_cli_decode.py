"""``cimcodec rtl-decode`` writes exactly what ``cimcodec decompress`` writes, for our
container files and for any baseline grayscale JPEG; corrupt files exit 2."""

import io
import json

import numpy as np
from PIL import Image

from sim.cli import main

# The decompressor size the RTL tests build (tests/test_decompressor.py), so the
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
    return stats


def test_rtl_decode_equals_decompress(tmp_path, capsys, simulator):
    rng = np.random.default_rng(6)
    w = rng.normal(0, 0.05, (21, 37)).astype(np.float32)
    np.save(tmp_path / "w.npy", w)
    assert main(["compress", str(tmp_path / "w.npy"), "-o", str(tmp_path / "w.jpg"),
                 "--quality", "90", "--clusters", "8", "--remap", "split"]) == 0
    stats = _decode_both(tmp_path, capsys, "w.jpg", simulator)
    assert stats["weights"] == 21 * 37
    _decode_both(tmp_path, capsys, "w.jpg", simulator, "--integer")
    # No weight sharing: no snap table, the samples themselves are the int8 weights.
    assert main(["compress", str(tmp_path / "w.npy"), "-o", str(tmp_path / "q.jpg"),
                 "--quality", "75", "--remap", "full"]) == 0
    _decode_both(tmp_path, capsys, "q.jpg", simulator)
    _decode_both(tmp_path, capsys, "q.jpg", simulator, "--integer")

    img = np.clip(rng.normal(128, 40, (24, 40)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=75)
    (tmp_path / "p.jpg").write_bytes(buf.getvalue())
    stats = _decode_both(tmp_path, capsys, "p.jpg", simulator, "--raw")
    assert stats["weights"] == 24 * 40 and stats["clocks_per_weight"] < 2


def test_rtl_decode_of_a_corrupt_file_exits_2(tmp_path, capsys):
    img = np.full((16, 16), 100, np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=75)
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[:-40])
    code = main(["rtl-decode", str(tmp_path / "cut.jpg"), "-o", str(tmp_path / "x.npy"),
                 "--raw", "--sim", "icarus", *SIZE])
    err = capsys.readouterr().err
    assert code == 2 and "The RTL decoder stopped with error" in err
    assert len(err.strip().splitlines()) == 1
