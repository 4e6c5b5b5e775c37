"""The cases of every block's golden vectors, and the registry :data:`BLOCKS`.

Each ``<block>_cases(params, rng, count)`` returns the block's corner cases first (the
same for every seed: extreme values, empty and single transfers, damaged input with its
error code), then ``count`` random cases drawn from ``rng``. Every job comes from the job
builder of ``tb/<block>.py``, which computes the inputs and the expected outputs from the
golden model, so the vectors and the cocotb benches cannot disagree about a block.

Adding a block: write its cases function here and add one :class:`Block` to
:data:`BLOCKS`; ``python -m cimcodec.sim.plain_bench`` then writes its plain bench
``tb/vectors/<block>_tb.v``.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from cimcodec.golden.blocks import decompressor as gd
from cimcodec.golden.blocks import markers
from cimcodec.golden.blocks.cim import CimParams
from cimcodec.golden.blocks.coef import CoefShape, decode_blocks
from cimcodec.golden.blocks.coef import Error as CoefError
from cimcodec.golden.blocks.huffman import HuffmanShape, ScanSymbol, jpeg_scan, scan_symbols
from cimcodec.golden.blocks.idct import IdctShape
from cimcodec.golden.blocks.lfsr import MAX_WIDTH, ControlWords, Field, GeneratorShape, Kind, Lfsr
from cimcodec.golden.blocks.remap import RemapParams, RemapShape, Scheme
from cimcodec.golden.codec import container
from cimcodec.golden.codec import pipeline as codec
from cimcodec.golden.jpeg import reference as jpeg
from cimcodec.golden.jpeg.huffman import STD_AC_LUMINANCE, STD_DC_LUMINANCE, HuffmanTable
from cimcodec.golden.jpeg.zigzag import to_zigzag
from cimcodec.sim.vector_block import (
    BURSTY,
    CLOCKS_PER_TRANSFER,
    LOOSE,
    NO_STALL,
    SKIP,
    STALL,
    Block,
    from_tb,
)
from cimcodec.tb import cim as tb_cim
from cimcodec.tb import coef as tb_coef
from cimcodec.tb import decompressor as tb_decompressor
from cimcodec.tb import huffman as tb_huffman
from cimcodec.tb import idct as tb_idct
from cimcodec.tb import lfsr as tb_lfsr
from cimcodec.tb import markers as tb_markers
from cimcodec.tb import remap as tb_remap


def _stall(rng) -> int:
    """Random stalls on about half the random jobs."""
    return STALL if rng.random() < 0.5 else NO_STALL


def _stall_seed(rng):
    """The ``stall_seed`` of a ``tb`` job builder: stalls on about half the jobs."""
    return 1 if _stall(rng) == STALL else None


def _alternate(jobs):
    """Stalls on every other corner job."""
    for k, job in enumerate(jobs):
        job.stall = STALL if k % 2 else NO_STALL
    return jobs


def _image(rng, rows, cols, spread=40):
    """A weight-like 8-bit image."""
    return np.clip(rng.normal(128, spread, (rows, cols)), 0, 255).astype(np.uint8)


def _pillow(image, **options) -> bytes:
    """``image`` as a Pillow JPEG."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", **options)
    return buf.getvalue()


def _seeds(rng, rows, cols, scheme):
    """Random seeds for a remap of ``rows x cols`` with ``scheme``."""
    takes = RemapParams(rows, cols, scheme).field_takes
    return tuple(int(rng.integers(1, 1 << max(2, t))) for t in takes)


# LFSR control-word generator --------------------------------------------------------

def lfsr_cases(shape: GeneratorShape, rng, count: int):
    """Both forms at the narrowest and widest LFSR with the smallest and largest seeds,
    one word and two, split and progressive words with extreme fields, a non-maximal
    polynomial; then random schemes, widths, forms, seeds and word counts."""
    corners = []
    for kind in Kind:
        for width in (2, MAX_WIDTH):
            for seed in (1, (1 << width) - 1):
                corners.append((f"full {kind.value} {width}-bit seed {seed}",
                                ControlWords.full(width, seed, kind=kind), 9))
    corners += [
        ("one word", ControlWords.full(17, 5), 1),
        ("two words", ControlWords.full(9, 300, kind=Kind.GALOIS), 2),
        ("split 1+1 bits", ControlWords.split((1, 1), (1, 3)), 20),
        ("split 16+16 bits", ControlWords.split((16, 16), (65535, 1)), 20),
        ("split 0+32 bits", ControlWords.split((0, 32), (1, 0xDEADBEEF)), 20),
        ("progressive, stage 1", ControlWords.progressive(12, 1, stage_len=1), 40),
        ("progressive from the full width",
         ControlWords.progressive(8, 77, stage_len=3, start=8, kind=Kind.GALOIS), 20),
        ("non-maximal polynomial",
         ControlWords((Field(Lfsr(6, 5, 0b101101, require_maximal=False), 6),)), 30),
    ]
    jobs = _alternate([from_tb(tb_lfsr.jobs(shape, [(words, n)])[0], label)
                       for label, words, n in corners])
    for _ in range(count):
        kind = Kind.GALOIS if rng.random() < 0.5 else Kind.FIBONACCI
        scheme = ("full", "split", "progressive")[int(rng.integers(3))]
        width = int(rng.integers(2, MAX_WIDTH + 1))
        seed = int(rng.integers(1, 1 << width))
        if scheme == "full":
            words = ControlWords.full(width, seed, kind=kind)
        elif scheme == "split":
            takes = [int(t) for t in rng.integers(1, 17, 2)]
            words = ControlWords.split(takes, [int(rng.integers(1, 1 << max(2, t)))
                                               for t in takes], kind=kind)
        else:
            words = ControlWords.progressive(width, seed, stage_len=int(rng.integers(1, 9)),
                                             start=int(rng.integers(1, width + 1)), kind=kind)
        n = int(rng.integers(1, 100))
        jobs.append(from_tb(tb_lfsr.jobs(shape, [(words, n)])[0],
                            f"random {scheme} {kind.value}, {n} words", stall=_stall(rng)))
    return jobs


# Remap engine ---------------------------------------------------------------------

def remap_cases(shape: RemapShape, rng, count: int):
    """One position, one block, sizes that are no multiple of 8, a single row and a
    single column, every scheme and form, payloads 0 and all ones; then random matrices
    up to 64x64 with random schemes and seeds."""
    corners = [(1, 1), (8, 8), (7, 9), (1, 40), (40, 1), (17, 33), (3, 100)]
    fixed = np.random.default_rng(0)
    jobs = []
    for k, (rows, cols) in enumerate(corners):
        for scheme in Scheme:
            kind = (Kind.FIBONACCI, Kind.GALOIS)[k % 2]
            params = RemapParams(rows, cols, scheme, _seeds(fixed, rows, cols, scheme),
                                 kind=kind)
            jobs.append(from_tb(tb_remap.job(shape, params), f"{rows}x{cols} {scheme.value} "
                                f"{kind.value}"))
    full = RemapParams(16, 16, Scheme.FULL, (5,))
    top = (1 << shape.data_width) - 1
    for value in (0, top):
        data = np.full(full.padded_rows * full.padded_cols, value)
        jobs.append(from_tb(tb_remap.job(shape, full, data=data), f"16x16 payloads {value}"))
    _alternate(jobs)
    for _ in range(count):
        rows, cols = (int(v) for v in rng.integers(1, 65, 2))
        scheme = list(Scheme)[int(rng.integers(len(Scheme)))]
        kind = Kind.GALOIS if rng.random() < 0.5 else Kind.FIBONACCI
        params = RemapParams(rows, cols, scheme, _seeds(rng, rows, cols, scheme), kind=kind)
        data = rng.integers(0, top + 1, params.padded_rows * params.padded_cols)
        jobs.append(from_tb(tb_remap.job(shape, params, data=data),
                            f"random {rows}x{cols} {scheme.value} {kind.value}",
                            stall=_stall(rng)))
    return jobs


# JPEG marker parser ---------------------------------------------------------------

def _good_files(rng) -> dict:
    """Baseline files of both encoders: qualities 1 and 100, optimized tables, restart
    markers, a 16-bit table, a container's APP11 segments beside foreign APP segments."""
    files = {
        "pillow q1": _pillow(_image(rng, 16, 16), quality=1),
        "pillow q100 optimized": _pillow(_image(rng, 16, 24), quality=100, optimize=True),
        "pillow restart 1": _pillow(_image(rng, 24, 16), quality=70, restart_marker_blocks=1),
    }
    files["golden 16-bit table"] = jpeg.encode(_image(rng, 8, 16), qtable=np.arange(1000, 1064),
                                               optimize=False)
    apps = container.app_segments(bytes(range(40)) + b"\xff\x00\xff")
    apps += [(11, b"NOTOURS\x00xyz"), (2, b"\x01\x02")]
    files["golden APP segments, restart 2"] = jpeg.encode(
        _image(rng, 9, 13), quality=60, restart_interval=2, app_segments=apps)
    return files


def _damaged(data: bytes) -> list[tuple[str, bytes]]:
    """Truncations and single-bit flips of ``data``'s headers and first scan bytes."""
    scan = container.walk(data).scan_start
    out = [(f"cut at {n}", data[:n]) for n in range(1, len(data))]
    for i in range(min(scan + 8, len(data))):
        for bit in range(8):
            out.append((f"byte {i} bit {bit} flipped",
                        data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1:]))
    return out


def markers_cases(shape: markers.MarkerShape, rng, count: int):
    """Good files of both encoders, a progressive file (unsupported), one byte with
    ``last``, then per error code the first truncation or bit flip of a good file that
    the golden parser rejects with it; then random damage to random files."""
    fixed = np.random.default_rng(0)
    good = _good_files(fixed)
    files = dict(good)
    files["progressive"] = _pillow(_image(fixed, 16, 16), quality=50, progressive=True)
    files["one byte"] = b"\xff"
    seen = set()
    for source in ("golden APP segments, restart 2", "pillow restart 1"):
        for label, data in _damaged(files[source]):
            code = markers.parse(data, shape).error
            if code and code not in seen:
                seen.add(code)
                files[f"{code.name}: {source}, {label}"] = data
    jobs = _alternate([from_tb(tb_markers.job(data, shape), label)
                       for label, data in files.items()])
    good = list(good.values())
    for _ in range(count):
        data = _pillow(_image(rng, *(int(v) for v in rng.integers(1, 40, 2))),
                       quality=int(rng.integers(1, 101)), optimize=bool(rng.random() < 0.5),
                       restart_marker_blocks=int(rng.integers(0, 4)))
        label = "random Pillow file"
        if rng.random() < 0.5:
            data, label = _random_damage(data if rng.random() < 0.5
                                         else good[int(rng.integers(len(good)))], rng)
        jobs.append(from_tb(tb_markers.job(data, shape), label, stall=_stall(rng)))
    return jobs


def _random_damage(data: bytes, rng) -> tuple[bytes, str]:
    """``data`` with 1..3 random bits flipped, or cut at a random byte."""
    out = bytearray(data)
    if rng.random() < 0.3:
        cut = int(rng.integers(2, len(data)))
        return bytes(out[:cut]), f"random cut at {cut}"
    flips = int(rng.integers(1, 4))
    for _ in range(flips):
        out[int(rng.integers(2, len(data)))] ^= 1 << int(rng.integers(8))
    return bytes(out), f"{flips} random bit flips"


# Huffman decoder ------------------------------------------------------------------

def _deep_table(rng) -> HuffmanTable:
    """An optimal table over 40 random symbols with Fibonacci counts: 16-bit codes."""
    freq, (a, b) = [0] * 256, (1, 1)
    for symbol in rng.permutation(256)[:40]:
        freq[symbol], (a, b) = a, (b, a + b)
    return HuffmanTable.from_frequencies(freq)


def _random_table(rng) -> HuffmanTable:
    """An optimal table over a random set of symbols with random counts."""
    freq = np.zeros(256, np.int64)
    symbols = rng.permutation(256)[:int(rng.integers(2, 80))]
    freq[symbols] = rng.integers(1, 1000, len(symbols))
    return HuffmanTable.from_frequencies(freq.tolist())


def huffman_cases(shape: HuffmanShape, rng, count: int):
    """The standard tables on a real scan (full chunks, chunks of random sizes, restart
    intervals), an empty interval, 16-bit codes, the slots swapped; a code absent from
    its table (symbols up to it, ``error``) and a bad table body (``table_error``);
    then random tables and intervals in random chunks."""
    fixed = np.random.default_rng(0)
    std = (STD_DC_LUMINANCE, STD_AC_LUMINANCE)
    real = jpeg_scan(jpeg.encode(_image(fixed, 24, 32), quality=75, optimize=False,
                                 restart_interval=3))
    deep = (_deep_table(fixed), _deep_table(fixed))
    deep_intervals = [tb_huffman.random_interval(*deep, fixed, 4) for _ in range(2)]
    cases = [
        ("real scan, restart 3, full chunks", real, {}),
        ("real scan, restart 3, random chunks", real, {"rng": fixed}),
        ("empty interval between two", (*std, [tb_huffman.random_interval(*std, fixed, 1), b"",
                                                tb_huffman.random_interval(*std, fixed, 2)]), {}),
        ("16-bit codes", (*deep, deep_intervals), {}),
        ("16-bit codes, slots swapped, random chunks", (*deep, deep_intervals),
         {"rng": fixed, "slots": (1, 0)}),
    ]
    jobs = [from_tb(tb_huffman.job(*scan, shape, **options), label,
                    watch={"error": 0, "table_error": 0})
            for label, scan, options in cases]
    bad = tb_huffman.random_interval(*std, fixed, 2) + b"\xff\xff\xff"
    jobs.append(from_tb(tb_huffman.job(*std, [bad], shape), "code absent from its table",
                        watch={"error": 1, "table_error": 0}, partial=True))
    body = bytes([0, 4] + [0] * 14) + bytes(4)       # four 2-bit codes: the all-ones code
    table = [{"data": b, "last": int(i == len(body) - 1), "slot": 0} for i, b in enumerate(body)]
    jobs.append(from_tb({"inputs": [["table", table]], "expected": {"sym": []}},
                        "bad table body", watch={"error": 0, "table_error": 1}))
    _alternate(jobs)
    for _ in range(count):
        tables = (_random_table(rng), _random_table(rng))
        intervals = [tb_huffman.random_interval(*tables, rng, int(rng.integers(0, 6)))
                     for _ in range(int(rng.integers(1, 4)))]
        slots = (0, 1) if rng.random() < 0.5 else (1, 0)
        chunking = rng if rng.random() < 0.5 else None
        jobs.append(from_tb(tb_huffman.job(*tables, intervals, shape, slots=slots,
                                           rng=chunking),
                            f"random tables, {len(intervals)} intervals",
                            watch={"error": 0, "table_error": 0}, stall=_stall(rng)))
    return jobs


# Coefficient decoder --------------------------------------------------------------

def _sym(symbol, extra=0, dc=False, last=False) -> ScanSymbol:
    return ScanSymbol(symbol, extra, symbol & 15, dc, last)


def _block_symbols(rng, dense=False) -> list:
    """The symbols of one random valid block: any DC category, runs, ZRLs, EOB."""
    size = int(rng.integers(12))
    out = [_sym(size, int(rng.integers(1 << size)), dc=True)]
    k = 1
    while k < 64:
        if not dense and rng.random() < 0.1:
            out.append(_sym(0x00, last=True))
            return out
        if not dense and k <= 48 and rng.random() < 0.05:
            out.append(_sym(0xF0))
            k += 16
            continue
        run = 0 if dense else int(rng.integers(min(15, 63 - k) + 1))
        symbol = (run << 4) | int(rng.integers(1, 11))
        k += run + 1
        out.append(_sym(symbol, int(rng.integers(1 << (symbol & 15))), last=k >= 64))
    return out


def _coef_job(symbols, qtable, shape, label, restart=0, **options):
    """A coefficient decoder job and its watched error code (the golden model's)."""
    result = decode_blocks(symbols, qtable, restart_interval=restart,
                           coef_bits=shape.coef_bits, q_bits=shape.q_bits)
    error = int(result.error)
    return from_tb(tb_coef.job(symbols, qtable, shape, restart_interval=restart), label,
                   watch={"error": int(bool(error)), "error_code": error},
                   partial=bool(error), **options)


def coef_cases(shape: CoefShape, rng, count: int):
    """Symbols of a real scan with restart intervals; DC differences of +-2047 until
    the predictor wraps, ZRLs ending on coefficient 64, size-10 values, 64-symbol
    blocks, quantizers 1 and 32767; every error code (the symbols up to it, ``error``
    and ``error_code``); then random blocks, quantizers and restart intervals."""
    fixed = np.random.default_rng(0)
    ramp = list(range(1, 65))
    top = [(1 << shape.q_bits) - 1] * 64
    data = jpeg.encode(_image(fixed, 24, 40), quality=90, restart_interval=4)
    dc, ac, intervals = jpeg_scan(data)
    real, _ = scan_symbols(intervals, dc, ac)
    wrap = []
    for i in range(24):
        wrap += [_sym(11, 2047 if i < 20 else 0, dc=True), _sym(0x00, last=True)]
    zrl_end = [_sym(0, dc=True), _sym(0xEA, 1023), _sym(0xF0), _sym(0xF0), _sym(0xF0, last=True)]
    dense = _block_symbols(fixed, dense=True) + _block_symbols(fixed, dense=True)
    dcb, eob = _sym(3, 5, dc=True), _sym(0x00, last=True)
    errors = [
        ("DC category 12", [dcb, eob, _sym(12, 0, dc=True)]),
        ("AC size 11", [dcb, _sym(0x0B, 3)]),
        ("AC symbol 0x10", [dcb, _sym(0x10)]),
        ("run past 63", [dcb, eob, dcb] + [_sym(0xF0)] * 4),
        ("DC symbol inside a block", [dcb, _sym(0x01, 1), dcb]),
        ("AC symbol outside a block", [dcb, eob, eob]),
    ]
    jobs = [
        _coef_job(real, to_zigzag(jpeg.decode_full(data).qtable), shape,
                  "real scan, restart 4", restart=4),
        _coef_job(wrap, ramp, shape, "DC +2047 until the predictor wraps"),
        _coef_job(zrl_end, top, shape, "ZRL ending on coefficient 64, largest quantizers"),
        _coef_job(dense, [1] * 64, shape, "64 symbols a block, quantizers 1"),
    ]
    for code, (label, symbols) in zip(
            (CoefError.DC_CATEGORY, CoefError.AC_SIZE, CoefError.AC_SYMBOL, CoefError.RUN,
             CoefError.BLOCK, CoefError.BLOCK), errors):
        job = _coef_job(symbols + [dcb, eob], ramp, shape, f"{code.name}: {label}")
        assert job.watch["error_code"] == code
        jobs.append(job)
    short = from_tb(tb_coef.job([dcb, eob], ramp, shape), "table of 63 quantizers",
                    watch={"error": 1, "error_code": int(CoefError.QTABLE)}, partial=True)
    short.inputs[0] = ("qtable", tb_coef.qtable_payloads(ramp[:63]))
    short.expected = {"o": []}
    jobs.append(short)
    _alternate(jobs)
    for _ in range(count):
        symbols = []
        for _ in range(int(rng.integers(1, 12))):
            symbols += _block_symbols(rng, dense=rng.random() < 0.2)
        qtable = rng.integers(1, 1 << shape.q_bits, 64)
        restart = int(rng.integers(0, 4))
        jobs.append(_coef_job(symbols, qtable, shape, f"random, restart {restart}",
                              restart=restart, stall=_stall(rng)))
    return jobs


# IDCT -----------------------------------------------------------------------------

def idct_cases(shape: IdctShape, rng, count: int):
    """A zero block, all coefficients at the largest and at the smallest value, a lone
    DC of each sign, an alternating pattern, with quantizers 1, 32767 and a ramp; the
    blocks of a real file; then random blocks, dense and sparse, with random tables."""
    lo, hi = -(1 << (shape.coef_bits - 1)), (1 << (shape.coef_bits - 1)) - 1
    qtop = (1 << shape.q_bits) - 1
    dc_hi, dc_lo = np.zeros(64, np.int64), np.zeros(64, np.int64)
    dc_hi[0], dc_lo[0] = 2047, -2048
    alternating = np.where(np.arange(64) % 2, hi, lo)
    extreme = np.array([np.zeros(64), np.full(64, hi), np.full(64, lo), dc_hi, dc_lo,
                        alternating], dtype=np.int64)
    jobs = [from_tb(tb_idct.job(extreme, np.full(64, q)), f"extreme blocks, quantizers {q}")
            for q in (1, qtop)]
    jobs.append(from_tb(tb_idct.job(extreme, np.arange(1, 65)), "extreme blocks, ramp table"))
    fixed = np.random.default_rng(0)
    decoded = jpeg.decode_full(jpeg.encode(_image(fixed, 16, 24), quality=50))
    jobs.append(from_tb(tb_idct.job(decoded.coefficients.reshape(-1, 64), decoded.qtable),
                        "real file, quality 50"))
    _alternate(jobs)
    for _ in range(count):
        n = int(rng.integers(1, 6))
        if rng.random() < 0.5:
            blocks = rng.integers(lo, hi + 1, (n, 64))
            qtable = rng.integers(1, qtop + 1, 64)
        else:
            blocks = rng.integers(-60, 61, (n, 64)) * (rng.random((n, 64)) < 0.2)
            qtable = rng.integers(1, 100, 64)
        jobs.append(from_tb(tb_idct.job(blocks, qtable), f"random, {n} blocks",
                            stall=_stall(rng)))
    return jobs


# Whole decompressor ---------------------------------------------------------------

#: Codes the decompressor reports exactly for damage before the entropy-coded data
#: (the golden model's docstring): the parser's, the table, slot, frame and metadata
#: checks. Damage in the entropy-coded data is certain only to raise ``error``.
HEADER_CODES = frozenset(range(1, 11)) | {gd.Error.HUFFMAN_TABLE, gd.Error.TABLE_SLOT,
                                          gd.Error.FRAME, gd.Error.METADATA}


def _container(rng, rows, cols, scheme, clusters, quality, restart=0):
    """A container of a random ``rows x cols`` matrix (seeds drawn, no search)."""
    weights = rng.normal(0, 1, (rows, cols)).astype(np.float32)
    seeds = None if scheme == "none" else _seeds(rng, rows, cols, scheme)
    data = codec.compress_matrix(weights, remap=scheme, clusters=clusters, quality=quality,
                                 seeds=seeds).data
    if restart:
        header = container.read_header(data)
        data = container.write(codec.decode_samples(data), header, quality=quality,
                               restart_interval=restart)
    return data


def _decompressor_job(data, shape, label, *, source=None, in_header=False, raw=False,
                      **options):
    """A decompressor job: the golden stream of a file it accepts (``EXACT``), or only
    its status event: the code compared when the damage lies before the scan and the
    code is one reported exactly there (``SKIP``), else only ``error`` (``LOOSE``)."""
    job = tb_decompressor.job(data, shape, raw=raw)
    out = job["expected"]["o"]
    modes = {}
    if out is None:
        code = job["error"]
        out = [dict(tb_decompressor.status(), error=int(code != 0), code=code)]
        modes = {"o": SKIP if in_header and code in HEADER_CODES else LOOSE}
    samples = len(gd.expected(source, shape, raw=raw).samples or []) if source else 0
    return from_tb(dict(job, expected={"o": out}), label, modes=modes, partial=True,
                   slack=CLOCKS_PER_TRANSFER * samples, **options)


def decompressor_cases(shape: gd.DecompressorShape, rng, count: int):
    """Pillow and golden-encoder files (RAW mode), containers with every remap scheme,
    a snap table and restart intervals, a container decoded in RAW mode, output
    backpressure in long runs; damaged files: cut, a segment length off, bit flips in
    the headers (exact code) and in the scan (``error``); then random files, random
    containers and random damage."""
    fixed = np.random.default_rng(0)
    raw_files = {
        "Pillow q5": _pillow(_image(fixed, 24, 40), quality=5),
        "Pillow q75 optimized restart 3": _pillow(_image(fixed, 24, 40), quality=75,
                                                  optimize=True, restart_marker_blocks=3),
        "golden 13x21 q50": jpeg.encode(_image(fixed, 13, 21), quality=50),
        "golden 1x1 q100": jpeg.encode(_image(fixed, 1, 1), quality=100),
    }
    containers = {
        "container none, snap": _container(fixed, 21, 37, "none", 8, 90),
        "container full": _container(fixed, 16, 16, "full", 0, 75),
        "container split, snap, restart 2": _container(fixed, 21, 37, "split", 16, 90, 2),
        "container progressive, restart 1": _container(fixed, 9, 30, "progressive", 4, 50, 1),
    }
    files = {**raw_files, **containers}
    jobs = [_decompressor_job(data, shape, label) for label, data in files.items()]
    jobs.append(_decompressor_job(containers["container full"], shape, "container in RAW mode",
                                  raw=True))
    _alternate(jobs)
    jobs.append(_decompressor_job(raw_files["Pillow q75 optimized restart 3"], shape,
                                  "output backpressure in runs", stall=BURSTY))
    for name in ("Pillow q75 optimized restart 3", "container split, snap, restart 2"):
        data = files[name]
        scan = container.walk(data).scan_start
        damaged = [("cut in the headers", data[:scan - 7], True),
                   ("cut in the scan", data[:(scan + len(data)) // 2], False)]
        for marker, segment in ((0xC0, "SOF"), (0xC4, "DHT"), (0xDB, "DQT"), (0xDA, "SOS")):
            k = data.find(bytes((0xFF, marker)))
            wrong = bytearray(data)
            wrong[k + 3] ^= 0x04
            damaged.append((f"{segment} length off", bytes(wrong), True))
        for where, low, high in (("headers", 2, scan), ("scan", scan, len(data) - 2)):
            wrong = bytearray(data)
            for _ in range(2):
                wrong[int(fixed.integers(low, high))] ^= 1 << int(fixed.integers(8))
            damaged.append((f"bits flipped in the {where}", bytes(wrong), where == "headers"))
        for k, (label, bad, in_header) in enumerate(damaged):
            jobs.append(_decompressor_job(bad, shape, f"{name}: {label}", source=data,
                                          in_header=in_header,
                                          stall=STALL if k % 2 else NO_STALL))
    for _ in range(count):
        rows, cols = (int(v) for v in rng.integers(1, 41, 2))
        quality = int(rng.integers(5, 101))
        if rng.random() < 0.5:
            data = _pillow(_image(rng, rows, cols), quality=quality,
                           optimize=bool(rng.random() < 0.5),
                           restart_marker_blocks=int(rng.integers(0, 3)))
            label = f"random Pillow {rows}x{cols} q{quality}"
        else:
            scheme = ("none", "full", "split", "progressive")[int(rng.integers(4))]
            clusters = (0, 4, 16)[int(rng.integers(3))]
            data = _container(rng, rows, cols, scheme, clusters, quality,
                              int(rng.integers(0, 3)))
            label = f"random container {rows}x{cols} {scheme} k{clusters} q{quality}"
        source = None
        if rng.random() < 0.3:
            source = data
            data, how = _random_damage(data, rng)
            label += f", {how}"
        jobs.append(_decompressor_job(data, shape, label, source=source, stall=_stall(rng)))
    return jobs


# CIM array ------------------------------------------------------------------------

def cim_cases(params: CimParams, rng, count: int):
    """Weights at -128 and 127 under the smallest and largest activations, a zero
    array, one vector after a reload; then random arrays and activations, the weights
    loaded in random order."""
    low, high = params.act_range
    shape = (params.rows, params.cols)

    def acts(*values):
        return np.array([np.full(params.rows, v) for v in values])

    mixed = np.array([[high if (r + k) % 2 else low for r in range(params.rows)]
                      for k in range(2)])
    cases = [
        ("weights -128, extreme activations", [(np.full(shape, -128), acts(low, high, 0))]),
        ("weights 127, extreme activations", [(np.full(shape, 127), acts(low, high))]),
        ("zero weights, then alternating signs",
         [(np.zeros(shape, np.int64), acts(high)),
          (np.where(np.indices(shape).sum(0) % 2, 127, -128), mixed)]),
    ]
    jobs = _alternate([from_tb(tb_cim.jobs(params, [phases])[0], label)
                       for label, phases in cases])
    for _ in range(count):
        phases = [(rng.integers(-128, 128, shape),
                   rng.integers(low, high + 1, (int(rng.integers(1, 9)), params.rows)))
                  for _ in range(int(rng.integers(1, 3)))]
        jobs.append(from_tb(tb_cim.jobs(params, [phases], rng=rng)[0],
                            f"random, {len(phases)} weight loads", stall=_stall(rng)))
    return jobs


#: Every block with golden vectors, by name: the registration. The parameter objects
#: are those of the RTL tests, whose Verilog is then built once for both.
BLOCKS = {block.name: block for block in (
    Block(tb_lfsr.BENCH, GeneratorShape(), lfsr_cases),
    Block(tb_remap.BENCH, RemapShape(), remap_cases),
    Block(tb_markers.BENCH, markers.MarkerShape(), markers_cases),
    Block(tb_huffman.BENCH, HuffmanShape(), huffman_cases, watch=("error", "table_error")),
    Block(tb_coef.BENCH, CoefShape(), coef_cases, watch=("error", "error_code")),
    Block(tb_idct.BENCH, IdctShape(), idct_cases),
    Block(tb_decompressor.BENCH, gd.DecompressorShape(max_rows=256, max_cols=256),
          decompressor_cases, terminator=("o", "end", ("row", "col", "sample", "end", "error")),
          base_clocks=8000),
    Block(tb_cim.BENCH, CimParams(16, 4, 3, signed_acts=True), cim_cases),
)}
