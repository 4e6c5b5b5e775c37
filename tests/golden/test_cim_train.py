"""CIM-aware QAT and variational channel pruning: the analog model against the bit-exact
golden model, its non-idealities, the straight-through gradients, the lossless CIM layers
against the integer product, pruning on a toy problem, and parameter errors."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cimcodec.golden.blocks.cim import CimParams
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.ml import cim_analog
from cimcodec.golden.ml.cim_analog import AnalogParams, cim_matmul
from cimcodec.golden.ml.cim_train import (
    CIMConv2d,
    CIMLinear,
    VariationalBatchNorm,
    attach_masks,
    calibrate,
    dequantize,
    export_integer,
    kl_divergence,
    masks,
    prune_channels,
    quantize_acts,
    to_cim,
)
from cimcodec.golden.ml.models import LeNet5, fit_digits

SHAPES = [(1, 1), (7, 5), (25, 6), (64, 16), (100, 7), (300, 12)]

NONIDEAL = AnalogParams(mismatch_pct=2.0, charge_injection_lsb=0.3, thermal_noise_lsb=0.5,
                        adc_offset_lsb=-0.2, gain_error_pct=1.0, inl_lsb=0.5, chip_seed=3,
                        noise_seed=4)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These tensors are small: one torch thread is faster than two fighting for a core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _case(params, vectors, seed):
    rng = np.random.default_rng(seed)
    low, high = params.act_range
    weights = rng.integers(-128, 128, (params.rows, params.cols))
    acts = rng.integers(low, high + 1, (vectors, params.rows))
    acts[0], weights[:, 0] = high, -128            # full-scale counts in column 0
    return weights, acts


@pytest.mark.parametrize("signed_acts", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_ideal_analog_model_is_bit_exact(shape, signed_acts):
    rows, cols = shape
    for bits in sorted({CimParams(rows, cols, 1).exact_adc_bits, 3}):
        params = CimParams(rows, cols, bits, signed_acts)
        weights, acts = _case(params, 40, rows * 31 + cols)
        expected = params.compute(weights, acts)
        for analog in (None, AnalogParams(chip_seed=5, noise_seed=6)):
            got = cim_matmul(torch.from_numpy(acts), torch.from_numpy(weights), params, analog)
            assert got.dtype == torch.int64
            np.testing.assert_array_equal(got.numpy(), expected)


def analog_reference(acts, weights, params, analog, noise=None) -> np.ndarray:
    """``y`` of :mod:`golden.ml.cim_analog`'s docstring, written out in numpy float64
    over all ``(v, i, j, c)`` at once. The chip's capacitances are its random draw
    (``analog.capacitances``); ``noise[i]`` is the ``(N, 8 C)`` draw of activation bit
    ``i`` (``None``: no thermal noise)."""
    a, w = np.asarray(acts, np.int64), np.asarray(weights, np.int64)
    rows, cols, m = params.rows, params.cols, 2 ** params.adc_bits - 1
    bits = np.arange(8)
    a_bits = (a[:, :, None] >> bits) & 1                                   # [v, r, i]
    w_bits = ((w[None] >> bits[:, None, None]) & 1).astype(np.float64)      # [j, r, c]
    cap = analog.capacitances(rows, cols).numpy()                           # [j, r, c]
    charge = np.einsum("vri,jrc->vijc", a_bits.astype(np.float64), cap * w_bits)
    x = charge * m / cap.sum(axis=1)[None, None]                            # R v M / R
    x = (x * (1 + analog.gain_error_pct / 100) + analog.charge_injection_lsb
         + analog.adc_offset_lsb + analog.inl_lsb * np.sin(np.pi * x / m))
    if noise is not None:
        x = x + analog.thermal_noise_lsb * np.stack(
            [n.numpy().reshape(len(a), 8, cols) for n in noise], axis=1)
    code = np.clip(np.floor(x + 0.5), 0, m).astype(np.int64)
    n_hat = (2 * code * rows + m) // (2 * m)                # CimParams.adc_reconstruct
    s_act = np.where((bits == 7) & params.signed_acts, -1, 1)
    s_w = np.where(bits == 7, -1, 1)
    return np.einsum("vijc,i,j,ij->vc", n_hat, s_act, s_w, 2 ** (bits[:, None] + bits))


def noise_draws(analog, vectors, cols, generator=None):
    """The thermal-noise draws of one call (module docstring of ``cim_analog``)."""
    if not analog.thermal_noise_lsb:
        return None
    gen = generator if generator is not None else analog.generator()
    return [torch.randn((vectors, 8 * cols), generator=gen, dtype=torch.float64)
            for _ in range(8)]


def check_analog(acts, weights, params, analog, got=None) -> None:
    """``cim_matmul`` (or its result ``got``, from a fresh noise generator) equals
    :func:`analog_reference`; and, when the chip has mismatch, its capacitances are
    ``1 + sigma / 100 * z`` with ``z`` standard normal (sample mean and deviation)."""
    if got is None:
        got = cim_analog.cim_matmul(acts, weights, params, analog)
    noise = noise_draws(analog, len(acts), params.cols)
    np.testing.assert_array_equal(got.numpy(), analog_reference(acts, weights, params, analog,
                                                                noise))
    if analog.mismatch_pct:
        z = (analog.capacitances(params.rows, params.cols).numpy() - 1) \
            / (analog.mismatch_pct / 100)
        assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05


@pytest.mark.parametrize("signed_acts", [False, True])
def test_nonideal_model_is_the_documented_formula_and_reproducible(signed_acts):
    params = CimParams(64, 16, 7, signed_acts)
    weights, acts = _case(params, 50, 1)
    first = cim_analog.cim_matmul(acts, weights, params, NONIDEAL)
    check_analog(acts, weights, params, NONIDEAL, first)
    assert (first.numpy() != params.compute(weights, acts)).any()
    np.testing.assert_array_equal(cim_analog.cim_matmul(acts, weights, params, NONIDEAL),
                                  first)
    for change in ({"chip_seed": 9}, {"noise_seed": 9}):
        check_analog(acts, weights, params, dataclasses.replace(NONIDEAL, **change))
    # One generator over successive calls: fresh noise per conversion, in draw order.
    gen, ref = NONIDEAL.generator(), NONIDEAL.generator()
    for _ in range(2):
        got = cim_analog.cim_matmul(acts, weights, params, NONIDEAL, generator=gen)
        np.testing.assert_array_equal(got.numpy(), analog_reference(
            acts, weights, params, NONIDEAL, noise_draws(NONIDEAL, len(acts), 16, ref)))


SINGLE = [("mismatch_pct", 5.0), ("charge_injection_lsb", 0.7), ("thermal_noise_lsb", 0.5),
          ("adc_offset_lsb", -0.7), ("gain_error_pct", 3.0), ("inl_lsb", 0.8)]


@pytest.mark.parametrize("field, value", SINGLE)
def test_each_nonideality_is_the_documented_formula(field, value):
    params = CimParams(64, 8, 6)                   # at 7 bits 2 codes per count absorb it
    weights, acts = _case(params, 30, 2)
    analog = AnalogParams(**{field: value})
    got = cim_analog.cim_matmul(acts, weights, params, analog)
    assert (got.numpy() != params.compute(weights, acts)).any()
    check_analog(acts, weights, params, analog, got)


@pytest.mark.parametrize("field, value", SINGLE)
def test_nonideality_check_catches_a_wrong_magnitude_or_sign(field, value, monkeypatch):
    """A model that gets a non-ideality's sign (or, for the two that cannot be
    negative, its scale) wrong still deviates from the exact result, which is all the
    old check asked; :func:`check_analog` refuses it."""
    params = CimParams(64, 8, 6)
    weights, acts = _case(params, 30, 2)
    wrong = 2 * value if field in ("mismatch_pct", "thermal_noise_lsb") else -value
    model = cim_analog.cim_matmul

    def mutant(acts, weights, params, analog, **kw):
        return model(acts, weights, params, dataclasses.replace(analog, **{field: wrong}),
                     **kw)

    monkeypatch.setattr(cim_analog, "cim_matmul", mutant)
    analog = AnalogParams(**{field: value})
    got = cim_analog.cim_matmul(acts, weights, params, analog)
    assert (got.numpy() != params.compute(weights, acts)).any()             # old check
    with pytest.raises(AssertionError):
        check_analog(acts, weights, params, analog)


def test_mismatch_is_fixed_per_chip():
    one, two = AnalogParams(mismatch_pct=1.0), AnalogParams(mismatch_pct=1.0, chip_seed=1)
    assert torch.equal(one.capacitances(8, 4), one.capacitances(8, 4))
    assert not torch.equal(one.capacitances(8, 4), two.capacitances(8, 4))
    assert not torch.equal(one.capacitances(8, 4), one.capacitances(8, 4, tile=1))


@pytest.mark.parametrize("adc_bits, analog", [(None, None), (4, None), (7, NONIDEAL)])
def test_ste_gradient_is_the_float_gradient(adc_bits, analog):
    torch.manual_seed(0)
    cim = CIMLinear(100, 12, adc_bits=adc_bits, analog=analog)
    ref = nn.Linear(100, 12)
    ref.load_state_dict({k: v for k, v in cim.state_dict().items() if k != "act_max"})
    x = torch.rand(9, 100)
    grad_out = torch.randn(9, 12)
    xs = [x.clone().requires_grad_(True), x.clone().requires_grad_(True)]
    for layer, xi in zip((cim, ref), xs):
        (layer(xi) * grad_out).sum().backward()
    torch.testing.assert_close(cim.weight.grad, ref.weight.grad)
    torch.testing.assert_close(cim.bias.grad, ref.bias.grad)
    torch.testing.assert_close(xs[0].grad, xs[1].grad)


def test_conv_ste_gradient_is_the_float_gradient():
    torch.manual_seed(1)
    cim = CIMConv2d(3, 5, 3, padding=1, adc_bits=5)
    ref = nn.Conv2d(3, 5, 3, padding=1)
    ref.load_state_dict({k: v for k, v in cim.state_dict().items() if k != "act_max"})
    x = torch.rand(2, 3, 6, 6)
    grad_out = torch.randn(2, 5, 6, 6)
    for layer in (cim, ref):
        (layer(x) * grad_out).sum().backward()
    torch.testing.assert_close(cim.weight.grad, ref.weight.grad)
    torch.testing.assert_close(cim.bias.grad, ref.bias.grad)


@pytest.mark.parametrize("adc_bits", [None, 7, 8])
def test_lossless_cim_linear_is_the_dequantized_integer_matmul(adc_bits):
    torch.manual_seed(2)
    layer = CIMLinear(150, 11, adc_bits=adc_bits)      # 3 tiles of 64 rows, last padded
    x = torch.rand(20, 150) * 3
    layer.train()
    layer(x)                                           # sets act_max
    layer.eval()
    got = layer(x)
    (exported,) = export_integer(layer)
    assert exported.matrix.dtype == np.int8 and exported.matrix.shape == (150, 11)
    q_a, s_a = quantize_acts(x, float(layer.act_max))
    assert s_a == exported.act_scale
    acc = q_a.numpy() @ exported.matrix.astype(np.int64)
    expected = dequantize(torch.from_numpy(acc), s_a, exported.weight_scale)
    expected = expected + torch.from_numpy(exported.bias)
    assert torch.equal(got, expected)


def test_lossless_cim_conv_is_the_dequantized_integer_conv():
    torch.manual_seed(3)
    layer = CIMConv2d(6, 4, 3, padding=1, adc_bits=7)  # 54 rows: one tile
    x = torch.rand(3, 6, 5, 5)
    layer.train()
    layer(x)
    layer.eval()
    (exported,) = export_integer(layer)
    q_a, s_a = quantize_acts(x, float(layer.act_max))
    acc = F.conv2d(q_a.double(), torch.from_numpy(exported.weights).double(), padding=1)
    expected = dequantize(acc.round().long(), s_a, exported.weight_scale)
    expected = expected + torch.from_numpy(exported.bias)[:, None, None]
    assert torch.equal(layer(x), expected)


def test_to_cim_folds_batchnorm():
    torch.manual_seed(4)
    model = LeNet5()
    x = torch.rand(64, 64)
    fit_digits(model, epochs=1, data=(x, torch.randint(0, 10, (64,))))
    cim = to_cim(model)
    for layer in cim.net:
        if isinstance(layer, CIMLinear | CIMConv2d):
            layer.configure(quantize=False)
    torch.testing.assert_close(cim(x), model(x), rtol=1e-4, atol=1e-4)
    calibrate(to_cim(model, adc_bits=7), x)


class _Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 12), nn.BatchNorm1d(12), nn.ReLU(),
                                 nn.Linear(12, 2))

    def forward(self, x):
        return self.net(x)


def test_variational_masks_prune_useless_channels():
    torch.manual_seed(5)
    x = torch.randn(512, 4)
    y = (x[:, 0] > 0).long()                           # one input feature decides
    model = attach_masks(_Toy())
    assert len(masks(model)) == 1 and isinstance(model.net[1], VariationalBatchNorm)
    fit_digits(model, epochs=60, lr=1e-2, data=(x, y),
               penalty=lambda: 20 * kl_divergence(model) / len(x))
    keep = masks(model)[0].keep()
    assert 1 <= int(keep.sum()) <= 6                   # most of the 12 channels dropped
    pruned, kept = prune_channels(model)
    assert kept == [(int(keep.sum()), 12)]
    assert pruned.net[0].out_features == int(keep.sum()) == pruned.net[3].in_features
    torch.testing.assert_close(pruned(x), model.eval()(x), rtol=1e-5, atol=1e-5)
    assert float((pruned(x).argmax(1) == y).float().mean()) > 0.95


def test_pruning_through_flatten_keeps_the_function():
    torch.manual_seed(6)
    model = attach_masks(LeNet5())
    x = torch.rand(32, 64)
    fit_digits(model, epochs=1, data=(x, torch.randint(0, 10, (32,))))
    drop = {0: [1, 4], 1: [0, 3, 7, 15], 2: list(range(0, 120, 3))}
    with torch.no_grad():
        for index, channels in drop.items():
            masks(model)[index].log_sigma2[channels] = 50.0
    pruned, kept = prune_channels(model)
    assert kept == [(4, 6), (12, 16), (80, 120), (84, 84)]
    assert pruned.net[9].in_features == 12 * 4
    torch.testing.assert_close(pruned(x), model.eval()(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"mismatch_pct": -1.0}, r"^Capacitor mismatch must not be negative, not -1\.0\.$"),
    ({"thermal_noise_lsb": -0.1}, r"^Thermal noise must not be negative, not -0\.1\.$"),
    ({"inl_lsb": float("nan")}, r"^INL must be finite, not nan\.$"),
    ({"gain_error_pct": -100}, r"^Gain error must be above -100 %, not -100\.0\.$"),
    ({"adc_offset_lsb": "1"}, r"^ADC offset must be a real number, not '1'\.$"),
    ({"chip_seed": -2}, r"^Chip seed must be a non-negative integer, not -2\.$"),
])
def test_bad_analog_parameters(kwargs, message):
    with pytest.raises(CimcodecError, match=message):
        AnalogParams(**kwargs)


def test_bad_operands_and_layer_settings():
    params = CimParams(4, 2, 3)
    with pytest.raises(CimcodecError, match=r"^Activations must be an integer tensor, not "):
        cim_matmul(torch.zeros(1, 4), torch.zeros(4, 2, dtype=torch.int64), params)
    with pytest.raises(CimcodecError, match=r"^Activations must be 8-bit unsigned \(0\.\.255\)"):
        cim_matmul(-torch.ones(1, 4, dtype=torch.int64), torch.zeros(4, 2, dtype=torch.int64),
                   params)
    with pytest.raises(CimcodecError, match=r"^Weights must have shape \(4, 2\)"):
        cim_matmul(torch.zeros(1, 4, dtype=torch.int64), torch.zeros(2, 4, dtype=torch.int64),
                   params)
    with pytest.raises(CimcodecError, match=r"^ADC resolution must be between 1 and 16 bits"):
        CIMLinear(3, 2, adc_bits=0)
    with pytest.raises(CimcodecError, match=r"^Tile rows must be a positive integer, not 0\.$"):
        CIMLinear(3, 2, tile_rows=0)
    with pytest.raises(CimcodecError, match=r"^Analog parameters must be AnalogParams or None"):
        CIMConv2d(1, 1, 3, analog={"mismatch_pct": 1})
    with pytest.raises(CimcodecError, match=r"^A variational mask needs an affine BatchNorm"):
        VariationalBatchNorm(nn.BatchNorm1d(3, affine=False))
