"""ResNet-18 and MobileNetV2 as torchvision defines them: parameter counts of the CIFAR
variants (torchvision's own networks with the 10-class head and the small-image stem),
torchvision's state-dict names, and the digits versions of :func:`models.build`."""

import pytest
import torch

from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.ml import convnets, models


def _params(net) -> int:
    return sum(p.numel() for p in net.parameters())


def test_full_width_parameter_counts_are_torchvisions():
    # torchvision resnet18: 11,689,512 with the 7x7 stem and 1000 classes; a 3x3 stem
    # (64*3*9 instead of 64*3*49) and 10 classes (5,130 instead of 513,000) give:
    assert _params(convnets.ResNet18(classes=10)) == 11_689_512 - 64 * 3 * 40 - 513_000 + 5_130
    # torchvision mobilenet_v2: 3,504,872 with 1000 classes; strides hold no parameters.
    assert _params(convnets.MobileNetV2(classes=10)) == 3_504_872 - 1_281_000 + 12_810


def test_state_dict_names_are_torchvisions():
    r = convnets.ResNet18().state_dict()
    for key in ("conv1.weight", "bn1.running_var", "layer1.0.conv1.weight",
                "layer2.0.downsample.0.weight", "layer2.0.downsample.1.weight",
                "layer4.1.bn2.bias", "fc.weight"):
        assert key in r, key
    assert "layer1.0.downsample.0.weight" not in r
    m = convnets.MobileNetV2().state_dict()
    for key in ("features.0.0.weight", "features.1.conv.0.0.weight", "features.1.conv.1.weight",
                "features.2.conv.0.0.weight", "features.2.conv.1.0.weight",
                "features.2.conv.2.weight", "features.2.conv.3.running_mean",
                "features.18.0.weight", "classifier.1.weight"):
        assert key in m, key
    assert m["features.2.conv.1.0.weight"].shape == (96, 1, 3, 3)     # depthwise 16 * 6
    assert m["features.18.0.weight"].shape == (1280, 320, 1, 1)


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv2"])
@pytest.mark.parametrize("data, shape", [("digits", (5, 64)), ("cifar10", (5, 3, 32, 32))])
def test_built_networks_classify_their_data(name, data, shape):
    torch.manual_seed(0)
    net = models.build(name, data)
    out = net(torch.rand(shape))
    assert out.shape == (5, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    if data == "digits":
        assert 600_000 < _params(net) < 800_000
    plain = models.build(name, data, batch_norm=False)
    assert not models.has_batchnorm(plain.state_dict())
    assert plain(torch.rand(shape)).shape == (5, 10)


def test_resnet_stages_halve_the_image_and_blocks_add_their_input():
    net = convnets.ResNet18(width=0.25, in_channels=1, image=8).eval()
    x = torch.rand(2, 1, 8, 8)
    sizes = []
    h = net.relu(net.bn1(net.conv1(x)))
    for stage in (net.layer1, net.layer2, net.layer3, net.layer4):
        h = stage(h)
        sizes.append(tuple(h.shape[1:]))
    assert sizes == [(16, 8, 8), (32, 4, 4), (64, 2, 2), (128, 1, 1)]
    block = net.layer1[0]          # fresh BatchNorm statistics: bn2(0) is exactly 0
    with torch.no_grad():
        block.conv2.weight.zero_()
    y = torch.rand(1, 16, 8, 8)
    assert torch.equal(block(y), y)                     # relu(0 + y) for y >= 0


def test_widths_are_checked():
    with pytest.raises(CimcodecError, match="width"):
        convnets.ResNet18(width=0)
    with pytest.raises(CimcodecError, match="width"):
        convnets.MobileNetV2(width=1.5)
