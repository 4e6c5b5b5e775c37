"""The JPEG path's training side: function-preserving reordering, structured pruning
that suits JPEG, and the codec's float twin used for JPEG-aware fine-tuning."""

import numpy as np
import pytest
import torch

from cimcodec.golden.codec import pipeline
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg import fast as jpeg_fast
from cimcodec.golden.jpeg.reference import quality_table
from cimcodec.golden.ml import deep_compression as dc
from cimcodec.golden.ml import jpeg_aware as ja
from cimcodec.golden.ml import models, reorder


def _int_forward(model, x, scale=64):
    """The network in integer arithmetic: inputs, weights and biases rounded to multiples
    of ``1 / scale``, every sum exact in int64 (convolutions in float64 on integers
    below 2**53, which is exact), ReLU and max pooling on integers. The result does not
    depend on the order of any sum."""
    out, unit = (x * scale).round().long(), scale
    for layer in model.net:
        if isinstance(layer, torch.nn.Linear | torch.nn.Conv2d):
            w = (layer.weight.detach() * scale).round().long()
            b = (layer.bias.detach() * scale).round().long() * unit
            if isinstance(layer, torch.nn.Linear):
                out = out.flatten(1) @ w.T + b
            else:
                out = torch.nn.functional.conv2d(out.double(), w.double(), b.double(),
                                                 layer.stride, layer.padding).long()
            unit *= scale
        elif isinstance(layer, torch.nn.ReLU):
            out = out.clamp_min(0)
        elif isinstance(layer, torch.nn.MaxPool2d):
            out = torch.nn.functional.max_pool2d(out.double(), layer.kernel_size).long()
        elif isinstance(layer, torch.nn.Flatten):
            out = out.flatten(1)
        elif isinstance(layer, torch.nn.Identity):
            pass
        else:
            raise AssertionError(type(layer).__name__)
    return out


@pytest.mark.parametrize("name", ["mlp2", "lenet5"])
@pytest.mark.parametrize("method", reorder.METHODS)
def test_reordering_preserves_the_function(name, method):
    torch.manual_seed(1)
    net = models.build(name).eval()
    for m in net.modules():     # non-trivial BatchNorm statistics
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    x = models.digits(0)[2]
    if name == "lenet5":
        x = x.reshape(-1, 1, 8, 8)
    got, perms = reorder.reorder(net, method)
    assert all(len(p) > 2 and (p != np.arange(len(p))).any() for p in perms)
    torch.testing.assert_close(got(x), net(x), rtol=1e-5, atol=1e-5)
    # Integer arithmetic: exactly equal (sums reordered, every term the same).
    a, b = dc.fold_batchnorm(net), dc.fold_batchnorm(got)
    ia, ib = _int_forward(a, x), _int_forward(b, x)
    assert torch.equal(ia, ib) and ia.abs().max() > 0


def test_reordering_refuses_what_it_cannot_permute():
    net = models.build("mlp2")
    net.net[2] = torch.nn.Softmax(dim=1)
    with pytest.raises(CimcodecError, match="Cannot reorder across Softmax"):
        reorder.reorder(net)
    with pytest.raises(CimcodecError, match="Reorder method must be one of"):
        reorder.order(np.zeros((5, 3)), "random")


def test_greedy_order_puts_a_shuffled_line_back_in_sequence():
    rng = np.random.default_rng(0)
    points = np.arange(40, dtype=float)[:, None] * np.array([[1.0, 2.0]])
    shuffled = rng.permutation(40)
    tour = reorder.order(points[shuffled], "greedy")
    line = shuffled[tour]
    assert (np.abs(np.diff(line)) == 1).all()


def test_block_pruning_leaves_whole_zero_blocks_that_code_dc_only():
    torch.manual_seed(0)
    w = torch.randn(37, 45)
    mask = ja.structured_mask(w, 0.6, "block")
    blocks = torch.nn.functional.pad(mask, (0, 3, 0, 3)).reshape(5, 8, 6, 8)
    per_block = blocks.sum((1, 3))
    full = torch.nn.functional.pad(torch.ones(37, 45), (0, 3, 0, 3)).reshape(5, 8, 6, 8).sum(
        (1, 3))
    assert set(torch.unique(per_block / full).tolist()) <= {0.0, 1.0}
    assert int((per_block == 0).sum()) == round(0.6 * 30)
    pruned = (w * mask).numpy()
    data = pipeline.compress_matrix(pruned, quality=75, remap="none").data
    decoded = jpeg_fast.decode_full(data)
    zero_blocks = (per_block == 0).reshape(-1).numpy()
    # The JPEG of a zero block is DC-only (its samples are all 128, every AC zero), and
    # it decodes to exact zeros.
    coefs = decoded.coefficients.reshape(-1, 64)
    assert (coefs[zero_blocks, 1:] == 0).all()
    back = pipeline.decompress_matrix(data)
    assert (back[(mask == 0).numpy()] == 0).all()
    rows = ja.structured_mask(w, 0.5, "row")
    assert int((rows.sum(1) == 0).sum()) == round(0.5 * 37)
    assert set(rows.sum(1).tolist()) <= {0.0, 45.0}
    with pytest.raises(CimcodecError, match="granularity"):
        ja.structured_mask(w, 0.5, "diagonal")


def test_the_float_twin_follows_the_codec():
    """The simulation differs from the real codec only where the islow fixed point
    rounds a coefficient across a quantization boundary: within one int8 step for most
    weights, and far closer to the codec's output than the codec is to its input."""
    rng = np.random.default_rng(2)
    w = rng.normal(0, 0.1, (40, 48)).astype(np.float32)
    for quality in (30, 50, 75, 90):
        sim = ja.simulate(torch.from_numpy(w), quality_table(quality)).numpy()
        real = pipeline.decompress_matrix(
            pipeline.compress_matrix(w, quality=quality, remap="none").data)
        step = np.abs(w).max() / 127.5
        diff = np.abs(sim - real) / step
        assert (diff <= 1.01).mean() > 0.85, quality
        assert diff.mean() < 0.2 * (np.abs(real - w) / step).mean(), quality
    # Straight through: the gradient is the identity (up to the float DCT's rounding,
    # D^T D = I) except where an int8 clamp saturates, where it is 0.
    t = torch.from_numpy(w).requires_grad_(True)
    out = ja.simulate(t, quality_table(50))
    out.sum().backward()
    one = (t.grad - 1).abs() < 1e-5
    assert one.float().mean() > 0.99
    saturated = ~one
    assert ((out[saturated] / (np.abs(w).max() / 127.5)).abs().round() >= 127).all()


def _small_digits():
    x_train, y_train, x_test, y_test = models.digits(0)
    return x_train[:400], y_train[:400], x_test[:120], y_test[:120]


FAST = {"budgets": (0.3,), "qualities": (75,), "steps": 1, "prune_epochs": 1,
        "finetune_epochs": 2, "bias_epochs": 1, "refine": True}


@pytest.fixture(scope="module")
def small_result():
    from cimcodec.golden.ml.datasets import split

    data = _small_digits()
    torch.manual_seed(0)
    net = models.fit_digits(models.build("mlp2"), epochs=4, data=split(data)[0])
    return net, data, ja.run(net, data, max_loss=0.2, description={"net": "mlp2"}, **FAST)


def test_the_floor_is_checked_on_the_decoded_bytes(small_result):
    """What run() reports is the accuracy of the network decoded from its container."""
    from cimcodec.golden.codec import model as container
    from cimcodec.golden.ml.datasets import split

    _, data, result = small_result
    _, val, test = split(data)
    decoded = models.load_net("mlp2", container.decompress(result.data))
    assert models.accuracy(decoded, *val) == result.accuracy["stored"]["validation"]
    assert models.accuracy(decoded, *test) == result.accuracy["stored"]["test"]
    assert result.meets == (result.accuracy["stored"]["validation"]
                            >= result.accuracy["baseline"]["validation"] - 0.2)
    info = container.inspect(result.data)
    weights = [e for e in info.entries if e.name.endswith("weight")]
    assert weights and all(e.codec == "jpeg" for e in weights)
    assert result.ratio == info.ratio
    # The per-layer rate control only ever lowered qualities from the tried one.
    assert all(q <= 75 for q in result.qualities.values())
    assert {e["qualities"]["net.0.weight"] for e in result.tried} >= {75}


def test_targets_that_cannot_be_met_return_the_best_found(small_result):
    net, data, _ = small_result
    result = ja.run(net, data, target_ratio=1e6, **FAST)
    assert not result.meets and result.ratio < 1e6
    assert result.ratio == max(t["ratio"] for t in result.tried)
    with pytest.raises(CimcodecError, match="either a loss floor or a target ratio"):
        ja.run(net, data, max_loss=0.01, target_ratio=10)
    with pytest.raises(CimcodecError, match="target ratio must be above 1"):
        ja.run(net, data, target_ratio=0.5)


def test_every_jpeg_member_decodes_bit_exactly_on_the_rtl(small_result, simulator):
    """Every member on Verilator; on Icarus, many times slower, the smallest one (the
    output layer; ``python -m bench.jpeg_path --part rtl`` runs every member of the
    benchmark's containers on both)."""
    from cimcodec.golden.codec import model as container
    from cimcodec.sim.rtl import rtl_decode

    _, _, result = small_result
    info = container.inspect(result.data)
    members = [e for e in info.entries if e.codec == "jpeg"]
    if simulator == "icarus":
        members = [min(members, key=lambda e: e.elements)]
    for e in members:
        member = container.extract(result.data, e.name)
        got, _ = rtl_decode(member, raw=False, sim=simulator, integer=True)
        np.testing.assert_array_equal(got, pipeline.decompress_matrix(member, integer=True))
