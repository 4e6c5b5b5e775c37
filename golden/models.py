"""Small reference networks and the offline data they train on.

Data: scikit-learn's bundled ``digits`` set (8x8 images, 1,797 samples, no download).
Trained weights are cached under ``build/cache`` keyed by architecture and seed, so a
second run loads instead of training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import CimcodecError


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
