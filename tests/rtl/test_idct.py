"""The hardware islow IDCT against the golden model (itself exact against Pillow), on
blocks of real weight-matrix JPEGs and on extreme values, on both simulators."""

import io

import numpy as np
import pytest
from PIL import Image

from cimcodec.golden.blocks.idct import IdctShape
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg.dct import FIX
from cimcodec.golden.jpeg.reference import decode_full
from cimcodec.hw.idct import Idct, csd_digits
from cimcodec.sim.amaranth_sim import run_streams
from cimcodec.sim.cocotb_run import run_jobs
from cimcodec.tb import idct as tb
from cimcodec.tb.idct import BENCH


def _pillow_blocks(quality, seed=0):
    """Coefficients, quantizers and Pillow's pixels of a weight-like 24x16 JPEG."""
    rng = np.random.default_rng(seed)
    weights = np.clip(rng.normal(128, 30, (24, 16)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(weights).save(buf, "JPEG", quality=quality)
    decoded = decode_full(buf.getvalue())
    return decoded.coefficients.reshape(-1, 64), decoded.qtable, np.asarray(
        Image.open(io.BytesIO(buf.getvalue())))


def _extreme_blocks(rng):
    blocks = [np.zeros(64, np.int64), np.full(64, 32767), np.full(64, -32768)]
    dc_only = np.zeros(64, np.int64)
    dc_only[0] = -2047
    blocks.append(dc_only)
    blocks += list(rng.integers(-32768, 32768, (3, 64)))
    blocks += list(rng.integers(-40, 41, (3, 64)))
    return np.array(blocks)


def test_idct_in_amaranth_sim_matches_pillow():
    blocks, qtable, pixels = _pillow_blocks(50)
    job = tb.job(blocks, qtable)
    dut = Idct()
    out = run_streams(dut, [(dut.i, job["inputs"][0][1])],
                      {"o": (dut.o, len(job["expected"]["o"]))}, stall_seed=4)["o"]
    assert out == job["expected"]["o"]
    samples = np.array([o["sample"] for o in out]).reshape(3, 2, 8, 8)
    np.testing.assert_array_equal(samples.transpose(0, 2, 1, 3).reshape(24, 16), pixels)


@pytest.mark.parametrize("dsp", [True, False])
def test_rtl_matches_golden(simulator, dsp):
    rng = np.random.default_rng(8)
    jobs = []
    for quality, stall in [(5, None), (50, 3), (95, None), (100, 9)]:
        blocks, qtable, _ = _pillow_blocks(quality, seed=quality)
        jobs.append(tb.job(blocks, qtable, stall))
    extreme_q = rng.integers(1, 32768, 64)
    jobs.append(tb.job(_extreme_blocks(rng), extreme_q, None))
    jobs.append(tb.job(_extreme_blocks(rng), np.ones(64, np.int64), 5))
    results = run_jobs(BENCH, IdctShape(dsp=dsp), jobs, simulator)
    for job, result in zip(jobs, results, strict=True):
        assert result["outputs"]["o"] == job["expected"]["o"]
    # Without stalls, blocks overlap: one sample on every clock from the first to the
    # last (first_clock and clocks are the clocks of the first and last transfer).
    for job, result in [(jobs[0], results[0]), (jobs[2], results[2]), (jobs[4], results[4])]:
        assert result["clocks"] - result["first_clock"] == len(job["expected"]["o"]) - 1


@pytest.mark.parametrize("ports, dsp", [(2, True), (4, False)])
def test_rtl_ports_share_the_butterfly(simulator, ports, dsp):
    """Each port of a shared-butterfly IDCT gives its own blocks' golden samples while
    the others run at once: different blocks and quantizers per port, stalls per port.
    Without stalls each of 2 ports still streams one sample per clock, from its first
    sample to its last (the ports start a few clocks apart: the butterfly takes one
    port's column at a time); 4 ports streaming at once need every issue slot of the
    butterfly, so some wait."""
    rng = np.random.default_rng(9)
    streams = [_pillow_blocks(q, seed=q)[:2] for q in (5, 50, 95, 100)]
    streams.append((_extreme_blocks(rng), rng.integers(1, 32768, 64)))
    jobs = []
    for n, stall in enumerate([None, 3, 11]):
        picked = [streams[(n + k) % len(streams)] for k in range(ports)]
        jobs.append(tb.ports_job(picked, stall))
    # Same-sized streams without stalls: the ports' outputs run side by side.
    jobs.append(tb.ports_job([_pillow_blocks(50, seed=k)[:2] for k in range(ports)]))
    results = run_jobs(BENCH, IdctShape(dsp=dsp, ports=ports), jobs, simulator)
    for job, result in zip(jobs, results, strict=True):
        assert result["outputs"] == job["expected"]
    per_port = len(jobs[-1]["expected"]["o__0"])
    spans = [last - first for first, last in results[-1]["spans"].values()]
    if ports == 2:                  # half the butterfly's issue slots: no port waits
        assert spans == [per_port - 1] * ports


def test_csd_digits_sum_to_the_constant_with_no_adjacent_digits():
    rng = np.random.default_rng(0)
    for const in [*FIX.values(), 1, 2, 3, 7, 0x1FFFF, *rng.integers(1, 1 << 17, 200)]:
        digits = csd_digits(int(const))
        assert sum(sign << shift for shift, sign in digits) == const
        shifts = [shift for shift, _ in digits]
        assert all(b - a >= 2 for a, b in zip(shifts, shifts[1:])), (const, digits)
        assert all(sign in (1, -1) for _, sign in digits)
    # 7 = 8 - 1: two digits, not three.
    assert csd_digits(7) == [(0, -1), (3, 1)]


def test_bad_shape_names_the_parameter():
    with pytest.raises(CimcodecError, match=r"IDCT coef bits must be an integer 2..16, not 17"):
        Idct(IdctShape(coef_bits=17))
    with pytest.raises(CimcodecError, match=r"IDCT shape must be an IdctShape"):
        Idct(8)
    with pytest.raises(CimcodecError, match=r"IDCT dsp must be True or False, not 1\."):
        IdctShape(dsp=1)
    for bad in (0, 5, True, 2.0):
        with pytest.raises(CimcodecError, match=r"IDCT ports must be an integer 1\.\.4, not "):
            IdctShape(ports=bad)
