"""The networks of the lossless study (seed 002): trained, pruned and quantized, every
step cached.

Networks (:data:`NETWORKS`): MLP2 and LeNet-5 (:mod:`cimcodec.golden.ml.models`),
ResNet-18 and MobileNetV2 (:mod:`cimcodec.golden.ml.convnets`, torchvision's
architectures with small-image stems), on ``digits`` by default (CIFAR-10 or MNIST from
a directory the user names). Each is trained by :func:`cimcodec.golden.ml.models.train`
(without the validation part, cached) for :data:`EPOCHS`.

Pruning (:func:`pruned`), each followed by retraining with the masks held, in
``steps`` equal steps of ``epochs`` each (default :data:`RETRAIN`), cached:

* ``fine``: every convolution and linear layer to ``sparsity`` by weight magnitude
  (:func:`cimcodec.golden.ml.deep_compression.prune_iteratively`);
* ``channel``: the ``sparsity`` fraction of the output channels of every convolution
  and linear layer but the classifier, smallest L1 norm first
  (``torch.nn.utils.prune.ln_structured``).

Quantization (:func:`study`), without retraining: each layer's weights at ``bits``
(:func:`cimcodec.golden.lossless.measure.quantize`: per-tensor int8, or k-means with
``2**bits - 1`` shared values); the network with the dequantized weights gives the
accuracy. BatchNorm stays unfolded (the stored layers are the convolutions as trained).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils import prune as torch_prune

from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.lossless.measure import Variant, quantize
from cimcodec.golden.ml import deep_compression as dc
from cimcodec.golden.ml import models

NETWORKS = ("mlp2", "lenet5", "resnet18", "mobilenetv2")
#: Training epochs per network (digits: a few seconds an epoch for the two convnets on one
#: core).
EPOCHS = {"mlp2": 30, "lenet5": 30, "resnet18": 15, "mobilenetv2": 15}
#: Retraining after pruning: (steps, epochs per step).
RETRAIN = (2, 3)
#: Learning rate of the retraining (Adam).
LR = 3e-3


def _prune_channels(model, sparsity: float, data, *, steps: int, epochs: int,
                    seed: int) -> None:
    layers = list(dc.prunable(model).values())[:-1]     # the classifier keeps its classes
    for step in range(1, steps + 1):
        for module in layers:
            rows = module.weight.shape[0]
            goal = int(round(sparsity * step / steps * rows))
            done = 0 if not torch_prune.is_pruned(module) else int(
                (module.weight_mask.reshape(rows, -1).sum(1) == 0).sum())
            if goal > done:
                torch_prune.ln_structured(module, "weight", amount=goal - done, n=1, dim=0)
        models.fit_digits(model, epochs=epochs, seed=seed + step, lr=LR, data=data)
    for module in layers:
        if torch_prune.is_pruned(module):
            torch_prune.remove(module, "weight")


def pruned(name: str, pruning: str, sparsity: float, *, data: str = "digits",
           data_dir=None, seed: int = 0, cache_dir: Path | None = None,
           retrain: tuple = RETRAIN, progress: bool = False):
    """Network ``name`` trained, then pruned as ``pruning`` (``none``, ``fine``,
    ``channel``) at ``sparsity`` with retraining (module docstring); in eval mode."""
    from cimcodec.golden.ml.datasets import load, split

    if name not in NETWORKS:
        raise CimcodecError(f"Network must be one of {', '.join(NETWORKS)}, not {name!r}.")
    Variant(pruning, sparsity)
    base, _ = models.train(name, data, data_dir=data_dir, epochs=EPOCHS[name], seed=seed,
                           cache_dir=cache_dir, progress=progress)
    if pruning == "none" or not sparsity:
        return base
    steps, epochs = retrain
    path = None if cache_dir is None else Path(cache_dir) / (
        f"{name}-{data}-e{EPOCHS[name]}-{pruning}{sparsity:g}-s{seed}-r{steps}x{epochs}.pt")
    net = copy.deepcopy(base)
    if path is not None and path.exists():
        net.load_state_dict(torch.load(path, weights_only=True))
        return net.eval()
    if progress:
        print(f"pruning {name} ({pruning}, {sparsity:g}) with {steps} x {epochs} epochs of "
              f"retraining", flush=True)
    fit = split(load(data, data_dir, seed=seed))[0]
    if pruning == "fine":
        targets = dict.fromkeys(dc.prunable(net), sparsity)
        dc.prune_iteratively(net, targets, fit, steps=steps, epochs=epochs, lr=LR, seed=seed)
    else:
        _prune_channels(net, sparsity, fit, steps=steps, epochs=epochs, seed=seed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save(net.state_dict(), tmp)
        tmp.replace(path)
    return net.eval()


@dataclass
class Study:
    """One network in one variant.

    Attributes
    ----------
    net : str
    variant : Variant
    tensors : dict
        ``{layer weight name: int64 tensor}`` of every convolution and linear layer.
    state : dict
        The state dict with the dequantized weights.
    accuracy : float
        Test accuracy of that state dict.
    """

    net: str
    variant: Variant
    tensors: dict
    state: dict
    accuracy: float


def study(name: str, variant: Variant, *, data: str = "digits", data_dir=None,
          seed: int = 0, cache_dir: Path | None = None, progress: bool = False) -> Study:
    """Network ``name`` pruned and quantized as ``variant`` says (module docstring)."""
    from cimcodec.golden.ml.datasets import load, split

    net = copy.deepcopy(pruned(name, variant.pruning, variant.sparsity, data=data,
                               data_dir=data_dir, seed=seed, cache_dir=cache_dir,
                               progress=progress))
    tensors, state = {}, net.state_dict()
    for layer in dc.prunable(net):
        ints, floats = quantize(state[layer].numpy(), variant.bits)
        tensors[layer] = ints
        state[layer] = torch.from_numpy(np.ascontiguousarray(floats))
    net.load_state_dict(state)
    test = split(load(data, data_dir, seed=seed))[2]
    return Study(name, variant, tensors, net.state_dict(), models.accuracy(net.eval(), *test))
