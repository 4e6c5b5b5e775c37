"""The hardware Huffman decoder against the golden stream model (itself checked against
the golden JPEG decoder): real weight-matrix JPEGs with standard and optimized tables,
random tables with 16-bit codes, restart intervals, stalls, the error flags, on the
Amaranth simulator and on both cocotb simulators."""

import dataclasses
import functools
import io

import numpy as np
import pytest
from PIL import Image

from cimcodec.golden.blocks.decompressor import HUFFMAN_SHAPE as DECOMPRESSOR_HUFFMAN
from cimcodec.golden.blocks.huffman import (
    MAX_FAST_SHIFT,
    RESTART_CLOCKS,
    SLOW_PATH_CLOCKS,
    START_CLOCKS,
    HuffmanShape,
    fast_hit,
    fast_hits,
    fast_table,
    fill_steps,
    jpeg_scan,
    scan_symbols,
)
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg.huffman import STD_AC_LUMINANCE, STD_DC_LUMINANCE, HuffmanTable
from cimcodec.golden.jpeg.reference import decode_full, encode
from cimcodec.golden.jpeg.zigzag import from_zigzag
from cimcodec.hw.huffman import HuffmanDecoder
from cimcodec.sim.amaranth_sim import run_streams, run_testbench
from cimcodec.sim.cocotb_run import run_jobs
from cimcodec.sim.verilog import elaborate, lint
from cimcodec.tb import huffman as tb
from cimcodec.tb.huffman import BENCH

SHAPE = HuffmanShape()


def _jpeg(seed, quality, optimize, restart=0, size=(40, 48)):
    """A weight-like matrix encoded by the golden encoder."""
    rng = np.random.default_rng(seed)
    weights = np.clip(rng.normal(128, 30, size), 0, 255).astype(np.uint8)
    return encode(weights, quality=quality, optimize=optimize, restart_interval=restart)


def _deep_table(rng):
    """An optimal table over 40 random symbols with Fibonacci counts: codes up to 16 bits."""
    freq, (a, b) = [0] * 256, (1, 1)
    for symbol in rng.permutation(256)[:40]:
        freq[symbol], (a, b) = a, (b, a + b)
    table = HuffmanTable.from_frequencies(freq)
    assert max(table.sizes()) == 16
    return table


def _slow_symbols(dc, ac, intervals, bits=SHAPE.fast_bits):
    """Symbols the decoder takes by its slow path, ``SLOW_PATH_CLOCKS`` later: codes longer than the
    fast table's ``K`` bits or that take more than ``MAX_FAST_SHIFT`` bits with their
    extra bits, and symbols fewer than ``K + 15`` bits from the end of their interval
    (the buffer is then too short for the fast path)."""
    slow = 0
    lengths = {True: dc.encoder(), False: ac.encoder()}
    for interval in intervals:
        symbols, _ = scan_symbols([interval], dc, ac)
        position, end = 0, 8 * len(interval)
        for s in symbols:
            length = lengths[s.dc][s.symbol][1]
            slow += not fast_hit(length, s.symbol, bits) or end - position < bits + 15
            position += length + s.size
    return slow


def _start(dc, ac):
    """Clocks from offering the scan's first chunk to taking it: 16 to copy the scan's
    tables, the DC and AC fast-table fills (:func:`fill_steps`), and ``START_CLOCKS``."""
    return (16 + fill_steps(dc, SHAPE.fast_bits) + fill_steps(ac, SHAPE.fast_bits)
            + START_CLOCKS)


#: The most that can take (one fill step per entry).
START = SHAPE.max_start_clocks


def _extend(value, size):
    return value if not size or value >= 1 << (size - 1) else value - (1 << size) + 1


@pytest.mark.parametrize("quality,optimize,restart", [(10, False, 0), (75, True, 5),
                                                      (100, True, 0), (50, False, 3)])
def test_golden_symbols_rebuild_the_decoders_coefficients(quality, optimize, restart):
    data = _jpeg(quality, quality, optimize, restart)
    dc, ac, intervals = jpeg_scan(data)
    zz = []
    for interval in intervals:
        symbols, error = scan_symbols([interval], dc, ac)
        assert not error
        pred = 0
        for s in symbols:
            if s.dc:
                pred += _extend(s.extra, s.size)
                zz.append([pred] + [0] * 63)
                k = 1
            else:
                k += s.symbol >> 4
                if s.size:
                    zz[-1][k] = _extend(s.extra, s.size)
                k += 1
            assert s.last == (not s.dc and (s.symbol == 0 or k >= 64))
    np.testing.assert_array_equal(from_zigzag(np.array(zz)),
                                  decode_full(data).coefficients.reshape(-1, 64))


def test_golden_stops_at_a_code_absent_from_its_table():
    interval = tb.random_interval(STD_DC_LUMINANCE, STD_AC_LUMINANCE,
                                  np.random.default_rng(1), 2)
    good, error = scan_symbols([interval], STD_DC_LUMINANCE, STD_AC_LUMINANCE)
    assert not error
    symbols, error = scan_symbols([interval + b"\xff\xff\xff"], STD_DC_LUMINANCE,
                                  STD_AC_LUMINANCE)
    assert error and symbols == good


@pytest.mark.parametrize("stall_seed", [None, 5])
def test_decoder_in_amaranth_sim(stall_seed):
    dc, ac, intervals = jpeg_scan(_jpeg(1, 75, False, restart=4))
    rng = None if stall_seed is None else np.random.default_rng(stall_seed)
    job = tb.job(dc, ac, intervals, SHAPE, rng=rng)
    dut = HuffmanDecoder(SHAPE)
    expected = job["expected"]["sym"]
    out = run_streams(dut, [(dut.table, job["inputs"][0][1]), (dut.bits, job["inputs"][1][1])],
                      {"sym": (dut.sym, len(expected))},
                      setup=[(dut.dc_slot, 0), (dut.ac_slot, 1)], stall_seed=stall_seed)
    assert out["sym"] == expected
    if stall_seed is None:
        # Table bytes load one per clock, then one symbol per clock, SLOW_PATH_CLOCKS
        # more for each symbol of the slow path; each restart interval costs
        # RESTART_CLOCKS, and the table copy and fill before the first.
        clocks = out["cycles"] - len(job["inputs"][0][1])
        slow, start = _slow_symbols(dc, ac, intervals), _start(dc, ac)
        assert len(expected) + start < clocks <= len(expected) + SLOW_PATH_CLOCKS * slow \
            + RESTART_CLOCKS * len(intervals) + start


def test_rtl_matches_golden(simulator):
    rng = np.random.default_rng(11)
    deep_dc, deep_ac = _deep_table(rng), _deep_table(rng)
    deep = [tb.random_interval(deep_dc, deep_ac, rng, 6) for _ in range(3)]
    cases = [
        (jpeg_scan(_jpeg(2, 50, False)), {}),
        (jpeg_scan(_jpeg(3, 90, True, restart=4)), {"rng": rng, "stall_seed": 3}),
        ((deep_dc, deep_ac, deep), {}),
        ((deep_dc, deep_ac, deep), {"rng": rng, "stall_seed": 8, "slots": (1, 0)}),
        (jpeg_scan(_jpeg(4, 100, True, restart=7, size=(24, 64))), {"stall_seed": 2}),
    ]
    jobs = [tb.job(*scan, SHAPE, **options) for scan, options in cases]
    results = run_jobs(BENCH, SHAPE, jobs, simulator)
    for job, result in zip(jobs, results, strict=True):
        assert result["outputs"]["sym"] == job["expected"]["sym"]
    # Without stalls, full 32-bit chunks: one symbol per clock, SLOW_PATH_CLOCKS more for
    # each symbol of the slow path (the deep tables' long codes among them); a restart
    # interval costs at most RESTART_CLOCKS.
    for index in (0, 2):
        scan = cases[index][0]
        symbols, slow = len(jobs[index]["expected"]["sym"]), _slow_symbols(*scan)
        clocks = results[index]["clocks"] - results[index]["first_clock"] + 1
        assert symbols <= clocks <= (symbols + SLOW_PATH_CLOCKS * slow
                                     + RESTART_CLOCKS * (len(scan[2]) - 1)), \
            (index, symbols, slow, clocks)


def test_rtl_matches_golden_with_byte_chunks(simulator):
    """The decompressor's shape: 8-bit chunks (with random partial ones) and a 6-bit fast
    table, whose index then leaves out the chunk joining the buffer (see ``window_index``):
    deep tables with 16-bit codes, many short intervals, stalls on both sides."""
    shape = DECOMPRESSOR_HUFFMAN
    rng = np.random.default_rng(21)
    deep_dc, deep_ac = _deep_table(rng), _deep_table(rng)
    deep = [tb.random_interval(deep_dc, deep_ac, rng, 1 + k % 3) for k in range(9)]
    cases = [
        (jpeg_scan(_jpeg(5, 90, True, restart=2)), {}),
        (jpeg_scan(_jpeg(6, 30, False)), {"rng": rng, "stall_seed": 4}),
        ((deep_dc, deep_ac, deep), {}),
        ((deep_dc, deep_ac, deep), {"rng": rng, "stall_seed": 9, "slots": (3, 2)}),
    ]
    jobs = [tb.job(*scan, shape, **options) for scan, options in cases]
    results = run_jobs(BENCH, shape, jobs, simulator)
    for k, (job, result) in enumerate(zip(jobs, results, strict=True)):
        assert result["outputs"]["sym"] == job["expected"]["sym"], k


def _run_flags(dut, tables, chunks, cycles=400 + START):
    """Drive ``tables`` then ``chunks`` (dropping a chunk not taken within 50 + START
    clocks),
    always ready for symbols, for ``cycles`` clocks; return the symbols and the final
    flags and ready."""
    flags = {"error": dut.error, "table_error": dut.table_error, "ready": dut.bits.ready}
    out = run_streams(dut, [(dut.table, tables), (dut.bits, chunks)], {"sym": (dut.sym, None)},
                      setup=[(dut.ac_slot, 1)], cycles=cycles, patience=50 + START, probes=flags)
    return out["sym"], {name: out[name] for name in flags}


def test_error_flag_on_a_code_absent_from_its_table():
    interval = tb.random_interval(STD_DC_LUMINANCE, STD_AC_LUMINANCE,
                                  np.random.default_rng(1), 2) + b"\xff\xff\xff"
    tables = (tb.table_bytes(STD_DC_LUMINANCE, 0) + tb.table_bytes(STD_AC_LUMINANCE, 1))
    # The chunks after the bad code are never taken: decoding stopped for good.
    chunks = tb.chunks([interval, b"\x00\x12"], SHAPE)
    got, final = _run_flags(HuffmanDecoder(SHAPE), tables, chunks)
    assert got == tb.expected_symbols([interval], STD_DC_LUMINANCE, STD_AC_LUMINANCE)
    assert final == {"error": 1, "table_error": 0, "ready": 0}


@pytest.mark.parametrize("body", [
    bytes([0, 4] + [0] * 14) + bytes(4),          # four 2-bit codes: the all-ones code
    bytes([1] + [0] * 15),                        # HUFFVAL shorter than the counts
    bytes([0, 1] + [0] * 13),                     # last byte among the counts
    bytes([0, 1] + [0] * 14) + bytes(2),          # HUFFVAL longer than the counts
])
def test_table_error_on_a_bad_dht_body(body):
    tables = [{"data": b, "last": int(i == len(body) - 1), "slot": 0}
              for i, b in enumerate(body)]
    _, final = _run_flags(HuffmanDecoder(SHAPE), tables, [], cycles=40 + START)
    assert final["table_error"] == 1 and final["error"] == 0


def test_good_tables_raise_no_table_error():
    tables = tb.table_bytes(STD_DC_LUMINANCE, 0) + tb.table_bytes(STD_AC_LUMINANCE, 1)
    interval = tb.random_interval(STD_DC_LUMINANCE, STD_AC_LUMINANCE,
                                  np.random.default_rng(2), 2)
    # The tables are copied when the first chunk is offered, then it decodes.
    got, final = _run_flags(HuffmanDecoder(SHAPE), tables, tb.chunks([interval], SHAPE),
                            cycles=400 + START)
    assert got == tb.expected_symbols([interval], STD_DC_LUMINANCE, STD_AC_LUMINANCE)
    assert final == {"error": 0, "table_error": 0, "ready": 1}


def test_verilog_passes_lint():
    lint(elaborate(BENCH.name, HuffmanDecoder, SHAPE), BENCH.name)


def test_bad_shape_names_the_parameter():
    with pytest.raises(CimcodecError, match=r"Huffman decoder tables must be an integer 2..4, "
                                            r"not 5\."):
        HuffmanDecoder(HuffmanShape(tables=5))
    with pytest.raises(CimcodecError, match=r"Huffman decoder chunk bits must be an integer "
                                            r"1..32, not 0\."):
        HuffmanShape(chunk_bits=0)
    with pytest.raises(CimcodecError, match=r"Huffman decoder shape must be a HuffmanShape"):
        HuffmanDecoder(2)


def test_a_follower_refuses_a_leader_it_cannot_share_tables_with():
    leader = HuffmanDecoder(SHAPE)
    follower = HuffmanDecoder(SHAPE, leader=leader)
    other = dataclasses.replace(SHAPE, fast_bits=SHAPE.fast_bits - 1)
    unequal = HuffmanDecoder(other)
    for made in (leader, follower, unequal):       # never elaborated: no warning for it
        made._MustUse__silence = True
    for bad in (2, unequal, follower):
        with pytest.raises(CimcodecError, match=r"A Huffman decoder's leader must be a "
                                                r"HuffmanDecoder of the same shape that has "
                                                r"no leader itself, not "):
            HuffmanDecoder(SHAPE, leader=bad)


@functools.cache
def _pillow_tables():
    """The DC and AC tables of Pillow's files (libjpeg's standard tables and its
    optimized ones at several qualities), and two random tables with 16-bit codes."""
    rng = np.random.default_rng(5)
    out = {}
    for quality in (1, 50, 95, 100):
        for optimize in (False, True):
            pixels = np.clip(rng.normal(128, 40, (24, 32)), 0, 255).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(pixels, "L").save(buf, "JPEG", quality=quality, optimize=optimize)
            dc, ac, _ = jpeg_scan(buf.getvalue())
            out[f"pillow-q{quality}-opt{int(optimize)}"] = (dc, ac)
    out["deep"] = (_deep_table(rng), _deep_table(rng))
    return out


@pytest.mark.parametrize("name", list(_pillow_tables()))
def test_hardware_fast_tables_equal_the_golden_tables(name):
    """The fast tables the decoder fills from DHT, read out of the simulation after the
    fill, equal :func:`golden.blocks.huffman.fast_table` entry by entry."""
    dc, ac = _pillow_tables()[name]
    dut = HuffmanDecoder(SHAPE)
    got, fill_clocks = {}, []

    async def bench(ctx):
        ctx.set(dut.dc_slot, 0)
        ctx.set(dut.ac_slot, 1)
        for payload in tb.table_bytes(dc, 0) + tb.table_bytes(ac, 1):
            ctx.set(dut.table.valid, 1)
            ctx.set(dut.table.payload, payload)
            await ctx.tick().until(dut.table.ready)
        ctx.set(dut.table.valid, 0)
        # A chunk offered starts the copy and the fill; it is taken after them.
        ctx.set(dut.bits.valid, 1)
        ctx.set(dut.bits.payload, {"data": 0, "count": 1, "first": 1})
        clocks = 0
        while not ctx.get(dut.bits.ready):
            await ctx.tick()
            clocks += 1
        fill_clocks.append(clocks)
        banks = dut.fast_banks
        per_table = len(banks) * banks[0].depth // 2
        for kind, base in (("dc", 0), ("ac", banks[0].depth // 2)):
            got[kind] = [ctx.get(banks[i % len(banks)].data[base + i // len(banks)])
                         for i in range(per_table)]

    run_testbench(dut, bench, 1e-8)
    for kind, table in (("dc", dc), ("ac", ac)):
        want = [dataclasses.asdict(e) for e in fast_table(table, SHAPE.fast_bits)]
        assert [{"hit": e.hit, "symbol": e.symbol, "shift": e.shift}
                for e in got[kind]] == [{k: int(v) for k, v in w.items()} for w in want]
    # The fill took the clocks fill_steps says (fewer than one per entry: runs of codes
    # of at most K - 2 bits are written four entries a clock).
    assert fill_clocks[0] == _start(dc, ac) < START
    # Every code of L <= K bits that takes at most MAX_FAST_SHIFT bits with its extra
    # bits fills 2 ** (K - L) entries; the rest are misses.
    k = SHAPE.fast_bits
    for kind, table in (("dc", dc), ("ac", ac)):
        assert sum(e.hit for e in got[kind]) == sum(
            1 << (k - n) for n, symbol in zip(table.sizes(), table.huffval, strict=True)
            if n <= k and n + (symbol & 15) <= MAX_FAST_SHIFT)


@pytest.mark.parametrize("bits", [8, 10])
def test_fast_hits_count_short_codes(bits):
    dc, ac, intervals = jpeg_scan(_jpeg(1, 75, False, restart=4))
    hits, symbols = fast_hits(intervals, dc, ac, bits)
    lengths = {True: dc.encoder(), False: ac.encoder()}
    every, _ = scan_symbols(intervals, dc, ac)
    assert symbols == len(every)
    assert hits == sum(lengths[s.dc][s.symbol][1] <= bits
                       and lengths[s.dc][s.symbol][1] + s.size <= MAX_FAST_SHIFT for s in every)
    assert 0 < hits <= symbols


def test_fast_table_rejects_a_bad_width():
    with pytest.raises(CimcodecError, match=r"Fast table index width must be an integer "
                                            r"4..12, not 13\."):
        fast_table(STD_AC_LUMINANCE, 13)
    with pytest.raises(CimcodecError, match=r"Huffman decoder fast bits must be an integer "
                                            r"4..12, not 3\."):
        HuffmanShape(fast_bits=3)


def test_tables_and_bits_offered_together():
    """The first chunk is offered with the first table byte: the table copy must not
    start in the clock a count byte is taken, or while its pair is on its way into the
    ring (the pair would be lost: here the 1-bit code's, which differs from a reset
    pair), and the symbols are the golden ones."""
    rng = np.random.default_rng(12)
    # DC categories with halving frequencies: codes of 1 to 12 bits.
    dc = HuffmanTable.from_frequencies([1 << (12 - s) if s < 12 else 0 for s in range(256)])
    ac = _deep_table(rng)
    assert dc.sizes()[0] == 1
    intervals = [tb.random_interval(dc, ac, rng, 8) for _ in range(2)]
    job = tb.job(dc, ac, intervals, SHAPE)
    dut = HuffmanDecoder(SHAPE)
    expected = job["expected"]["sym"]
    assert {"symbol": 0, "dc": 1} in [{"symbol": e["symbol"], "dc": e["dc"]} for e in expected]
    out = run_streams(dut, [(dut.table, job["inputs"][0][1]), (dut.bits, job["inputs"][1][1])],
                      {"sym": (dut.sym, len(expected))},
                      setup=[(dut.dc_slot, 0), (dut.ac_slot, 1)], together=True)
    assert out["sym"] == expected
