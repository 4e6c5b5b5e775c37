"""ResNet-18 and MobileNetV2 as torchvision defines them (``torchvision.models.resnet``:
``BasicBlock``, ``ResNet`` with layers ``[2, 2, 2, 2]``; ``torchvision.models.
mobilenetv2``: ``InvertedResidual``, ``MobileNetV2``), written out here because
torchvision's wheel does not import beside this torch build. The module and parameter
names are torchvision's (``conv1``, ``layer1.0.conv1``, ``features.3.conv.1.0``, ...),
so a torchvision state dict of the same configuration loads.

Input stems adapted to small images, as the CIFAR variants of both networks do:

* ResNet-18: the 7x7 stride-2 convolution and the max pool become one 3x3 stride-1
  convolution; the stages keep strides 1, 2, 2, 2 (an 8x8 digit ends at 1x1, a 32x32
  CIFAR image at 4x4).
* MobileNetV2: the first convolution and the first stride-2 stage (24 channels) use
  stride 1 (an 8x8 digit ends at 1x1, a 32x32 image at 4x4).

``width`` scales every channel count (ResNet: the 64/128/256/512 stage widths;
MobileNetV2: torchvision's ``width_mult``, channels rounded to multiples of 8, the last
1280-channel layer kept), so that the digits versions train in seconds on a CPU.
``batch_norm=False`` puts an ``nn.Identity`` in each BatchNorm's place.
"""

from __future__ import annotations

from torch import nn

from cimcodec.golden.errors import CimcodecError


def _norm(batch_norm: bool):
    return nn.BatchNorm2d if batch_norm else (lambda channels: nn.Identity())


def _check_width(name: str, width: float) -> None:
    if not isinstance(width, (int, float)) or not 0 < width <= 1:
        raise CimcodecError(f"{name} width must be in (0, 1], not {width!r}.")


class BasicBlock(nn.Module):
    """torchvision's ``BasicBlock``: two 3x3 convolutions with BatchNorm, the input
    added (through ``downsample`` when the shape changes), ReLU."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None,
                 norm=nn.BatchNorm2d):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = norm(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = norm(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18 (module docstring). Input ``(N, in_channels * image**2)`` or
    ``(N, in_channels, image, image)``."""

    LAYERS = (2, 2, 2, 2)

    def __init__(self, *, classes: int = 10, width: float = 1.0, in_channels: int = 3,
                 image: int = 32, batch_norm: bool = True):
        super().__init__()
        _check_width("ResNet-18", width)
        self.in_channels, self.image = in_channels, image
        norm = _norm(batch_norm)
        widths = [max(1, int(round(c * width))) for c in (64, 128, 256, 512)]
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = norm(widths[0])
        self.relu = nn.ReLU(inplace=True)
        for i, (planes, blocks) in enumerate(zip(widths, self.LAYERS)):
            setattr(self, f"layer{i + 1}", self._make_layer(planes, blocks, 1 if i == 0 else 2,
                                                            norm))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], classes)
        for m in self.modules():      # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, planes: int, blocks: int, stride: int, norm) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                                       norm(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample, norm)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes, norm=norm) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = x.reshape(-1, self.in_channels, self.image, self.image)
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: ``v`` rounded to a multiple of ``divisor``,
    never below 90 % of ``v``."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class ConvNormActivation(nn.Sequential):
    """torchvision's ``Conv2dNormActivation`` with ReLU6: convolution (no bias),
    BatchNorm, ReLU6."""

    def __init__(self, inp: int, out: int, kernel: int = 3, stride: int = 1, groups: int = 1,
                 norm=nn.BatchNorm2d):
        super().__init__(nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups,
                                   bias=False), norm(out), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """torchvision's ``InvertedResidual``: 1x1 expansion by ``t`` (absent for
    ``t == 1``), 3x3 depthwise convolution, 1x1 linear projection; the input added when
    stride is 1 and the channel count is kept."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int,
                 norm=nn.BatchNorm2d):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = [] if expand_ratio == 1 else [ConvNormActivation(inp, hidden, 1, norm=norm)]
        layers += [ConvNormActivation(hidden, hidden, 3, stride, groups=hidden, norm=norm),
                   nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), norm(oup)]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (module docstring). Input ``(N, in_channels * image**2)`` or
    ``(N, in_channels, image, image)``."""

    #: torchvision's ``inverted_residual_setting`` (t, c, n, s), with the first stride-2
    #: stage at stride 1 (module docstring).
    SETTING = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
               (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, *, classes: int = 10, width: float = 1.0, in_channels: int = 3,
                 image: int = 32, batch_norm: bool = True, dropout: float = 0.2):
        super().__init__()
        _check_width("MobileNetV2", width)
        self.in_channels, self.image = in_channels, image
        norm = _norm(batch_norm)
        channels = make_divisible(32 * width)
        self.last_channel = make_divisible(1280 * max(1.0, width))
        features = [ConvNormActivation(in_channels, channels, 3, 1, norm=norm)]
        for t, c, n, s in self.SETTING:
            out = make_divisible(c * width)
            for i in range(n):
                features.append(InvertedResidual(channels, out, s if i == 0 else 1, t, norm))
                channels = out
        features.append(ConvNormActivation(channels, self.last_channel, 1, norm=norm))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout),
                                        nn.Linear(self.last_channel, classes))
        for m in self.modules():      # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.features(x.reshape(-1, self.in_channels, self.image, self.image))
        return self.classifier(nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))
