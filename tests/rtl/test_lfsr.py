"""LFSR and control-word generator: golden model properties, the Amaranth fast path,
and the RTL on Icarus and Verilator against the golden model."""

import numpy as np
import pytest

from cimcodec.golden.blocks.lfsr import (
    MAXIMAL_TAPS,
    ControlWords,
    Field,
    GeneratorShape,
    Kind,
    Lfsr,
    is_maximal,
)
from cimcodec.golden.errors import CimcodecError
from cimcodec.hw.lfsr import ControlWordGenerator
from cimcodec.sim.amaranth_sim import run_streams
from cimcodec.sim.cocotb_run import run_jobs
from cimcodec.tb import lfsr as tb
from cimcodec.tb.lfsr import BENCH


def test_every_table_polynomial_is_maximal():
    assert sorted(MAXIMAL_TAPS) == list(range(2, 33))
    for width, taps in MAXIMAL_TAPS.items():
        assert is_maximal(width, taps), width


def test_non_primitive_polynomials_are_rejected():
    # x^4 + x^2 + 1 = (x^2 + x + 1)^2 is reducible: period 6, not 15.
    taps = 0b1010
    assert not is_maximal(4, taps)
    lfsr = Lfsr(4, 1, taps, require_maximal=False)
    assert len(set(lfsr.states(20).tolist())) < 15
    with pytest.raises(CimcodecError, match=r"do not give a maximal-length 4-bit sequence"):
        Lfsr(4, 1, taps)


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("width", range(2, 15))
def test_period_is_maximal(width, kind):
    states = Lfsr(width, 1, kind=kind).states((1 << width) + 1)
    period = (1 << width) - 1
    assert len(set(states[:period].tolist())) == period
    assert states[period] == states[0] and states[period + 1] == states[1]


@pytest.mark.parametrize("kind", list(Kind))
def test_bulk_generation_matches_single_steps(kind):
    for width in (2, 7, 16, 31, 32):
        lfsr = Lfsr(width, (0x9E3779B9 % ((1 << width) - 1)) + 1, kind=kind)
        state, stepped = lfsr.seed, []
        for _ in range(300):
            stepped.append(state)
            state = lfsr.step(state)
        np.testing.assert_array_equal(lfsr.states(300), np.array(stepped, np.uint64))
        seeds = np.array([1, 2, 3, (1 << width) - 1], np.uint64)
        batch = lfsr.states(50, seeds)
        assert batch.shape == (4, 50)
        for row, seed in zip(batch, seeds):
            np.testing.assert_array_equal(row, Lfsr(width, int(seed), kind=kind).states(50))


def test_schemes_follow_the_documented_formulas():
    full = ControlWords.full(12, 77).words(40)
    np.testing.assert_array_equal(full, Lfsr(12, 77).states(40))

    split = ControlWords.split((3, 9), (5, 300)).words(40)
    expected = (Lfsr(3, 5).states(40) & 7) | (Lfsr(9, 300).states(40) << np.uint64(3))
    np.testing.assert_array_equal(split, expected)

    prog = ControlWords.progressive(10, 3, stage_len=4, start=2).words(60)
    widths = np.minimum(10, 2 + np.arange(60) // 4).astype(np.uint64)
    expected = Lfsr(10, 3).states(60) & ((np.uint64(1) << widths) - np.uint64(1))
    np.testing.assert_array_equal(prog, expected)
    assert int(prog[:4].max()) < 4 and int(prog[-1]) == int(Lfsr(10, 3).states(60)[-1])


@pytest.mark.parametrize("width", [0, 1, 33, 40])
def test_bad_width_names_the_parameter(width):
    with pytest.raises(CimcodecError, match=r"LFSR width must be between 2 and 32 bits"):
        Lfsr(width)
    with pytest.raises(CimcodecError, match=r"Generator LFSR width must be between 2 and 32"):
        ControlWordGenerator(GeneratorShape(lfsr_width=width))


def test_bad_seed_and_taps_name_the_parameter():
    with pytest.raises(CimcodecError, match=r"LFSR seed must be between 1 and 255"):
        Lfsr(8, 0)
    with pytest.raises(CimcodecError, match=r"LFSR seed must be between 1 and 255"):
        Lfsr(8, 256)
    with pytest.raises(CimcodecError, match=r"must have bit 7 as their top bit"):
        Lfsr(8, 1, 0x1D)
    with pytest.raises(CimcodecError, match=r"kind must be 'fibonacci' or 'galois'"):
        Lfsr(8, 1, kind="ring")
    with pytest.raises(CimcodecError, match=r"Generator shape must be a GeneratorShape"):
        ControlWordGenerator(32)


def test_config_checks_the_hardware_size():
    small = GeneratorShape(lfsr_width=8, fields=1, word_width=8, count_bits=4)
    with pytest.raises(CimcodecError, match=r"LFSRs are at most 8 bits"):
        ControlWords.full(9).config(small, 3)
    with pytest.raises(CimcodecError, match=r"has 1 LFSR fields, the scheme needs 2"):
        ControlWords.split((3, 3), (1, 1)).config(small, 3)
    with pytest.raises(CimcodecError, match=r"at most 15 for a 4-bit counter"):
        ControlWords.full(8).config(small, 16)


CASES = [
    (ControlWords.full(5, 9), 70),
    (ControlWords.full(32, 0xDEADBEEF, kind=Kind.GALOIS), 40),
    (ControlWords.split((3, 6), (2, 33)), 50),
    (ControlWords.progressive(9, 11, stage_len=5), 60),
]


@pytest.mark.parametrize("stall_seed", [None, 7])
def test_generator_in_amaranth_sim(stall_seed):
    shape = GeneratorShape()
    for words, count in CASES:
        dut = ControlWordGenerator(shape)
        out = run_streams(dut, [(dut.cfg, [words.config(shape, count)])],
                          {"o": (dut.o, count)}, stall_seed=stall_seed)["o"]
        assert [o["word"] for o in out] == words.words(count).tolist()
        assert [o["last"] for o in out] == [0] * (count - 1) + [1]


def _rtl_cases(rng):
    """Many widths, both forms, random polynomials from the table and random seeds."""
    cases = []
    for width in range(2, 33):
        kind = Kind.GALOIS if width % 2 else Kind.FIBONACCI
        seed = int(rng.integers(1, 1 << width))
        cases.append((ControlWords.full(width, seed, kind=kind), 24 + width))
    for takes in [(3, 2), (3, 9), (1, 1), (16, 16)]:
        seeds = [int(rng.integers(1, 1 << max(2, t))) for t in takes]
        cases.append((ControlWords.split(takes, seeds), 40))
    for width, stage in [(4, 1), (12, 3), (20, 7)]:
        cases.append((ControlWords.progressive(width, int(rng.integers(1, 1 << width)),
                                               stage_len=stage), 80))
    # A non-maximal polynomial is legal when asked for: the hardware runs it all the same.
    cases.append((ControlWords((Field(Lfsr(6, 5, 0b101101, require_maximal=False), 6),)), 30))
    return cases


def test_rtl_matches_golden(simulator):
    shape = GeneratorShape()
    cases = _rtl_cases(np.random.default_rng(2))
    results = run_jobs(BENCH, shape, tb.jobs(shape, cases, stall_seeds=(None, 11)), simulator)
    golden = [words.words(count).tolist() for words, count in cases for _ in (0, 1)]
    assert [[o["word"] for o in r["outputs"]["o"]] for r in results] == golden
    # Full rate without stalls: count words in count + 1 clocks (one for the cfg transfer).
    for (_, count), result in zip(cases, results[::2]):
        assert result["clocks"] == count + 1


def test_rtl_matches_golden_in_a_small_build(simulator):
    """A second elaboration-parameter set: narrower LFSRs, three fields."""
    shape = GeneratorShape(lfsr_width=12, fields=3, word_width=20, count_bits=8)
    cases = [(ControlWords.split((4, 6, 10), (3, 17, 1000)), 100),
             (ControlWords.full(12, 4095, kind=Kind.GALOIS), 255),
             (ControlWords.progressive(7, 100, stage_len=9, start=3), 90)]
    results = run_jobs(BENCH, shape, tb.jobs(shape, cases, stall_seeds=(5,)), simulator)
    assert [[o["word"] for o in r["outputs"]["o"]] for r in results] == [
        w.words(n).tolist() for w, n in cases]
