"""1-D K-means weight sharing of 8-bit weights (seed 003, Deep Compression).

Every method works on the *histogram* of the integer weights (at most 256 distinct
levels ``v`` with counts ``n_v``), so its cost does not depend on the layer size.
A clustering is ``k`` real centroids ``c_j`` and an assignment of each level to one
cluster; its error is ``SSE = sum_v n_v * (v - c_{j(v)})**2`` in squared integer units.

* :func:`linear_init`: ``k`` centroids spaced evenly from the smallest to the largest
  weight (Deep Compression's *linear initialization*, which beats Forgy and density
  initialization because it keeps the rare large weights).
* :func:`lloyd`: Lloyd iterations: assign each level to its nearest centroid (ties to
  the lower one), move each centroid to the weighted mean of its members (an empty
  cluster keeps its centroid), until nothing moves or ``iterations`` run out.
* :func:`optimal`: the exact minimum of the SSE. In 1-D an optimal clustering splits the
  sorted levels into ``k`` contiguous runs, so with ``D[m][j]`` the least SSE of the
  first ``j`` distinct levels in ``m`` clusters::

      D[1][j] = cost(0, j)
      D[m][j] = min over i < j of D[m-1][i] + cost(i, j)

  where ``cost(i, j)`` is the SSE of levels ``i..j-1`` around their weighted mean, from
  prefix sums ``S0 = sum n``, ``S1 = sum n v``, ``S2 = sum n v**2``:
  ``cost = S2 - S1**2 / S0``. That is ``O(k * L**2)`` for ``L <= 256`` levels, one
  vectorized minimum per ``m``.

The *shared levels* written into the image are the rounded centroids
``round(c_j)``; clusters are contiguous runs of integers, so the rounded centroids are
distinct and increasing. :func:`snap_table` maps each of the 256 possible decoded
samples to the cluster of the nearest shared level (ties to the lower level).

:func:`finetune_centroids` is Deep Compression's *trained quantization*: the shared
weights of one layer are updated with the summed gradients of their members.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cimcodec.golden.codec import chunks
from cimcodec.golden.codec.quant import LEVEL_SHIFT
from cimcodec.golden.errors import CimcodecError


@dataclass(frozen=True, eq=False)
class Codebook:
    """A clustering of integer weights.

    Attributes
    ----------
    centroids : numpy.ndarray of float64, shape ``(k,)``
        Increasing real centroids (integer-weight units).
    levels : numpy.ndarray of int64, shape ``(L,)``
        The distinct integer weights that were clustered.
    labels : numpy.ndarray of int64, shape ``(L,)``
        Cluster of each level.
    sse : float
        ``sum n_v (v - c)**2`` of the clustering.
    """

    centroids: np.ndarray
    levels: np.ndarray
    labels: np.ndarray
    sse: float

    @property
    def k(self) -> int:
        return len(self.centroids)

    @property
    def shared_levels(self) -> np.ndarray:
        """The rounded centroids, the integer level each cluster is coded as."""
        return np.round(self.centroids).astype(np.int64)

    def assign(self, q) -> np.ndarray:
        """Cluster index of every weight of ``q`` (which must hold only clustered
        levels)."""
        return self._lookup(q, self.labels, np.int64)

    def share(self, q) -> np.ndarray:
        """``q`` with every weight replaced by its cluster's shared (rounded) level, as
        int8."""
        return self._lookup(q, self.shared_levels[self.labels], np.int8)

    def _lookup(self, q, values, dtype) -> np.ndarray:
        """``values[j]`` for every weight of ``q`` at level ``levels[j]``, piece by piece."""
        q = np.asarray(q)
        lut = np.zeros(256, dtype=dtype)
        known = np.zeros(256, dtype=bool)
        lut[self.levels + LEVEL_SHIFT] = values
        known[self.levels + LEVEL_SHIFT] = True
        flat, out = q.reshape(-1), np.empty(q.size, dtype=dtype)
        for a, b in chunks.spans(flat.size):
            index = flat[a:b].astype(np.int64) + LEVEL_SHIFT
            if np.any((index < 0) | (index > 255)) or not np.all(known[index]):
                raise CimcodecError(
                    "The weights hold a level the codebook was not built from.")
            out[a:b] = lut[index]
        return out.reshape(q.shape)


def histogram(q) -> tuple[np.ndarray, np.ndarray]:
    """Distinct integer weights of ``q`` (in ``-128..127``) and their counts."""
    q = np.asarray(q)
    if q.size == 0:
        raise CimcodecError("Cannot cluster an empty weight matrix.")
    if not np.issubdtype(q.dtype, np.integer) or q.min() < -128 or q.max() > 127:
        raise CimcodecError("K-means takes 8-bit integer weights in -128..127.")
    counts = np.zeros(256, dtype=np.int64)
    flat = q.reshape(-1)
    for a, b in chunks.spans(flat.size):
        counts += np.bincount(flat[a:b].astype(np.int64) + LEVEL_SHIFT, minlength=256)
    levels = np.flatnonzero(counts)
    return levels - LEVEL_SHIFT, counts[levels].astype(np.float64)


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= 256:
        raise CimcodecError(f"The cluster count must be an integer 1..256, not {k!r}.")
    return int(k)


def _sse(levels, counts, labels, centroids) -> float:
    return float(np.sum(counts * (levels - centroids[labels]) ** 2))


def linear_init(q, k) -> np.ndarray:
    """``k`` centroids evenly spaced over ``[min(q), max(q)]``."""
    k = _check_k(k)
    levels, _ = histogram(q)
    return np.linspace(levels[0], levels[-1], k)


def lloyd(q, k, *, init=None, iterations: int = 100) -> Codebook:
    """Lloyd's K-means from ``init`` (default :func:`linear_init`)."""
    k = _check_k(k)
    levels, counts = histogram(q)
    c = np.array(linear_init(q, k) if init is None else init, dtype=np.float64)
    if c.shape != (k,):
        raise CimcodecError(f"K-means needs {k} initial centroids, not {c.size}.")
    c = np.sort(c)
    labels = np.zeros(len(levels), dtype=np.int64)
    for _ in range(iterations):
        labels = np.abs(levels[:, None] - c[None, :]).argmin(axis=1)
        mass = np.bincount(labels, counts, minlength=k)
        total = np.bincount(labels, counts * levels, minlength=k)
        new = np.where(mass > 0, total / np.maximum(mass, 1), c)
        if np.array_equal(new, c):
            break
        c = new
    labels = np.abs(levels[:, None] - c[None, :]).argmin(axis=1)
    return Codebook(c, levels, labels, _sse(levels, counts, labels, c))


def optimal(q, k) -> Codebook:
    """The exact least-SSE clustering by dynamic programming (module docstring).

    With fewer distinct levels than ``k``, every level is its own cluster and the
    codebook has that many entries.
    """
    k = _check_k(k)
    levels, counts = histogram(q)
    n = len(levels)
    k = min(k, n)
    v = levels.astype(np.float64)
    s0 = np.concatenate([[0.0], np.cumsum(counts)])
    s1 = np.concatenate([[0.0], np.cumsum(counts * v)])
    s2 = np.concatenate([[0.0], np.cumsum(counts * v * v)])
    i = np.arange(n + 1)[:, None]
    j = np.arange(n + 1)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        cost = (s2[j] - s2[i]) - (s1[j] - s1[i]) ** 2 / (s0[j] - s0[i])
    cost = np.where(j > i, np.maximum(cost, 0.0), np.inf)  # cost[i, j]: levels i..j-1
    best = cost[0].copy()  # D[1][j]
    back = np.zeros((k + 1, n + 1), dtype=np.int64)
    for m in range(2, k + 1):
        total = best[:, None] + cost  # D[m-1][i] + cost(i, j)
        back[m] = total.argmin(axis=0)
        best = total[back[m], np.arange(n + 1)]
    bounds = [n]
    for m in range(k, 1, -1):
        bounds.append(back[m][bounds[-1]])
    bounds.append(0)
    bounds = bounds[::-1]
    labels = np.zeros(n, dtype=np.int64)
    centroids = np.empty(k)
    for c, (a, b) in enumerate(zip(bounds, bounds[1:])):
        labels[a:b] = c
        centroids[c] = (s1[b] - s1[a]) / (s0[b] - s0[a])
    return Codebook(centroids, levels, labels, _sse(levels, counts, labels, centroids))


def compare(q, k, *, iterations: int = 100) -> dict:
    """Both methods on one matrix: ``{"lloyd": Codebook, "optimal": Codebook}``."""
    return {"lloyd": lloyd(q, k, iterations=iterations), "optimal": optimal(q, k)}


def snap_table(shared_levels) -> np.ndarray:
    """For each decoded sample ``s`` in 0..255, the index of the shared level nearest to
    ``s - 128`` (ties to the lower level), as uint8."""
    shared = np.asarray(shared_levels, dtype=np.int64)
    if shared.ndim != 1 or not 1 <= shared.size <= 256 or np.any(np.diff(shared) <= 0):
        raise CimcodecError("Shared levels must be 1..256 strictly increasing integers.")
    s = np.arange(256)[:, None] - LEVEL_SHIFT
    return np.abs(s - shared[None, :]).argmin(axis=1).astype(np.uint8)


def finetune_centroids(model, layer: str, labels, centroids, data, *, steps: int = 20,
                       lr: float = 1e-3, batch: int = 128, seed: int = 0) -> np.ndarray:
    """Trained quantization of one layer: SGD on its shared weights.

    Parameters
    ----------
    model : torch.nn.Module
        The network; its parameter ``layer`` (e.g. ``"net.0.weight"``) is overwritten
        with the shared weights and left holding the fine-tuned ones.
    labels : array of int, the shape of that parameter
        Cluster of every weight.
    centroids : array of float, shape ``(k,)``
        Shared weights (float, the parameter's units).
    data : ``(x, y)`` tensors
        Training inputs and class labels (cross-entropy loss).
    steps, lr, batch, seed
        Plain SGD: ``c_j -= lr * sum_{w in cluster j} dL/dw`` per step.

    Returns
    -------
    numpy.ndarray of float32
        The fine-tuned centroids.
    """
    import torch

    params = dict(model.named_parameters())
    if layer not in params:
        raise CimcodecError(f"The model has no parameter named {layer!r}.")
    weight = params[layer]
    idx = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if tuple(idx.shape) != tuple(weight.shape):
        raise CimcodecError(
            f"Cluster labels of shape {tuple(idx.shape)} do not match {layer} of shape "
            f"{tuple(weight.shape)}.")
    c = torch.as_tensor(np.asarray(centroids, dtype=np.float32)).clone()
    if idx.min() < 0 or idx.max() >= len(c):
        raise CimcodecError("A cluster label is outside the codebook.")
    x, y = data
    gen = torch.Generator().manual_seed(seed)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train(False)
    for _ in range(steps):
        with torch.no_grad():
            weight.copy_(c[idx])
        pick = torch.randint(len(x), (min(batch, len(x)),), generator=gen)
        model.zero_grad()
        loss_fn(model(x[pick]), y[pick]).backward()
        grad = torch.zeros_like(c).index_add_(0, idx.reshape(-1), weight.grad.reshape(-1))
        c -= lr * grad
    with torch.no_grad():
        weight.copy_(c[idx])
    model.zero_grad()
    return c.numpy().astype(np.float32)
