"""Deep Compression's retraining steps, each alone, and the whole pipeline on a small
budget: what :func:`run` reports is what its container's bytes give."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from cimcodec.golden.codec import model as container
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.ml import deep_compression as dc
from cimcodec.golden.ml import models
from cimcodec.golden.ml.datasets import split


@pytest.fixture(scope="module")
def digits():
    """A quarter of digits (450 images), so that retraining takes seconds."""
    x_train, y_train, x_test, y_test = models.digits(0)
    return x_train[:360], y_train[:360], x_test[:90], y_test[:90]


def _trained(name, data, epochs=3):
    torch.manual_seed(0)
    net = models.build(name)
    return models.fit_digits(net, epochs=epochs, data=split(data)[0])


def test_fold_batchnorm_keeps_the_function_and_the_layer_keys(digits):
    net = _trained("lenet5", digits)
    folded = dc.fold_batchnorm(net)
    x = digits[2][:64]
    torch.testing.assert_close(folded(x), net(x), rtol=1e-4, atol=1e-4)
    keys = set(folded.state_dict())
    assert not any("running" in k for k in keys)
    assert {k for k in net.state_dict() if "running" not in k and "num_batches" not in k
            and k.split(".")[1] not in ("1", "5", "10", "13")} == keys
    models.build("lenet5", batch_norm=False).load_state_dict(folded.state_dict(), strict=True)
    with pytest.raises(CimcodecError, match="BatchNorm must follow"):
        bad = models.build("mlp2")
        bad.net[0] = nn.ReLU()
        dc.fold_batchnorm(bad)


def test_allocate_prunes_cheap_large_layers_first():
    scan = {"big": [1.0, 1.0, 0.99, 0.98], "small": [0.9, 0.5, 0.2, 0.1]}
    sizes = {"big": 10000, "small": 100}
    got = dc.allocate(scan, 1.0, 0.01, sizes, sparsities=(0.5, 0.8, 0.9, 0.95))
    assert got == {"big": 0.9, "small": 0.0}
    got = dc.allocate(scan, 1.0, 0.12, sizes, sparsities=(0.5, 0.8, 0.9, 0.95))
    assert got == {"big": 0.95, "small": 0.5}
    assert dc.allocate(scan, 1.0, 0.0, sizes, sparsities=(0.5, 0.8, 0.9, 0.95)) == \
        {"big": 0.8, "small": 0.0}


def test_iterative_pruning_holds_the_masks_through_retraining(digits):
    net = _trained("mlp2", digits)
    targets = {"net.0.weight": 0.9, "net.3.weight": 0.8}
    # Without retraining, one step prunes exactly the smallest magnitudes.
    first = copy.deepcopy(net)
    dc.prune_iteratively(first, {"net.0.weight": 0.45}, split(digits)[0], steps=1, epochs=0)
    w = net.net[0].weight.detach().abs().reshape(-1)
    cut = w.sort().values[round(0.45 * w.numel()) - 1]
    assert torch.equal(first.net[0].weight.reshape(-1) == 0, w <= cut)
    dc.prune_iteratively(net, targets, split(digits)[0], steps=2, epochs=1)
    for name, sparsity in targets.items():
        w = dict(net.named_parameters())[name]
        assert (w == 0).sum().item() == round(sparsity * w.numel())
    assert not hasattr(net.net[0], "weight_mask")          # made permanent
    assert (net.net[6].weight != 0).all()                   # untouched layer
    with pytest.raises(CimcodecError, match="no prunable layer 'net.1.weight'"):
        dc.prune_iteratively(net, {"net.1.weight": 0.5}, split(digits)[0])


def test_trained_quantization_shares_values_and_keeps_zeros(digits):
    net = dc.fold_batchnorm(_trained("mlp2", digits))
    dc.prune_iteratively(net, {"net.0.weight": 0.8}, split(digits)[0], steps=1, epochs=0)
    zeros = net.net[0].weight == 0
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    dc.quantize(net, split(digits)[0], weight_bits=3, epochs=2)
    for name in dc.prunable(net):
        w = dict(net.named_parameters())[name].detach()
        assert torch.unique(w[w != 0]).numel() <= 7, name
    assert torch.equal(net.net[0].weight == 0, zeros)
    # The centroids were trained: the shared values moved off the k-means centroids.
    assert not torch.equal(net.net[0].weight, before["net.0.weight"])
    assert not any(n.endswith("original") for n, _ in net.named_parameters())


def test_the_pipeline_reports_what_its_bytes_give(digits):
    net = _trained("mlp2", digits, epochs=5)
    result = dc.run(net, digits, max_loss=0.05, budgets=(0.3,), inits=("linear",),
                    weight_bits=(4,), steps=2, prune_epochs=1, quantize_epochs=1)
    state = container.decompress(result.data)
    loaded = models.load_net("mlp2", state)
    x, y = split(digits)[2]
    assert models.accuracy(loaded, x, y) == result.accuracy["stored"]["test"]
    for name in dc.prunable(loaded):
        w = state[name]
        assert torch.unique(w[w != 0]).numel() <= 15
    entries = container.inspect(result.data).entries
    assert {e.name: e.codec for e in entries if e.name.endswith("weight")} == dict.fromkeys(
        dc.prunable(loaded), "deep")
    assert result.tried[0]["bytes"] == len(result.data)
    ratio = container.inspect(result.data).ratio
    assert result.tried[0]["ratio"] == ratio and ratio > 4
    with pytest.raises(CimcodecError, match="loss floor"):
        dc.run(net, digits, max_loss=2)


def test_load_net_names_the_first_difference():
    state = models.build("mlp2").state_dict()
    state["net.0.weight"] = torch.zeros(3, 3)
    with pytest.raises(CimcodecError, match=r"net.0.weight has shape \(3, 3\), the network "
                                            r"\(300, 64\)"):
        models.load_net("mlp2", state)
    with pytest.raises(CimcodecError, match=r"it lacks 'net.0.weight'"):
        models.load_net("lenet5", {"x": torch.zeros(1)})
    assert np.isfinite(models.load_net("mlp2", models.build("mlp2").state_dict())(
        torch.zeros(1, 64)).detach().numpy()).all()
