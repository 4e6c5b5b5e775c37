"""The hardware coefficient decoder against the golden model, itself checked against the
golden JPEG decoder's coefficients on files of the golden encoder and of Pillow (with
restart intervals): random and extreme symbol streams, every error, stalls, throughput,
on the Amaranth simulator and on both cocotb simulators."""

import io

import numpy as np
import pytest
from PIL import Image

from cimcodec.golden.blocks.coef import CoefShape, Error, decode_blocks
from cimcodec.golden.blocks.huffman import ScanSymbol, jpeg_scan, scan_symbols
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg.reference import decode_full, encode
from cimcodec.golden.jpeg.zigzag import to_zigzag
from cimcodec.hw.coef import CoefDecoder
from cimcodec.sim.amaranth_sim import run_streams
from cimcodec.sim.cocotb_run import run_jobs
from cimcodec.sim.verilog import elaborate, lint
from cimcodec.tb import coef as tb
from cimcodec.tb.coef import BENCH

SHAPE = CoefShape()


def _weights(seed, size=(40, 48)):
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(128, 40, size), 0, 255).astype(np.uint8)


def _pillow(seed, quality, restart, size=(40, 48)):
    buf = io.BytesIO()
    options = {"restart_marker_blocks": restart} if restart else {}
    Image.fromarray(_weights(seed, size)).save(buf, "JPEG", quality=quality, **options)
    return buf.getvalue()


def _scan(data):
    """Symbols, zigzag quantizers, restart interval and the decoder's result of a file."""
    decoded = decode_full(data)
    dc, ac, intervals = jpeg_scan(data)
    symbols, error = scan_symbols(intervals, dc, ac)
    assert not error
    return symbols, to_zigzag(decoded.qtable), decoded.restart_interval, decoded


def _symbol(symbol, extra=0, dc=False, last=False):
    return ScanSymbol(symbol, extra, symbol & 15, dc, last)


def _random_symbols(rng, blocks, *, eob=0.15, dense=False):
    """Symbols of ``blocks`` valid random blocks: any DC category and AC symbol, random
    extra bits; ``dense``: 63 AC coefficients per block (64 symbols)."""
    out = []
    for _ in range(blocks):
        t = int(rng.integers(12))
        out.append(_symbol(t, int(rng.integers(1 << t)), dc=True))
        k = 1
        while k < 64:
            if not dense and rng.random() < eob:
                out.append(_symbol(0x00, last=True))
                break
            if not dense and k + 16 <= 64 and rng.random() < 0.1:
                symbol = 0xF0
                k += 16
            else:
                run = 0 if dense else int(rng.integers(min(15, 63 - k) + 1))
                size = int(rng.integers(1, 11))
                symbol = (run << 4) | size
                k += run + 1
            extra = int(rng.integers(1 << (symbol & 15)))
            out.append(_symbol(symbol, extra, last=k >= 64))
    return out


def _extreme_symbols():
    """DC differences of +2047 until the predictor wraps, the largest negative ones, a
    ZRL landing on coefficient 64, a coefficient at 63 after a run, size-10 values."""
    blocks = []
    for i in range(24):
        blocks += [_symbol(11, 2047 if i < 20 else 0, dc=True), _symbol(0x00, last=True)]
    blocks += [_symbol(0, dc=True), _symbol(0xEA, 1023), _symbol(0xF0), _symbol(0xF0),
               _symbol(0xF0, last=True)]
    blocks += [_symbol(5, 0, dc=True), _symbol(0xF0), _symbol(0xF0), _symbol(0xF0),
               _symbol(0xEA, 0, last=True)]
    return blocks


QTABLE = list(range(1, 65))


@pytest.mark.parametrize("data", [
    encode(_weights(1), quality=10, optimize=False),
    encode(_weights(2), quality=75, optimize=True, restart_interval=5),
    encode(_weights(3), quality=100, optimize=True, restart_interval=1),
    _pillow(4, 50, 3),
    _pillow(5, 95, 0),
], ids=["enc10", "enc75-ri5", "enc100-ri1", "pil50-ri3", "pil95"])
def test_golden_blocks_are_the_decoders_coefficients(data):
    symbols, qtable, restart, decoded = _scan(data)
    result = decode_blocks(symbols, qtable, restart_interval=restart)
    assert result.error == Error.NONE and result.consumed == len(symbols)
    np.testing.assert_array_equal(result.coefficients, decoded.coefficients.reshape(-1, 64))
    np.testing.assert_array_equal(result.qtable, decoded.qtable)


def test_golden_restarts_the_predictor_every_interval():
    dcs = [_symbol(1, 1, dc=True), _symbol(0, last=True)] * 5
    coefs = decode_blocks(dcs, QTABLE, restart_interval=2).coefficients[:, 0]
    np.testing.assert_array_equal(coefs, [1, 2, 1, 2, 1])
    coefs = decode_blocks(dcs, QTABLE).coefficients[:, 0]
    np.testing.assert_array_equal(coefs, [1, 2, 3, 4, 5])


DC, EOB = _symbol(3, 5, dc=True), _symbol(0x00, last=True)
ERROR_CASES = [
    ([DC, EOB, _symbol(12, 0, dc=True)], Error.DC_CATEGORY, 1),
    ([DC, EOB, DC, _symbol(0x0B, 3)], Error.AC_SIZE, 1),
    ([DC, _symbol(0x10)], Error.AC_SYMBOL, 0),
    ([DC, _symbol(0xF0), _symbol(0xF0), _symbol(0xF0), _symbol(0xF1, 1)], Error.RUN, 0),
    ([DC, EOB, DC] + [_symbol(0xF0)] * 4, Error.RUN, 1),
    ([DC, _symbol(0x01, 1), DC], Error.BLOCK, 0),
    ([DC, EOB, EOB], Error.BLOCK, 1),
]


@pytest.mark.parametrize("symbols,code,blocks", ERROR_CASES)
def test_golden_errors(symbols, code, blocks):
    result = decode_blocks(symbols + [DC, EOB], QTABLE)
    assert result.error == code and len(result.coefficients) == blocks
    assert result.consumed == len(symbols)


def test_golden_rejects_a_short_table_and_bad_parameters():
    assert decode_blocks([DC, EOB], QTABLE[:63]).error == Error.QTABLE
    with pytest.raises(CimcodecError, match=r"The restart interval must be an integer "
                                            r"0..65535, not -1\."):
        decode_blocks([DC, EOB], QTABLE, restart_interval=-1)
    with pytest.raises(CimcodecError, match=r"The quantizer must be an integer 0..255, "
                                            r"not 256\."):
        decode_blocks([DC, EOB], [256] * 64, q_bits=8)
    with pytest.raises(CimcodecError, match=r"A symbol must be a ScanSymbol"):
        decode_blocks([(0, 0)], QTABLE)


@pytest.mark.parametrize("stall_seed", [None, 6])
def test_decoder_in_amaranth_sim(stall_seed):
    symbols, qtable, restart, decoded = _scan(encode(_weights(7, (24, 40)), quality=90,
                                                     restart_interval=4))
    job = tb.job(symbols, qtable, SHAPE, restart_interval=restart)
    dut = CoefDecoder(SHAPE)
    expected = job["expected"]["o"]
    out = run_streams(dut, [(dut.qtable, job["inputs"][0][1]), (dut.sym, job["inputs"][1][1])],
                      {"o": (dut.o, len(expected))},
                      setup=[(dut.restart_interval, restart)], stall_seed=stall_seed)
    assert out["o"] == expected
    got = np.array([o["coef"] for o in out["o"]]).reshape(-1, 64)
    np.testing.assert_array_equal(got, decoded.coefficients.reshape(-1, 64))
    if stall_seed is None:
        # 64 clocks for the table, the first block's symbols, then 64 clocks per block.
        first = next(i for i, s in enumerate(symbols) if s.last) + 1
        assert out["cycles"] <= 64 + first + 64 * len(got) + 1


def _run_flags(dut, qtable, symbols, restart=0, cycles=300):
    """Drive ``qtable`` then ``symbols`` (dropping a symbol not taken within 100 clocks),
    always ready for output, for ``cycles`` clocks; return the outputs and the final
    error code and readies."""
    flags = {"error": dut.error, "code": dut.error_code, "sym_ready": dut.sym.ready,
             "qtable_ready": dut.qtable.ready}
    out = run_streams(dut, [(dut.qtable, tb.qtable_payloads(qtable)),
                            (dut.sym, tb.symbol_payloads(symbols))],
                      {"o": (dut.o, None)}, setup=[(dut.restart_interval, restart)],
                      cycles=cycles, patience=100, probes=flags)
    return out["o"], {name: out[name] for name in flags}


@pytest.mark.parametrize("symbols,code,blocks", ERROR_CASES)
def test_error_flag_holds_and_decoding_stops(symbols, code, blocks):
    symbols = symbols + [DC, EOB]
    result, expected = tb.expected_coefs(symbols, QTABLE, 0, SHAPE)
    got, final = _run_flags(CoefDecoder(SHAPE), QTABLE, symbols)
    assert got == expected and len(got) == 64 * blocks
    assert final == {"error": 1, "code": code, "sym_ready": 0, "qtable_ready": 0}


@pytest.mark.parametrize("qtable", [QTABLE[:63], QTABLE + [1]])
def test_error_flag_on_a_table_of_the_wrong_length(qtable):
    got, final = _run_flags(CoefDecoder(SHAPE), qtable, [DC, EOB], cycles=200)
    assert got == [] and final["code"] == Error.QTABLE and final["error"] == 1


def test_no_error_on_good_streams():
    symbols = _extreme_symbols()
    _, expected = tb.expected_coefs(symbols, QTABLE, 0, SHAPE)
    got, final = _run_flags(CoefDecoder(SHAPE), QTABLE, symbols, cycles=2000)
    assert got == expected
    assert final == {"error": 0, "code": 0, "sym_ready": 1, "qtable_ready": 1}


def test_rtl_matches_golden(simulator):
    rng = np.random.default_rng(12)
    files = [_scan(encode(_weights(8), quality=50)),
             _scan(encode(_weights(9), quality=95, restart_interval=3)),
             _scan(_pillow(10, 75, 2, size=(24, 64)))]
    jobs = [tb.job(*files[0][:2], SHAPE, restart_interval=files[0][2]),
            tb.job(*files[1][:2], SHAPE, restart_interval=files[1][2], stall_seed=3),
            tb.job(*files[2][:2], SHAPE, restart_interval=files[2][2], stall_seed=7),
            tb.job(_random_symbols(rng, 12, dense=True), rng.integers(0, 1 << 15, 64), SHAPE),
            tb.job(_random_symbols(rng, 30), rng.integers(0, 1 << 15, 64), SHAPE,
                   restart_interval=4, stall_seed=9),
            tb.job(_extreme_symbols(), QTABLE, SHAPE, stall_seed=2),
            tb.job(ERROR_CASES[3][0] + [DC, EOB], QTABLE, SHAPE),
            tb.job(_random_symbols(rng, 3) + ERROR_CASES[4][0], QTABLE, SHAPE)]
    results = run_jobs(BENCH, SHAPE, jobs, simulator)
    for job, result in zip(jobs, results, strict=True):
        assert result["outputs"]["o"] == job["expected"]["o"]
    # Without stalls the output never pauses: 64 clocks per block, also with 64
    # symbols per block.
    for index in (0, 3):
        blocks = len(jobs[index]["expected"]["o"]) // 64
        assert results[index]["clocks"] - results[index]["first_clock"] + 1 == 64 * blocks


def test_verilog_passes_lint():
    lint(elaborate(BENCH.name, CoefDecoder, SHAPE), BENCH.name)


def test_bad_shape_names_the_parameter():
    with pytest.raises(CimcodecError, match=r"Coefficient decoder coef bits must be an "
                                            r"integer 12..16, not 11\."):
        CoefShape(coef_bits=11)
    with pytest.raises(CimcodecError, match=r"Coefficient decoder q bits must be an "
                                            r"integer 2..15, not 16\."):
        CoefDecoder(CoefShape(q_bits=16))
    with pytest.raises(CimcodecError, match=r"Coefficient decoder shape must be a CoefShape"):
        CoefDecoder(2)
