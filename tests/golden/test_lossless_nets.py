"""The study networks: fine-grained and channel pruning leave exactly the documented
zeros (retraining holds the masks), quantization gives the integer tensors the
lossless bench measures and the dequantized network that is evaluated, and the cache
returns the same weights."""

import numpy as np
import pytest
import torch

from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.lossless.measure import Variant, quantize
from cimcodec.golden.ml import deep_compression as dc
from cimcodec.golden.ml import lossless_nets as nets


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setitem(nets.EPOCHS, "mlp2", 2)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache for the module: the base network trains once."""
    return tmp_path_factory.mktemp("cache")


def test_fine_pruning_leaves_the_sparsity_in_every_layer(cache):
    net = nets.pruned("mlp2", "fine", 0.75, cache_dir=cache, retrain=(2, 1))
    for name, module in dc.prunable(net).items():
        w = module.weight.detach()
        assert int((w == 0).sum()) == round(0.75 * w.numel()), name
    again = nets.pruned("mlp2", "fine", 0.75, cache_dir=cache, retrain=(2, 1))
    want = net.state_dict()
    got = again.state_dict()
    assert set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want)
    assert len(list(cache.glob("mlp2-digits-e2-fine0.75-s0-r2x1.pt"))) == 1


def test_channel_pruning_zeroes_whole_output_channels_but_the_classifiers(cache):
    net = nets.pruned("mlp2", "channel", 0.5, cache_dir=cache, retrain=(2, 1))
    layers = list(dc.prunable(net).values())
    for module in layers[:-1]:
        rows = module.weight.detach().reshape(module.weight.shape[0], -1)
        dead = (rows == 0).all(dim=1)
        assert int(dead.sum()) == round(0.5 * rows.shape[0])
        assert bool((rows[~dead] != 0).any(dim=1).all())
    assert not (layers[-1].weight == 0).all(dim=1).any()


@pytest.mark.parametrize("bits", [8, 4])
def test_study_holds_the_quantized_layers_and_their_network(cache, bits):
    s = nets.study("mlp2", Variant("fine", 0.5, bits), cache_dir=cache)
    net = nets.pruned("mlp2", "fine", 0.5, cache_dir=cache)
    assert set(s.tensors) == set(dc.prunable(net))
    for name, ints in s.tensors.items():
        want_ints, want_floats = quantize(net.state_dict()[name].numpy(), bits)
        np.testing.assert_array_equal(ints, want_ints)
        np.testing.assert_array_equal(s.state[name].numpy(), want_floats)
        assert np.count_nonzero(ints) <= 0.5 * ints.size
        assert ints.min() >= (-128 if bits == 8 else 0) and ints.max() <= (127 if bits == 8
                                                                           else 15)
    assert 0.5 < s.accuracy <= 1


def test_unknown_networks_and_pruning_are_refused(cache):
    with pytest.raises(CimcodecError, match="Network must be one of"):
        nets.pruned("vgg16", "fine", 0.5, cache_dir=cache)
    with pytest.raises(CimcodecError, match="Pruning must be one of"):
        nets.pruned("mlp2", "blocks", 0.5, cache_dir=cache)
