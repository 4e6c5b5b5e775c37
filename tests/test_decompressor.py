"""The RTL decompressor against the golden stream (:mod:`golden.decompressor`), itself
checked against Pillow, the golden JPEG decoder and the golden codec: Pillow and golden
encoder files in RAW mode, container files with each remap scheme and the snap table,
corrupt files, stalls, throughput, on both cocotb simulators."""

import io

import numpy as np
import pytest
from PIL import Image

from golden import codec, search
from golden import decompressor as gd
from golden.errors import CimcodecError
from golden.jpeg import decode, encode
from hw.decompressor import Decompressor
from sim.cocotb_run import run_jobs
from sim.verilog import elaborate, lint
from tb import test_decompressor as tb
from tb.test_decompressor import BENCH

SHAPE = gd.DecompressorShape(max_rows=256, max_cols=256)


def _image(seed, size=(24, 40)):
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(128, 40, size), 0, 255).astype(np.uint8)


def _pillow(seed, quality, *, restart=0, optimize=False, size=(24, 40)):
    buf = io.BytesIO()
    options = {"restart_marker_blocks": restart} if restart else {}
    Image.fromarray(_image(seed, size)).save(buf, "JPEG", quality=quality,
                                              optimize=optimize, **options)
    return buf.getvalue()


def _container(seed, remap, clusters, quality, size=(21, 37)):
    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 1, size).astype(np.float32)
    return codec.compress_matrix(weights, remap=remap, clusters=clusters, quality=quality,
                                 budget=2)


RAW_FILES = {
    "pil5": _pillow(1, 5),
    "pil75-opt-ri3": _pillow(2, 75, restart=3, optimize=True),
    "pil100-ri1": _pillow(3, 100, restart=1),
    "enc50-13x21": encode(_image(4, (13, 21)), quality=50),
    "enc90-ri2-17x9": encode(_image(5, (17, 9)), quality=90, restart_interval=2),
}
CONTAINERS = {
    "none-snap": _container(6, "none", 8, 90),
    "full": _container(7, "full", 0, 75),
    "split-snap": _container(8, "split", 16, 90),
    "progressive": _container(9, "progressive", 4, 50, size=(9, 30)),
}


def _samples(result):
    return [(p["row"], p["col"], p["sample"]) for p in result["outputs"]["o"][:-1]]


@pytest.mark.parametrize("name", sorted(RAW_FILES))
def test_golden_raw_stream_is_pillow_in_block_order(name):
    data = RAW_FILES[name]
    want = gd.expected(data, SHAPE)
    image = decode(data)
    assert want.error == gd.Error.NONE and len(want.samples) == image.size
    pil = np.asarray(Image.open(io.BytesIO(data)))
    rows, cols, values = np.array(want.samples).T
    np.testing.assert_array_equal(values, pil[rows, cols])
    np.testing.assert_array_equal(values, image[rows, cols])
    # Block order: each 8x8 block's samples together, blocks left to right.
    blocks = (rows // 8) * 64 + cols // 8
    assert np.all(np.diff(blocks) >= 0)


@pytest.mark.parametrize("name", sorted(CONTAINERS))
def test_golden_matrix_stream_is_the_codecs_samples(name):
    comp = CONTAINERS[name]
    config = gd.container_config(comp.data, SHAPE)
    want = gd.expected(comp.data, SHAPE, config)
    header = comp.header
    u = search.fast_unremap(header.remap, codec.decode_samples(comp.data))
    ref = u if header.snap is None else header.snap[u]
    rows, cols, values = np.array(want.samples).T
    assert len(values) == header.rows * header.cols
    np.testing.assert_array_equal(values, ref[rows, cols])


def _corrupt(data, seed):
    """Truncations, bit flips and a wrong segment length."""
    rng = np.random.default_rng(seed)
    flipped = bytearray(data)
    for _ in range(3):
        k = int(rng.integers(2, len(data) - 2))
        flipped[k] ^= 1 << int(rng.integers(8))
    sof = data.index(b"\xff\xc0")
    wrong = bytearray(data)
    wrong[sof + 3] ^= 0x04
    return {"truncated": data[:len(data) // 2], "cut-scan": data[:-40] + data[-2:],
            "flipped": bytes(flipped), "sof-length": bytes(wrong)}


def test_rtl_matches_golden(simulator):
    raw = gd.raw_config()
    jobs, names = [], []
    for k, (name, data) in enumerate(sorted(RAW_FILES.items())):
        jobs.append(tb.job(data, SHAPE, raw, stall_seed=None if k % 2 else 10 + k))
        names.append(name)
    for k, (name, comp) in enumerate(sorted(CONTAINERS.items())):
        config = gd.container_config(comp.data, SHAPE)
        jobs.append(tb.job(comp.data, SHAPE, config, stall_seed=20 + k if k % 2 else None))
        names.append(name)
    # A container in RAW mode: the whole padded coded image.
    jobs.append(tb.job(CONTAINERS["full"].data, SHAPE, raw, stall_seed=5))
    names.append("full-raw")
    bad = _corrupt(RAW_FILES["pil75-opt-ri3"], 1)
    for k, (name, data) in enumerate(sorted(bad.items())):
        jobs.append(tb.job(data, SHAPE, raw, check=False, stall_seed=30 + k))
        names.append(name)
    # After the corrupt files, a good one decodes (every job starts with a reset).
    jobs.append(tb.job(RAW_FILES["pil5"], SHAPE, raw))
    names.append("pil5-after")

    results = run_jobs(BENCH, SHAPE, jobs, simulator)
    for name, job, result in zip(names, jobs, results, strict=True):
        out = result["outputs"]["o"]
        assert out and out[-1]["end"] == 1, name
        if job["expected"] is not None:
            assert out == [dict(e, code=0) for e in job["expected"]], name
            continue
        # Corrupt files: an error exactly when the golden model finds one, and never a
        # coordinate outside the frame.
        data = bad[name]
        assert out[-1]["error"] == int(job["error"] != 0), name
        if job["error"]:
            assert out[-1]["code"] != 0, name
        frame = Image.open(io.BytesIO(RAW_FILES["pil75-opt-ri3"])).size
        assert all(p["row"] < frame[1] and p["col"] < frame[0] for p in out[:-1]), name
        assert len(data)

    # The samples equal Pillow's / the codec's at their coordinates.
    for name, result in zip(names, results):
        if name in RAW_FILES:
            image = np.asarray(Image.open(io.BytesIO(RAW_FILES[name])))
            rows, cols, values = np.array(_samples(result)).T
            assert len(values) == image.size
            np.testing.assert_array_equal(values, image[rows, cols])

    # Throughput. Whole file: the parser's one byte per clock overlaps the IDCT's 72
    # clocks per 64 samples (padding included). Sample phase of the low-entropy files
    # (under 72 entropy-coded bytes per block): the IDCT's rate. RAW jobs only.
    for k, job in enumerate(jobs):
        if job["stall_seed"] is not None or job["expected"] is None or len(job["inputs"]) > 1:
            continue  # (the snap table and the generator job come before the file)
        data = bytes(p["data"] for p in job["inputs"][-1][1])
        height, width = decode(data).shape
        padded = 64 * -(-height // 8) * -(-width // 8)
        clocks = results[k]["clocks"]
        assert clocks <= len(data) + 1.2 * padded + 150, (names[k], clocks)
        if names[k] in ("pil5", "pil75-opt-ri3"):
            phase = clocks - results[k]["first_clock"]
            assert phase <= 1.15 * padded, (names[k], phase / padded)


def test_verilog_passes_lint():
    lint(elaborate(BENCH.name, Decompressor, SHAPE), BENCH.name)


def test_bad_shape_names_the_parameter():
    with pytest.raises(CimcodecError, match=r"Decompressor max rows must be a multiple of 8 "
                                            r"in 8..65528, not 12\."):
        gd.DecompressorShape(max_rows=12)
    with pytest.raises(CimcodecError, match=r"Decompressor shape must be a "
                                            r"DecompressorShape"):
        Decompressor(4)
