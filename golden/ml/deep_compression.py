"""Deep Compression with retraining (Han, Mao, Dally, ICLR 2016; seed 003): pruning,
trained quantization and Huffman coding of a whole network, each step a function that
works alone, :func:`run` the whole pipeline with a loss floor.

Steps
-----
0. :func:`fold_batchnorm`: every BatchNorm that follows a linear or convolution layer
   (or a decomposed one, :mod:`cimcodec.golden.ml.decompose`: into its last map) is
   folded into it (``W' = W * g``, ``b' = (b - mean) * g + beta``,
   ``g = gamma / sqrt(var + eps)``) and replaced by ``nn.Identity``: the function of the
   network in eval mode, without the BatchNorm tensors (the original LeNet-300-100 and
   LeNet-5 have none). State-dict keys of the layers stay as they were.
1. :func:`sensitivity`: each prunable layer (``nn.Linear`` / ``nn.Conv2d``) pruned alone
   by magnitude at the sparsities of :data:`SCAN`, and the validation accuracy of each
   (the paper's Fig. 6), without retraining as in the paper (optionally after a short
   one). :func:`allocate` turns the curves into per-layer thresholds for a budget of
   summed accuracy drops: the layers that give up the most weights per point of accuracy
   are pruned furthest (the paper reads its thresholds off the same curves by hand).
2. :func:`prune_iteratively`: magnitude pruning to those sparsities in ``steps`` equal
   steps, each followed by retraining; masks are held during retraining
   (``torch.nn.utils.prune``: the weight is ``weight_orig * weight_mask``) and made
   permanent at the end.
3. :func:`quantize`: per layer, the nonzero weights are shared by 1-D k-means
   (:func:`cimcodec.golden.codec.deep.share`, ``2**b - 1`` clusters, ``linear``,
   ``forgy`` or ``density`` initialisation); then the centroids are fine-tuned: each
   weight is ``centroid[label]`` (``torch.nn.utils.parametrize``), so the gradient of a
   centroid is the sum of its members' gradients, as in the paper. Pruned weights stay
   0. Biases keep training; with ``half_biases`` they are then rounded to float16 (not
   in the paper: it halves their lossless storage).
4. Storage: the ``deep`` codec of the model container (sparse relative indices and
   Huffman coding of both streams, :mod:`cimcodec.golden.codec.deep`) holds the
   quantized network exactly: every accuracy :func:`run` reports after storage is
   measured on the network decoded from the container's bytes.

Data: :func:`run` retrains on the training part of
:func:`cimcodec.golden.ml.datasets.split`, decides on its validation part (which
:func:`cimcodec.golden.ml.models.train` never trains on) and only measures the test
split.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils import prune as torch_prune

from cimcodec.golden.codec import deep
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.ml.models import accuracy, fit_digits

#: Sparsities of the sensitivity scan.
SCAN = (0.5, 0.6, 0.7, 0.8, 0.85, 0.88, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99)
#: Budgets of summed scanned accuracy drops (:func:`allocate`) tried by :func:`run`, most
#: aggressive first.
BUDGETS = (1.2, 0.9, 0.7, 0.5, 0.35, 0.25, 0.15, 0.08)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (layers in an ``nn.Sequential`` ``net``) with every BatchNorm
    folded into the layer before it and replaced by ``nn.Identity`` (module docstring)."""
    if not isinstance(getattr(model, "net", None), nn.Sequential):
        raise CimcodecError("The model must keep its layers in an nn.Sequential named net.")
    model = copy.deepcopy(model).eval()
    layers = list(model.net)
    for i, bn in enumerate(layers):
        if not isinstance(bn, nn.modules.batchnorm._BatchNorm):
            continue
        layer = layers[i - 1] if i else None
        if isinstance(layer, nn.Sequential) and len(layer):
            layer = layer[-1]       # a decomposed layer (golden.ml.decompose): its last map
        if not isinstance(layer, nn.Linear | nn.Conv2d):
            raise CimcodecError("A BatchNorm must follow a linear or convolution layer.")
        with torch.no_grad():
            gain = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            shape = (-1,) + (1,) * (layer.weight.dim() - 1)
            layer.weight.mul_(gain.reshape(shape))
            bias = layer.bias if layer.bias is not None else torch.zeros_like(gain)
            new_bias = (bias - bn.running_mean) * gain + bn.bias
            if layer.bias is None:
                layer.bias = nn.Parameter(new_bias)
            else:
                layer.bias.copy_(new_bias)
        model.net[i] = nn.Identity()
    return model


def prunable(model: nn.Module) -> dict:
    """``{state-dict name of the weight: module}`` of every linear and convolution
    layer."""
    return {f"{name}.weight": m for name, m in model.named_modules()
            if isinstance(m, nn.Linear | nn.Conv2d)}


def _magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    count = int(round(sparsity * weight.numel()))
    mask = torch.ones_like(weight)
    if count:
        order = weight.detach().abs().reshape(-1).argsort(stable=True)
        mask.reshape(-1)[order[:count]] = 0
    return mask


def sensitivity(model: nn.Module, x, y, sparsities=SCAN, *, retrain=None, epochs: int = 0,
                lr: float = 3e-3, seed: int = 0, mask=None) -> dict:
    """``{layer: [accuracy at each sparsity]}``: each layer pruned alone by magnitude and
    measured on ``(x, y)``; with ``retrain`` data and ``epochs``, after that many epochs
    of retraining with the mask held (a short retraining predicts what the full one
    recovers much better than none). ``mask(weight, sparsity)`` gives the pruning mask
    (default: by magnitude, weight by weight)."""
    mask = mask or _magnitude_mask
    out = {}
    for name in prunable(model):
        row = []
        for s in sparsities:
            net = copy.deepcopy(model)
            module = prunable(net)[name]
            torch_prune.custom_from_mask(module, "weight", mask(module.weight.detach(), s))
            if epochs:
                fit_digits(net, epochs=epochs, seed=seed, lr=lr, data=retrain)
            row.append(accuracy(net.eval(), x, y))
        out[name] = row
    return out


def allocate(scan: dict, baseline: float, budget: float, sizes: dict,
             sparsities=SCAN) -> dict:
    """Per-layer sparsities from a sensitivity scan: starting from none, repeatedly move
    the layer with the most weights removed per unit of (scanned) accuracy drop to its
    next scanned sparsity, while the summed drops stay within ``budget``.

    A layer's drop at a sparsity is ``max(0, baseline - accuracy)``, made non-decreasing
    along the scan; ``sizes`` gives each layer's weight count. Large layers that lose
    little go far; a small, sensitive classifier stays dense."""
    drops = {}
    for name, accs in scan.items():
        d = np.maximum.accumulate(np.maximum(0.0, baseline - np.asarray(accs, float)))
        drops[name] = np.concatenate([[0.0], d])
    grid = np.concatenate([[0.0], sparsities])
    level = dict.fromkeys(scan, 0)
    total = 0.0
    while True:
        best, best_score = None, -1.0
        for name in scan:
            i = level[name]
            if i + 1 >= len(grid):
                continue
            cost = drops[name][i + 1] - drops[name][i]
            if total + cost > budget + 1e-12:
                continue
            score = sizes[name] * (grid[i + 1] - grid[i]) / max(cost, 1e-6)
            if score > best_score:
                best, best_score = name, score
        if best is None:
            return {name: float(grid[i]) for name, i in level.items()}
        total += drops[best][level[best] + 1] - drops[best][level[best]]
        level[best] += 1


def prune_iteratively(model: nn.Module, targets: dict, data, *, steps: int = 4,
                      epochs: int = 8, lr: float = 1e-3, seed: int = 0,
                      teacher: nn.Module | None = None, mask=None) -> nn.Module:
    """Prune ``model`` in place to ``targets`` (``{layer: sparsity}``) in ``steps``
    equal steps, retraining ``epochs`` on ``data`` after each with the masks held
    (``torch.nn.utils.prune``); the masks are made permanent at the end.

    ``mask(weight, sparsity)`` gives a layer's mask at each step, from its current
    (masked) weights (default: by magnitude, weight by weight, so what one step prunes
    stays pruned)."""
    mask = mask or _magnitude_mask
    modules = prunable(model)
    for name in targets:
        if name not in modules:
            raise CimcodecError(f"The model has no prunable layer {name!r}.")
    for step in range(1, steps + 1):
        for name, target in targets.items():
            module = modules[name]
            if torch_prune.is_pruned(module):
                torch_prune.remove(module, "weight")
            torch_prune.custom_from_mask(module, "weight",
                                         mask(module.weight.detach(), target * step / steps))
        fit_digits(model, epochs=epochs, seed=seed + step, lr=lr, data=data, teacher=teacher)
    for module in modules.values():
        if torch_prune.is_pruned(module):
            torch_prune.remove(module, "weight")
    return model.eval()


class _Shared(nn.Module):
    """The parametrization of a weight by shared values: ``[0, c_1..c_k][label]``."""

    def __init__(self, labels: np.ndarray, centroids: np.ndarray):
        super().__init__()
        self.register_buffer("labels", torch.as_tensor(labels, dtype=torch.long))
        self.centroids = nn.Parameter(torch.as_tensor(centroids, dtype=torch.float32))

    def forward(self, weight):
        book = torch.cat([self.centroids.new_zeros(1), self.centroids])
        return book[self.labels]


def quantize(model: nn.Module, data, *, weight_bits: dict | int = 5, init: str = "linear",
             epochs: int = 10, lr: float = 1e-3, seed: int = 0,
             half_biases: bool = False, teacher: nn.Module | None = None) -> nn.Module:
    """Trained quantization of ``model`` in place (module docstring, step 3):
    ``weight_bits`` per layer (or one for all) gives ``2**b - 1`` shared values."""
    modules = prunable(model)
    for name, module in modules.items():
        b = weight_bits[name] if isinstance(weight_bits, dict) else weight_bits
        centroids, labels = deep.share(module.weight.detach().numpy(), (1 << b) - 1,
                                       init=init, seed=seed)
        parametrize.register_parametrization(module, "weight", _Shared(labels, centroids))
    if epochs:
        fit_digits(model, epochs=epochs, seed=seed, lr=lr, data=data, teacher=teacher)
    for module in modules.values():
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    if half_biases:
        with torch.no_grad():
            for module in modules.values():
                if module.bias is not None:
                    module.bias.copy_(module.bias.half().float())
    return model.eval()


@dataclass
class Result:
    """What :func:`run` found.

    Attributes
    ----------
    model : nn.Module
        The compressed network (decoded from ``data``).
    data : bytes
        The model container.
    meets : bool
        Whether its validation accuracy is within ``max_loss`` of the baseline's.
    sparsities, weight_bits : dict
        Per layer.
    init : str
        The k-means initialisation of the result.
    accuracy : dict
        ``{stage: {"validation": a, "test": a}}`` for ``baseline``, ``pruned``,
        ``quantized`` and ``stored`` (decoded from the container).
    tried : list of dict
        Every setting tried: budget, sparsities, initialisation, bits, ratio and
        accuracies.
    """

    model: nn.Module
    data: bytes
    meets: bool
    sparsities: dict
    weight_bits: dict
    init: str
    accuracy: dict
    tried: list = field(default_factory=list)


def _accuracies(model, val, test) -> dict:
    return {"validation": accuracy(model, *val), "test": accuracy(model, *test)}


def compress(model: nn.Module, *, weight_bits: dict | int = 5, index_bits=None,
             description: dict | None = None) -> bytes:
    """The model container of a (pruned, quantized) network: every weight through the
    ``deep`` codec with its layer's bits, everything else stored losslessly.
    ``index_bits`` ``None`` tries every relative-index width 2..8 per layer and keeps
    the one that gives the fewest bytes (a storage choice only: the weights are the
    same)."""
    from cimcodec.golden.codec import model as container

    names = prunable(model)
    state = model.state_dict()
    settings = {}
    for name in names:
        b = weight_bits[name] if isinstance(weight_bits, dict) else weight_bits
        widths = range(2, 9) if index_bits is None else (index_bits,)
        w = state[name].numpy()
        r = min(widths, key=lambda r: len(deep.encode(w, deep.Settings(weight_bits=b,
                                                                        index_bits=r))))
        settings[name] = {"weight_bits": b, "index_bits": r}
    return container.compress(state, codec="deep", codecs=dict.fromkeys(names, "deep"),
                              tensor_settings=settings, model=description)


def run(model: nn.Module, data, *, max_loss: float = 0.01, weight_bits=(3, 4, 5),
        index_bits: int | None = None, inits=("linear", "density", "forgy"),
        budgets=BUDGETS, steps: int = 8, prune_epochs: int = 15,
        prune_lr: float = 3e-3, quantize_epochs: int = 10, half_biases: bool = True,
        distill: bool = True, scan_epochs: int = 0, description: dict | None = None,
        seed: int = 0,
        progress: bool = False) -> Result:
    """The whole pipeline (module docstring) on a trained ``model`` with ``data``
    ``(x_train, y_train, x_test, y_test)``, split by
    :func:`cimcodec.golden.ml.datasets.split` (retraining on its training part, decisions
    on its validation part, the test part only measured).

    For each budget, most aggressive first: the sensitivity scan gives the per-layer
    sparsities (:func:`allocate`); the network (BatchNorm still in place, which retrains
    better) is pruned iteratively with retraining, its BatchNorms folded, then quantized
    with every
    initialisation of ``inits`` and every bit count of ``weight_bits``, stored and
    decoded. The first budget with a stored network within ``max_loss`` of the
    baseline's validation accuracy returns the smallest such container (``meets``);
    when none is, the most accurate one tried is returned (``meets`` false). With
    ``distill`` the retraining learns from the uncompressed network's outputs too
    (:func:`cimcodec.golden.ml.models.fit_digits`; not in the paper).
    """
    from tqdm import tqdm

    from cimcodec.golden.codec import model as container
    from cimcodec.golden.ml.datasets import split

    if not 0 <= max_loss < 1:
        raise CimcodecError(f"The loss floor must be in [0, 1), not {max_loss!r}.")
    retrain, val, test = split(data)
    model = copy.deepcopy(model).eval()
    folded_base = fold_batchnorm(model)
    baseline = _accuracies(folded_base, val, test)
    scan = sensitivity(model, *val, retrain=retrain, epochs=scan_epochs, seed=seed)
    teacher = model if distill else None
    best, tried = None, []
    bits_options = (weight_bits,) if isinstance(weight_bits, int) else tuple(weight_bits)
    sizes = {name: m.weight.numel() for name, m in prunable(model).items()}
    for budget in tqdm(budgets, desc="deep compression", unit="try", disable=not progress):
        targets = allocate(scan, baseline["validation"], budget, sizes)
        net = copy.deepcopy(model)
        prune_iteratively(net, targets, retrain, steps=steps, epochs=prune_epochs,
                          lr=prune_lr, seed=seed, teacher=teacher)
        folded = fold_batchnorm(net)
        pruned = _accuracies(folded, val, test)
        found = []
        for init in inits:
            for b in bits_options:
                q = copy.deepcopy(folded)
                bits = dict.fromkeys(prunable(q), b)
                quantize(q, retrain, weight_bits=bits, init=init, epochs=quantize_epochs,
                         seed=seed, half_biases=half_biases, teacher=teacher)
                quantized = _accuracies(q, val, test)
                blob = compress(q, weight_bits=bits, index_bits=index_bits,
                                description=description)
                stored_net = copy.deepcopy(folded_base)
                stored_net.load_state_dict(container.decompress(blob), strict=True)
                stored = _accuracies(stored_net.eval(), val, test)
                meets = stored["validation"] >= baseline["validation"] - max_loss
                tried.append({"budget": budget, "init": init, "weight_bits": b,
                              "sparsities": targets, "bytes": len(blob),
                              "ratio": container.inspect(blob).ratio,
                              "validation": stored["validation"], "test": stored["test"],
                              "meets": meets})
                found.append(Result(stored_net, blob, meets, targets, bits, init,
                                    {"baseline": baseline, "pruned": pruned,
                                     "quantized": quantized, "stored": stored}, tried))
        good = [r for r in found if r.meets]
        if good:
            return min(good, key=lambda r: len(r.data))
        for r in found:
            if best is None or (r.accuracy["stored"]["validation"]
                                > best.accuracy["stored"]["validation"]):
                best = r
    return best
