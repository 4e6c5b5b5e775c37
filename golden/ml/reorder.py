"""Function-preserving neuron reordering: permute the hidden units (or channels) of a
network so that each weight matrix becomes smoother for the JPEG codec, at no cost in
side information.

Permuting the outputs of layer ``i`` by ``P`` and the inputs of layer ``i + 1`` by the
same ``P`` leaves the network's function unchanged: ``W_{i+1} relu(W_i x + b_i) =
(W_{i+1} P^T) relu(P W_i x + P b_i)`` because ReLU, max pooling and BatchNorm (whose
parameters and statistics are permuted too) act unit by unit. The network's inputs and
outputs cannot move; the LFSR remap (:mod:`cimcodec.golden.blocks.remap`) is what
handles them.

A unit's *signature* is its incoming weights next to its outgoing weights (each half
scaled to unit norm, so both matrices count). :func:`order` chains the units:

* ``pca``: by the first principal component of the signatures;
* ``greedy``: nearest-neighbour travelling-salesman tour over the signatures, started at
  the unit with the smallest norm, then improved by 2-opt moves while any shortens the
  tour (what lands next to each other in a row of the matrix is what the DCT sees).

:func:`reorder` applies the permutations to every hidden layer of an ``nn.Sequential``
network ``net`` of ``Linear`` / ``Conv2d`` layers with ``BatchNorm``, ``ReLU``,
``MaxPool2d``, ``Identity`` and ``Flatten`` between them (for ``Conv2d -> Flatten ->
Linear`` each channel's group of ``H * W`` input columns moves as one).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from cimcodec.golden.errors import CimcodecError

METHODS = ("pca", "greedy")
_PASSIVE = (nn.ReLU, nn.MaxPool2d, nn.Identity, nn.Dropout)


def _signature(weight_in: np.ndarray, weight_out: np.ndarray) -> np.ndarray:
    """Per unit: its incoming weights (rows of ``weight_in``) and outgoing weights
    (columns of ``weight_out``, already grouped per unit), each scaled to unit norm."""
    a = weight_in.reshape(weight_in.shape[0], -1)
    b = weight_out.reshape(weight_out.shape[0], -1)
    a = a / max(np.linalg.norm(a), 1e-12)
    b = b / max(np.linalg.norm(b), 1e-12)
    return np.concatenate([a, b], axis=1)


def _tour_length(x: np.ndarray, tour: list) -> float:
    return float(np.linalg.norm(np.diff(x[tour], axis=0), axis=1).sum())


def order(signatures: np.ndarray, method: str = "greedy") -> np.ndarray:
    """A permutation of the units (rows of ``signatures``), see the module docstring."""
    x = np.asarray(signatures, dtype=np.float64)
    n = len(x)
    if method not in METHODS:
        raise CimcodecError(f"Reorder method must be one of {', '.join(METHODS)}, not "
                            f"{method!r}.")
    if n < 3:
        return np.arange(n)
    if method == "pca":
        centred = x - x.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        return np.argsort(centred @ vt[0], kind="stable")
    dist = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=2)
    tour = [int(np.argmin(np.linalg.norm(x, axis=1)))]
    free = np.ones(n, dtype=bool)
    free[tour[0]] = False
    for _ in range(n - 1):
        d = np.where(free, dist[tour[-1]], np.inf)
        nxt = int(np.argmin(d))
        tour.append(nxt)
        free[nxt] = False
    tour = np.array(tour)
    improved = True
    while improved:   # 2-opt on the open path
        improved = False
        for i in range(1, n - 1):
            a, b = tour[i - 1], tour[i]
            c, d = tour[i + 1:], np.append(tour[i + 2:], -1)
            old = dist[a, b] + np.where(d >= 0, dist[c, np.maximum(d, 0)], 0)
            new = dist[a, c] + np.where(d >= 0, dist[b, np.maximum(d, 0)], 0)
            gain = old - new
            j = int(np.argmax(gain))
            if gain[j] > 1e-12:
                tour[i:i + j + 2] = tour[i:i + j + 2][::-1]
                improved = True
    return tour


def _layers(model: nn.Module) -> list:
    if not isinstance(getattr(model, "net", None), nn.Sequential):
        raise CimcodecError("The model must keep its layers in an nn.Sequential named net.")
    return list(model.net)


def hidden_groups(model: nn.Module) -> list[dict]:
    """Each hidden unit group: the producing layer's index, the BatchNorm indices after
    it, the consuming layer's index, and the columns per unit of the consumer (``H*W``
    after a ``Flatten``)."""
    layers = _layers(model)
    weighted = [i for i, m in enumerate(layers) if isinstance(m, nn.Linear | nn.Conv2d)]
    groups = []
    for a, b in zip(weighted, weighted[1:]):
        norms, span, flatten = [], 1, False
        for j in range(a + 1, b):
            m = layers[j]
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                norms.append(j)
            elif isinstance(m, nn.Flatten):
                flatten = True
            elif not isinstance(m, _PASSIVE):
                raise CimcodecError(f"Cannot reorder across {type(m).__name__}: only "
                                    f"BatchNorm, ReLU, max pooling and Flatten keep units "
                                    f"apart.")
        producer, consumer = layers[a], layers[b]
        units = producer.weight.shape[0]
        inputs = consumer.weight.shape[1]
        if isinstance(consumer, nn.Conv2d) and consumer.groups != 1:
            raise CimcodecError("Cannot reorder into a grouped convolution.")
        if flatten or inputs != units:
            if inputs % units:
                raise CimcodecError(f"Layer {b} takes {inputs} inputs, not a multiple of "
                                    f"the {units} units before it.")
            span = inputs // units
        groups.append({"producer": a, "norms": norms, "consumer": b, "span": span})
    return groups


def reorder(model: nn.Module, method: str = "greedy") -> tuple[nn.Module, list]:
    """A copy of ``model`` with every hidden group permuted (module docstring), and the
    permutations, one per group (``new[i] = old[perm[i]]``)."""
    model = copy.deepcopy(model)
    layers = _layers(model)
    perms = []
    with torch.no_grad():
        for g in hidden_groups(model):
            producer, consumer = layers[g["producer"]], layers[g["consumer"]]
            w_in = producer.weight.detach().numpy()
            w_out = consumer.weight.detach().numpy()
            units, span = w_in.shape[0], g["span"]
            grouped = w_out.reshape(w_out.shape[0], units, span, *w_out.shape[2:])
            grouped = np.moveaxis(grouped, 1, 0).reshape(units, -1)
            perm = order(_signature(w_in, grouped), method)
            idx = torch.as_tensor(perm)
            producer.weight.copy_(producer.weight[idx])
            if producer.bias is not None:
                producer.bias.copy_(producer.bias[idx])
            for j in g["norms"]:
                bn = layers[j]
                for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
                    if t is not None:
                        t.copy_(t[idx])
            cols = (idx[:, None] * span + torch.arange(span)[None, :]).reshape(-1)
            consumer.weight.copy_(consumer.weight[:, cols])
            perms.append(perm)
    return model, perms
