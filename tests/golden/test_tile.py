"""The accelerator tile's golden model (:mod:`golden.blocks.tile`) and the host sequencer
(:mod:`golden.ml.tile_net`) against an independent numpy formula on random layers; the
window, accumulation, error and output-stage rules by hand; the requantization; the
integer network's container and its checks."""

import dataclasses

import numpy as np
import pytest
import torch

from cimcodec.golden.blocks.cim import CimParams
from cimcodec.golden.blocks.tile import (
    Clamp,
    TileJob,
    TileModel,
    TileParams,
    TileShape,
    output_stage,
    wrap32,
)
from cimcodec.golden.codec import model as container
from cimcodec.golden.codec import pipeline as codec
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.ml import tile_net
from cimcodec.golden.ml.cim_train import calibrate, export_integer, to_cim
from cimcodec.golden.ml.models import MLP

SHAPE = TileShape(rows=16, cols=4, adc_bits=4, vectors=64)


def _matrix_file(rng, k, n, remap="none"):
    """A random int8 ``k x n`` matrix as a container file, and the weights it decodes to."""
    w = rng.integers(-128, 128, (k, n)).astype(np.int8)
    data = codec.compress_matrix(w, quality=90, remap=remap, budget=2, exact_int8=False).data
    return data, codec.decompress_matrix(data, integer=True).astype(np.int64)


def _numpy_layer(x, w, bias, multiplier, shift, relu, clamp, rows, bits):
    """One layer, written independently of the tile: the sum over ``rows``-row slices of
    the macro's results (the plain product when the ADC is lossless), then the output
    stage as ``floor((2 v M + 2**S) / 2**(S + 1))``."""
    k, n = w.shape
    if CimParams(rows, n, bits).exact:
        acc = x @ w
    else:
        pad = -k % rows
        xp, wp = np.pad(x, ((0, 0), (0, pad))), np.pad(w, ((0, pad), (0, 0)))
        acc = sum(CimParams(rows, n, bits).compute(wp[t:t + rows], xp[:, t:t + rows])
                  for t in range(0, k + pad, rows))
    v = (acc + bias + 2**31) % 2**32 - 2**31
    r = np.floor_divide(2 * v * multiplier + 2**shift, 2**(shift + 1))
    if relu:
        r = np.maximum(r, 0)
    return np.clip(r, *Clamp(clamp).bounds)


def _net(layers, shape=SHAPE):
    """A TileNet of ``(file, weights, bias, multiplier, shift, relu, clamp)`` layers."""
    out = []
    for index, (file, w, bias, multiplier, shift, relu, clamp) in enumerate(layers):
        out.append(tile_net.TileLayer(f"net.{index}", file, *w.shape, np.asarray(bias),
                                      multiplier, shift, relu, clamp))
    return tile_net.TileNet("test", "digits", shape.rows, shape.cols, shape.adc_bits,
                            shape.max_rows, shape.max_cols, 1 / 255, tuple(out),
                            np.zeros(0, np.int64))


@pytest.mark.parametrize("k, n, bits", [
    (16, 4, 3),        # one tile, lossy ADC
    (45, 13, 3),       # 3 x 4 tiles, neither dimension a multiple of the array
    (45, 13, 5),       # the same with a lossless ADC: the plain product
    (64, 9, 4),        # 4 x 3 tiles
    (7, 3, 4),         # smaller than the array
])
def test_golden_layer_is_the_numpy_formula(k, n, bits):
    rng = np.random.default_rng(k * 100 + n + bits)
    shape = dataclasses.replace(SHAPE, adc_bits=bits)
    file, w = _matrix_file(rng, k, n, remap="full")
    x = rng.integers(0, 256, (150, k))                # three batches of up to 64 vectors
    for multiplier, shift, relu, clamp in [(1, 0, False, Clamp.INT32),
                                           (41_000, 27, True, Clamp.UINT8),
                                           (65_535, 30, False, Clamp.INT8)]:
        bias = rng.integers(-200_000, 200_000, n)
        net = _net([(file, w, bias, multiplier, shift, relu, clamp)], shape)
        got, traffic = tile_net.golden_logits(net, shape, x)
        want = _numpy_layer(x, w, bias, multiplier, shift, relu, clamp, shape.rows, bits)
        np.testing.assert_array_equal(got, want)
        row_tiles, col_tiles = -(-k // 16), -(-n // 4)
        batches = 1 if row_tiles == 1 else 3
        assert traffic.loads == row_tiles * col_tiles * batches
        assert traffic.file_bytes == traffic.loads * len(file)
        assert traffic.int8_bytes == k * n * batches


def test_golden_network_is_the_numpy_chain():
    rng = np.random.default_rng(5)
    f1, w1 = _matrix_file(rng, 40, 18)
    f2, w2 = _matrix_file(rng, 18, 10)
    b1, b2 = rng.integers(-5000, 5000, 18), rng.integers(-5000, 5000, 10)
    layers = [(f1, w1, b1, 40_000, 27, True, Clamp.UINT8), (f2, w2, b2, 1, 0, False, 0)]
    x = rng.integers(0, 256, (70, 40))
    got, _ = tile_net.golden_logits(_net(layers), SHAPE, x)
    hidden = _numpy_layer(x, w1, b1, 40_000, 27, True, Clamp.UINT8, 16, 4)
    assert 0 < hidden.max() <= 255 and hidden.min() == 0
    np.testing.assert_array_equal(got, _numpy_layer(hidden, w2, b2, 1, 0, False,
                                                    Clamp.INT32, 16, 4))


def test_window_at_the_matrix_edge_fills_zeros():
    rng = np.random.default_rng(2)
    file, w = _matrix_file(rng, 21, 6)
    tile = TileModel(SHAPE)
    error, window = tile.window(file, 16, 4)
    assert error == 0
    np.testing.assert_array_equal(window[:5, :2], w[16:, 4:])
    assert not window[5:].any() and not window[:, 2:].any()
    error, far = tile.window(file, 100, 0)
    assert error == 0 and not far.any()


def _damaged(file):
    bad = bytearray(file)
    bad[-10] ^= 0x55                                   # in the scan: the CRC catches it
    return bytes(bad)


def test_damaged_file_writes_no_weight_and_stops_the_tile():
    rng = np.random.default_rng(3)
    file, w = _matrix_file(rng, 16, 4)
    acts = rng.integers(0, 256, (3, 16))
    tile = TileModel(SHAPE)
    good = tile.run(TileJob(TileParams(), file, acts))
    assert good.error == 0 and good.written == 64
    np.testing.assert_array_equal(good.outputs, CimParams(16, 4, 4).compute(w, acts))
    bad = tile.run(TileJob(TileParams(), _damaged(file), acts))
    assert bad.error and bad.written == 0 and bad.outputs is None
    np.testing.assert_array_equal(tile.weights, w)
    with pytest.raises(CimcodecError, match="reset it first"):
        tile.run(TileJob(TileParams(load=False), None, acts))
    tile.reset()
    assert not tile.weights.any()
    again = tile.run(TileJob(TileParams(load=False), None, acts))
    assert not again.outputs.any()


def test_partial_sums_follow_first_and_last():
    rng = np.random.default_rng(4)
    file, w = _matrix_file(rng, 16, 4)
    acts = rng.integers(0, 256, (5, 16))
    p = CimParams(16, 4, 4).compute(w, acts)
    tile = TileModel(SHAPE)
    assert tile.run(TileJob(TileParams(last=False), file, acts)).outputs is None
    twice = tile.run(TileJob(TileParams(load=False, first=False), None, acts))
    np.testing.assert_array_equal(twice.outputs, 2 * p)
    fresh = tile.run(TileJob(TileParams(load=False, first=True), None, acts[:2]))
    np.testing.assert_array_equal(fresh.outputs, p[:2])
    np.testing.assert_array_equal(tile.acc[2:5], 2 * p[2:])     # untouched past the job


@pytest.mark.parametrize("acc, bias, multiplier, shift, relu, clamp, want", [
    (3, 0, 1, 1, False, Clamp.INT32, 2),               # 1.5 rounds up
    (-3, 0, 1, 1, False, Clamp.INT32, -1),             # -1.5 rounds up too
    (-5, 0, 1, 2, False, Clamp.INT32, -1),             # -1.25
    (7, -2, 3, 0, False, Clamp.INT32, 15),
    (2**31 - 1, 1, 1, 0, False, Clamp.INT32, -2**31),  # the bias add wraps at 32 bits
    (2**31 - 1, 0, 65_535, 0, False, Clamp.INT32, 2**31 - 1),   # saturates
    (-40, 0, 1, 0, True, Clamp.INT8, 0),
    (-400, 0, 1, 0, False, Clamp.INT8, -128),
    (300, 0, 1, 0, False, Clamp.INT8, 127),
    (-7, 0, 1, 0, False, Clamp.UINT8, 0),
    (511, 0, 1, 1, False, Clamp.UINT8, 255),
    (1000, 24, 45_000, 16, True, Clamp.INT32, 703),    # 1024 * 45000 / 65536 = 703.1
    (1000, 24, 4_500, 16, True, Clamp.UINT8, 70),      # 70.3
    (1000, 24, 46_000, 16, True, Clamp.UINT8, 255),    # 718.75
])
def test_output_stage_by_hand(acc, bias, multiplier, shift, relu, clamp, want):
    params = TileParams(relu=relu, clamp=clamp, multiplier=multiplier, shift=shift)
    assert output_stage(np.array([acc]), params, [bias]).tolist() == [want]


def test_wrap32():
    assert wrap32([2**31, -2**31 - 1, 5, 2**32 + 7]).tolist() == [-2**31, 2**31 - 1, 5, 7]


@pytest.mark.parametrize("real", [1e-9, 3.3e-5, 0.0071, 0.5, 0.999999, 1.0, 77.7, 40_000.0])
def test_requantization_is_a_16_bit_multiplier_and_a_shift(real):
    multiplier, shift = tile_net.requantization(real)
    assert 0 <= shift <= 63 and 0 <= multiplier < 2**16
    if shift < 63:
        assert 2**15 <= multiplier
        assert abs(multiplier / 2**shift - real) <= real * 2**-16
    TileParams(multiplier=multiplier, shift=shift)


@pytest.mark.parametrize("real", [0.0, -1.0, float("nan"), 2.0**17])
def test_requantization_refuses(real):
    with pytest.raises(CimcodecError):
        tile_net.requantization(real)


@pytest.mark.parametrize("kwargs, message", [
    ({"multiplier": 1 << 16}, "multiplier must be an integer in 0..65535"),
    ({"shift": 64}, "shift must be an integer in 0..63"),
    ({"bias": (2**31,)}, "A bias must be an integer"),
    ({"relu": 1}, "relu must be True or False"),
    ({"clamp": 3}, "3 is not a valid Clamp"),
])
def test_bad_tile_params(kwargs, message):
    with pytest.raises((CimcodecError, ValueError), match=message):
        TileParams(**kwargs)


def test_bad_jobs_and_shapes():
    with pytest.raises(CimcodecError, match="row origin"):
        TileParams(row0=256).check(SHAPE)
    with pytest.raises(CimcodecError, match="5 biases for 4 columns"):
        TileParams(bias=(1, 2, 3, 4, 5)).check(SHAPE)
    with pytest.raises(CimcodecError, match="vector count"):
        TileParams().config(SHAPE, 65)
    with pytest.raises(CimcodecError, match="file exactly when it loads"):
        TileJob(TileParams(load=True), None, np.zeros((1, 16), np.int64))
    with pytest.raises(CimcodecError, match="does not fit in the largest matrix"):
        TileShape(rows=16, cols=4, max_rows=8, max_cols=8)
    tile = TileModel(SHAPE)
    with pytest.raises(CimcodecError, match="up to 64 vectors of 16 activations"):
        tile.run(TileJob(TileParams(load=False), None, np.zeros((1, 15), np.int64)))


# ------------------------------------------------------------------ the container


@pytest.fixture(scope="module")
def exported():
    """An (untrained, calibrated) 64-16-10 MLP exported for the 16 x 4 tile."""
    torch.manual_seed(0)
    model = MLP((64, 16, 10)).eval()
    x = torch.rand(40, 64)
    cim = calibrate(to_cim(model, tile_rows=16, adc_bits=4), x)
    data = tile_net.export(cim, model, (x, torch.zeros(40, dtype=torch.long)), SHAPE,
                           net="mlp", data="digits", settings={"quality": 95})
    return data, cim, model, x


def test_export_writes_the_integer_layers(exported):
    data, cim, model, x = exported
    net = tile_net.load(data)
    assert (net.rows, net.cols, net.adc_bits) == (16, 4, 4)
    assert [(layer.inputs, layer.outputs) for layer in net.layers] == [(64, 16), (16, 10)]
    first, last = net.layers
    s_a0, s_a1 = float(cim.net[0].act_max) / 255, float(cim.net[2].act_max) / 255
    s_w0 = float(cim.net[0].weight.detach().abs().max()) / 127
    assert net.input_scale == pytest.approx(s_a0)
    assert first.multiplier / 2**first.shift == pytest.approx(s_a0 * s_w0 / s_a1, rel=2**-15)
    np.testing.assert_array_equal(
        first.bias, np.round(cim.net[0].bias.detach().numpy().astype(np.float64)
                             / (s_a0 * s_w0)))
    assert (first.relu, first.clamp, last.relu, last.clamp) == (True, Clamp.UINT8, False,
                                                                Clamp.INT32)
    assert (last.multiplier, last.shift) == (1, 0)
    for layer, integer in zip(net.layers, export_integer(cim)):   # the exported int8
        assert layer.file == codec.compress_matrix(integer.matrix, quality=95, snap=False,
                                                   exact_int8=False).data
    assert net.fp32_predictions.tolist() == model(x).argmax(1).tolist()
    info = container.inspect(data)
    assert {e.name: e.codec for e in info.entries} == {
        "net.0.matrix": "jpeg", "net.0.bias": "raw", "net.0.requant": "raw",
        "net.2.matrix": "jpeg", "net.2.bias": "raw", "net.2.requant": "raw"}


def test_container_without_integer_data_is_refused(exported):
    plain = container.compress({"w": torch.zeros(4, 4)})
    with pytest.raises(CimcodecError, match="holds no integer network"):
        tile_net.load(plain)
    data = exported[0]
    state = container.decompress(data)
    spec = container.inspect(data).model
    broken = dict(spec, integer={k: v for k, v in spec["integer"].items() if k != "layers"})
    with pytest.raises(CimcodecError, match="incomplete or malformed"):
        tile_net.load(container.compress(state, model=broken))
    state.pop("net.2.requant")
    with pytest.raises(CimcodecError, match="raw int32 tensor net.2.requant"):
        tile_net.load(container.compress(state, model=spec, settings={"exact_int8": False},
                                          codecs={"net.0.matrix": "jpeg",
                                                  "net.2.matrix": "jpeg"}))


def test_the_tile_must_run_the_network_as_trained(exported):
    net = tile_net.load(exported[0])
    assert net.shape() == SHAPE.__class__(16, 4, 4, 128, 256, 256)
    assert net.shape(cols=8).cols == 8
    with pytest.raises(CimcodecError, match="trained for a 4-bit ADC, not a 5-bit one"):
        net.shape(adc_bits=5)
    with pytest.raises(CimcodecError, match="16-row macros with a 4-bit ADC"):
        net.shape(rows=8)
    lossless = dataclasses.replace(net, adc_bits=6)
    assert lossless.shape(rows=32).rows == 32       # both lossless: the same sums
    small = dataclasses.replace(net, max_rows=32, max_cols=32)
    with pytest.raises(CimcodecError, match=r"Layer net.0 \(64 x 16 weights\) does not fit"):
        small.shape()
