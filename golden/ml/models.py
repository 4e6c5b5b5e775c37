"""Small reference networks and the offline data they train on.

Data: scikit-learn's bundled ``digits`` set (8x8 images, 1,797 samples, no download).
Trained weights are cached in the directory given (the command line uses
``cimcodec.home() / "cache"``) keyed by architecture and seed, so a
second run loads instead of training.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.ml.datasets import digits, load, split


class MLP(nn.Module):
    """Fully-connected network ``inputs -> hidden... -> classes`` with ReLU between."""

    def __init__(self, sizes=(64, 128, 10)):
        super().__init__()
        if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
            raise CimcodecError(
                f"MLP layer sizes must be two or more positive integers, not {sizes!r}.")
        self.sizes = tuple(int(s) for s in sizes)
        layers = []
        for i, (a, b) in enumerate(zip(self.sizes, self.sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(self.sizes) - 2:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x.flatten(1))


def accuracy(model: nn.Module, x, y) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def train_digits_mlp(sizes=(64, 128, 10), *, epochs=60, seed=0, cache_dir: Path | None = None):
    """An MLP trained on digits with Adam; cached in ``cache_dir`` when given.

    Returns ``(model, test_accuracy)``.
    """
    torch.manual_seed(seed)
    model = MLP(sizes)
    x_train, y_train, x_test, y_test = digits(seed)
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"mlp-digits-{'-'.join(map(str, sizes))}-s{seed}-e{epochs}.pt"
        if path.exists():
            model.load_state_dict(torch.load(path, weights_only=True))
            return model, accuracy(model, x_test, y_test)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()
    batches = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(seed))
    for _ in range(epochs):
        for idx in batches.split(64):
            optimizer.zero_grad()
            loss_fn(model(x_train[idx]), y_train[idx]).backward()
            optimizer.step()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
    return model, accuracy(model, x_test, y_test)


def quantize_symmetric(weights: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-tensor symmetric int8: ``q = clamp(round(w / s), -127, 127)``, ``s = max|w| / 127``."""
    w = np.asarray(weights, dtype=np.float64)
    scale = float(np.abs(w).max()) / 127 or 1.0
    return np.clip(np.round(w / scale), -127, 127).astype(np.int8), scale


class MLP2(nn.Module):
    """LeNet-300-100 of Deep Compression (seed 003) and seed 000's "MLP2", adapted to
    the 8x8 digits: ``64 -> 300 -> 100 -> 10`` instead of ``784 -> 300 -> 100 -> 10``
    (``inputs=784`` gives the original, for MNIST).

    Each hidden layer is ``Linear -> BatchNorm1d -> ReLU``; the BatchNorm (absent in the
    original) gives every hidden neuron the scale and shift that variational channel
    pruning (seed 001, :mod:`golden.ml.cim_train`) judges it by. ``batch_norm=False`` puts
    an ``nn.Identity`` in each BatchNorm's place: the original network, with the same
    state-dict keys for its layers, so that a network whose BatchNorms were folded into
    their layers (:func:`golden.ml.deep_compression.fold_batchnorm`) loads into it. The
    layers are one ``nn.Sequential``, :attr:`net`, so that pruning and the CIM conversion
    can rewrite them.
    """

    def __init__(self, *, batch_norm: bool = True, hidden=(300, 100), inputs=64, classes=10):
        super().__init__()
        sizes = (inputs, *hidden, classes)
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
            raise CimcodecError(f"MLP2 layer sizes must be positive integers, not {sizes!r}.")
        layers = []
        for a, b in zip(sizes[:-2], sizes[1:-1]):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b) if batch_norm else nn.Identity(),
                       nn.ReLU()]
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x.flatten(1))


class LeNet5(nn.Module):
    """LeNet-5, adapted to the 1x8x8 digits (``image=8``, the default) or as the
    original for 1x28x28 MNIST (``image=28``, padded to 32 by the first convolution).

    The original takes 1x32x32 (MNIST padded): conv 5x5 -> 6x28x28, pool -> 6x14x14,
    conv 5x5 -> 16x10x10, pool -> 16x5x5, FC 400 -> 120 -> 84 -> 10. An 8x8 image
    cannot shrink that much, so for digits::

        1x8x8  -conv 5x5 pad 2->  6x8x8  -pool 2->  6x4x4
               -conv 3x3 pad 1-> 16x4x4  -pool 2-> 16x2x2  -flatten-> 64
               -FC-> 120 -FC-> 84 -FC-> 10

    with max pooling, ReLU, and BatchNorm after both convolutions and the two hidden FC
    layers (absent in the original) so that variational channel pruning
    (:mod:`golden.ml.cim_train`) has a scale and shift per channel to judge;
    ``batch_norm=False`` puts an ``nn.Identity`` in each BatchNorm's place (same keys).
    The layers are one ``nn.Sequential``, :attr:`net`. Input: ``(N, image**2)`` or
    ``(N, 1, image, image)``.
    """

    def __init__(self, *, classes: int = 10, batch_norm: bool = True, image: int = 8):
        super().__init__()
        if image not in (8, 28):
            raise CimcodecError(f"LeNet-5 takes 8x8 or 28x28 images, not {image!r}.")
        self.image = image

        def norm(n, kind):
            return kind(n) if batch_norm else nn.Identity()

        if image == 8:
            convs = [nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 3, padding=1)]
            flat = 64
        else:
            convs = [nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)]
            flat = 400
        self.net = nn.Sequential(
            convs[0], norm(6, nn.BatchNorm2d), nn.ReLU(), nn.MaxPool2d(2),
            convs[1], norm(16, nn.BatchNorm2d), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(flat, 120), norm(120, nn.BatchNorm1d), nn.ReLU(),
            nn.Linear(120, 84), norm(84, nn.BatchNorm1d), nn.ReLU(),
            nn.Linear(84, classes),
        )

    def forward(self, x):
        return self.net(x.reshape(-1, 1, self.image, self.image))


class VGG(nn.Module):
    """VGG with BatchNorm (the CIFAR-style VGG of seeds 000, 001 and 004): 3x3
    convolutions with BatchNorm and ReLU in five stages, a 2x2 max pool after each stage
    while the feature map is larger than 1x1, then the classifier
    ``C -> H -> H -> classes`` (the FC layers the codec compresses), ``C`` the last
    stage's channels and ``H = 512 * width``.

    ``depth`` 11 or 16 picks the stages (:data:`STAGES`); ``width`` scales every channel
    count; ``image`` and ``in_channels`` give the input (3x32x32 for CIFAR-10, 1x8x8 for
    digits, where the pools after the third stage are left out). ``batch_norm=False``
    puts an ``nn.Identity`` in each BatchNorm's place.
    """

    STAGES = {11: ((64,), (128,), (256, 256), (512, 512), (512, 512)),
              16: ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))}

    def __init__(self, *, depth: int = 16, classes: int = 10, width: float = 1.0,
                 in_channels: int = 3, image: int = 32, batch_norm: bool = True):
        super().__init__()
        name = f"VGG{depth}"
        if depth not in self.STAGES:
            raise CimcodecError(f"VGG depth must be 11 or 16, not {depth!r}.")
        if not 0 < width <= 1:
            raise CimcodecError(f"{name} width must be in (0, 1], not {width!r}.")
        self.in_channels, self.image = in_channels, image
        layers, channels, side = [], in_channels, image
        for stage in self.STAGES[depth]:
            for out in stage:
                out = max(1, int(out * width))
                layers += [nn.Conv2d(channels, out, 3, padding=1),
                           nn.BatchNorm2d(out) if batch_norm else nn.Identity(), nn.ReLU()]
                channels = out
            if side > 1:
                layers.append(nn.MaxPool2d(2))
                side //= 2
        hidden = max(1, int(512 * width))
        layers += [nn.Flatten(), nn.Linear(channels * side * side, hidden), nn.ReLU(),
                   nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, classes)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x.reshape(-1, self.in_channels, self.image, self.image))


class VGG16(VGG):
    """:class:`VGG` with ``depth=16``: 13 convolutions in stages of 64, 64 | 128, 128 |
    256 x 3 | 512 x 3 | 512 x 3; input ``(N, 3, 32, 32)`` by default.

    Training it on CIFAR-10 needs the data set's python batches in a directory the user
    names (:func:`golden.ml.datasets.cifar10`); nothing is downloaded.
    """

    def __init__(self, **kwargs):
        super().__init__(depth=16, **kwargs)


#: Input geometry of each data set: ``(in_channels, image side, classes)``.
GEOMETRY = {"digits": (1, 8, 10), "mnist": (1, 28, 10), "cifar10": (3, 32, 10)}
#: Channel scale of the VGGs on the small data sets (CPU-friendly; 1.0 on CIFAR-10).
VGG_WIDTH = {"digits": 0.25, "mnist": 0.25, "cifar10": 1.0}
#: Channel scale of ResNet-18 and MobileNetV2 (:mod:`cimcodec.golden.ml.convnets`) per
#: data set: about 0.7 M parameters each on digits and MNIST.
CONVNET_WIDTH = {"resnet18": {"digits": 0.25, "mnist": 0.25, "cifar10": 1.0},
                 "mobilenetv2": {"digits": 0.5, "mnist": 0.5, "cifar10": 1.0}}


def build(name: str, data: str = "digits", *, batch_norm: bool = True) -> nn.Module:
    """A network of :data:`NETS` for data set ``data`` (its input geometry)."""
    if name not in NETS:
        raise CimcodecError(f"Network must be one of {', '.join(NETS)}, not {name!r}.")
    if data not in GEOMETRY:
        raise CimcodecError(
            f"Data set must be one of {', '.join(GEOMETRY)}, not {data!r}.")
    channels, side, classes = GEOMETRY[data]
    if name == "mlp":
        return MLP((channels * side * side, MLP_HIDDEN, classes))
    if name == "mlp2":
        return MLP2(inputs=channels * side * side, classes=classes, batch_norm=batch_norm)
    if name == "lenet5":
        if channels != 1:
            raise CimcodecError(f"LeNet-5 takes one-channel images, not {data}.")
        return LeNet5(classes=classes, image=side, batch_norm=batch_norm)
    if name in CONVNET_WIDTH:
        from cimcodec.golden.ml import convnets

        kind = convnets.ResNet18 if name == "resnet18" else convnets.MobileNetV2
        return kind(classes=classes, width=CONVNET_WIDTH[name][data], in_channels=channels,
                    image=side, batch_norm=batch_norm)
    return VGG(depth=int(name[3:]), classes=classes, width=VGG_WIDTH[data],
               in_channels=channels, image=side, batch_norm=batch_norm)


#: The networks :func:`build` knows (``mlp``: :class:`MLP` with one hidden layer of
#: :data:`MLP_HIDDEN` units, small enough to run whole on the RTL tile in the test suite).
NETS = ("mlp", "mlp2", "lenet5", "vgg11", "vgg16", "resnet18", "mobilenetv2")
MLP_HIDDEN = 16


def has_batchnorm(state_dict) -> bool:
    """Whether a state dict holds BatchNorm statistics."""
    return any(k.endswith("running_mean") for k in state_dict)


def load_net(name: str, state_dict, data: str = "digits") -> nn.Module:
    """Network ``name`` with ``state_dict`` loaded strictly (with or without BatchNorm,
    as the state dict has it), in eval mode.

    Raises
    ------
    CimcodecError
        The state dict does not fit the network (one sentence naming the first
        difference).
    """
    return _load_strict(build(name, data, batch_norm=has_batchnorm(state_dict)), state_dict,
                        f"{name} on {data}")


def _load_strict(model: nn.Module, state_dict, what: str) -> nn.Module:
    want = model.state_dict()
    missing = [k for k in want if k not in state_dict]
    extra = [k for k in state_dict if k not in want]
    if missing or extra:
        raise CimcodecError(
            f"The state dict does not fit {what}: "
            + (f"it lacks {missing[0]!r}" if missing else f"it has an extra {extra[0]!r}")
            + f" ({len(missing)} missing, {len(extra)} extra).")
    for k, v in want.items():
        if tuple(state_dict[k].shape) != tuple(v.shape):
            raise CimcodecError(
                f"The state dict does not fit {what}: {k} has shape "
                f"{tuple(state_dict[k].shape)}, the network {tuple(v.shape)}.")
    model.load_state_dict({k: v.to(want[k].dtype) for k, v in state_dict.items()},
                          strict=True)
    return model.eval()


# ---------------------------------------------------------------- saved descriptions
# A network saved with a description (a model container's ``model`` entry, or the
# ``description`` of a ``.pt`` checkpoint) is rebuilt from it: ``{"net": NAME, "data":
# DATA}`` and, for a decomposed network (:mod:`cimcodec.golden.ml.decompose`),
# ``"decomposed": {layer: {"method": ..., "ranks": [...]}}``.


def from_description(description, state_dict) -> nn.Module:
    """The network a saved ``description`` names, its decomposed layers replaced by their
    structure (:func:`cimcodec.golden.ml.decompose.rebuild`), with ``state_dict`` loaded
    strictly (with or without BatchNorm, as the state dict has it), in eval mode."""
    if not isinstance(description, dict) or "net" not in description:
        raise CimcodecError("The saved network description names no network (no 'net').")
    name, data = description["net"], description.get("data", "digits")
    model = build(name, data, batch_norm=has_batchnorm(state_dict))
    what = f"{name} on {data}"
    if description.get("decomposed"):
        from cimcodec.golden.ml.decompose import rebuild

        rebuild(model, description["decomposed"])
        what = f"the decomposed {what}"
    return _load_strict(model, state_dict, what)


def fit_digits(model: nn.Module, *, epochs: int, seed: int = 0, lr: float = 3e-3,
               penalty=None, data=None, weight_decay: float = 0.0, teacher=None,
               distill: float = 0.7, temperature: float = 4.0,
               progress: bool = False) -> nn.Module:
    """Train ``model`` in place (Adam, batches of 64, cross-entropy) on the training
    part of ``data`` (default ``digits(seed)``).

    ``penalty``, when given, is a function of no arguments whose value is added to every
    batch loss (for example a KL term). With a ``teacher`` network the loss is
    ``(1 - distill) * CE + distill * T**2 * KL(softmax(t / T) || softmax(s / T))``
    (knowledge distillation, Hinton et al. 2015; ``T = temperature``). ``progress``
    shows a bar over the epochs. Returns ``model`` in eval mode.
    """
    from tqdm import tqdm

    x_train, y_train = (data or digits(seed))[:2]
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    if teacher is not None:
        teacher.eval()
        with torch.no_grad():
            soft = torch.log_softmax(teacher(x_train) / temperature, dim=1)
    model.train()
    for _ in tqdm(range(epochs), desc="train", unit="epoch", disable=not progress):
        for idx in torch.randperm(len(x_train), generator=gen).split(64):
            optimizer.zero_grad()
            out = model(x_train[idx])
            loss = loss_fn(out, y_train[idx])
            if teacher is not None:
                kl = nn.functional.kl_div(torch.log_softmax(out / temperature, dim=1),
                                          soft[idx], log_target=True, reduction="batchmean")
                loss = (1 - distill) * loss + distill * temperature ** 2 * kl
            if penalty is not None:
                loss = loss + penalty()
            loss.backward()
            optimizer.step()
    return model.eval()


def train(name: str, data: str = "digits", *, data_dir=None, epochs: int = 30, seed: int = 0,
          cache_dir: Path | None = None, progress: bool = False):
    """Network ``name`` (:func:`build`) trained on ``data`` (``digits``, or ``mnist`` /
    ``cifar10`` read from ``data_dir``) without its validation part
    (:func:`golden.ml.datasets.split`); cached in ``cache_dir`` by network, data set,
    seed and epochs.

    Returns ``(model, test_accuracy)`` with the model in eval mode.
    """
    torch.manual_seed(seed)
    model = build(name, data)
    dataset = load(data, data_dir, seed=seed)
    fit, _, test = split(dataset)
    path = None if cache_dir is None else (
        Path(cache_dir) / f"{name}-{data}-train80-s{seed}-e{epochs}.pt")
    if path is not None and path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
    else:
        fit_digits(model, epochs=epochs, seed=seed, data=fit, progress=progress)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            torch.save(model.state_dict(), tmp)
            tmp.replace(path)
    model.eval()
    return model, accuracy(model, *test)


def train_digits_net(name: str, *, epochs: int = 30, seed: int = 0,
                     cache_dir: Path | None = None):
    """MLP2 or LeNet-5 trained on the whole digits training split (no validation held
    out; the codec sweeps of docs/codec.md use it); cached in ``cache_dir``.

    Returns ``(model, test_accuracy)`` with the model in eval mode.
    """
    if name not in ("mlp2", "lenet5"):
        raise CimcodecError(f"Network must be mlp2 or lenet5, not {name!r}.")
    torch.manual_seed(seed)
    model = build(name)
    data = digits(seed)
    path = None if cache_dir is None else Path(cache_dir) / f"{name}-digits-s{seed}-e{epochs}.pt"
    if path is not None and path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
    else:
        fit_digits(model, epochs=epochs, seed=seed, data=data)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), path)
    model.eval()
    return model, accuracy(model, data[2], data[3])
