"""The RTL decompressor against the golden stream (:mod:`golden.blocks.decompressor`), itself
checked against Pillow, the golden JPEG decoder and the golden codec: Pillow and golden
encoder files in RAW mode, container files with each remap scheme and the snap table,
corrupt files, stalls, throughput, on both cocotb simulators."""

import functools
import io
import zlib

import numpy as np
import pytest
from PIL import Image

from cimcodec.golden.blocks import appmeta, crc, markers
from cimcodec.golden.blocks import decompressor as gd
from cimcodec.golden.blocks.huffman import fast_hits, jpeg_scan
from cimcodec.golden.blocks.lfsr import Kind
from cimcodec.golden.blocks.remap import RemapParams
from cimcodec.golden.codec import container, search
from cimcodec.golden.codec import pipeline as codec
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg.reference import decode, encode
from cimcodec.hw.decompressor import Decompressor
from cimcodec.sim.cocotb_run import run_jobs
from cimcodec.sim.verilog import elaborate, lint
from cimcodec.tb import decompressor as tb
from cimcodec.tb.decompressor import BENCH

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
                                 budget=2).data


def _rebuilt(data, remap=None, restart_interval=0):
    """The container ``data`` with its matrix coded under the remap ``remap`` (default:
    its own) and with ``restart_interval`` blocks per restart interval."""
    header = container.read_header(data)
    remap = remap or header.remap
    u = search.fast_unremap(header.remap, codec.decode_samples(data))
    new = container.Header(header.shape, header.quant, remap, header.levels,
                           header.centroids, header.snap)
    return container.write(search.fast_remap(remap, u), new, quality=80,
                           restart_interval=restart_interval)


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
CONTAINERS["progressive-galois-stage3"] = _rebuilt(
    CONTAINERS["progressive"], RemapParams(9, 30, "progressive", (5,), Kind.GALOIS, 3))
CONTAINERS["split-galois-snap"] = _rebuilt(
    CONTAINERS["split-snap"], RemapParams(21, 37, "split", (3, 2), Kind.GALOIS))
# Restart intervals (the codec writes them only for matrices of 16384 blocks or more).
CONTAINERS["split-snap-ri2"] = _rebuilt(CONTAINERS["split-snap"], restart_interval=2)
CONTAINERS["progressive-ri1"] = _rebuilt(CONTAINERS["progressive"], restart_interval=1)


def _samples(result):
    return [(p["row"], p["col"], p["sample"]) for p in result["outputs"]["o"][:-1]]


def _assert_pillows(data, result, label):
    """Every pixel of the JPEG ``data``, as Pillow decodes it, came out at its place."""
    image = np.asarray(Image.open(io.BytesIO(data)))
    rows, cols, values = np.array(_samples(result)).T
    assert len(values) == image.size, label
    np.testing.assert_array_equal(values, image[rows, cols], err_msg=str(label))


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
    data = CONTAINERS[name]
    want = gd.expected(data, SHAPE)
    header = container.read_header(data)
    meta = appmeta.parse(markers.parse(data).events)
    assert meta.error_event is None and meta.meta.params() == header.remap
    u = search.fast_unremap(header.remap, codec.decode_samples(data))
    ref = u if header.snap is None else header.snap[u]
    rows, cols, values = np.array(want.samples).T
    assert len(values) == header.rows * header.cols
    np.testing.assert_array_equal(values, ref[rows, cols])


#: Codes of faults found before the entropy-coded data: the parser's, the metadata
#: reader's, the table and frame checks. A file damaged only there ends with the golden
#: model's code exactly; damage in the entropy-coded data may be caught first by another
#: stage than the golden decoder's (``golden.blocks.decompressor``'s docstring), so there only
#: the flag is certain.
HEADER_CODES = set(range(1, 11)) | {gd.Error.HUFFMAN_TABLE, gd.Error.TABLE_SLOT,
                                    gd.Error.FRAME, gd.Error.METADATA}


def _corrupt(data, seed):
    """Damaged copies of the JPEG ``data``: name -> (file, whether every changed byte
    lies before the entropy-coded data). Truncations (in the scan and in the headers), a
    scan cut short, a wrong length in each kind of segment the file has, and bit flips
    (three anywhere, two in the headers, two in the scan)."""
    layout = container.walk(data)
    rng = np.random.default_rng(seed)

    def flips(low, high, count):
        out = bytearray(data)
        for _ in range(count):
            out[int(rng.integers(low, high))] ^= 1 << int(rng.integers(8))
        return bytes(out)

    files = {"truncated": (data[:len(data) // 2], False),
             "truncated-header": (data[:layout.scan_start - 7], True),
             "cut-scan": (data[:-40] + data[-2:], False),
             "flipped": (flips(2, len(data) - 2, 3), False),
             "flipped-header": (flips(2, layout.scan_start, 2), True),
             "flipped-scan": (flips(layout.scan_start, layout.scan_end, 2), False)}
    for marker, name in ((0xC0, "sof"), (0xC4, "dht"), (0xDB, "dqt"), (0xDA, "sos"),
                         (0xDD, "dri")):
        k = data.find(bytes((0xFF, marker)))
        if 0 <= k < layout.scan_start:
            wrong = bytearray(data)
            wrong[k + 3] ^= 0x04
            files[f"{name}-length"] = (bytes(wrong), True)
    return files


def _declared(data):
    """``rows, cols`` a possibly damaged file declares, as the golden parsers read it:
    its metadata's matrix, else (a plain JPEG, or damage that made it one) its frame."""
    events = markers.parse(data, SHAPE.markers).events
    meta = appmeta.parse(events).meta
    if meta is not None:
        return meta.rows, meta.cols
    size = {e[0]: e[1] for e in events if e[0] in (markers.Kind.HEIGHT, markers.Kind.WIDTH)}
    return size.get(markers.Kind.HEIGHT, 0), size.get(markers.Kind.WIDTH, 0)


def _check_corrupt(name, job, result, in_header, data, lanes=1, in_bytes=1):
    """A damaged file ``data``: the flag exactly when the golden model finds an error
    (and then its code when the damage is in the headers), samples equal to the golden
    model's when it finds none, never a coordinate outside the matrix the file declares,
    and without stalls the status event within WATCHDOG + 8 clocks (and a clock per
    byte of an input beat after the first) of the last beat taken or sample out.
    ``lanes``, ``in_bytes``: the decompressor's."""
    rows, cols = _declared(data)
    out = result["outputs"]["o"]
    assert out and out[-1]["end"] == 1, name
    if lanes > 1:
        per_lane = tb.lane_samples(out, lanes)
        if job["lanes"] is not None:            # the damage left a valid file
            assert per_lane == [[tuple(s) for s in w] for w in job["lanes"]], name
        samples = [s for w in per_lane for s in w]
    else:
        if job["expected"]["o"] is not None:    # the damage left a valid file
            assert out == job["expected"]["o"], name
        samples = _samples(result)
    assert out[-1]["error"] == int(job["error"] != 0), name
    if job["error"]:
        assert out[-1]["code"] != 0, name
        if in_header and job["error"] in HEADER_CODES:
            assert out[-1]["code"] == job["error"], name
    assert all(r < rows and c < cols for r, c, _ in samples), name
    if job["stall_seed"] is None:
        quiet = result["clocks"] - max(result["last_byte_clock"], result["last_sample_clock"])
        assert 0 < quiet <= gd.WATCHDOG + 8 + in_bytes - 1, (name, quiet)


#: The containers ``test_rtl_matches_golden`` runs on Icarus: one per remap scheme
#: (full, none, progressive with the Galois generator, split), the second and third
#: stalled (a container's stalls follow its place in the sorted list of all of them).
ICARUS_CONTAINERS = ("full", "none-snap", "progressive-galois-stage3", "split-snap")


def test_rtl_matches_golden(simulator):
    """Every Pillow file, our encoder's files and every container variant (RAW mode
    too), on random stalls and long backpressure runs, equal to the golden stream and to
    Pillow, at the documented throughput. On Icarus, several times slower per clock,
    the two stalled Pillow files are left out (each runs there all the same, once
    without stalls and once with long backpressure runs), and of the containers one
    per remap scheme runs, two of them stalled (:data:`ICARUS_CONTAINERS`; every
    container's metadata reaches the hardware on both simulators in
    ``test_rtl_metadata_reader_on_both_simulators``)."""
    jobs, names = [], []
    for k, (name, data) in enumerate(sorted(RAW_FILES.items())):
        stall_seed = None if k % 2 else 10 + k
        if simulator == "verilator" or stall_seed is None or name.startswith("enc"):
            jobs.append(tb.job(data, SHAPE, stall_seed=stall_seed))
            names.append(name)
    # Containers: the file's bytes only, the hardware reads the metadata.
    for k, (name, data) in enumerate(sorted(CONTAINERS.items())):
        if simulator == "icarus" and name not in ICARUS_CONTAINERS:
            continue
        jobs.append(tb.job(data, SHAPE, stall_seed=20 + k if k % 2 else None))
        names.append(name)
    # A container in RAW mode: the whole padded coded image.
    jobs.append(tb.job(CONTAINERS["full"], SHAPE, raw=True, stall_seed=5))
    names.append("full-raw")
    # The same file without stalls, for the sample-phase check below.
    jobs.append(tb.job(RAW_FILES["pil75-opt-ri3"], SHAPE))
    names.append("pil75-opt-ri3-again")
    # Output backpressure in runs of up to 300 clocks: every queue fills.
    for name in ("pil100-ri1", "split-snap-ri2"):
        data = RAW_FILES.get(name) or CONTAINERS[name]
        jobs.append(tb.job(data, SHAPE, stall_seed=60 + len(jobs), bursty=True))
        names.append(f"{name}-bursty")

    results = run_jobs(BENCH, SHAPE, jobs, simulator)
    for name, job, result in zip(names, jobs, results, strict=True):
        out = result["outputs"]["o"]
        assert job["expected"]["o"] is not None and out[-1]["end"] == 1, name
        assert out == job["expected"]["o"], name
    every = CONTAINERS if simulator == "verilator" else ICARUS_CONTAINERS
    assert {"pil100-ri1-bursty", "pil5", "pil75-opt-ri3-again", *every} <= set(names)

    # The samples equal Pillow's at their coordinates; a container in RAW mode is the
    # whole padded image Pillow decodes.
    for name, result in zip(names, results):
        if name in RAW_FILES:
            _assert_pillows(RAW_FILES[name], result, name)
    _assert_pillows(CONTAINERS["full"], results[names.index("full-raw")], "full-raw")

    # Throughput. Whole file: the parser's one byte per clock, the Huffman decoder's
    # table copy and fast-table fill, then one sample per clock (padding included)
    # plus the pipeline's fill. Sample phase of the files
    # with under 64 entropy-coded bytes per block: one sample per clock from the
    # first weight to the last (the 8x8 padding counts: the IDCT makes it too), less
    # at most one clock per restart interval after the first and one per symbol of
    # the Huffman decoder's slow path: with intervals of three blocks the Huffman
    # decoder's restart (RESTART_CLOCKS) is not always hidden, nor the clock the fast
    # table's index takes to reload after a slow-path symbol.
    for k, job in enumerate(jobs):
        if job["stall_seed"] is not None or names[k] not in (*RAW_FILES, "pil75-opt-ri3-again"):
            continue
        data = tb.job_file(job)
        height, width = decode(data).shape
        padded = 64 * -(-height // 8) * -(-width // 8)
        clocks = results[k]["clocks"]
        fill = gd.HUFFMAN_SHAPE.max_start_clocks
        assert clocks <= len(data) + fill + padded + 200, (names[k], clocks)
        if names[k] in ("pil5", "pil75-opt-ri3-again"):
            phase = clocks - results[k]["first_clock"]
            dc, ac, intervals = jpeg_scan(data)
            restarts = len(intervals) - 1
            hits, symbols = fast_hits(intervals, dc, ac, gd.HUFFMAN_SHAPE.fast_bits)
            assert phase <= padded + restarts + symbols - hits, \
                (names[k], phase / padded, restarts, symbols - hits)


def test_rtl_catches_damaged_files(simulator):
    """Damaged Pillow files and containers (with and without restart intervals): all on
    Verilator; on Icarus those of the container with restart intervals, every kind of
    damage once. Then a good file decodes (every job starts with a reset)."""
    bad = {}
    for source in ("pil75-opt-ri3", "split-snap", "split-snap-ri2"):
        data = RAW_FILES.get(source) or CONTAINERS[source]
        for name, (damaged, in_header) in _corrupt(data, len(bad)).items():
            bad[f"{source}:{name}"] = (damaged, in_header, source)
    damaged = {name: tb.job(data, SHAPE, stall_seed=30 + k if k % 2 else None)
               for k, (name, (data, _, _)) in enumerate(sorted(bad.items()))}
    # The golden model catches some damage of each kind, some in the headers with its
    # exact code.
    codes = [j["error"] for j in damaged.values()]
    assert sum(c != 0 for c in codes) >= len(codes) - 2
    assert sum(bad[n][1] and j["error"] in HEADER_CODES for n, j in damaged.items()) >= 12
    names = [name for name in damaged
             if simulator == "verilator" or bad[name][2] == "split-snap-ri2"]
    jobs = [damaged[name] for name in names] + [tb.job(RAW_FILES["pil5"], SHAPE)]
    results = run_jobs(BENCH, SHAPE, jobs, simulator)
    for name, job, result in zip(names, jobs, results):
        data, in_header, _ = bad[name]
        _check_corrupt(name, job, result, in_header, data)
    assert results[-1]["outputs"]["o"] == jobs[-1]["expected"]["o"]
    _assert_pillows(RAW_FILES["pil5"], results[-1], "pil5-after")


def test_rtl_catches_interval_damage_on_one_lane(simulator):
    """One lane, the restart-interval checks: a ``DRI`` that disagrees with the data
    (more blocks per interval than it says, and fewer), an interval that runs into the
    next one's block, and a scan one ``RST`` short whose last interval is twice ``Ri``
    long (every block inside the frame). The golden model rejects each; the hardware
    raises the error flag, keeps every coordinate inside the frame, and decodes a good
    file after them."""
    raw, containers = _lane_files()
    files = {
        "ctr-dri1": (_dri(containers["split-snap-ri2"], 1), False),
        "ctr-dri3": (_dri(containers["split-snap-ri2"], 3), False),
        "pil-dri2": (_dri(raw["pil90-ri1-40x56"], 2), True),
        "pil-long-interval": (_long_interval(), True),
        "pil-few-restarts": (_few_restarts(), True),
    }
    names = sorted(files)
    jobs = [tb.job(files[n][0], SHAPE, raw=files[n][1], stall_seed=60 + k if k % 2 else None)
            for k, n in enumerate(names)]
    assert all(j["error"] != 0 for j in jobs)
    jobs.append(tb.job(containers["split-snap-ri2"], SHAPE))
    results = run_jobs(BENCH, SHAPE, jobs, simulator)
    for name, job, result in zip(names, jobs, results):
        _check_corrupt(name, job, result, False, files[name][0])
    assert results[-1]["outputs"]["o"] == jobs[-1]["expected"]["o"]


PLAIN = gd.DecompressorShape(max_rows=256, max_cols=256, container=False)


def test_rtl_plain_jpeg_build(simulator):
    """The decompressor built without the container hardware: every file decoded as in
    RAW mode (containers too, the metadata ignored), damaged files caught, on stalls."""
    files = dict(RAW_FILES)
    files.update({f"container-{n}": CONTAINERS[n] for n in ("split-snap", "progressive-ri1")})
    jobs, names = [], []
    for k, (name, data) in enumerate(sorted(files.items())):
        jobs.append(tb.job(data, PLAIN, stall_seed=500 + k if k % 2 else None,
                           bursty=k % 4 == 1))
        names.append(name)
        # The same bytes through the full build in RAW mode: the same stream.
        assert jobs[-1]["expected"] == tb.job(data, SHAPE, raw=True)["expected"], name
    bad = {n: d for n, (d, _) in _corrupt(RAW_FILES["pil75-opt-ri3"], 9).items()}
    for k, (name, data) in enumerate(sorted(bad.items())):
        jobs.append(tb.job(data, PLAIN, stall_seed=520 + k if k % 2 else None))
        names.append(name)
    results = run_jobs(BENCH, PLAIN, jobs, simulator)
    for name, job, result in zip(names, jobs, results, strict=True):
        if name in bad:
            _check_corrupt(name, job, result, False, bad[name])
        else:
            assert result["outputs"]["o"] == job["expected"]["o"], name
            _assert_pillows(files[name], result, name)


def _random_damage(data, rng):
    """``data`` with one random kind of damage: 1..4 bits flipped, a cut, a byte
    deleted or inserted (every later segment's position and the lengths then lie), or a
    run of bytes overwritten."""
    kind = int(rng.integers(5))
    k = int(rng.integers(2, len(data) - 2))
    out = bytearray(data)
    if kind == 0:
        for _ in range(int(rng.integers(1, 5))):
            out[int(rng.integers(2, len(data)))] ^= 1 << int(rng.integers(8))
    elif kind == 1:
        del out[k:]
    elif kind == 2:
        del out[k]
    elif kind == 3:
        out.insert(k, int(rng.integers(256)))
    else:
        n = int(rng.integers(1, 9))
        out[k:k + n] = rng.integers(256, size=len(out[k:k + n]), dtype=np.uint8).tobytes()
    return bytes(out)


def test_rtl_survives_random_damage(simulator):
    """24 randomly damaged files (Pillow files and containers; the first 8 on Icarus,
    several times slower per clock: each of the six sources, with and without stalls):
    the error flag exactly when the golden model finds an error, coordinates inside the
    matrix, the status event in bounded time, and a good file after them."""
    rng = np.random.default_rng(77)
    sources = ["pil75-opt-ri3", "pil100-ri1", "split-snap", "split-snap-ri2",
               "progressive-ri1", "none-snap"]
    files, names = [], []
    for n in range(24):
        source = sources[n % len(sources)]
        files.append(_random_damage(RAW_FILES.get(source) or CONTAINERS[source], rng))
        names.append(f"{n}:{source}")
    jobs = [tb.job(f, SHAPE, stall_seed=300 + k if k % 3 == 0 else None)
            for k, f in enumerate(files)]
    assert sum(j["error"] != 0 for j in jobs) >= 18
    if simulator == "icarus":
        files, jobs = files[:8], jobs[:8]
    jobs.append(tb.job(CONTAINERS["split-snap"], SHAPE))
    results = run_jobs(BENCH, SHAPE, jobs, simulator)
    for name, data, job, result in zip(names, files, jobs, results):
        _check_corrupt(name, job, result, False, data)
    assert results[-1]["outputs"]["o"] == jobs[-1]["expected"]["o"]


def _quality_sweep():
    """Pillow baseline grayscale files at every quality 1..100: sizes from 1x1 to 23x23,
    optimized tables on every third, restart markers on every fourth."""
    files = []
    for quality in range(1, 101):
        rng = np.random.default_rng(quality)
        size = tuple(int(v) for v in rng.integers(1, 24, 2))
        files.append(_pillow(100 + quality, quality, size=size, optimize=quality % 3 == 0,
                             restart=int(rng.integers(1, 4)) if quality % 4 == 0 else 0))
    return files


#: The qualities of the sweep Icarus decodes (Verilator decodes all 100): low to high,
#: with optimized tables (15, 36, 57, 78, 99), restart markers (8, 36, 64, 92) and
#: stalls (1, 36, 71). Icarus takes about six times Verilator's time per file.
ICARUS_QUALITIES = range(1, 101, 7)


def test_rtl_matches_pillow_at_every_quality(simulator):
    files = _quality_sweep()
    qualities = ICARUS_QUALITIES if simulator == "icarus" else range(1, 101)
    jobs = [tb.job(files[q - 1], SHAPE, stall_seed=200 + q - 1 if (q - 1) % 5 == 0 else None)
            for q in qualities]
    results = run_jobs(BENCH, SHAPE, jobs, simulator)
    for quality, job, result in zip(qualities, jobs, results, strict=True):
        assert result["outputs"]["o"] == job["expected"]["o"], quality
        _assert_pillows(files[quality - 1], result, f"quality {quality}")


def _stored_crc_end(data):
    """Index just past the stored CRC: the end of the CIMCODEC APP11 segment."""
    sig = data.index(b"CIMCODEC\0")
    return sig - 2 + int.from_bytes(data[sig - 2:sig], "big")


def _ecs_flip(data, seed):
    """One bit flipped in the entropy-coded data, keeping it free of markers."""
    layout = container.walk(data)
    rng = np.random.default_rng(seed)
    out = bytearray(data)
    while True:
        k = int(rng.integers(layout.scan_start, layout.scan_end))
        flipped = out[k] ^ (1 << int(rng.integers(8)))
        if out[k] != 0xFF and flipped != 0xFF and (k == 0 or out[k - 1] != 0xFF):
            out[k] = flipped
            return bytes(out)


def test_golden_crc_is_zlibs_over_the_scan():
    for data in CONTAINERS.values():
        check = crc.scan_check(data, markers.parse(data, SHAPE.markers).events)
        layout = container.walk(data)
        assert check.stored == check.computed == container.read_header(data).crc
        assert check.computed == zlib.crc32(data[layout.scan_start:layout.scan_end])
    value = crc.XOR
    for b in b"cimcodec":
        value = crc.update(value, b)
    assert value ^ crc.XOR == zlib.crc32(b"cimcodec")


def _metadata_offset(data):
    """Index of the metadata block's first byte (after signature, index and count)."""
    return data.index(b"CIMCODEC\0") + 9 + 2


def _bad_metadata(data):
    """Container files whose metadata the hardware rejects, and the expected codes."""
    m = _metadata_offset(data)
    end = _stored_crc_end(data)
    header = container.read_header(data)

    def patched(offset, value):
        out = bytearray(data)
        out[offset] = value
        return bytes(out)

    remap = end - 4 - 4 * len(header.remap.seeds) - 1 - 4 - 2   # the scheme byte
    return {
        "version": patched(m, 2),
        "rows-zero": bytes(data[:m + 4]) + bytes(4) + bytes(data[m + 8:]),
        "scheme": patched(remap, 7),
        "seeds": patched(end - 4 - 4 * len(header.remap.seeds) - 1, 3),
        "chunk-count": patched(m - 1, 2),
        # One byte fewer: the segment ends inside the CRC-32.
        "short": bytes(data[:m - 13]) + (int.from_bytes(data[m - 13:m - 11], "big") - 1)
        .to_bytes(2, "big") + bytes(data[m - 11:end - 1]) + bytes(data[end:]),
    }


@functools.cache
def _metadata_damage(data):
    """Every one-byte change of the metadata (chunk header to the stored CRC, which the
    CRC check covers) to 0x00, 0xFF, the byte plus one, or the byte with its bit 0, 1,
    2 or 7 flipped (so the small bounds, such as a KIND of 2 or a scheme of 4, are
    reached), that the golden reader rejects, at most two values per byte (the
    smallest and the largest); of a long run of such bytes
    (the snap entries, and what follows them) the first two and the last 16. Named by
    offset and value. Cached: thousands of golden reads a file, once per process.

    The damaged bytes are all inside the ``APP`` segment's body, which the parser emits
    as one ``(APP, k, byte)`` event a byte whatever the byte is, so a damaged file's
    events are the good file's with that one event's byte changed (checked against a
    parse of the damaged file at the first, the middle and the last offset)."""
    start, end = data.index(b"CIMCODEC\0") + 9, _stored_crc_end(data) - 4
    good = markers.parse(data).events
    at_offset = {start + e[1]: k for k, e in enumerate(good) if e[0] == markers.Kind.APP}
    found = {}
    for offset in range(start, end):
        b = data[offset]
        for value in sorted({0x00, 0xFF, (b + 1) & 0xFF, b ^ 0x01, b ^ 0x02, b ^ 0x04,
                             b ^ 0x80}):
            k = at_offset[offset]
            events = [*good[:k], (markers.Kind.APP, offset - start, value), *good[k + 1:]]
            if offset in (start, (start + end) // 2, end - 1):
                out = bytearray(data)
                out[offset] = value
                assert markers.parse(bytes(out)).events == events, (offset, value)
            at = appmeta.parse(events).error_event
            if at is not None and events[at][0] != markers.Kind.ERROR:
                found.setdefault(offset, []).append(value)
    keep, run = [], []
    for offset in [*sorted(found), None]:
        if run and (offset is None or offset != run[-1] + 1):
            keep += run if len(run) <= 18 else run[:2] + run[-16:]
            run = []
        if offset is not None:
            run.append(offset)
    damaged = {}
    for offset in keep:
        for value in {found[offset][0], found[offset][-1]}:
            out = bytearray(data)
            out[offset] = value
            damaged[f"{offset - start}={value:#04x}"] = bytes(out)
    return damaged


def test_golden_metadata_checks_are_the_hardwares():
    data = CONTAINERS["split-snap"]
    for name, bad in _bad_metadata(data).items():
        assert gd.expected(bad, SHAPE).error == gd.Error.METADATA, name
        with pytest.raises(CimcodecError):
            container.read_header(bad)
    # A matrix beyond the hardware's: FRAME.
    small = gd.DecompressorShape(max_rows=16, max_cols=256)
    assert gd.expected(data, small).error == gd.Error.FRAME


def test_rtl_crc_and_metadata_errors(simulator):
    data = CONTAINERS["split-snap"]
    end = _stored_crc_end(data)
    stored = bytearray(data)
    stored[end - 1] ^= 0x10                     # the stored CRC's top byte
    files = {"crc-stored": bytes(stored), "crc-data": _ecs_flip(data, 3)}
    files.update({f"meta-{n}": f for n, f in _bad_metadata(data).items()})
    jobs = [tb.job(f, SHAPE, check=False, stall_seed=40 + k if k % 2 else None)
            for k, f in enumerate(files.values())]
    # RAW mode ignores the metadata: no CRC check, no metadata error.
    jobs.append(tb.job(bytes(stored), SHAPE, raw=True))
    assert jobs[0]["error"] == jobs[1]["error"] == gd.Error.CRC
    assert all(j["error"] == gd.Error.METADATA for j in jobs[2:-1])
    results = run_jobs(BENCH, SHAPE, jobs, simulator)
    header = container.read_header(data)
    for name, job, result in zip(files, jobs, results):
        out = result["outputs"]["o"]
        assert out[-1]["end"] == 1 and out[-1]["error"] == 1, name
        if name != "crc-data":                  # nothing else is wrong with these files
            assert out[-1]["code"] == job["error"], name
        # Never a coordinate outside the matrix.
        assert all(p["row"] < header.rows and p["col"] < header.cols for p in out[:-1]), name
    out = results[-1]["outputs"]["o"]
    assert out == jobs[-1]["expected"]["o"]


def test_verilog_passes_lint():
    lint(elaborate(BENCH.name, Decompressor, SHAPE), BENCH.name)
    lint(elaborate(BENCH.name, Decompressor, PLAIN), BENCH.name)


def test_bad_shape_names_the_parameter():
    with pytest.raises(CimcodecError, match=r"Decompressor max rows must be a multiple of 8 "
                                            r"in 8..65528, not 12\."):
        gd.DecompressorShape(max_rows=12)
    with pytest.raises(CimcodecError, match=r"Decompressor shape must be a "
                                            r"DecompressorShape"):
        Decompressor(4)
    with pytest.raises(CimcodecError, match=r"Decompressor container must be True or "
                                            r"False, not 'no'\."):
        gd.DecompressorShape(container="no")
    for bad in (-1, 5, 2.0, True):
        with pytest.raises(CimcodecError, match=r"Decompressor DSP lanes must be an integer "
                                                r"0\.\.4 \(its lanes\) or None, not "):
            gd.DecompressorShape(lanes=4, dsp_lanes=bad)
    for lanes, bad in ((4, 3), (4, 8), (1, 2), (2, 4), (4, True), (4, 2.0)):
        with pytest.raises(CimcodecError, match=r"Decompressor IDCT share must be 1, 2 or 4 "
                                                rf"and divide its {lanes} lanes, not "):
            gd.DecompressorShape(lanes=lanes, idct_share=bad)
    with pytest.raises(CimcodecError, match=r"Decompressor DSP lanes must be a multiple of "
                                            r"its IDCT share 4, not 2\."):
        gd.DecompressorShape(lanes=4, idct_share=4, dsp_lanes=2)


def test_rtl_metadata_reader_on_both_simulators(simulator):
    """hw.appmeta.AppMeta's own cocotb bench: the generator job, the snap table and the
    error event, as the golden metadata reader gives them, for the good containers and
    for one-byte damage to every metadata field of two of them (``_metadata_damage``;
    every other one on Icarus); every other job with idle clocks between the events
    and backpressure on the job's stream."""
    from cimcodec.tb import appmeta as test_appmeta

    good = sorted(CONTAINERS.items())
    bad = sorted(_bad_metadata(CONTAINERS["split-snap"]).items())
    damage = [(f"{name}:{k}", v) for name in ("split-snap", "progressive-galois-stage3")
              for k, v in sorted(_metadata_damage(CONTAINERS[name]).items())]
    # Icarus, the slower simulator, takes every other one.
    bad += damage if simulator == "verilator" else damage[::2]
    # A rejected file is fed up to 8 events past the one the golden reader rejects (the
    # rest, mostly entropy-coded bytes, cannot move a sticky error; fed whole, they were
    # four fifths of the events).
    wants = [appmeta.parse(markers.parse(data).events).error_event for _, data in bad]
    assert None not in wants
    jobs = [test_appmeta.job(data, stall_seed=50 + k if k % 2 else None,
                             through=None if k < len(good) else wants[k - len(good)] + 8)
            for k, (_, data) in enumerate(good + bad)]
    results = run_jobs(test_appmeta.BENCH, SHAPE, jobs, simulator)
    for (name, data), result in zip(good, results[:len(good)], strict=True):
        header = container.read_header(data)
        want_job = SHAPE.remap.generator_config(header.remap)
        out = result["outputs"]
        assert out["job"] == want_job and out["error"] is None, name
        assert out["snap"] == ([] if header.snap is None else [int(v) for v in header.snap])
    for (name, _), want, result in zip(bad, wants, results[len(good):], strict=True):
        assert result["outputs"]["error"] == want, name


# ---- Lanes: restart interval j decoded by lane j mod N (issue #19).

def _lane_files():
    """RAW files and containers for the lane tests: many intervals (35, not a multiple
    of 2 or 4), 5 and 3 intervals, one interval, none (lane 0 alone), and containers
    with remap, snap table and intervals (the codec's ``lanes`` setting among them)."""
    rng = np.random.default_rng(31)
    weights = rng.normal(0, 1, (40, 45)).astype(np.float32)
    raw = {
        "pil90-ri1-40x56": _pillow(11, 90, restart=1, size=(40, 56)),
        "pil75-opt-ri3": RAW_FILES["pil75-opt-ri3"],
        "enc90-ri2-17x9": RAW_FILES["enc90-ri2-17x9"],
        "enc80-one-interval": encode(_image(12, (20, 20)), quality=80, restart_interval=9),
        "pil5": RAW_FILES["pil5"],
    }
    containers = {
        "split-snap-ri2": CONTAINERS["split-snap-ri2"],
        "progressive-ri1": CONTAINERS["progressive-ri1"],
        "full-lanes4": codec.compress_matrix(weights, remap="full", clusters=16, quality=75,
                                             budget=2, lanes=4).data,
    }
    return raw, containers


def _dri(data, value):
    """``data`` with its ``DRI`` segment saying ``value`` blocks per interval."""
    k = data.index(b"\xff\xdd")
    return data[:k + 4] + value.to_bytes(2, "big") + data[k + 6:]


def _intervals(data):
    """The entropy-coded data of each restart interval of ``data`` (markers removed)."""
    layout = container.walk(data)
    scan = data[layout.scan_start:layout.scan_end]
    parts, start, i = [], 0, 0
    while i < len(scan) - 1:
        if scan[i] == 0xFF and 0xD0 <= scan[i + 1] <= 0xD7:
            parts.append(scan[start:i])
            start = i = i + 2
        else:
            i += 2 if scan[i] == 0xFF else 1
    return parts + [scan[start:]]


def _spliced(*tail):
    """A 8x96 frame (12 blocks) with ``DRI`` 2: the first four intervals of 2 blocks,
    then one interval per column range of ``tail`` (each coded on its own). Every
    block has a place; the intervals after the fourth need not hold 2 blocks. Spliced
    from files with the same tables."""
    img = _image(13, (8, 96))
    ri2 = encode(img, quality=80, restart_interval=2, optimize=False)
    parts = _intervals(ri2)[:4]
    for start, stop in tail:
        parts += _intervals(encode(img[:, start:stop], quality=80, optimize=False))
    scan = b"".join(p + (bytes((0xFF, 0xD0 + k % 8)) if k < len(parts) - 1 else b"")
                    for k, p in enumerate(parts))
    layout = container.walk(ri2)
    return ri2[:layout.scan_start] + scan + ri2[layout.scan_end:]


def _long_interval():
    """Intervals of 2, 2, 2, 2, 3 and 1 blocks: interval 4 (lane 0's last of two
    lanes) runs into interval 5's first block."""
    return _spliced((64, 88), (88, 96))


def _few_restarts():
    """Intervals of 2, 2, 2, 2 and 4 blocks: one ``RST`` short, the last interval twice
    ``Ri`` long but inside the frame."""
    return _spliced((64, 96))


#: The lane builds: lanes, input bytes per beat, lanes with DSP products, lanes per IDCT.
LANE_BUILDS = [(2, 1, None, 1), (4, 1, None, 1), (4, 4, 2, 2)]


@pytest.mark.parametrize("simulator, lanes, in_bytes, dsp_lanes, share",
                         [("verilator", *b) for b in LANE_BUILDS]
                         + [("icarus", *b) for b in LANE_BUILDS if b != (4, 1, None, 1)])
def test_rtl_lanes_match_golden(simulator, lanes, in_bytes, dsp_lanes, share):
    """N-lane decode == golden == Pillow on every lane file, with random stalls and long
    backpressure runs; each lane's samples are checked in order inside the simulation
    and here, every lane works when the file has intervals enough, a file without
    intervals decodes on lane 0 alone, and a file with many intervals leaves in fewer
    beats than samples. With 4 input bytes per beat (beats of entropy-coded data go
    past the parser) that file's samples leave in fewer clocks than half its bytes:
    the parser's byte per clock no longer bounds the lanes. The 4 x 4 build has two
    lanes per IDCT (``idct_share=2``), lanes 0 and 1 sharing one with DSP products,
    lanes 2 and 3 one with its products in logic (``dsp_lanes=2``). Icarus, several
    times slower per clock, takes the 2-lane and the 4 x 4 builds (2 and 4 lanes on
    both simulators; the 4 x 1 build, which differs from the 4 x 4 one in its input
    width and its IDCTs, on Verilator), and one file of each kind in them: a few
    intervals (3, not a multiple of 2 or 4), one, none, and a container of 8 with
    stalls; the 35-interval file (and the throughput checks on it) in the 4 x 4 build,
    the bursty container in the 2-lane one."""
    shape = gd.DecompressorShape(max_rows=256, max_cols=256, lanes=lanes,
                                 in_bytes=in_bytes, dsp_lanes=dsp_lanes, idct_share=share)
    raw, containers = _lane_files()
    bursty = containers["full-lanes4"]
    if simulator == "icarus":
        raw.pop("pil75-opt-ri3")
        if in_bytes == 1:
            raw.pop("pil90-ri1-40x56")
        containers = {"progressive-ri1": containers["progressive-ri1"]}
        if lanes != 2:
            bursty = None
    jobs, names = [], []
    for name, data in sorted(raw.items()):
        jobs.append(tb.job(data, shape, raw=True))
        names.append(name)
    for k, (name, data) in enumerate(sorted(containers.items())):
        stalls = k % 2 or simulator == "icarus"
        jobs.append(tb.job(data, shape, stall_seed=40 + k if stalls else None))
        names.append(name)
    if simulator == "verilator":
        # The largest file again with stalls (on Icarus, where it costs most, the
        # stalled container jobs and the bursty one below carry the stalls).
        jobs.append(tb.job(raw["pil90-ri1-40x56"], shape, raw=True, stall_seed=7))
        names.append("pil90-ri1-40x56-stalls")
    if bursty is not None:
        jobs.append(tb.job(bursty, shape, stall_seed=8, bursty=True))
        names.append("full-lanes4-bursty")
    results = run_jobs(BENCH, shape, jobs, simulator)
    for name, job, result in zip(names, jobs, results, strict=True):
        out = result["outputs"]["o"]
        assert out[-1] == {**out[-1], "end": 1, "error": 0, "code": 0}, name
        per_lane = tb.lane_samples(out, lanes)
        assert per_lane == [[tuple(s) for s in w] for w in job["lanes"]], name
        intervals = len(jpeg_scan(tb.job_file(job))[2])
        assert [bool(w) for w in per_lane] == [k < intervals for k in range(lanes)], name
        if name in raw:
            flat = {"outputs": {"o": [tb.sample(*s) for w in per_lane for s in w] + [out[-1]]}}
            _assert_pillows(raw[name], flat, name)
    if "pil90-ri1-40x56" not in names:
        return
    # 35 intervals of one block: the lanes overlap, so the samples leave in fewer beats
    # than one per sample (the bound: the parser's one byte per clock).
    k = names.index("pil90-ri1-40x56")
    beats = len(results[k]["outputs"]["o"]) - 1
    data = raw["pil90-ri1-40x56"]
    assert beats < 0.75 * 40 * 56, beats
    phase = results[k]["clocks"] - results[k]["first_clock"]
    assert phase < (len(data) if in_bytes == 1 else len(data) / 2), (phase, len(data))


@pytest.mark.parametrize("in_bytes", [1, 4])
def test_rtl_lanes_catch_damaged_files(simulator, in_bytes):
    """Damage in any lane of a 2-lane decompressor: headers, scans, cuts and a ``DRI``
    that disagrees with the intervals (more blocks per interval than it says, and
    fewer). The error flag exactly when the golden model finds an error, header codes
    exactly, coordinates inside the matrix, and a good file after them (every job
    starts with a reset). With 4 bytes per input beat, damage also lands in beats that
    go past the parser; that build's two lanes share one IDCT (``idct_share=2``)."""
    shape = gd.DecompressorShape(max_rows=256, max_cols=256, lanes=2, in_bytes=in_bytes,
                                 idct_share=2 if in_bytes == 4 else 1)
    raw, containers = _lane_files()
    sources = {"pil": raw["pil90-ri1-40x56"], "ctr": containers["split-snap-ri2"]}
    files = {}
    for key, data in sources.items():
        for name, item in _corrupt(data, 5).items():
            files[f"{key}-{name}"] = item
    files["ctr-dri1"] = (_dri(containers["split-snap-ri2"], 1), True)
    files["ctr-dri3"] = (_dri(containers["split-snap-ri2"], 3), True)
    files["pil-dri2"] = (_dri(raw["pil90-ri1-40x56"], 2), True)
    files["pil-long-interval"] = (_long_interval(), False)
    if simulator == "icarus":
        files = {n: f for n, f in files.items() if n.startswith("ctr") or "long" in n}
    names = sorted(files)
    jobs = [tb.job(files[n][0], shape, raw=n.startswith("pil"),
                   stall_seed=500 + k if k % 3 == 0 else None) for k, n in enumerate(names)]
    assert sum(j["error"] != 0 for j in jobs) >= len(jobs) - 2
    assert all(jobs[names.index(n)]["error"] for n in names if "dri" in n)
    if "pil-long-interval" in names:
        assert jobs[names.index("pil-long-interval")]["error"] != 0
    jobs.append(tb.job(containers["split-snap-ri2"], shape))
    results = run_jobs(BENCH, shape, jobs, simulator)
    for name, job, result in zip(names, jobs, results):
        # A DRI that disagrees with the intervals is damage found in the scan: only
        # the flag is certain.
        in_header = files[name][1] and "dri" not in name
        _check_corrupt(name, job, result, in_header, files[name][0], lanes=2,
                       in_bytes=in_bytes)
    out = results[-1]["outputs"]["o"]
    assert tb.lane_samples(out, 2) == [[tuple(s) for s in w] for w in jobs[-1]["lanes"]]


def test_rtl_wide_input_one_lane(simulator):
    """One lane with 2 bytes per input beat: Pillow files (with and without restart
    intervals, of odd and even length: the last beat carries one byte or two) and
    containers, on stalls, equal to the golden stream in order; a damaged container's
    CRC error (a bit flipped in a beat that goes past the parser) is caught, and a good
    file decodes after it. Icarus takes a Pillow file with intervals and one without
    and a container with intervals."""
    shape = gd.DecompressorShape(max_rows=256, max_cols=256, in_bytes=2)
    files = {name: (RAW_FILES[name], True) for name in ("pil5", "pil75-opt-ri3", "pil100-ri1")}
    files.update({name: (CONTAINERS[name], False) for name in ("split-snap", "split-snap-ri2")})
    if simulator == "icarus":                    # slower per clock: one file of each kind
        files = {n: files[n] for n in ("pil5", "pil100-ri1", "split-snap-ri2")}
    assert {len(d) % 2 for d, _ in files.values()} == {0, 1}
    names = sorted(files)
    jobs = [tb.job(files[n][0], shape, raw=files[n][1], stall_seed=70 + k if k % 2 else None)
            for k, n in enumerate(names)]
    data = CONTAINERS["split-snap-ri2"]
    layout = container.walk(data)
    middle = (layout.scan_start + layout.scan_end) // 2
    middle += (middle & 1) or 2                         # a beat's first byte
    while 0xFF in data[middle - 1:middle + 2]:
        middle += 2
    damaged = data[:middle] + bytes((data[middle] ^ 0x10,)) + data[middle + 1:]
    bad = tb.job(damaged, shape)
    assert bad["error"] == gd.Error.CRC
    jobs += [bad, tb.job(data, shape)]
    results = run_jobs(BENCH, shape, jobs, simulator)
    for name, job, result in zip(names, jobs, results):
        assert job["expected"]["o"] is not None
        assert result["outputs"]["o"] == job["expected"]["o"], name
    assert results[-2]["outputs"]["o"][-1]["code"] == gd.Error.CRC
    assert results[-1]["outputs"]["o"] == jobs[-1]["expected"]["o"]


def _without_first_interval(data):
    """``data`` with its first restart interval's bits removed (``SOS`` straight to
    ``RST0``): damage that gives lane 0 no bits at all."""
    parts = _intervals(data)
    scan = b"".join((bytes((0xFF, 0xD0 + (k - 1) % 8)) if k else b"") + p
                    for k, p in enumerate([b""] + parts[1:]))
    layout = container.walk(data)
    return data[:layout.scan_start] + scan + data[layout.scan_end:]


def _table_after_scan(data):
    """``data`` with a copy of its first ``DHT`` segment between the scan and ``EOI``:
    valid (the tables in force at ``SOS`` decode the scan)."""
    k = data.index(b"\xff\xc4")
    segment = data[k:k + 2 + int.from_bytes(data[k + 2:k + 4], "big")]
    end = container.walk(data).scan_end
    return data[:end] + segment + data[end:]


def test_rtl_followers_wait_for_no_table_and_start_without_lane_0():
    """Lanes 1.. take lane 0's tables (hw.huffman's Followers). A ``DHT`` after the scan
    data, with stalls, so that lane 1 is still decoding its last interval when the
    segment reaches lane 0: it must not be built under lane 1 (the file is valid: the
    golden samples, no error). And a scan whose first interval has no bits, then an
    interval longer than lane 1's 512-byte queue: lane 1 must start on lane 0's tables
    without lane 0 having seen a chunk (an error, never a hang). On the 2-lane build of
    ``test_rtl_lanes_catch_damaged_files[verilator-1]``."""
    shape = gd.DecompressorShape(max_rows=256, max_cols=256, lanes=2, in_bytes=1)
    valid = _table_after_scan(_pillow(21, 90, restart=1, size=(40, 48)))
    assert len(_intervals(valid)) == 30                 # the last interval is lane 1's
    noise = np.random.default_rng(5).integers(0, 256, (16, 256), dtype=np.uint8)
    long = encode(noise, quality=95, restart_interval=16, optimize=False)
    assert min(len(p) for p in _intervals(long)) > 512
    damaged = _without_first_interval(long)
    files = {"dht-after-scan": valid, "empty-first-interval": damaged}
    jobs = [tb.job(valid, shape, raw=True, stall_seed=90), tb.job(damaged, shape, raw=True)]
    assert jobs[0]["error"] == 0 and jobs[1]["error"] != 0
    results = run_jobs(BENCH, shape, jobs, "verilator")
    for (name, data), job, result in zip(files.items(), jobs, results, strict=True):
        _check_corrupt(name, job, result, False, data, lanes=2)
    assert any(tb.lane_samples(results[0]["outputs"]["o"], 2)[1])


def _other_table_after_scan(data):
    """``data`` with a ``DHT`` between the scan and ``EOI`` that redefines the scan's AC
    table (the first class-1 table) with its symbols in reverse order: valid (the
    tables in force at ``SOS`` decode the scan), but a lane that decoded any of the
    scan with the new table would send other samples."""
    k = data.index(b"\xff\xc4\x00")
    while data[k + 4] >> 4 != 1:
        k = data.index(b"\xff\xc4", k + 2)
    body = data[k + 4:k + 2 + int.from_bytes(data[k + 2:k + 4], "big")]
    counts, values = body[1:17], body[17:17 + sum(body[1:17])]
    segment = (b"\xff\xc4" + (2 + 1 + 16 + len(values)).to_bytes(2, "big") + body[:1]
               + counts + values[::-1])
    end = container.walk(data).scan_end
    return data[:end] + segment + data[end:]


def _slow_blocks(slow):
    """A Pillow JPEG (quality 95, an interval per block) of 2 x 14 blocks, noise in the
    block columns of parity ``slow`` and flat in the others: lane ``slow`` of two takes
    the noise, many long codes, so it falls far behind the other lane, which is idle
    long before lane ``slow`` has decoded the intervals in its queue."""
    rng = np.random.default_rng(1)
    img = np.full((16, 112), 128, np.uint8)
    for c in range(slow, 14, 2):
        img[:, 8 * c:8 * c + 8] = rng.integers(0, 256, (16, 8))
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=95, restart_marker_blocks=1)
    return buf.getvalue()


@pytest.mark.parametrize("lanes, slow", [(1, 0), (2, 0), (2, 1)])
def test_rtl_a_table_after_the_scan_waits_until_no_lane_has_bits(lanes, slow):
    """A ``DHT`` after the scan that redefines its AC table: valid (the golden samples,
    no error). The segment reaches the decompressor while the slow lane (``slow``) still
    holds intervals in its queue; that lane is ``stuck`` between two of them, as when it
    has no bits left, so the table must also wait for no chunk to be offered to it,
    whether it is lane 0 (which builds the table) or a follower (before, the lane took
    its next interval's first chunk in the clock lane 0 took the table byte, and decoded
    the rest of its intervals with the new table: an INTERVAL error with 512 of its
    samples missing, with and without stalls). Two lanes with 4 input bytes per beat (the
    build of ``test_rtl_lanes_catch_damaged_files[verilator-4]``), and one lane
    (``SHAPE``)."""
    shape = (SHAPE if lanes == 1 else
             gd.DecompressorShape(max_rows=256, max_cols=256, lanes=2, in_bytes=4,
                                  idct_share=2))
    data = _other_table_after_scan(_slow_blocks(slow))
    job = tb.job(data, shape, raw=True)
    assert job["error"] == 0
    result, = run_jobs(BENCH, shape, [job], "verilator")
    _check_corrupt("ac-table-after-scan", job, result, False, data, lanes=lanes,
                   in_bytes=shape.in_bytes)
