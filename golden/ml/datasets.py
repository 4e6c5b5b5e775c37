"""Evaluation data, never downloaded.

* ``digits`` (default): scikit-learn's bundled 8x8 digits, :func:`golden.ml.models.digits`.
* ``mnist``: the four IDX files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, optionally ``.gz``) in a
  directory the user names. IDX: big-endian magic ``0x00000803`` (images, then count,
  rows, cols) or ``0x00000801`` (labels, then count), then uint8 data.
* ``cifar10``: the python batches ``data_batch_1..5`` and ``test_batch`` of
  ``cifar-10-batches-py`` in a directory the user names (Python pickles: only open files
  you trust).

Every loader returns ``(x_train, y_train, x_test, y_test)`` as float32 tensors scaled
to 0..1 (images ``N x C x H x W``, digits ``N x 64``) and int64 labels.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

from cimcodec.golden.errors import CimcodecError

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def _find(root: Path, name: str) -> Path:
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise CimcodecError(f"{root} has no file {name} (or {name}.gz); nothing is downloaded.")


def read_idx(path) -> np.ndarray:
    """One IDX file (images or labels) as a uint8 array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise CimcodecError(f"{path} cannot be read as an IDX file: {e}.") from None
    if len(data) < 8 or data[:3] != b"\x00\x00\x08" or data[3] not in (1, 3):
        raise CimcodecError(f"{path} is not an IDX file of uint8 images or labels.")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    start = 4 + 4 * ndim
    if len(data) != start + int(np.prod(dims)):
        raise CimcodecError(f"{path} holds {len(data) - start} bytes of data, not "
                            f"{int(np.prod(dims))} for shape {tuple(dims)}.")
    return np.frombuffer(data, np.uint8, offset=start).reshape(dims)


def mnist(root):
    """MNIST from IDX files in ``root``."""
    import torch

    root = Path(root)
    xtr, ytr, xte, yte = (read_idx(_find(root, n)) for n in MNIST_FILES)
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise CimcodecError(f"The MNIST files in {root} have image and label counts that differ.")
    def images(a):
        return torch.tensor(a[:, None].astype(np.float32) / 255.0)
    return images(xtr), torch.tensor(ytr.astype(np.int64)), images(xte), \
        torch.tensor(yte.astype(np.int64))


def cifar10(root):
    """CIFAR-10 from the python batches in ``root``."""
    import torch

    root = Path(root)
    parts = []
    for name in CIFAR_FILES:
        path = root / name
        if not path.is_file():
            raise CimcodecError(f"{root} has no file {name}; nothing is downloaded.")
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="bytes")
            x = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            y = np.asarray(batch[b"labels"], dtype=np.int64)
        except Exception:
            raise CimcodecError(f"{path} is not a CIFAR-10 python batch.") from None
        parts.append((x, y))
    xtr = np.concatenate([p[0] for p in parts[:5]])
    ytr = np.concatenate([p[1] for p in parts[:5]])
    xte, yte = parts[5]
    return (torch.tensor(xtr.astype(np.float32) / 255.0), torch.tensor(ytr),
            torch.tensor(xte.astype(np.float32) / 255.0), torch.tensor(yte))


def digits(seed: int = 0):
    """scikit-learn's digits scaled to 0..1, split 80/20.

    Returns ``(x_train, y_train, x_test, y_test)``.
    """
    import torch
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.data / 16.0, dtype=torch.float32)
    y = torch.tensor(data.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    x, y = x[order], y[order]
    cut = int(0.8 * len(x))
    return x[:cut], y[:cut], x[cut:], y[cut:]


def load(name: str = "digits", root=None, *, seed: int = 0):
    """``(x_train, y_train, x_test, y_test)`` of ``digits``, ``mnist`` or ``cifar10``."""
    if name == "digits":
        return digits(seed)
    if name not in ("mnist", "cifar10"):
        raise CimcodecError(f"Data set must be digits, mnist or cifar10, not {name!r}.")
    if root is None:
        raise CimcodecError(f"The {name} data set needs a directory holding its files.")
    if not Path(root).is_dir():
        raise CimcodecError(f"{root} is not a directory.")
    return mnist(root) if name == "mnist" else cifar10(root)


#: Fraction of the training split held out for validation by :func:`split`.
VALIDATION = 0.2


def split(data, validation: float = VALIDATION):
    """``(train, validation, test)``, each an ``(x, y)`` pair, of a loaded data set
    ``(x_train, y_train, x_test, y_test)``: the last ``validation`` fraction of the
    training split is held out. Networks trained by :func:`cimcodec.golden.ml.models.train`
    never see it, so decisions taken on it (pruning thresholds, loss floors, ranks) leave
    the test split untouched."""
    x_train, y_train, x_test, y_test = data
    cut = int(round(len(x_train) * (1 - validation)))
    return ((x_train[:cut], y_train[:cut]), (x_train[cut:], y_train[cut:]),
            (x_test, y_test))
