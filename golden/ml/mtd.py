"""Decomposition of a whole network (seed 004): Tucker-2, CP, or MTD (mixed tensor
decomposition, the better of the two per layer), rank selection, fine-tuning.

Layers
------
:func:`layers` lists the layers decomposed by default: every ``nn.Conv2d`` but the first
(its input mode is the image's one or three channels) and every ``nn.Linear`` but the
last (the class scores); ``names`` picks others. Parameters are counted over every
``nn.Parameter`` of the network (weights, biases, BatchNorm scales and shifts); the
parameter ratio is the original network's count over the decomposed one's.

Rank selection (``ranks``)
--------------------------
* ``"vbmf"``, ``"energy:E"`` or an integer ``R``: every layer by the rule of
  :mod:`cimcodec.golden.ml.decompose` (:func:`~cimcodec.golden.ml.decompose.vbmf_plan`,
  :func:`~cimcodec.golden.ml.decompose.energy_plan`; ``R`` is both Tucker ranks, the CP
  rank or the SVD rank). With MTD the Tucker-2 plan and the CP plan of the same
  parameter count are both tried and the one with the higher validation accuracy (the
  layer decomposed alone, before fine-tuning) is kept; a tie keeps the smaller.
* A parameter budget (``target_ratio``): :func:`scan` decomposes each layer alone at
  the budgets ``parameters / r`` for ``r`` in :data:`LADDER` (and at rank 1) with every
  method allowed (:func:`~cimcodec.golden.ml.decompose.budget_plan`), measuring the
  network's validation accuracy each time; :func:`allocate` keeps each layer's
  Pareto front (fewer parameters, higher accuracy) and, from the undecomposed network,
  repeatedly moves the layer that saves the most parameters per point of accuracy lost
  to its next point, until the network is within ``parameters / target_ratio``. MTD
  pools both methods' points, so each layer ends on whichever gives more accuracy per
  parameter there; ``tucker`` and ``cp`` use their own points only (SVD for linear
  layers in every case).

Fine-tuning: :func:`cimcodec.golden.ml.models.fit_digits` (Adam; ``E`` epochs at the
learning rate, then ``E // 2`` at a tenth of it) on the training part of
:func:`cimcodec.golden.ml.datasets.split`, learning from the original network's outputs
too (distillation); decisions are taken on the validation part, the test part is only
measured.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from torch import nn

from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.ml import decompose as dec
from cimcodec.golden.ml.models import accuracy, fit_digits

#: Network-level methods.
METHODS = ("tucker", "cp", "mtd")
#: Per-layer compression ratios at which :func:`scan` tries each method.
LADDER = (2, 4, 8, 16, 32, 64, 128)
#: ALS / HOOI iterations of the decompositions :func:`scan` measures (the final ones take
#: :data:`cimcodec.golden.ml.decompose.ITERATIONS`).
SCAN_ITERATIONS = 25


def layers(model: nn.Module, names=None) -> dict:
    """``{module name: layer}`` of the layers to decompose (module docstring); ``names``
    picks them instead, each checked (:func:`cimcodec.golden.ml.decompose.check_layer`)."""
    if names is not None:
        out = {}
        for name in names:
            try:
                layer = model.get_submodule(name)
            except AttributeError:
                raise CimcodecError(f"The network has no layer named {name!r}.") from None
            dec.check_layer(layer, name)
            out[name] = layer
        return out
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    keep = set(convs[1:] + linears[:-1])
    return {n: m for n, m in model.named_modules() if n in keep}


def count(model: nn.Module) -> int:
    """Parameters of ``model`` (every ``nn.Parameter``)."""
    return sum(p.numel() for p in model.parameters())


def methods_of(method: str, layer: nn.Module) -> tuple:
    """The layer methods a network method uses on ``layer``."""
    if method not in METHODS:
        raise CimcodecError(f"Method must be one of {', '.join(METHODS)}, not {method!r}.")
    allowed = dec.methods_for(layer)
    if "svd" in allowed:
        return allowed
    return allowed if method == "mtd" else (method,)


def apply(model: nn.Module, plans: dict, *, seed: int = 0,
          iterations: int = dec.ITERATIONS) -> nn.Module:
    """A copy of ``model`` with every layer of ``plans`` (``{name: Plan}``) decomposed."""
    out = copy.deepcopy(model)
    for name, plan in plans.items():
        out.set_submodule(name, dec.decompose(out.get_submodule(name), plan, name,
                                              seed=seed, iterations=iterations))
    return out.eval()


@dataclass(frozen=True)
class Point:
    """One decomposition of one layer, tried alone: its plan (``None``: the layer kept),
    parameter count and the network's validation accuracy with it."""

    plan: dec.Plan | None
    params: int
    accuracy: float


def _alone(model, name, plan, val, seed, iterations=dec.ITERATIONS) -> tuple:
    """``(validation accuracy, decomposition)``: ``model`` with layer ``name`` alone
    decomposed by ``plan``."""
    net = copy.deepcopy(model)
    seq = dec.decompose(net.get_submodule(name), plan, name, seed=seed, iterations=iterations)
    net.set_submodule(name, seq)
    return accuracy(net.eval(), *val), seq


def scan(model: nn.Module, names: dict, methods=("tucker", "cp"), val=None, *,
         ladder=LADDER, seed: int = 0, progress: bool = False) -> dict:
    """``{layer name: [Point]}``: each layer of ``names`` kept, and decomposed alone by
    every method it takes among ``methods`` (SVD for linear layers) at the budgets of
    ``ladder`` and at rank 1, with the network's accuracy on ``val`` (module
    docstring)."""
    from tqdm import tqdm

    base = accuracy(model, *val)
    out = {}
    jobs = [(n, m) for n, layer in names.items() for m in dec.methods_for(layer)
            if m == "svd" or m in methods]
    for name, method in tqdm(jobs, desc="rank scan", unit="layer", disable=not progress):
        layer = names[name]
        points = out.setdefault(name, [Point(None, dec.parameters(layer), base)])
        size = dec.parameters(layer)
        plans = []
        for ratio in ladder:
            try:
                plans.append(dec.budget_plan(layer, method, size / ratio, name))
            except CimcodecError:
                break
        plans.append(dec.Plan.smallest(method))
        for plan in dict.fromkeys(plans):
            if dec.parameters(layer, plan) < size:
                points.append(Point(plan, dec.parameters(layer, plan),
                                    _alone(model, name, plan, val, seed, SCAN_ITERATIONS)[0]))
    return out


def front(points) -> list:
    """The Pareto front of ``points``, most parameters first: each point has fewer
    parameters and strictly lower accuracy than the one before."""
    out = []
    for p in sorted(points, key=lambda p: (-p.params, -p.accuracy)):
        while out and out[-1].params >= p.params and out[-1].accuracy <= p.accuracy:
            out.pop()
        if not out or (p.params < out[-1].params and p.accuracy < out[-1].accuracy):
            out.append(p)
    return out


def allocate(points: dict, target: float, fixed: int, *, method: str = "mtd") -> dict:
    """``{layer name: Point}`` whose parameters plus ``fixed`` are within ``target``
    (module docstring); ``method`` ``tucker`` or ``cp`` keeps only that method's points
    for convolutions. Raises :class:`CimcodecError` when even the smallest points are
    above the target."""
    fronts = {}
    for name, pts in points.items():
        usable = [p for p in pts if p.plan is None or method == "mtd"
                  or p.plan.method in (method, "svd")]
        fronts[name] = front(usable)
    level = dict.fromkeys(fronts, 0)

    def total():
        return fixed + sum(fronts[n][i].params for n, i in level.items())

    while total() > target:
        best, best_score = None, -1.0
        for name, f in fronts.items():
            i = level[name]
            if i + 1 >= len(f):
                continue
            saved = f[i].params - f[i + 1].params
            score = saved / max(f[i].accuracy - f[i + 1].accuracy, 1e-4)
            if score > best_score:
                best, best_score = name, score
        if best is None:
            raise CimcodecError(f"No rank reaches the target: the smallest decompositions "
                                f"scanned leave {total()} parameters, the target is "
                                f"{target:.0f}.")
        level[best] += 1
    return {n: fronts[n][i] for n, i in level.items()}


def rule_plans(model: nn.Module, names: dict, method: str, ranks, val, *,
               seed: int = 0) -> dict:
    """``{name: (validation accuracy, decomposition, Plan)}`` by a rank rule (``"vbmf"``,
    ``"energy:E"`` or an int), each layer decomposed alone; MTD keeps the more accurate
    of Tucker-2 and CP per layer (module docstring)."""
    out = {}
    for name, layer in names.items():
        options = []
        for m in methods_of(method, layer):
            if isinstance(ranks, int):
                plan = dec.Plan(m, (ranks, ranks) if m == "tucker" else (ranks,))
                dec.structure(layer, plan, name)        # checks the ranks
            elif ranks == "vbmf":
                plan = dec.vbmf_plan(layer, m, name)
            elif isinstance(ranks, str) and ranks.startswith("energy:"):
                plan = dec.energy_plan(layer, m, _energy(ranks), name)
            else:
                raise CimcodecError(f"Ranks must be auto, vbmf, energy:E or an integer, "
                                    f"not {ranks!r}.")
            options.append(plan)
        scored = [(*_alone(model, name, p, val, seed), p) for p in options]
        out[name] = max(scored, key=lambda s: (s[0], -dec.parameters(layer, s[2])))
    return out


def _energy(text: str) -> float:
    try:
        return float(text.split(":", 1)[1])
    except ValueError:
        raise CimcodecError(f"{text!r} is not energy:E with E a number in (0, 1].") from None


@dataclass
class Result:
    """What :func:`run` did.

    Attributes
    ----------
    model : nn.Module
        The decomposed (and fine-tuned) network.
    description : dict
        What :func:`cimcodec.golden.ml.models.from_description` rebuilds it from.
    rows : list of dict
        Per decomposed layer: ``layer``, ``method``, ``ranks``, ``before`` and ``after``
        parameters, ``accuracy`` (validation, that layer decomposed alone).
    params : tuple
        ``(before, after)`` for the whole network.
    accuracy : dict
        ``{stage: {"validation": a, "test": a}}`` for ``original``, ``decomposed``
        (before fine-tuning) and ``finetuned``.
    """

    model: nn.Module
    description: dict
    rows: list
    params: tuple
    accuracy: dict

    @property
    def ratio(self) -> float:
        return self.params[0] / self.params[1]


def _accuracies(model, val, test) -> dict:
    return {"validation": accuracy(model, *val), "test": accuracy(model, *test)}


def minimum(model: nn.Module, names: dict, method: str) -> int:
    """The fewest parameters any decomposition of ``names`` can leave (rank 1 in every
    layer, by the method that gives fewer)."""
    fixed = count(model) - sum(dec.parameters(m) for m in names.values())
    return fixed + sum(
        min([dec.parameters(layer, dec.Plan.smallest(m)) for m in methods_of(method, layer)]
            + [dec.parameters(layer)]) for layer in names.values())


def run(model: nn.Module, dataset, *, net: str, data: str = "digits", method: str = "mtd",
        ranks="auto", target_ratio: float | None = None, names=None,
        finetune_epochs: int = 20, lr: float = 3e-3, points: dict | None = None,
        seed: int = 0, progress: bool = False) -> Result:
    """Decompose a trained ``model`` (network ``net`` of :func:`cimcodec.golden.ml.models.
    build` on ``data``) by ``method`` with rank rule ``ranks`` or for ``target_ratio``
    (module docstring), then fine-tune it ``finetune_epochs`` epochs. ``dataset`` is
    ``(x_train, y_train, x_test, y_test)``; ``points`` reuses an earlier :func:`scan`."""
    from cimcodec.golden.ml.datasets import split

    if method not in METHODS:
        raise CimcodecError(f"Method must be one of {', '.join(METHODS)}, not {method!r}.")
    if finetune_epochs < 0:
        raise CimcodecError(f"Fine-tuning epochs must be 0 or more, not {finetune_epochs}.")
    fit, val, test = split(dataset)
    model = copy.deepcopy(model).eval()
    names = layers(model, names)
    if not names:
        raise CimcodecError(f"{net} has no layer to decompose.")
    before = count(model)
    if target_ratio is not None:
        if ranks != "auto":
            raise CimcodecError("--target-ratio chooses the ranks: give it with --ranks auto.")
        if not target_ratio > 1:
            raise CimcodecError(f"The target ratio must be above 1, not {target_ratio!r}.")
        least = minimum(model, names, method)
        if before / target_ratio < least:
            raise CimcodecError(
                f"No rank reaches {target_ratio:g}x: rank 1 in every decomposed layer still "
                f"leaves {least} of {before} parameters ({before / least:.1f}x).")
        if points is None:
            points = scan(model, names, ("tucker", "cp") if method == "mtd" else (method,),
                          val, seed=seed, progress=progress)
        fixed = before - sum(dec.parameters(m) for m in names.values())
        chosen = allocate({n: points[n] for n in names}, before / target_ratio, fixed,
                          method=method)
        plans = {n: p.plan for n, p in chosen.items() if p.plan is not None}
        alone = {n: p.accuracy for n, p in chosen.items()}
        decomposed = apply(model, plans, seed=seed)
    else:
        chosen = rule_plans(model, names, method, "vbmf" if ranks == "auto" else ranks, val,
                            seed=seed)
        plans = {n: c[2] for n, c in chosen.items()}
        alone = {n: c[0] for n, c in chosen.items()}
        decomposed = copy.deepcopy(model)
        for n, c in chosen.items():
            decomposed.set_submodule(n, c[1])
        decomposed.eval()
    acc = {"original": _accuracies(model, val, test),
           "decomposed": _accuracies(decomposed, val, test)}
    if finetune_epochs:
        fit_digits(decomposed, epochs=finetune_epochs, seed=seed, lr=lr, data=fit,
                   teacher=model, progress=progress)
        fit_digits(decomposed, epochs=max(1, finetune_epochs // 2), seed=seed + 1,
                   lr=lr / 10, data=fit, teacher=model, progress=progress)
    acc["finetuned"] = _accuracies(decomposed, val, test)
    rows = []
    for name, layer in names.items():
        plan = plans.get(name)
        rows.append({"layer": name, "method": plan.method if plan else "kept",
                     "ranks": list(plan.ranks) if plan else [],
                     "before": dec.parameters(layer),
                     "after": dec.parameters(layer, plan) if plan else dec.parameters(layer),
                     "accuracy": alone[name]})
    description = {"net": net, "data": data,
                   "decomposed": {n: p.describe() for n, p in plans.items()}}
    return Result(decomposed, description, rows, (before, count(decomposed)), acc)
