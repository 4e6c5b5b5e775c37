"""The reference networks: shapes, and the codec round trip of their FC layers."""

import numpy as np
import pytest
import torch

from cimcodec.golden.codec import pipeline as codec
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
def test_fc_layers_round_trip_through_the_codec(net):
    torch.manual_seed(0)
    state = net().state_dict()
    files = codec.compress_state_dict(state, quality=100, clusters=0, remap="none")
    assert set(files) == set(codec.select_layers(state))
    restored = codec.decompress_state_dict(files, state)
    for name in files:
        w, r = state[name].numpy(), restored[name].numpy()
        assert r.shape == w.shape
        # int8 quantization step bound plus a little JPEG loss at quality 100.
        assert np.abs(r - w).max() <= 2 * np.abs(w).max() / 127
