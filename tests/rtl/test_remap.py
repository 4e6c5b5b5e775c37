"""Weight-matrix remap: bijection and inverse on every shape, the Amaranth fast path,
and the RTL (generator + remap unit) on Icarus and Verilator against the golden model."""

import numpy as np
import pytest

from cimcodec.golden.blocks.lfsr import Kind, Scheme
from cimcodec.golden.blocks.remap import RemapParams, RemapShape, block_order, check_matrix
from cimcodec.golden.errors import CimcodecError
from cimcodec.hw.remap import RemapEngine, RemapUnit
from cimcodec.sim.amaranth_sim import run_streams
from cimcodec.sim.cocotb_run import run_jobs
from cimcodec.tb import remap as tb
from cimcodec.tb.remap import BENCH

SHAPES = [(1, 1), (8, 8), (7, 9), (13, 21), (64, 64), (100, 70), (3, 300), (129, 5)]


def _params(rows, cols, scheme, rng, kind=Kind.FIBONACCI):
    probe = RemapParams(rows, cols, scheme)
    seeds = [int(rng.integers(1, 1 << max(2, t))) for t in probe.field_takes]
    return RemapParams(rows, cols, scheme, tuple(seeds), kind=kind)


@pytest.mark.parametrize("scheme", list(Scheme))
@pytest.mark.parametrize("shape", SHAPES)
def test_remap_is_a_bijection_with_an_inverse(shape, scheme):
    rng = np.random.default_rng(sum(shape))
    for kind in Kind:
        p = _params(*shape, scheme, rng, kind)
        r, c = np.indices((p.padded_rows, p.padded_cols))
        r2, c2 = p.forward(r, c)
        codes = r2 * p.padded_cols + c2
        assert np.array_equal(np.sort(codes.ravel()), np.arange(r.size))
        back_r, back_c = p.inverse(r2, c2)
        np.testing.assert_array_equal(back_r, r)
        np.testing.assert_array_equal(back_c, c)
        w = rng.integers(-128, 128, shape)
        np.testing.assert_array_equal(p.unremap(p.remap(w)), w)


def test_remap_actually_moves_weights_across_blocks():
    p = RemapParams(64, 64, Scheme.FULL, (37,))
    r, c = np.indices((64, 64))
    r2, c2 = p.forward(r, c)
    assert (r2 >> 3 != r >> 3).mean() > 0.5 and (c2 >> 3 != c >> 3).mean() > 0.5
    assert np.array_equal(RemapParams(64, 64, Scheme.NONE).forward(r, c)[0], r)


def test_padding_repeats_the_edge_as_jpeg_does():
    p = RemapParams(3, 10, Scheme.NONE)
    w = np.arange(30).reshape(3, 10)
    padded = p.pad(w)
    assert padded.shape == (8, 16)
    np.testing.assert_array_equal(padded[7], padded[2])
    np.testing.assert_array_equal(padded[:, 15], padded[:, 9])


def test_block_order_is_jpeg_order():
    r, c = block_order(16, 16)
    assert (r[:10].tolist(), c[:10].tolist()) == ([0] * 8 + [1, 1], list(range(8)) + [0, 1])
    assert (r[64], c[64]) == (0, 8)


def test_bad_parameters_name_what_is_wrong():
    with pytest.raises(CimcodecError, match=r"Row count must be a positive integer, not 0"):
        RemapParams(0, 5)
    with pytest.raises(CimcodecError, match=r"Remap scheme must be one of none, full"):
        RemapParams(8, 8, "zigzag")
    with pytest.raises(CimcodecError, match=r"needs 2 seed\(s\), not 1"):
        RemapParams(64, 64, Scheme.SPLIT, (3,))
    with pytest.raises(CimcodecError, match=r"LFSR seed must be between 1 and 63"):
        RemapParams(64, 64, Scheme.FULL, (0,))
    with pytest.raises(CimcodecError, match=r"must be 2-D, not 3-D with shape \(2, 3, 4\)"):
        check_matrix(np.zeros((2, 3, 4)))
    with pytest.raises(CimcodecError, match=r"must be 2-D, not 3-D"):
        RemapParams(2, 3).remap(np.zeros((2, 3, 4)))
    with pytest.raises(CimcodecError, match=r"Max rows must be a positive integer"):
        RemapUnit(RemapShape(max_rows=0))
    with pytest.raises(CimcodecError, match=r"does not fit remap hardware built for 64x64"):
        RemapShape(64, 64).config(RemapParams(65, 8))


def test_remap_unit_in_amaranth_sim():
    """Each scheme on a padded 5x6-block matrix (100x70 runs on both simulators in
    test_rtl_matches_golden; Amaranth's simulator is the slowest of the three)."""
    shape = RemapShape(max_rows=128, max_cols=96)
    rng = np.random.default_rng(5)
    for scheme in Scheme:
        p = _params(37, 45, scheme, rng)
        job = tb.job(shape, p, stall_seed=3)
        dut = RemapEngine(shape)
        ports = {"gen_cfg": dut.gen_cfg, "i": dut.i}
        expected = job["expected"]["o"]
        out = run_streams(dut, [(ports[n], v) for n, v in job["inputs"]],
                          {"o": (dut.o, len(expected))},
                          setup=[(dut.cfg, job["setup"]["cfg"])], stall_seed=3)["o"]
        assert out == expected, scheme


def test_remap_unit_takes_nothing_before_its_geometry_is_registered():
    """The first position is offered in the first clock after reset, before the
    registered geometry holds the configuration's values: it must not be judged
    against a 0x0 grid (8, 0 would be dropped as outside it)."""
    shape = RemapShape(max_rows=16, max_cols=16)
    dut = RemapUnit(shape)
    inputs = [{"row": 8, "col": 0, "data": 5}, {"row": 9, "col": 3, "data": 6},
              {"row": 0, "col": 0, "data": 7}, {"row": 15, "col": 15, "data": 8}]
    run = run_streams(dut, [(dut.i, inputs)], {"o": (dut.o, len(inputs))},
                      setup=[(dut.cfg, shape.config(RemapParams(16, 16, Scheme.NONE)))],
                      max_cycles=200)
    assert run["o"] == inputs


#: Beside SHAPES, for the default 4096x4096 build: over 256 rows (38 column words, the
#: row address's ninth bit) and over 512 columns (75 row words, the column address's
#: tenth bit). Narrow, as every position goes through cocotb's Python driver: the
#: 300x64 and 64x1000 used before had four times the positions, with the same address
#: bits and table-index widths.
WIDE = [(300, 16), (9, 600)]


#: Matrices of more positions than this run in one scheme each on Icarus (several times
#: slower per clock), the schemes in turn; every scheme of them runs on Verilator.
ICARUS_POSITIONS = 1000


def _rtl_params(rng, simulator):
    params = []
    large = [(r, c) for r, c in SHAPES + WIDE if r * c > ICARUS_POSITIONS]
    for i, (rows, cols) in enumerate(SHAPES + WIDE):
        for k, scheme in enumerate(Scheme):
            p = _params(rows, cols, scheme, rng, list(Kind)[i % 2])
            if (simulator == "verilator" or (rows, cols) not in large
                    or k == large.index((rows, cols)) % len(Scheme)):
                params.append(p)
    return params


def test_rtl_matches_golden(simulator):
    shape = RemapShape()
    params = _rtl_params(np.random.default_rng(9), simulator)
    # Every scheme on a matrix over ICARUS_POSITIONS, and both LFSR forms, on both.
    large = [p for p in params if p.rows * p.cols > ICARUS_POSITIONS]
    assert {p.scheme for p in large} == set(Scheme) and {p.kind for p in large} == set(Kind)
    jobs = [tb.job(shape, p, stall_seed=(i if i % 2 else None)) for i, p in enumerate(params)]
    results = run_jobs(BENCH, shape, jobs, simulator)
    for p, job, result in zip(params, jobs, results):
        assert result["outputs"]["o"] == job["expected"]["o"], p
        assert len(result["outputs"]["o"]) == p.rows * p.cols


def test_rtl_matches_golden_in_a_small_build(simulator):
    """A second elaboration-parameter set: a 40x24 matrix limit and 4-bit payloads."""
    shape = RemapShape(max_rows=40, max_cols=24, data_width=4)
    rng = np.random.default_rng(4)
    params = [_params(r, c, s, rng) for r, c in [(40, 24), (33, 17), (5, 3)] for s in Scheme]
    jobs = [tb.job(shape, p, stall_seed=i) for i, p in enumerate(params)]
    results = run_jobs(BENCH, shape, jobs, simulator)
    assert [r["outputs"]["o"] for r in results] == [j["expected"]["o"] for j in jobs]
