"""The hardware-decodable JPEG path at high ratio: structured pruning that suits JPEG,
JPEG-aware fine-tuning, and the storage of the result as JPEG members of the model
container, which the RTL decompressor decodes.

Block pruning (:func:`prune_structured`)
    A weight matrix (a conv kernel as ``out x in*kh*kw``) is cut into the 8x8 blocks of
    the JPEG grid; the blocks with the smallest L2 norm are zeroed, in ``steps`` steps
    with retraining in between (masks held, ``torch.nn.utils.prune``). A zero block is
    128 everywhere after the level shift, so its DCT is 0: it costs one DC difference
    and one EOB, a few bits, and decodes to exact zeros. ``granularity="row"`` or
    ``"column"`` prunes whole rows (output units) or columns (inputs) instead.

JPEG-aware fine-tuning (:func:`finetune_through_codec`)
    Each weight passes through a float twin of the codec in the forward pass
    (:func:`simulate`): ``q = clamp(round(w / s), -128, 127)`` with the codec's
    per-tensor scale ``s = max|w| / 127.5``, the 8x8 orthonormal DCT of ``q`` (what the
    islow DCT computes, without its fixed-point rounding), ``round(F / Q) * Q`` with the
    file's quantization table ``Q``, the inverse DCT, ``clamp(round(.), -128, 127)`` and
    ``* s``; the backward pass treats the codec as the identity (straight-through
    estimator). The network learns weights that survive the codec.

Storage (:func:`encode`)
    The weights are then coded by the real codec (:func:`cimcodec.golden.codec.pipeline.
    compress_matrix`); the decoded weights replace them and the biases are retrained a
    little with the weights held (:func:`fit_biases`), so what is measured is exactly
    what the container's bytes give.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.ml.deep_compression import prunable, prune_iteratively
from cimcodec.golden.ml.models import accuracy, fit_digits

GRANULARITIES = ("block", "row", "column")
BLOCK = 8


def _matrix(weight: torch.Tensor) -> torch.Tensor:
    return weight.reshape(weight.shape[0], -1)


def structured_mask(weight: torch.Tensor, sparsity: float,
                    granularity: str = "block") -> torch.Tensor:
    """A 0/1 mask of ``weight``'s shape zeroing the ``sparsity`` fraction of its blocks
    (8x8 on the ``out x rest`` matrix), rows or columns with the smallest L2 norm."""
    if granularity not in GRANULARITIES:
        raise CimcodecError(f"Pruning granularity must be one of {', '.join(GRANULARITIES)}, "
                            f"not {granularity!r}.")
    m = _matrix(weight.detach()).abs()
    rows, cols = m.shape
    if granularity == "row":
        norms, shape = m.pow(2).sum(1), (rows, 1)
    elif granularity == "column":
        norms, shape = m.pow(2).sum(0), (1, cols)
    else:
        br, bc = math.ceil(rows / BLOCK), math.ceil(cols / BLOCK)
        padded = torch.zeros(br * BLOCK, bc * BLOCK)
        padded[:rows, :cols] = m
        norms = padded.reshape(br, BLOCK, bc, BLOCK).pow(2).sum((1, 3)).reshape(-1)
        shape = (br, bc)
    count = int(round(sparsity * norms.numel()))
    keep = torch.ones(norms.numel())
    if count:
        keep[norms.argsort(stable=True)[:count]] = 0
    keep = keep.reshape(shape)
    if granularity == "row":
        mask = keep.expand(rows, cols)
    elif granularity == "column":
        mask = keep.expand(rows, cols)
    else:
        mask = keep.repeat_interleave(BLOCK, 0).repeat_interleave(BLOCK, 1)[:rows, :cols]
    return mask.reshape(weight.shape).contiguous()


def prune_structured(model: nn.Module, targets: dict, data, *, granularity: str = "block",
                     steps: int = 8, epochs: int = 15, lr: float = 3e-3, seed: int = 0,
                     teacher: nn.Module | None = None) -> nn.Module:
    """Prune ``model`` in place to ``targets`` (``{layer: sparsity of blocks / rows /
    columns}``) in ``steps`` steps with retraining after each, masks held
    (:func:`cimcodec.golden.ml.deep_compression.prune_iteratively` with
    :func:`structured_mask`)."""
    structured_mask(torch.zeros(1, 1), 0.0, granularity)      # checks the granularity
    return prune_iteratively(model, targets, data, steps=steps, epochs=epochs, lr=lr,
                             seed=seed, teacher=teacher,
                             mask=lambda w, s: structured_mask(w, s, granularity))


def _dct_matrix() -> torch.Tensor:
    u = torch.arange(BLOCK, dtype=torch.float64)[:, None]
    x = torch.arange(BLOCK, dtype=torch.float64)[None, :]
    d = torch.cos((2 * x + 1) * u * math.pi / 16) / 2
    d[0] /= math.sqrt(2)
    return d.float()


_D = _dct_matrix()


def _ste_round(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


def simulate(weight: torch.Tensor, qtable) -> torch.Tensor:
    """The float twin of the codec (module docstring) on ``weight`` (any shape, coded as
    ``out x rest``), with straight-through gradients. ``qtable`` is the 64-entry table
    in natural order."""
    q_table = torch.as_tensor(np.asarray(qtable, dtype=np.float32)).reshape(BLOCK, BLOCK)
    m = _matrix(weight)
    rows, cols = m.shape
    scale = m.detach().abs().max().clamp_min(1e-12) / 127.5
    q = torch.clamp(_ste_round(m / scale), -128, 127)
    br, bc = math.ceil(rows / BLOCK), math.ceil(cols / BLOCK)
    padded = torch.nn.functional.pad(q[None, None], (0, bc * BLOCK - cols,
                                                     0, br * BLOCK - rows),
                                     mode="replicate")[0, 0]
    blocks = padded.reshape(br, BLOCK, bc, BLOCK).permute(0, 2, 1, 3)
    coef = _D @ blocks @ _D.T
    coef = _ste_round(coef / q_table) * q_table
    back = torch.clamp(_ste_round(_D.T @ coef @ _D), -128, 127)
    out = back.permute(0, 2, 1, 3).reshape(br * BLOCK, bc * BLOCK)[:rows, :cols]
    return (out * scale).reshape(weight.shape)


class _ThroughCodec(nn.Module):
    """The parametrization ``w -> simulate(w * mask)``."""

    def __init__(self, mask: torch.Tensor, qtable):
        super().__init__()
        self.register_buffer("mask", mask)
        self.qtable = np.asarray(qtable)

    def forward(self, weight):
        return simulate(weight * self.mask, self.qtable)


def finetune_through_codec(model: nn.Module, qtables: dict, data, *, epochs: int = 20,
                           lr: float = 1e-3, seed: int = 0,
                           teacher: nn.Module | None = None) -> nn.Module:
    """Train ``model`` in place with every layer of ``qtables`` (``{layer: 64-entry
    table}``) seen through the codec (module docstring); zero weights stay zero. The
    latent weights are kept (call :func:`encode` to store them)."""
    modules = prunable(model)
    for name, qtable in qtables.items():
        module = modules[name]
        mask = (module.weight.detach() != 0).float()
        parametrize.register_parametrization(module, "weight", _ThroughCodec(mask, qtable))
    fit_digits(model, epochs=epochs, seed=seed, lr=lr, data=data, teacher=teacher)
    for name in qtables:
        module = modules[name]
        mask = module.parametrizations.weight[0].mask
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
        with torch.no_grad():
            module.weight.mul_(mask)
    return model.eval()


def encode(model: nn.Module, settings: dict) -> dict:
    """Code every layer of ``settings`` (``{layer: pipeline.Settings fields}``) with the
    real codec; the layer's weights become the decoded ones. Returns ``{layer: member
    bytes}`` (JPEG files)."""
    from cimcodec.golden.codec import pipeline

    modules = prunable(model)
    out = {}
    with torch.no_grad():
        for name, options in settings.items():
            module = modules[name]
            data = pipeline.compress_matrix(module.weight.detach().numpy(),
                                            pipeline.Settings(**options)).data
            module.weight.copy_(torch.from_numpy(pipeline.decompress_matrix(data)))
            out[name] = data
    return out


def fit_biases(model: nn.Module, data, *, epochs: int = 5, lr: float = 1e-3, seed: int = 0,
               teacher: nn.Module | None = None) -> nn.Module:
    """Retrain only the biases of ``model`` (weights held), in place."""
    frozen = [p for n, p in model.named_parameters() if not n.endswith("bias")]
    for p in frozen:
        p.requires_grad_(False)
    try:
        fit_digits(model, epochs=epochs, seed=seed, lr=lr, data=data, teacher=teacher)
    finally:
        for p in frozen:
            p.requires_grad_(True)
    return model.eval()


#: Block sparsity budgets (summed scanned accuracy drops, :func:`allocate`), most
#: aggressive first.
BUDGETS = (0.9, 0.6, 0.4, 0.25, 0.12)
#: JPEG qualities tried, smallest files first.
QUALITIES = (75, 85, 92)
#: The lowest quality per-layer rate control goes to.
MIN_QUALITY = 5


@dataclass
class Result:
    """What :func:`run` found.

    Attributes
    ----------
    model : nn.Module
        The network decoded from :attr:`data` (BatchNorm folded).
    data : bytes
        The model container: every weight a JPEG member the RTL decompressor decodes.
    meets : bool
        Whether the target (loss floor on validation, or ratio) is met.
    sparsities, qualities : dict
        Per layer: the block sparsity and the JPEG quality.
    accuracy : dict
        ``{"baseline" | "stored": {"validation": a, "test": a}}``.
    ratio : float
        Every byte of the container against fp32.
    tried : list of dict
        Every setting stored and measured.
    """

    model: nn.Module
    data: bytes
    meets: bool
    sparsities: dict
    qualities: dict
    accuracy: dict
    ratio: float
    tried: list = field(default_factory=list)


def _store(latent: nn.Module, qualities: dict, retrain, val, test, teacher, description,
           bias_epochs: int):
    """Encode ``latent``'s layers at ``qualities``, retrain the biases, round them to
    float16, write the container and measure the network decoded from it."""
    from cimcodec.golden.codec import model as container

    net = copy.deepcopy(latent)
    members = encode(net, {n: {"quality": q, "clusters": 0, "remap": "none"}
                           for n, q in qualities.items()})
    fit_biases(net, retrain, epochs=bias_epochs, teacher=teacher)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias"):
                p.copy_(p.half().float())
    data = container.compress(net.state_dict(), codec="jpeg", model=description,
                              encoded={n: ("jpeg", b) for n, b in members.items()})
    stored = copy.deepcopy(net)
    stored.load_state_dict(container.decompress(data), strict=True)
    stored.eval()
    return stored, data, {"validation": accuracy(stored, *val), "test": accuracy(stored, *test)}


def run(model: nn.Module, data, *, max_loss: float | None = None,
        target_ratio: float | None = None, budgets=BUDGETS, qualities=QUALITIES,
        reorder_method: str | None = "greedy", steps: int = 8, prune_epochs: int = 15,
        finetune_epochs: int = 40, bias_epochs: int = 5, refine: bool = True,
        description: dict | None = None, seed: int = 0, progress: bool = False) -> Result:
    """The JPEG path with rate control on a trained ``model`` and ``data``
    ``(x_train, y_train, x_test, y_test)`` (split by
    :func:`cimcodec.golden.ml.datasets.split`: retraining on its training part,
    decisions on validation, the test split only measured).

    1. Reorder the hidden units (:mod:`cimcodec.golden.ml.reorder`, function-preserving).
    2. A block-pruning sensitivity scan (8x8 blocks, no retraining); for each budget,
       most aggressive first, per-layer block sparsities (:func:`~cimcodec.golden.ml.
       deep_compression.allocate`), pruning with retraining, BatchNorm folded.
    3. For each quality, smallest files first: JPEG-aware fine-tuning, then the real
       codec, the biases retrained and rounded to float16, the container written and the
       network decoded from it measured.
    4. Rate control per layer (``refine``): on the chosen result, the layers' qualities
       are lowered in steps of 10 (down to :data:`MIN_QUALITY`), round robin from the
       largest layer, while the target still holds (re-encoding the fine-tuned weights;
       the biases retrained each time).

    With ``max_loss`` (default 0.01 when no ``target_ratio`` is given) the smallest
    container within that validation loss wins; with ``target_ratio`` the most accurate
    container at least that small. When nothing
    meets the target, the best found is returned with ``meets`` false.
    """
    from tqdm import tqdm

    from cimcodec.golden.codec import model as container
    from cimcodec.golden.jpeg.reference import quality_table
    from cimcodec.golden.ml.datasets import split
    from cimcodec.golden.ml.deep_compression import allocate, fold_batchnorm, sensitivity
    from cimcodec.golden.ml.reorder import reorder

    if max_loss is not None and target_ratio is not None:
        raise CimcodecError("Give either a loss floor or a target ratio, not both.")
    if target_ratio is None and max_loss is None:
        max_loss = 0.01
    if max_loss is not None and not 0 <= max_loss < 1:
        raise CimcodecError(f"The loss floor must be in [0, 1), not {max_loss!r}.")
    if target_ratio is not None and not target_ratio > 1:
        raise CimcodecError(f"The target ratio must be above 1, not {target_ratio!r}.")
    retrain, val, test = split(data)
    model = copy.deepcopy(model).eval()
    if reorder_method:
        model, _ = reorder(model, reorder_method)
    teacher = model
    base = fold_batchnorm(model)
    baseline = {"validation": accuracy(base, *val), "test": accuracy(base, *test)}
    scan = sensitivity(model, *val, mask=lambda w, s: structured_mask(w, s, "block"))
    sizes = {name: m.weight.numel() for name, m in prunable(model).items()}

    def meets(acc, ratio):
        if max_loss is not None:
            return acc["validation"] >= baseline["validation"] - max_loss
        return ratio >= target_ratio

    def better(a, b):   # is try a better than try b for the target
        if b is None:
            return True
        if max_loss is not None:
            return (a["meets"], a["ratio"] if a["meets"] else a["validation"]) > \
                (b["meets"], b["ratio"] if b["meets"] else b["validation"])
        return (a["meets"], a["validation"] if a["meets"] else a["ratio"]) > \
            (b["meets"], b["validation"] if b["meets"] else b["ratio"])

    tried, best = [], None
    bar = tqdm(total=len(budgets) * len(qualities), desc="jpeg path", unit="try",
               disable=not progress)
    for budget in budgets:
        targets = allocate(scan, baseline["validation"], budget, sizes)
        pruned = copy.deepcopy(model)
        prune_structured(pruned, targets, retrain, steps=steps, epochs=prune_epochs,
                         seed=seed, teacher=teacher)
        pruned = fold_batchnorm(pruned)
        for k, q in enumerate(qualities):
            latent = copy.deepcopy(pruned)
            finetune_through_codec(latent, {n: quality_table(q) for n in sizes}, retrain,
                                   epochs=finetune_epochs, seed=seed, teacher=teacher)
            chosen = dict.fromkeys(sizes, q)
            stored, blob, acc = _store(latent, chosen, retrain, val, test, teacher,
                                       description, bias_epochs)
            ratio = container.inspect(blob).ratio
            entry = {"budget": budget, "sparsities": targets, "qualities": chosen,
                     "bytes": len(blob), "ratio": ratio, **acc, "meets": meets(acc, ratio),
                     "_keep": (latent, stored, blob)}
            tried.append(entry)
            bar.update()
            if better(entry, best):
                best = entry
            if entry["meets"] and max_loss is not None:
                bar.update(len(qualities) - k - 1)      # the qualities it skips
                break           # this budget's smallest file within the floor
    bar.close()
    if refine and best["meets"]:
        latent = best["_keep"][0]
        lowered = True
        while lowered:      # round robin, largest layers first, until no layer can go
            lowered = False
            for name in sorted(sizes, key=sizes.get, reverse=True):
                quality = best["qualities"][name]
                if quality - 10 < MIN_QUALITY:
                    continue
                trial = {**best["qualities"], name: quality - 10}
                t_stored, t_blob, t_acc = _store(latent, trial, retrain, val, test, teacher,
                                                 description, bias_epochs)
                t_ratio = container.inspect(t_blob).ratio
                entry = {"budget": best["budget"], "sparsities": best["sparsities"],
                         "qualities": trial, "bytes": len(t_blob), "ratio": t_ratio,
                         **t_acc, "meets": meets(t_acc, t_ratio),
                         "_keep": (latent, t_stored, t_blob)}
                tried.append(entry)
                if entry["meets"] and better(entry, best):
                    best, lowered = entry, True
    latent, stored, blob = best["_keep"]
    for entry in tried:
        entry.pop("_keep", None)
    return Result(stored, blob, best["meets"], best["sparsities"], best["qualities"],
                  {"baseline": baseline, "stored": {"validation": best["validation"],
                                                    "test": best["test"]}},
                  best["ratio"], tried)
