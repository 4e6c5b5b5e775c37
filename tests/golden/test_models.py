"""The reference networks: shapes, and the codec round trip of their FC layers."""

import pytest
import torch

from cimcodec.golden.codec import model as container
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.ml.models import MLP2, VGG16, LeNet5


def test_vgg16_is_the_cifar_architecture():
    model = VGG16()
    convs = [m for m in model.net if isinstance(m, torch.nn.Conv2d)]
    fcs = [m for m in model.net if isinstance(m, torch.nn.Linear)]
    assert len(convs) == 13 and [c.out_channels for c in convs[-3:]] == [512] * 3
    assert [(f.in_features, f.out_features) for f in fcs] == [(512, 512), (512, 512), (512, 10)]
    small = VGG16(width=0.125).eval()
    assert small(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(CimcodecError, match=r"VGG16 width must be in \(0, 1\], not 2"):
        VGG16(width=2)


@pytest.mark.parametrize("net", [MLP2, LeNet5, lambda: VGG16(width=0.125)])
def test_weight_layers_round_trip_through_the_model_container(net):
    torch.manual_seed(0)
    state = net().state_dict()
    back = container.decompress(container.compress(
        state, settings={"quality": 100, "clusters": 0, "remap": "none"}))
    coded = [e.name for e in container.inspect(container.compress(state)).entries
             if e.codec == "jpeg"]
    assert coded and all(state[n].dim() >= 2 for n in coded)
    for name in state:
        w, r = state[name].double(), back[name].double()
        if name in coded:
            # int8 rounding (half a step) plus the JPEG round trip at quality 100 (at
            # most one and a half steps here): within two steps of max|w| / 127.5.
            assert (r - w).abs().max() <= 2 * w.abs().max() / 127.5, name
        else:
            assert torch.equal(back[name], state[name]), name
