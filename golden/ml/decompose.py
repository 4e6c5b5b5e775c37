"""Low-rank decomposition of one convolution or linear layer (seed 004), with TensorLy's
PyTorch backend, and the rank rules that size it.

Each decomposition returns an ``nn.Sequential`` that replaces the layer. With ``W`` the
layer's weight (``O x I x kh x kw`` for a convolution, ``O x I`` for a linear layer):

* **Tucker-2** (``tucker``, convolutions; Kim et al., ICLR 2016): ``W ~= G x_0 U x_1 V``
  over the two channel modes (TensorLy ``partial_tucker``, HOOI from an SVD start),
  ``U`` ``O x r_out``, ``V`` ``I x r_in``, core ``G`` ``r_out x r_in x kh x kw``. Layers:
  1x1 ``I -> r_in`` (``V^T``), the ``kh x kw`` core ``r_in -> r_out`` with the layer's
  stride, padding and dilation, 1x1 ``r_out -> O`` (``U``) with the layer's bias.
  Parameters ``I r_in + r_in r_out kh kw + r_out O (+ O)``.
* **CP** (``cp``, convolutions; Lebedev et al., ICLR 2015): ``W[o, i, y, x] ~=
  sum_r A[o, r] B[i, r] C[y, r] D[x, r]`` (TensorLy ``parafac``, ALS from an SVD start;
  each rank-one term's scale is spread evenly over its four vectors). Layers: 1x1
  ``I -> R`` (``B^T``), ``kh x 1`` depthwise (``C``, the vertical stride, padding and
  dilation), ``1 x kw`` depthwise (``D``, the horizontal ones), 1x1 ``R -> O`` (``A``)
  with the bias. Parameters ``R (I + kh + kw + O) (+ O)``.
* **SVD** (``svd``, linear layers; Tucker-2 of a matrix): ``W ~= U_r S_r V_r^T``, layers
  ``Linear(I, r)`` (``S_r^1/2 V_r^T``, no bias) then ``Linear(r, O)`` (``U_r S_r^1/2``,
  the bias). Parameters ``r (I + O) (+ O)``.

The decompositions run in the layer's dtype. A layer is
described by a :class:`Plan` (method and ranks); :func:`structure` builds the replacement
without values (what a saved network is rebuilt from), :func:`decompose` fills it.

Rank rules
----------
* :func:`evbmf`: the global analytic solution of empirical variational Bayesian matrix
  factorisation (Nakajima, Sugiyama, Babacan, Tomioka, JMLR 2013) for an ``L x M``
  matrix ``Y`` (``L <= M`` after transposing), noise variance estimated. With
  ``alpha = L / M`` and ``tau_`` the zero of ``psi(t) + psi(t / alpha)``,
  ``psi(t) = log(t + 1) / t - 1/2`` (``tau_ ~= 2.5129 sqrt(alpha)``), a component
  survives when its singular value ``g_h > sigma sqrt(M (1 + tau_)(1 + alpha / tau_))``.
  The noise variance minimises the free energy (up to constants)
  ``sum_{x_h <= x_} (x_h - log x_h) + sum_{x_h > x_} (x_h - t_h + log((t_h + 1) / x_h)
  + alpha log(t_h / alpha + 1))`` (every ``h``: all ``L`` singular values) with
  ``x_h = g_h^2 / (M sigma^2)``, ``x_ = (1 + tau_)(1 + alpha / tau_)`` and
  ``t_h = (x_h - 1 - alpha + sqrt((x_h - 1 - alpha)^2 - 4 alpha)) / 2``, over the
  paper's interval ``[max(g_{H+1}^2 / (M x_), sum_{h > H} g_h^2 / (M (L - H))),
  sum g_h^2 / (L M)]``, ``H = ceil(L / (1 + alpha)) - 1`` (a log grid, then bounded
  Brent around its best point). The estimated rank is the number of surviving
  components.
* :func:`vbmf_plan`: Tucker-2 ranks from EVBMF on the kernel's mode-1 (input) and mode-0
  (output) unfoldings, as Kim et al. (2016) do; SVD rank from EVBMF on the matrix; a CP
  rank is sized to the Tucker plan's parameter count (:func:`budget_plan`).
* :func:`energy_plan`: the smallest ranks keeping a fraction ``e`` of the squared
  singular values of the same unfoldings (CP again sized to the Tucker plan).
* :func:`budget_plan`: the largest ranks whose parameter count is within a budget
  (Tucker-2 ranks in proportion to the channel counts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cimcodec.golden.errors import CimcodecError

#: Decomposition methods: Tucker-2 and CP for convolutions, SVD for linear layers.
METHODS = ("tucker", "cp", "svd")
#: Largest number of ALS / HOOI iterations of TensorLy, and the change of the relative
#: reconstruction error between two iterations under which they stop.
ITERATIONS = 100
TOLERANCE = 1e-7


@dataclass(frozen=True)
class Plan:
    """How one layer is decomposed: ``method`` (:data:`METHODS`) and ``ranks``
    (``(r_in, r_out)`` for Tucker-2, ``(R,)`` for CP, ``(r,)`` for SVD)."""

    method: str
    ranks: tuple

    @classmethod
    def smallest(cls, method: str) -> Plan:
        """Rank 1 (every rank 1)."""
        return cls(method, (1, 1) if method == "tucker" else (1,))

    def describe(self) -> dict:
        return {"method": self.method, "ranks": list(self.ranks)}

    @classmethod
    def from_description(cls, d) -> Plan:
        try:
            plan = cls(str(d["method"]), tuple(int(r) for r in d["ranks"]))
        except (KeyError, TypeError, ValueError):
            raise CimcodecError(f"A layer description must hold a method and ranks, not "
                                f"{d!r}.") from None
        if plan.method not in METHODS:
            raise CimcodecError(f"Method must be one of {', '.join(METHODS)}, not "
                                f"{plan.method!r}.")
        return plan


# ------------------------------------------------------------------ layers


def check_layer(layer: nn.Module, name: str = "the layer") -> None:
    """Raise :class:`CimcodecError` unless ``layer`` is a decomposable ``nn.Conv2d``
    (ungrouped, zero padding given as numbers) or ``nn.Linear``."""
    if isinstance(layer, nn.Conv2d):
        if layer.groups != 1:
            raise CimcodecError(f"{name} is a grouped convolution ({layer.groups} groups); "
                                f"only ungrouped ones are decomposed.")
        if isinstance(layer.padding, str) or layer.padding_mode != "zeros":
            raise CimcodecError(f"{name} pads with {layer.padding!r} / {layer.padding_mode}; "
                                f"only numeric zero padding is decomposed.")
        return
    if not isinstance(layer, nn.Linear):
        raise CimcodecError(f"{name} is a {type(layer).__name__}; only Conv2d and Linear "
                            f"layers can be decomposed.")


def methods_for(layer: nn.Module) -> tuple:
    """The methods that apply to ``layer``: ``("tucker", "cp")`` for a convolution,
    ``("svd",)`` for a linear layer."""
    check_layer(layer)
    return ("tucker", "cp") if isinstance(layer, nn.Conv2d) else ("svd",)


def _check_plan(layer: nn.Module, plan: Plan, name: str) -> None:
    check_layer(layer, name)
    if plan.method not in methods_for(layer):
        raise CimcodecError(f"{name} is a {type(layer).__name__}: it takes "
                            f"{' or '.join(methods_for(layer))}, not {plan.method}.")
    want = 2 if plan.method == "tucker" else 1
    if len(plan.ranks) != want or any(
            isinstance(r, bool) or not isinstance(r, int | np.integer) or r < 1
            for r in plan.ranks):
        raise CimcodecError(f"{plan.method} of {name} takes {want} positive integer "
                            f"rank{'s' if want > 1 else ''}, not {plan.ranks!r}.")
    out, inp = layer.weight.shape[:2]
    if plan.method == "tucker":
        for rank, size, mode in ((plan.ranks[0], inp, "input"),
                                 (plan.ranks[1], out, "output")):
            if rank > size:
                raise CimcodecError(f"Tucker rank {rank} is above the {mode} mode of {name} "
                                    f"({size} channels).")
    elif plan.method == "svd" and plan.ranks[0] > min(out, inp):
        raise CimcodecError(f"SVD rank {plan.ranks[0]} is above the smaller dimension of "
                            f"{name} ({min(out, inp)}).")


def parameters(layer: nn.Module, plan: Plan | None = None) -> int:
    """Parameters of ``layer``, or of its decomposition by ``plan`` (module docstring)."""
    if plan is None:
        return sum(p.numel() for p in layer.parameters())
    out, inp = layer.weight.shape[:2]
    kh, kw = (layer.kernel_size if isinstance(layer, nn.Conv2d) else (1, 1))
    bias = out if layer.bias is not None else 0
    if plan.method == "tucker":
        r_in, r_out = plan.ranks
        return inp * r_in + r_in * r_out * kh * kw + r_out * out + bias
    rank = plan.ranks[0]
    if plan.method == "cp":
        return rank * (inp + kh + kw + out) + bias
    return rank * (inp + out) + bias


def structure(layer: nn.Module, plan: Plan, name: str = "the layer") -> nn.Sequential:
    """The ``nn.Sequential`` that replaces ``layer`` under ``plan``, its weights not yet
    set (module docstring); the saved-network loader builds this and loads the values."""
    _check_plan(layer, plan, name)
    dtype, bias = layer.weight.dtype, layer.bias is not None
    out, inp = layer.weight.shape[:2]
    if plan.method == "svd":
        (r,) = plan.ranks
        return nn.Sequential(nn.Linear(inp, r, bias=False, dtype=dtype),
                             nn.Linear(r, out, bias=bias, dtype=dtype))
    (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
    (ph, pw), (dh, dw) = layer.padding, layer.dilation
    if plan.method == "tucker":
        r_in, r_out = plan.ranks
        return nn.Sequential(
            nn.Conv2d(inp, r_in, 1, bias=False, dtype=dtype),
            nn.Conv2d(r_in, r_out, (kh, kw), stride=(sh, sw), padding=(ph, pw),
                      dilation=(dh, dw), bias=False, dtype=dtype),
            nn.Conv2d(r_out, out, 1, bias=bias, dtype=dtype))
    (r,) = plan.ranks
    return nn.Sequential(
        nn.Conv2d(inp, r, 1, bias=False, dtype=dtype),
        nn.Conv2d(r, r, (kh, 1), stride=(sh, 1), padding=(ph, 0), dilation=(dh, 1),
                  groups=r, bias=False, dtype=dtype),
        nn.Conv2d(r, r, (1, kw), stride=(1, sw), padding=(0, pw), dilation=(1, dw),
                  groups=r, bias=False, dtype=dtype),
        nn.Conv2d(r, out, 1, bias=bias, dtype=dtype))


def tucker_factors(weight: torch.Tensor, ranks: tuple, *, iterations: int = ITERATIONS,
                   tol: float = TOLERANCE) -> tuple:
    """``(core, U_out, V_in)`` of the Tucker-2 decomposition of a kernel:
    ``weight ~= core x_0 U_out x_1 V_in``, ``ranks = (r_in, r_out)``."""
    import tensorly as tl
    from tensorly.decomposition import partial_tucker

    r_in, r_out = ranks
    with tl.backend_context("pytorch"):
        (core, (u_out, v_in)), _ = partial_tucker(
            weight.detach(), rank=[r_out, r_in], modes=[0, 1], init="svd",
            n_iter_max=iterations, tol=tol)
    return core, u_out, v_in


def cp_factors(weight: torch.Tensor, rank: int, *, seed: int = 0,
               iterations: int = ITERATIONS, tol: float = TOLERANCE) -> tuple:
    """``(A, B, C, D)`` of the rank-``rank`` CP decomposition of a kernel:
    ``weight[o, i, y, x] ~= sum_r A[o, r] B[i, r] C[y, r] D[x, r]``, every rank-one term's
    scale spread evenly over its four vectors."""
    import warnings

    import tensorly as tl
    from tensorly.decomposition import parafac

    with tl.backend_context("pytorch"), warnings.catch_warnings():
        # A rank above a mode's size: TensorLy's SVD start fills the rest at random.
        warnings.filterwarnings("ignore", "Trying to compute SVD", UserWarning)
        weights, factors = parafac(weight.detach(), rank=rank, init="svd",
                                   n_iter_max=iterations, tol=tol,
                                   normalize_factors=True, random_state=seed)
    norms = [f.norm(dim=0) for f in factors]
    scale = weights * torch.stack(norms).prod(0)
    root = scale.abs() ** 0.25
    out = []
    for i, (f, n) in enumerate(zip(factors, norms)):
        unit = f / torch.where(n > 0, n, torch.ones_like(n))
        out.append(unit * root * (torch.sign(scale) if i == 0 else 1))
    return tuple(out)


def decompose(layer: nn.Module, plan: Plan, name: str = "the layer", *, seed: int = 0,
              iterations: int = ITERATIONS) -> nn.Sequential:
    """The decomposition of ``layer`` by ``plan`` as an ``nn.Sequential`` that replaces
    it (module docstring), after at most ``iterations`` of HOOI or ALS; raises
    :class:`CimcodecError` for a layer it cannot decompose or a rank above a mode's
    size."""
    seq = structure(layer, plan, name)
    w = layer.weight.detach()
    with torch.no_grad():
        if plan.method == "svd":
            (r,) = plan.ranks
            u, s, vh = torch.linalg.svd(w, full_matrices=False)
            root = s[:r].sqrt()
            seq[0].weight.copy_(root[:, None] * vh[:r])
            seq[1].weight.copy_(u[:, :r] * root)
        elif plan.method == "tucker":
            core, u_out, v_in = tucker_factors(w, plan.ranks, iterations=iterations)
            seq[0].weight.copy_(v_in.T[:, :, None, None])
            seq[1].weight.copy_(core)
            seq[2].weight.copy_(u_out[:, :, None, None])
        else:
            a, b, c, d = cp_factors(w, plan.ranks[0], seed=seed, iterations=iterations)
            seq[0].weight.copy_(b.T[:, :, None, None])
            seq[1].weight.copy_(c.T[:, None, :, None])
            seq[2].weight.copy_(d.T[:, None, None, :])
            seq[3].weight.copy_(a[:, :, None, None])
        if layer.bias is not None:
            seq[-1].bias.copy_(layer.bias)
    return seq


def recompose(seq: nn.Sequential, plan: Plan) -> torch.Tensor:
    """The full weight a decomposition stands for (the inverse map of :func:`decompose`):
    a kernel ``O x I x kh x kw`` or a matrix ``O x I``."""
    w = [m.weight.detach() for m in seq]
    if plan.method == "svd":
        return w[1] @ w[0]
    if plan.method == "tucker":
        v_in, core, u_out = w[0][:, :, 0, 0], w[1], w[2][:, :, 0, 0]
        return torch.einsum("ab,bcyx,cd->adyx", u_out, core, v_in)
    b, c, d, a = w[0][:, :, 0, 0], w[1][:, 0, :, 0], w[2][:, 0, 0, :], w[3][:, :, 0, 0]
    return torch.einsum("or,ri,ry,rx->oiyx", a, b, c, d)


# ------------------------------------------------------------------ rank rules


@dataclass(frozen=True)
class Evbmf:
    """What :func:`evbmf` found: ``rank``, the noise variance ``sigma2``, the singular
    value ``threshold`` a component must pass, the ``singular_values`` and the EVB
    estimates of the surviving ones (``estimates``)."""

    rank: int
    sigma2: float
    threshold: float
    singular_values: np.ndarray
    estimates: np.ndarray


def tau_bar(alpha: float) -> float:
    """The zero of ``psi(t) + psi(t / alpha)``, ``psi(t) = log(t + 1) / t - 1/2``
    (about ``2.5129 sqrt(alpha)``)."""
    from scipy.optimize import brentq

    def psi(t):
        return math.log1p(t) / t - 0.5

    return brentq(lambda t: psi(t) + psi(t / alpha), 1e-9 * alpha, 100.0, xtol=1e-14)


def evbmf(matrix, sigma2: float | None = None) -> Evbmf:
    """Empirical variational Bayesian matrix factorisation of ``matrix`` (module
    docstring); ``sigma2`` fixes the noise variance instead of estimating it."""
    from scipy.optimize import minimize_scalar

    y = np.asarray(matrix.detach().cpu() if hasattr(matrix, "detach") else matrix,
                   dtype=np.float64)
    if y.ndim != 2 or min(y.shape) < 1 or not np.isfinite(y).all():
        raise CimcodecError(f"EVBMF takes a finite 2-D matrix, not one of shape {y.shape}.")
    if y.shape[0] > y.shape[1]:
        y = y.T
    big_l, big_m = y.shape
    alpha = big_l / big_m
    s = np.linalg.svd(y, compute_uv=False)
    tau = tau_bar(alpha)
    x_bar = (1 + tau) * (1 + alpha / tau)
    if not s[0] > 0:
        return Evbmf(0, 0.0, 0.0, s, s[:0])

    def tau_of(x):
        b = x - (1 + alpha)
        return 0.5 * (b + np.sqrt(np.maximum(b * b - 4 * alpha, 0.0)))

    def free_energy(v):
        x = s ** 2 / (big_m * v)
        big = x > x_bar
        z1, z2 = x[big], x[~big]
        t = tau_of(z1)
        return (np.sum(z2 - np.log(z2)) + np.sum(z1 - t) + np.sum(np.log((t + 1) / z1))
                + alpha * np.sum(np.log(t / alpha + 1)))

    if sigma2 is None:
        h = min(math.ceil(big_l / (1 + alpha)) - 1, big_l - 1)
        upper = float(np.sum(s ** 2) / (big_l * big_m))
        lower = max(s[h] ** 2 / (big_m * x_bar), float(np.mean(s[h:] ** 2)) / big_m)
        lower = max(lower, upper * 1e-12)
        if lower >= upper:
            sigma2 = upper
        else:
            grid = np.geomspace(lower, upper, 257)
            values = [free_energy(v) for v in grid]
            i = int(np.argmin(values))
            lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
            best = minimize_scalar(free_energy, bounds=(lo, hi), method="bounded",
                                   options={"xatol": lo * 1e-10})
            sigma2 = float(best.x) if best.fun <= values[i] else float(grid[i])
    threshold = math.sqrt(big_m * sigma2 * x_bar)
    keep = s[s > threshold]
    q = (big_l + big_m) * sigma2 / keep ** 2
    estimates = keep / 2 * (1 - q + np.sqrt(np.maximum(
        (1 - q) ** 2 - 4 * big_l * big_m * sigma2 ** 2 / keep ** 4, 0.0)))
    return Evbmf(int(keep.size), float(sigma2), threshold, s, estimates)


def _unfoldings(layer: nn.Module) -> tuple:
    """``(input-mode unfolding, output-mode unfolding)`` of a kernel (for a matrix, the
    matrix itself, once)."""
    w = layer.weight.detach().double()
    if w.ndim == 2:
        return (w,)
    return (w.transpose(0, 1).reshape(w.shape[1], -1), w.reshape(w.shape[0], -1))


def _matched_cp(layer: nn.Module, tucker: Plan, name: str) -> Plan:
    return budget_plan(layer, "cp", parameters(layer, tucker), name)


def vbmf_plan(layer: nn.Module, method: str, name: str = "the layer") -> Plan:
    """Ranks by :func:`evbmf` on the unfoldings (module docstring), at least 1."""
    ranks = tuple(max(1, evbmf(u).rank) for u in _unfoldings(layer))
    return _ruled(layer, method, ranks, name)


def energy_rank(matrix: torch.Tensor, energy: float) -> int:
    """The smallest rank whose leading singular values keep ``energy`` of the squared
    sum."""
    s2 = torch.linalg.svdvals(matrix) ** 2
    kept = torch.cumsum(s2, 0) / s2.sum()
    return int(torch.searchsorted(kept, torch.tensor(energy, dtype=kept.dtype) - 1e-12)) + 1


def energy_plan(layer: nn.Module, method: str, energy: float,
                name: str = "the layer") -> Plan:
    """The smallest ranks keeping ``energy`` (0 < e <= 1) of every unfolding's squared
    singular values (module docstring)."""
    if not 0 < energy <= 1:
        raise CimcodecError(f"The energy kept must be in (0, 1], not {energy!r}.")
    ranks = tuple(energy_rank(u, energy) for u in _unfoldings(layer))
    return _ruled(layer, method, ranks, name)


def _ruled(layer, method, ranks, name) -> Plan:
    if method not in methods_for(layer):
        raise CimcodecError(f"{name} is a {type(layer).__name__}: it takes "
                            f"{' or '.join(methods_for(layer))}, not {method}.")
    if method == "svd":
        return Plan("svd", ranks[:1])
    tucker = Plan("tucker", ranks)
    return tucker if method == "tucker" else _matched_cp(layer, tucker, name)


def budget_plan(layer: nn.Module, method: str, budget: float,
                name: str = "the layer") -> Plan:
    """The plan of ``method`` with the most parameters not above ``budget``: Tucker-2
    ranks ``(ceil(s I / C), ceil(s O / C))``, ``C = max(I, O)``, for the largest such
    ``s``; the largest CP or SVD rank (the SVD rank at most ``min(I, O)``).

    Raises :class:`CimcodecError` when even rank 1 is above the budget."""
    if method not in methods_for(layer):
        raise CimcodecError(f"{name} is a {type(layer).__name__}: it takes "
                            f"{' or '.join(methods_for(layer))}, not {method}.")
    out, inp = layer.weight.shape[:2]
    if method == "tucker":
        top = max(inp, out)
        for step in range(top, 0, -1):
            plan = Plan("tucker", (math.ceil(step * inp / top), math.ceil(step * out / top)))
            if parameters(layer, plan) <= budget:
                return plan
    else:
        per = parameters(layer, Plan(method, (1,))) - parameters(layer, Plan(method, (0,)))
        rank = int((budget - parameters(layer, Plan(method, (0,)))) // per)
        if method == "svd":
            rank = min(rank, min(inp, out))
        if rank >= 1:
            return Plan(method, (rank,))
    raise CimcodecError(f"No {method} rank fits {name} in {budget:.0f} parameters: rank 1 "
                        f"already takes {parameters(layer, Plan.smallest(method))}.")


# ------------------------------------------------------------------ networks


def rebuild(model: nn.Module, layers: dict) -> nn.Module:
    """Replace, in place, every layer named in ``layers`` (``{module name: {"method",
    "ranks"}}``, as saved) by its decomposition's :func:`structure`; the values are
    loaded afterwards. Returns ``model``."""
    if not isinstance(layers, dict):
        raise CimcodecError("The decomposed layers must be a mapping of layer names to "
                            "plans.")
    for name, d in layers.items():
        try:
            layer = model.get_submodule(name)
        except AttributeError:
            raise CimcodecError(f"The network has no layer named {name!r}.") from None
        model.set_submodule(name, structure(layer, Plan.from_description(d), name))
    return model
