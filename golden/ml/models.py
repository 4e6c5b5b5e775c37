"""Small reference networks and the offline data they train on.

Data: scikit-learn's bundled ``digits`` set (8x8 images, 1,797 samples, no download).
Trained weights are cached in the directory given (the command line uses
``cimcodec.home() / "cache"``) keyed by architecture and seed, so a
second run loads instead of training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from cimcodec.golden.errors import CimcodecError


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


def digits(seed: int = 0):
    """scikit-learn's digits scaled to 0..1, split 80/20.

    Returns ``(x_train, y_train, x_test, y_test)``.
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.data / 16.0, dtype=torch.float32)
    y = torch.tensor(data.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    x, y = x[order], y[order]
    cut = int(0.8 * len(x))
    return x[:cut], y[:cut], x[cut:], y[cut:]


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
    the 8x8 digits: ``64 -> 300 -> 100 -> 10`` instead of ``784 -> 300 -> 100 -> 10``.

    Each hidden layer is ``Linear -> BatchNorm1d -> ReLU``; the BatchNorm (absent in the
    original) gives every hidden neuron the scale and shift that variational channel
    pruning (seed 001, :mod:`golden.ml.cim_train`) judges it by. ``batch_norm=False`` gives
    the plain network. The layers are one ``nn.Sequential``, :attr:`net`, so that
    pruning and the CIM conversion can rewrite them.
    """

    def __init__(self, *, batch_norm: bool = True, hidden=(300, 100), inputs=64, classes=10):
        super().__init__()
        sizes = (inputs, *hidden, classes)
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
            raise CimcodecError(f"MLP2 layer sizes must be positive integers, not {sizes!r}.")
        layers = []
        for a, b in zip(sizes[:-2], sizes[1:-1]):
            layers += [nn.Linear(a, b)] + ([nn.BatchNorm1d(b)] if batch_norm else [])
            layers.append(nn.ReLU())
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x.flatten(1))


class LeNet5(nn.Module):
    """LeNet-5 adapted to the 1x8x8 digits.

    The original takes 1x32x32 (MNIST padded): conv 5x5 -> 6x28x28, pool -> 6x14x14,
    conv 5x5 -> 16x10x10, pool -> 16x5x5, FC 400 -> 120 -> 84 -> 10. An 8x8 image
    cannot shrink that much, so here::

        1x8x8  -conv 5x5 pad 2->  6x8x8  -pool 2->  6x4x4
               -conv 3x3 pad 1-> 16x4x4  -pool 2-> 16x2x2  -flatten-> 64
               -FC-> 120 -FC-> 84 -FC-> 10

    with max pooling, ReLU, and BatchNorm after both convolutions and the two hidden FC
    layers (absent in the original) so that variational channel pruning
    (:mod:`golden.ml.cim_train`) has a scale and shift per channel to judge. The layers are
    one ``nn.Sequential``, :attr:`net`. Input: ``(N, 64)`` or ``(N, 1, 8, 8)``.
    """

    def __init__(self, *, classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64, 120), nn.BatchNorm1d(120), nn.ReLU(),
            nn.Linear(120, 84), nn.BatchNorm1d(84), nn.ReLU(),
            nn.Linear(84, classes),
        )

    def forward(self, x):
        return self.net(x.reshape(-1, 1, 8, 8))


#: Architectures :func:`train_digits_net` knows, by name.
DIGITS_NETS = {"mlp2": MLP2, "lenet5": LeNet5}


def fit_digits(model: nn.Module, *, epochs: int, seed: int = 0, lr: float = 3e-3,
               penalty=None, data=None, weight_decay: float = 0.0) -> nn.Module:
    """Train ``model`` in place on digits (Adam, batches of 64, cross-entropy).

    ``penalty``, when given, is a function of no arguments whose value is added to every
    batch loss (for example a KL term). ``data`` defaults to ``digits(seed)``. Returns
    ``model`` in eval mode.
    """
    x_train, y_train = (data or digits(seed))[:2]
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x_train), generator=gen).split(64):
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            if penalty is not None:
                loss = loss + penalty()
            loss.backward()
            optimizer.step()
    return model.eval()


def train_digits_net(name: str, *, epochs: int = 30, seed: int = 0,
                     cache_dir: Path | None = None):
    """A :data:`DIGITS_NETS` architecture trained on digits; cached in ``cache_dir``.

    Returns ``(model, test_accuracy)`` with the model in eval mode.
    """
    if name not in DIGITS_NETS:
        raise CimcodecError(
            f"Network must be one of {', '.join(sorted(DIGITS_NETS))}, not {name!r}.")
    torch.manual_seed(seed)
    model = DIGITS_NETS[name]()
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


class VGG16(nn.Module):
    """The CIFAR-style VGG16 of seed 000's third experiment (and of seed 001): 13
    3x3 convolutions with BatchNorm and ReLU in five stages (64, 64 | 128, 128 |
    256 x 3 | 512 x 3 | 512 x 3), a 2x2 max pool after each stage, then the classifier
    ``512 -> 512 -> 512 -> classes`` (the FC layers the codec compresses). Input
    ``(N, 3, 32, 32)``.

    Training it on CIFAR-10 needs the data set's python batches in a directory the user
    names (:func:`golden.ml.datasets.cifar10`); nothing is downloaded.
    """

    STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))

    def __init__(self, *, classes: int = 10, width: float = 1.0):
        super().__init__()
        if not 0 < width <= 1:
            raise CimcodecError(f"VGG16 width must be in (0, 1], not {width!r}.")
        layers, channels = [], 3
        for stage in self.STAGES:
            for out in stage:
                out = max(1, int(out * width))
                layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out),
                           nn.ReLU()]
                channels = out
            layers.append(nn.MaxPool2d(2))
        hidden = max(1, int(512 * width))
        layers += [nn.Flatten(), nn.Linear(channels, hidden), nn.ReLU(),
                   nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, classes)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x.reshape(-1, 3, 32, 32))
