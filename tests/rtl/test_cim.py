"""CIM MAC array: golden model properties (lossless ADC == integer matmul, the quantized
ADC on a hand-computed example), errors, the Amaranth fast path, and the RTL on Icarus
and Verilator against the golden model."""

import re

import numpy as np
import pytest

from cimcodec.golden.blocks.cim import CimParams
from cimcodec.golden.errors import CimcodecError
from cimcodec.hw.cim import CimArray, result_shape
from cimcodec.sim.amaranth_sim import run_streams, run_testbench
from cimcodec.sim.cocotb_run import run_jobs
from cimcodec.tb import cim as tb
from cimcodec.tb.cim import BENCH


def _random_case(params, vectors, rng):
    low, high = params.act_range
    weights = rng.integers(-128, 128, (params.rows, params.cols), dtype=np.int8)
    acts = rng.integers(low, high + 1, (vectors, params.rows))
    return weights, acts


def _matmul(weights, acts):
    return np.asarray(acts).astype(np.int64) @ np.asarray(weights).astype(np.int64)


SHAPES = [(1, 1), (2, 3), (7, 5), (8, 8), (16, 4), (31, 2), (64, 16), (100, 7), (255, 3),
          (256, 9)]


@pytest.mark.parametrize("signed_acts", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_lossless_adc_is_integer_matmul(shape, signed_acts):
    rows, cols = shape
    rng = np.random.default_rng(rows * 1000 + cols)
    for bits in sorted({CimParams(rows, cols, 1).exact_adc_bits, 16}):
        params = CimParams(rows, cols, bits, signed_acts)
        assert params.exact and params.adc_table == tuple(range(rows + 1))
        weights, acts = _random_case(params, 20, rng)
        y = params.compute(weights, acts)
        assert y.dtype == np.int64 and y.shape == (20, cols)
        np.testing.assert_array_equal(y, _matmul(weights, acts))


@pytest.mark.parametrize("rows", [1, 3, 16, 255])
def test_extremes_are_exact(rows):
    params = CimParams(rows, 3, rows.bit_length())
    low_w = np.full((rows, 3), -128)
    high_a = np.full((2, rows), 255)
    np.testing.assert_array_equal(params.compute(low_w, high_a), -128 * 255 * rows)
    signed = CimParams(rows, 3, rows.bit_length(), signed_acts=True)
    low_a = np.full((2, rows), -128)
    np.testing.assert_array_equal(signed.compute(low_w, low_a), 128 * 128 * rows)
    high_w = np.full((rows, 3), 127)
    np.testing.assert_array_equal(signed.compute(high_w, low_a), -128 * 127 * rows)
    mixed = np.stack([np.full(rows, -128), np.full(rows, 127), np.zeros(rows, np.int64)])
    np.testing.assert_array_equal(signed.compute(low_w, mixed), _matmul(low_w, mixed))


def test_adc_is_lossless_exactly_from_ceil_log2_r_plus_1_bits():
    for rows in range(1, 300):
        bits = CimParams(rows, 1, 1).exact_adc_bits
        assert (1 << bits) - 1 >= rows > (1 << (bits - 1)) - 1
        assert CimParams(rows, 1, bits).adc_table == tuple(range(rows + 1))
        if bits > 1:
            coarse = CimParams(rows, 1, bits - 1)
            assert not coarse.exact and coarse.adc_table != tuple(range(rows + 1))
            assert coarse.adc_table[0] == 0 and coarse.adc_table[-1] == rows


def test_adc_table_by_hand():
    # R = 16, B = 3 (M = 7): code = floor((14 n + 16) / 32), n_hat = floor((32 code + 7) / 14).
    params = CimParams(16, 1, 3)
    codes = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 4, 5, 5, 6, 6, 7, 7]
    assert params.adc_code(np.arange(17)).tolist() == codes
    assert params.adc_reconstruct(np.arange(8)).tolist() == [0, 2, 5, 7, 9, 11, 14, 16]
    assert params.adc_table == (0, 0, 2, 2, 5, 5, 7, 7, 9, 9, 9, 11, 11, 14, 14, 16, 16)


def test_quantized_adc_on_a_hand_computed_example():
    # Vector 0 drives activation 1 on rows 0..2: only activation bit 0 is on, and every
    # weight plane a column has set counts 3 rows, which the 3-bit ADC reads back as 2.
    #   column 0, weight 3 (bits 0, 1):    2 * (1 + 2)           =    6  (exact    9)
    #   column 1, weight -1 (all bits):    2 * (127 - 128)       =   -2  (exact   -3)
    #   column 2, weight -128 (bit 7):     2 * -128              = -256  (exact -384)
    # Vector 1 drives 255 on rows 0..4: every activation bit counts 5 rows, read as 5.
    params = CimParams(16, 3, 3)
    weights = np.tile(np.array([[3, -1, -128]], np.int8), (16, 1))
    acts = np.zeros((2, 16), np.int64)
    acts[0, :3] = 1
    acts[1, :5] = 255
    assert params.compute(weights, acts).tolist() == [[6, -2, -256],
                                                      [255 * 15, -255 * 5, -255 * 640]]
    assert _matmul(weights, acts).tolist() == [[9, -3, -384], [255 * 15, -255 * 5, -255 * 640]]


def test_quantized_adc_differs_from_exact_and_stays_in_range():
    rng = np.random.default_rng(3)
    for signed_acts in (False, True):
        params = CimParams(16, 4, 3, signed_acts)
        weights, acts = _random_case(params, 50, rng)
        y = params.compute(weights, acts)
        assert (y != _matmul(weights, acts)).mean() > 0.5
        low, high = params.result_range
        assert low <= y.min() and y.max() <= high
    # The hardware's result width holds the range.
    for params in (CimParams(16, 4, 3), CimParams(16, 4, 3, True), CimParams(1, 1, 1)):
        low, high = params.result_range
        shape = result_shape(params)
        assert shape.signed and -(1 << (shape.width - 1)) <= low < high < 1 << (shape.width - 1)


def test_bad_parameters_name_what_is_wrong():
    with pytest.raises(CimcodecError, match=r"Row count must be a positive integer, not 0\."):
        CimParams(0, 4, 8)
    with pytest.raises(CimcodecError, match=r"Column count must be a positive integer, not -1"):
        CimParams(4, -1, 8)
    with pytest.raises(CimcodecError, match=r"Row count must be a positive integer, not True"):
        CimParams(True, 4, 8)
    with pytest.raises(CimcodecError, match=r"ADC resolution must be between 1 and 16 bits, "
                                            r"not 0\."):
        CimParams(4, 4, 0)
    with pytest.raises(CimcodecError, match=r"ADC resolution must be between 1 and 16 bits, "
                                            r"not 17\."):
        CimParams(4, 4, 17)
    with pytest.raises(CimcodecError, match=r"ADC resolution must be an integer, not 4\.0"):
        CimParams(4, 4, 4.0)
    with pytest.raises(CimcodecError, match=r"Signed activations must be True or False"):
        CimParams(4, 4, 4, "yes")
    with pytest.raises(CimcodecError, match=r"CIM array parameters must be a CimParams, not 16"):
        CimArray(16)
    for planes in (0, 3, 16, 2.0, True, "2"):
        with pytest.raises(CimcodecError, match=rf"Planes per clock must be 1, 2, 4 or 8, "
                                                rf"not {re.escape(repr(planes))}\."):
            CimParams(4, 4, 4, planes_per_clock=planes)
    assert [CimParams(4, 4, 4, False, p).clocks_per_vector for p in (1, 2, 4, 8)] == \
        [64, 32, 16, 8]
    assert CimParams(4, 4, 4).planes_per_clock == 2
    for writes in (3, 8, 0):
        with pytest.raises(CimcodecError, match=r"Writes per clock must be (a power of two "
                                                r"that divides the 4 columns, not|a positive "
                                                rf"integer, not) {writes}\."):
            CimParams(4, 4, 4, writes_per_clock=writes)
    assert [CimParams(4, 8, 4, writes_per_clock=w).load_clocks for w in (1, 2, 8)] == \
        [32, 16, 4]


def test_bad_data_names_what_is_wrong():
    params = CimParams(4, 3, 3)
    weights, acts = np.zeros((4, 3), np.int8), np.zeros((2, 4), np.uint8)
    with pytest.raises(CimcodecError, match=r"Weights must be 8-bit signed \(-128\.\.127\), "
                                            r"not 0\.\.128"):
        params.compute(np.where(np.eye(4, 3), 128, 0), acts)
    with pytest.raises(CimcodecError, match=r"Weights must have shape \(4, 3\) \(rows, "
                                            r"columns\), not \(3, 4\)"):
        params.compute(np.zeros((3, 4), np.int8), acts)
    with pytest.raises(CimcodecError, match=r"Weights must be an integer array, not float64"):
        params.compute(weights.astype(float), acts)
    with pytest.raises(CimcodecError, match=r"Weights must be 2-D, not 1-D with shape \(12,\)"):
        params.compute(weights.ravel(), acts)
    with pytest.raises(CimcodecError, match=r"Activation vectors must have 4 entries \(one "
                                            r"per row\), not 5"):
        params.compute(weights, np.zeros((2, 5), np.int64))
    with pytest.raises(CimcodecError, match=r"Activations must be 2-D, not 1-D"):
        params.compute(weights, np.zeros(4, np.int64))
    with pytest.raises(CimcodecError, match=r"Activations must be 2-D, not 3-D"):
        params.compute(weights, np.zeros((1, 2, 4), np.int64))
    with pytest.raises(CimcodecError, match=r"Activations must be an integer array, not bool"):
        params.compute(weights, acts.astype(bool))
    with pytest.raises(CimcodecError, match=r"Activations must be 8-bit unsigned \(0\.\.255\), "
                                            r"not -1\.\.0"):
        params.compute(weights, -np.eye(2, 4, dtype=np.int64))
    with pytest.raises(CimcodecError, match=r"8-bit unsigned \(0\.\.255\), not 0\.\.256"):
        params.compute(weights, 256 * np.eye(2, 4, dtype=np.int64))
    signed = CimParams(4, 3, 3, signed_acts=True)
    with pytest.raises(CimcodecError, match=r"8-bit signed \(-128\.\.127\), not 0\.\.128"):
        signed.compute(weights, 128 * np.eye(2, 4, dtype=np.int64))


def _run_amaranth(params, job, stall_seed):
    dut = CimArray(params)
    ports = {"w": dut.w, "a": dut.a}
    expected = job["expected"]["o"]
    return run_streams(dut, [(ports[n], v) for n, v in job["inputs"]],
                       {"o": (dut.o, len(expected))}, stall_seed=stall_seed)


@pytest.mark.parametrize("stall_seed", [None, 5])
@pytest.mark.parametrize("params", [CimParams(16, 4, 5), CimParams(16, 4, 3, True),
                                    CimParams(5, 3, 2), CimParams(1, 1, 1, True),
                                    CimParams(16, 4, 3, True, 1), CimParams(7, 2, 2, True, 4),
                                    CimParams(64, 3, 4, False, 8),
                                    CimParams(16, 4, 3, True, 8, 2),
                                    CimParams(5, 4, 2, False, 2, 4),
                                    CimParams(3, 16, 5, True, 4, 8)])
def test_array_in_amaranth_sim(params, stall_seed):
    rng = np.random.default_rng(params.rows + params.adc_bits)
    phases = [_random_case(params, 6, rng), _random_case(params, 3, rng)]
    job = tb.jobs(params, [phases], (stall_seed,), rng)[0]
    result = _run_amaranth(params, job, stall_seed)
    assert result["o"] == job["expected"]["o"]


def test_wide_write_ignores_the_low_column_bits():
    """With ``W = 4`` a write fills the aligned group of its column: ``col`` 5 writes
    columns 4..7, as ``col`` 4 does."""
    params = CimParams(3, 8, 4, False, 8, writes_per_clock=4)
    rng = np.random.default_rng(4)
    weights, acts = _random_case(params, 4, rng)
    job = tb.jobs(params, [[(weights, acts)]])[0]
    writes = job["inputs"][0][1]
    for k, write in enumerate(writes):
        write["col"] += k % 4
    assert sorted(w["col"] % 4 for w in writes) == [0, 0, 1, 1, 2, 3]
    assert _run_amaranth(params, job, None)["o"] == job["expected"]["o"]


@pytest.mark.parametrize("planes", [1, 2, 4, 8])
def test_array_runs_one_vector_per_64_over_p_clocks(planes):
    params = CimParams(16, 4, 3, True, planes)
    assert params.clocks_per_vector == 64 // planes
    rng = np.random.default_rng(planes)
    cycles = []
    for vectors in (10, 20):
        weights, acts = _random_case(params, vectors, rng)
        job = tb.jobs(params, [[(weights, acts)]])[0]
        result = _run_amaranth(params, job, None)
        assert result["o"] == job["expected"]["o"]
        cycles.append(result["cycles"])
    assert cycles[1] - cycles[0] == 64 // planes * 10


def _clock_count(params, weights, acts):
    """Load ``weights``, offer the vectors ``acts`` back to back with ``o`` always ready;
    the clocks of each ``a`` transfer and each ``o.valid``, and the results."""
    dut = CimArray(params)
    seen = {"a": [], "o": [], "results": []}

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for write in tb.weight_writes(weights):
            ctx.set(dut.w.valid, 1)
            ctx.set(dut.w.payload, write)
            await ctx.tick().until(dut.w.ready == 1)
        ctx.set(dut.w.valid, 0)
        clock = 0
        pending = [list(map(int, v)) for v in acts]
        ctx.set(dut.a.valid, 1)
        ctx.set(dut.a.payload, pending[0])
        while len(seen["o"]) < len(acts):
            taken = pending and ctx.get(dut.a.ready)
            done = ctx.get(dut.o.valid)
            if done:
                seen["o"].append(clock)
                seen["results"].append(list(ctx.get(dut.o.payload)))
            await ctx.tick()
            if taken:
                seen["a"].append(clock)
                pending.pop(0)
                if pending:
                    ctx.set(dut.a.payload, pending[0])
                else:
                    ctx.set(dut.a.valid, 0)
            clock += 1
            assert clock < 1000

    run_testbench(dut, bench)
    return dut.latency, seen


@pytest.mark.parametrize("planes", [1, 2, 4, 8])
@pytest.mark.parametrize("rows", [1, 5, 16, 64])
def test_result_comes_after_the_documented_clocks(rows, planes):
    params = CimParams(rows, 3, 4, planes_per_clock=planes)
    rng = np.random.default_rng(rows + planes)
    weights, acts = _random_case(params, 4, rng)
    latency, seen = _clock_count(params, weights, acts)
    # The documented count: the staging clock, the bit-serial clocks, then a clock per
    # register after them (the AND gates, one per four-input popcount adder level, the
    # ADC table, the plane sum, the plane Horner step, ``o``); the next vector is taken
    # in the last bit-serial clock but one, and its result comes as many clocks after it.
    levels = {1: 0, 5: 2, 16: 2, 64: 3}[rows]
    assert latency == 64 // planes + 6 + levels
    assert np.diff(seen["a"]).tolist() == [params.clocks_per_vector] * 3
    assert seen["o"] == [a + latency for a in seen["a"]]
    assert seen["results"] == params.compute(weights, acts).tolist()


@pytest.mark.parametrize("width", [1, 4])
def test_write_in_the_vectors_clock_applies_to_it(width):
    """A write taken in the same clock as a vector changes that vector's results, and
    the vector keeps the documented latency and pace; no write is taken in the clock
    after a vector (the vector is staged then)."""
    params = CimParams(8, 4, 4, writes_per_clock=width)
    rng = np.random.default_rng(17 + width)
    weights, acts = _random_case(params, 2, rng)
    new = weights.copy()
    new[5, :width] = -weights[5, :width] - 1            # the last write: row 5, group 0
    writes = tb.weight_writes(weights, width=width)
    last = tb.weight_writes(new, width=width)[5 * (params.cols // width)]
    dut = CimArray(params)
    seen = {"a": [], "o": [], "results": []}

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for write in writes:
            ctx.set(dut.w.valid, 1)
            ctx.set(dut.w.payload, write)
            await ctx.tick().until(dut.w.ready == 1)
        clock = 0
        ctx.set(dut.w.payload, last)                    # w.valid still high
        ctx.set(dut.a.valid, 1)
        ctx.set(dut.a.payload, list(map(int, acts[0])))
        pending = 2
        while len(seen["o"]) < 2:
            taken = pending and ctx.get(dut.a.ready)
            assert clock or (taken and ctx.get(dut.w.ready))    # both in clock 0
            assert clock != 1 or not ctx.get(dut.w.ready)
            if ctx.get(dut.o.valid):
                seen["o"].append(clock)
                seen["results"].append(list(ctx.get(dut.o.payload)))
            await ctx.tick()
            ctx.set(dut.w.valid, 0)
            if taken:
                seen["a"].append(clock)
                pending -= 1
                ctx.set(dut.a.payload, list(map(int, acts[1])))
                ctx.set(dut.a.valid, pending > 0)
            clock += 1
            assert clock < 1000

    run_testbench(dut, bench)
    assert seen["a"] == [0, params.clocks_per_vector]
    assert seen["o"] == [dut.latency, params.clocks_per_vector + dut.latency]
    assert seen["results"] == params.compute(new, acts).tolist()
    assert seen["results"][0] != params.compute(weights, acts[:1]).tolist()[0]


@pytest.mark.parametrize("width", [1, 4])
def test_writes_between_idle_clocks_with_other_payloads(width):
    """Each write is followed by idle clocks whose payload (``w.valid`` low) names
    other cells and weights, in every quarter of the rows (each has its own copy of
    the registered weights, two of them loaded only while ``w.valid``): only the
    writes land."""
    params = CimParams(8, 4, 4, writes_per_clock=width)
    rng = np.random.default_rng(23 + width)
    weights, acts = _random_case(params, 1, rng)
    writes = tb.weight_writes(weights, width=width)
    noise = tb.weight_writes(_random_case(params, 1, rng)[0], width=width)
    dut = CimArray(params)
    seen = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for k, write in enumerate(writes):
            ctx.set(dut.w.valid, 1)
            ctx.set(dut.w.payload, write)
            await ctx.tick().until(dut.w.ready == 1)
            ctx.set(dut.w.valid, 0)
            for j in range(k % 3 + 1):
                ctx.set(dut.w.payload, noise[(k + j) % len(noise)])
                await ctx.tick()
        ctx.set(dut.a.valid, 1)
        ctx.set(dut.a.payload, list(map(int, acts[0])))
        await ctx.tick().until(dut.a.ready == 1)
        ctx.set(dut.a.valid, 0)
        for _ in range(1000):
            if ctx.get(dut.o.valid):
                seen.append(list(ctx.get(dut.o.payload)))
                break
            await ctx.tick()

    run_testbench(dut, bench)
    assert seen == params.compute(weights, acts).tolist()


@pytest.mark.parametrize("shape", [(3, 1, 1), (3, 2, 2), (5, 8, 4)])
def test_writes_outside_the_array_are_dropped(shape):
    """A write to a row or column the index field can name but the array lacks (row 3
    of 3, column 1 of 1, column 2 of 2) changes no cell."""
    rows, cols, width = shape
    params = CimParams(rows, cols, 4, writes_per_clock=width)
    rng = np.random.default_rng(rows * 10 + cols)
    weights, acts = _random_case(params, 2, rng)
    row_bits = max(1, (rows - 1).bit_length())
    col_bits = max(1, (cols - 1).bit_length())
    junk = [0x55] * width if width > 1 else 0x55
    outside = [{"row": (1 << row_bits) - 1, "col": 0, "weight": junk}]
    if (1 << col_bits) > cols:
        outside.append({"row": 0, "col": (1 << col_bits) - 1, "weight": junk})
    assert rows < 1 << row_bits
    dut = CimArray(params)
    writes = tb.weight_writes(weights, width=width) + outside
    vectors = [list(map(int, v)) for v in acts]
    got = run_streams(dut, [(dut.w, writes), (dut.a, vectors)],
                      {"o": (dut.o, len(acts))})["o"]
    assert got == params.compute(weights, acts).tolist()


# Per simulator: a lossless unsigned array and a lossy 3-bit signed one at the default
# two planes per clock and one weight write per clock (16 rows need the exact ADC at 5
# bits), the signed one at 1 plane per clock, and at 8 with 4 writes per clock, and a
# lossy 4-bit unsigned one at 4 planes and 2 writes per clock (the build of
# tests/cli/test_cim.py's `rtl-mac --cim-planes 4 --cim-writes 2`, so it is made once).
RTL_PARAMS = [CimParams(16, 4, 5), CimParams(16, 4, 3, signed_acts=True),
              CimParams(16, 4, 3, True, 1), CimParams(16, 4, 4, False, 4, writes_per_clock=2),
              CimParams(16, 4, 3, True, 8, writes_per_clock=4)]


@pytest.mark.parametrize("params", RTL_PARAMS,
                         ids=["exact-unsigned", "adc3-signed", "adc3-signed-p1",
                              "adc4-unsigned-p4-w2", "adc3-signed-p8-w4"])
def test_rtl_matches_golden(params, simulator):
    rng = np.random.default_rng(params.adc_bits + params.planes_per_clock)
    low, high = params.act_range
    extreme = (np.full((params.rows, params.cols), -128),
               np.stack([np.full(params.rows, low), np.full(params.rows, high)]))
    cases = [[_random_case(params, 12, rng), _random_case(params, 4, rng)],
             [extreme, _random_case(params, 3, rng)],
             [_random_case(params, 5, rng)]]
    jobs = tb.jobs(params, cases, stall_seeds=(None, 17), rng=rng)
    results = run_jobs(BENCH, params, jobs, simulator)
    for job, result in zip(jobs, results):
        assert result["outputs"]["o"] == job["expected"]["o"]
    golden = [np.concatenate([params.compute(w, a) for w, a in phases]).tolist()
              for phases in cases for _ in (0, 1)]
    assert [r["outputs"]["o"] for r in results] == golden
    exact = [np.concatenate([_matmul(w, a) for w, a in phases]).tolist() for phases in cases]
    # A lossless ADC gives the integer product; the 3- and 4-bit ones visibly do not.
    assert ([r["outputs"]["o"] for r in results[::2]] == exact) == params.exact
    # Without stalls, five vectors on one load: a result every 64 / P clocks.
    steady = results[4]
    assert steady["clocks"] - steady["first_clock"] == 4 * params.clocks_per_vector
