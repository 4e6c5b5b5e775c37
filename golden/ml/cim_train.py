"""CIM-aware quantization-aware training and variational channel pruning (seed 001).

Quantization (forward)
----------------------
:class:`CIMLinear` and :class:`CIMConv2d` quantize per tensor, every forward pass::

    s_w = max|W| / 127,   q_w = clamp(round(W / s_w), -127, 127)         (int8)
    s_a = A_max / 255,    q_a = clamp(round(x / s_a), 0, 255)             (uint8)

``A_max`` is a running maximum of the layer input: the first training batch sets it,
then ``A_max <- (1 - m) A_max + m max(x)`` with ``m = act_momentum`` (0.1); evaluation
uses it frozen. Inputs are non-negative (after ReLU, pooling, or the 0..1 digits), so
activations are unsigned. The integer product runs as ``acc = q_a @ q_w^T``, exactly
(``adc_bits = None``), or through the CIM macro of :mod:`golden.blocks.cim` /
:mod:`golden.ml.cim_analog` (``adc_bits = B``, ideal or with ``analog`` non-idealities),
and the layer output is ``y = float32(acc) * float32(s_a s_w) + b``
(:func:`dequantize`).

Tiles: a macro has ``tile_rows`` rows (64 by default). A dot product of length ``K``
is cut into ``ceil(K / tile_rows)`` slices of ``tile_rows`` rows, the last padded with
zero weights and activations (which add nothing to any count), each slice is one
macro with its own ADCs and, with non-idealities, its own capacitor mismatch; the
slices' integer results are added digitally. The ADC full scale is ``tile_rows`` rows,
so the lossless ADC has ``ceil(log2(tile_rows + 1))`` bits: 7 for 64 rows.

Convolution goes through the same path: ``unfold`` turns the input into vectors of
``C_in k_h k_w`` activations, one per output position, multiplied by the
``(C_in k_h k_w, C_out)`` weight matrix.

Straight-through estimator (backward)
-------------------------------------
The output is ``y_q.detach() + (y_f - y_f.detach())`` with ``y_f`` the plain float layer
(``F.linear`` / ``F.conv2d`` on the unquantized input and weights): its value is ``y_q``
exactly and its gradient with respect to input, weight and bias is that of ``y_f``.

Variational channel masks (pruning)
-----------------------------------
:class:`VariationalBatchNorm` wraps a BatchNorm and multiplies channel ``c`` of its
output ``gamma_c x_hat + beta_c`` by a random mask (Kingma et al. 2015 and Molchanov
et al. 2017 variational dropout, applied per channel)::

    m_c = 1 + sqrt(alpha_c) * eps,   eps ~ N(0, 1) per sample and channel
    alpha_c = sigma_c^2 / (gamma_c^2 + beta_c^2)

``sigma_c^2`` is learned (as ``log_sigma2``). ``gamma_c^2 + beta_c^2`` is the mean square
of the channel's BN output over the batch (``x_hat`` has zero mean and unit variance),
so a channel is judged by its scale and shift together: a channel whose ``gamma`` and
``beta`` both shrink, or whose learned noise grows, gets a large ``alpha``. With the
log-uniform prior the KL term per channel is (Molchanov et al. 2017, eq. 14)::

    KL_c ~= k1 - k1 * sigmoid(k2 + k3 log alpha_c) + log(1 + 1/alpha_c) / 2
    k1, k2, k3 = 0.63576, 1.87320, 1.48695

and the training loss is ``cross_entropy + kl_weight * sum_c KL_c / N_train`` (the
negative ELBO per sample, with ``kl_weight`` = 1 the plain ELBO). ``log alpha`` is
clipped to ``[-10, 10]``.

Pruning criterion: channel ``c`` is *dropped* when ``log alpha_c > 3`` (dropout rate
``alpha / (1 + alpha) > 0.95``, Molchanov's threshold). In evaluation mode the mask is
deterministic: 1 for kept and 0 for dropped channels. :func:`prune_channels` then
removes dropped channels for real (the producing layer's outputs, the BatchNorm entries
and the consuming layer's inputs; through ``Flatten`` every spatial position of the
channel); if a layer would lose every channel it keeps its one with the smallest
``log alpha``. The pruned network computes what the masked one computes in evaluation
mode, and is then fine-tuned.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cimcodec.golden.blocks.cim import CimParams
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.ml.cim_analog import AnalogParams, cim_matmul

#: Molchanov et al. (2017) constants of the KL approximation.
KL_K1, KL_K2, KL_K3 = 0.63576, 1.87320, 1.48695
#: A channel with ``log alpha`` above this is dropped.
LOG_ALPHA_THRESHOLD = 3.0
LOG_ALPHA_CLIP = 10.0


def quantize_weights(weight: torch.Tensor) -> tuple[torch.Tensor, float]:
    """``(q_w, s_w)``: int64 ``clamp(round(W / s_w), -127, 127)``, ``s_w = max|W| / 127``."""
    scale = float(weight.detach().abs().max()) / 127 or 1.0
    return torch.round(weight.detach() / scale).clamp(-127, 127).to(torch.int64), scale


def quantize_acts(x: torch.Tensor, act_max: float) -> tuple[torch.Tensor, float]:
    """``(q_a, s_a)``: int64 ``clamp(round(x / s_a), 0, 255)``, ``s_a = act_max / 255``."""
    scale = act_max / 255 or 1.0
    return torch.round(x.detach() / scale).clamp(0, 255).to(torch.int64), scale


def dequantize(acc: torch.Tensor, act_scale: float, weight_scale: float) -> torch.Tensor:
    """``float32(acc) * float32(s_a * s_w)``: the float value of an integer accumulator."""
    return acc.to(torch.float32) * torch.tensor(act_scale * weight_scale, dtype=torch.float32)


def _check_config(adc_bits, tile_rows, analog):
    if tile_rows is None or isinstance(tile_rows, bool) or not isinstance(tile_rows, int) \
            or tile_rows < 1:
        raise CimcodecError(f"Tile rows must be a positive integer, not {tile_rows!r}.")
    if adc_bits is not None:
        CimParams(tile_rows, 1, adc_bits)      # checks the ADC resolution
    if analog is not None and not isinstance(analog, AnalogParams):
        raise CimcodecError(f"Analog parameters must be AnalogParams or None, not {analog!r}.")


class _CimMixin:
    """Quantization state and the integer product shared by the two layers."""

    def _init_cim(self, adc_bits, tile_rows, analog, act_momentum):
        _check_config(adc_bits, tile_rows, analog)
        if not 0 < act_momentum <= 1:
            raise CimcodecError(
                f"Activation momentum must be in (0, 1], not {act_momentum!r}.")
        self.quantize = True
        self.adc_bits = adc_bits
        self.tile_rows = tile_rows
        self.analog = analog
        self.act_momentum = act_momentum
        self.chip_key = 0
        self._noise = None
        self.register_buffer("act_max", torch.zeros(()))

    def configure(self, *, quantize=None, adc_bits=..., tile_rows=None, analog=...):
        """Change the mode; ``...`` / ``None`` leave a setting as it is. Resets the noise."""
        adc_bits = self.adc_bits if adc_bits is ... else adc_bits
        analog = self.analog if analog is ... else analog
        tile_rows = self.tile_rows if tile_rows is None else tile_rows
        _check_config(adc_bits, tile_rows, analog)
        if quantize is not None:
            self.quantize = bool(quantize)
        self.adc_bits, self.tile_rows, self.analog = adc_bits, tile_rows, analog
        self._noise = None

    def _observe(self, x):
        if self.training:
            peak = x.detach().max()
            if self.act_max == 0:
                self.act_max.copy_(peak)
            else:
                self.act_max.mul_(1 - self.act_momentum).add_(self.act_momentum * peak)

    def _integer_product(self, q_a: torch.Tensor, q_w: torch.Tensor) -> torch.Tensor:
        """``acc[v, c]`` (int64) of ``q_a`` ``(N, K)`` and ``q_w`` ``(C, K)``."""
        if self.adc_bits is None:
            return (q_a.to(torch.float64) @ q_w.T.to(torch.float64)).round().to(torch.int64)
        k, cols, t = q_a.shape[1], q_w.shape[0], self.tile_rows
        pad = -k % t
        a = F.pad(q_a, (0, pad))
        w = F.pad(q_w.T, (0, 0, 0, pad))
        params = CimParams(t, cols, self.adc_bits)
        if self.analog is not None and self._noise is None:
            seed = self.analog.noise_seed + 7919 * self.chip_key
            self._noise = torch.Generator().manual_seed(seed)
        acc = torch.zeros(q_a.shape[0], cols, dtype=torch.int64)
        for tile in range((k + pad) // t):
            rows = slice(tile * t, (tile + 1) * t)
            acc += cim_matmul(a[:, rows], w[rows], params, self.analog,
                              tile=1000 * self.chip_key + tile, generator=self._noise)
        return acc

    def _quantized(self, acts, weight):
        """``(acc, s_a, s_w)`` for activation vectors ``acts`` ``(N, K)``."""
        q_w, s_w = quantize_weights(weight)
        q_a, s_a = quantize_acts(acts, float(self.act_max))
        return self._integer_product(q_a, q_w.reshape(q_w.shape[0], -1)), s_a, s_w


class CIMLinear(_CimMixin, nn.Linear):
    """``nn.Linear`` whose forward pass is the 8-bit integer / CIM product (module
    docstring) and whose backward pass is that of the float layer.

    Attributes
    ----------
    quantize : bool
        False makes it a plain float ``nn.Linear``.
    adc_bits : int or None
        None: exact integer product. ``B``: through CIM macros with a ``B``-bit ADC.
    tile_rows : int
        Rows per macro.
    analog : AnalogParams or None
        Non-idealities of the macros (with ``adc_bits`` set).
    act_max : tensor
        Running maximum of the input (buffer).
    chip_key : int
        Selects this layer's macros on the chip (mismatch and noise seeds).

    Raises
    ------
    CimcodecError
        A bad ADC resolution, tile size, analog parameter object or momentum.
    """

    def __init__(self, in_features, out_features, bias=True, *, adc_bits=None, tile_rows=64,
                 analog=None, act_momentum=0.1):
        super().__init__(in_features, out_features, bias)
        self._init_cim(adc_bits, tile_rows, analog, act_momentum)

    def forward(self, x):
        y_f = F.linear(x, self.weight, self.bias)
        if not self.quantize:
            return y_f
        self._observe(x)
        acc, s_a, s_w = self._quantized(x.reshape(-1, self.in_features), self.weight)
        y_q = dequantize(acc, s_a, s_w).reshape(y_f.shape)
        if self.bias is not None:
            y_q = y_q + self.bias.detach()
        return y_q.detach() + (y_f - y_f.detach())


class CIMConv2d(_CimMixin, nn.Conv2d):
    """``nn.Conv2d`` (groups 1, zero padding) computed as ``unfold`` then the CIM product;
    backward pass of the float convolution. Attributes as :class:`CIMLinear`."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, bias=True, *, adc_bits=None, tile_rows=64, analog=None,
                 act_momentum=0.1):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         bias=bias)
        if isinstance(self.padding, str):
            raise CimcodecError(f"CIM convolution padding must be numeric, not {padding!r}.")
        self._init_cim(adc_bits, tile_rows, analog, act_momentum)

    def forward(self, x):
        y_f = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)
        if not self.quantize:
            return y_f
        self._observe(x)
        cols = F.unfold(x.detach(), self.kernel_size, self.dilation, self.padding, self.stride)
        batch, k, positions = cols.shape
        acc, s_a, s_w = self._quantized(cols.transpose(1, 2).reshape(-1, k), self.weight)
        y_q = dequantize(acc, s_a, s_w).reshape(batch, positions, -1).transpose(1, 2)
        y_q = y_q.reshape(y_f.shape)
        if self.bias is not None:
            y_q = y_q + self.bias.detach()[:, None, None]
        return y_q.detach() + (y_f - y_f.detach())


def cim_layers(model: nn.Module) -> list[_CimMixin]:
    """The CIM layers of ``model`` in module order."""
    return [m for m in model.modules() if isinstance(m, _CimMixin)]


def configure(model: nn.Module, **settings) -> nn.Module:
    """:meth:`CIMLinear.configure` on every CIM layer of ``model``; returns ``model``."""
    for layer in cim_layers(model):
        layer.configure(**settings)
    return model


def calibrate(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Set every CIM layer's ``act_max`` from one training-mode pass over ``x`` (the
    first pass sets it to the largest input); returns ``model`` in eval mode."""
    for layer in cim_layers(model):
        layer.act_max.zero_()
    model.train()
    with torch.no_grad():
        model(x)
    return model.eval()


def _fold_bn(weight, bias, bn):
    """Weight and bias of a layer followed by BatchNorm ``bn`` (eval statistics)."""
    gain = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    bias = torch.zeros_like(bn.running_mean) if bias is None else bias.detach()
    shape = (-1,) + (1,) * (weight.dim() - 1)
    return weight.detach() * gain.reshape(shape), (bias - bn.running_mean) * gain + bn.bias.detach()


def _bn_of(module):
    return module.bn if isinstance(module, VariationalBatchNorm) else module


def to_cim(model: nn.Module, **settings) -> nn.Module:
    """A copy of ``model`` (with an ``nn.Sequential`` ``net``) whose ``Linear`` / ``Conv2d``
    layers are CIM layers, each BatchNorm that follows one folded into its weights and
    bias::

        W' = W * gamma / sqrt(var + eps),   b' = (b - mean) * gamma / sqrt(var + eps) + beta

    ``settings`` go to every layer (``adc_bits``, ``tile_rows``, ``analog``). Variational
    masks are ignored (only their BatchNorm is folded): prune with :func:`prune_channels`
    first. The activation ranges start unset: :func:`calibrate` or train before use.

    Raises
    ------
    CimcodecError
        A model without an ``nn.Sequential`` ``net``, or a BatchNorm after anything but a
        linear or convolution layer.
    """
    if not isinstance(getattr(model, "net", None), nn.Sequential):
        raise CimcodecError("The model must keep its layers in an nn.Sequential named net.")
    model = copy.deepcopy(model).eval()
    layers, out, count = list(model.net), [], 0
    for idx, layer in enumerate(layers):
        nxt = layers[idx + 1] if idx + 1 < len(layers) else None
        bn = _bn_of(nxt) if isinstance(_bn_of(nxt), nn.modules.batchnorm._BatchNorm) else None
        if isinstance(layer, nn.modules.batchnorm._BatchNorm | VariationalBatchNorm):
            if not out or not isinstance(out[-1], _CimMixin):
                raise CimcodecError("A BatchNorm must follow a linear or convolution layer.")
            continue
        if isinstance(layer, nn.Linear):
            new = CIMLinear(layer.in_features, layer.out_features, **settings)
        elif isinstance(layer, nn.Conv2d):
            if layer.groups != 1 or layer.padding_mode != "zeros":
                raise CimcodecError("CIM convolutions need groups 1 and zero padding.")
            new = CIMConv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                            layer.stride, layer.padding, layer.dilation, **settings)
        else:
            out.append(layer)
            continue
        weight, bias = layer.weight.detach(), layer.bias
        if bn is not None:
            weight, bias = _fold_bn(weight, bias, bn)
        with torch.no_grad():
            new.weight.copy_(weight)
            new.bias.copy_(torch.zeros(new.out_features if isinstance(new, nn.Linear)
                                       else new.out_channels) if bias is None else bias)
        new.chip_key, count = count, count + 1
        out.append(new)
    model.net = nn.Sequential(*out)
    return model


@dataclass(frozen=True)
class IntegerLayer:
    """One layer of the exported integer model.

    Attributes
    ----------
    name : str
        Module name in the model.
    weights : numpy.ndarray
        int8 weights in the torch layout (``(out, in)`` or ``(out, in, kh, kw)``).
    weight_scale, act_scale : float
        ``s_w`` and ``s_a``: a float value is ``scale * integer``.
    bias : numpy.ndarray
        float32 bias, added after :func:`dequantize`.
    stride, padding : tuple
        Convolution geometry (empty for linear layers).
    """

    name: str
    weights: np.ndarray
    weight_scale: float
    act_scale: float
    bias: np.ndarray
    stride: tuple = ()
    padding: tuple = ()

    @property
    def matrix(self) -> np.ndarray:
        """int8 weights as the CIM macro holds them: ``(K, C_out)`` rows by columns
        (``K = in`` or ``in * kh * kw``), the 2-D matrix a weight codec takes."""
        return np.ascontiguousarray(self.weights.reshape(self.weights.shape[0], -1).T)


def export_integer(model: nn.Module) -> list[IntegerLayer]:
    """The integer model of a trained CIM ``model``: int8 weights and scales per layer,
    exactly those its quantized forward pass uses."""
    layers = []
    for name, module in model.named_modules():
        if isinstance(module, _CimMixin):
            q_w, s_w = quantize_weights(module.weight)
            s_a = float(module.act_max) / 255 or 1.0
            conv = isinstance(module, nn.Conv2d)
            layers.append(IntegerLayer(
                name, q_w.numpy().astype(np.int8), s_w, s_a,
                module.bias.detach().numpy().astype(np.float32),
                tuple(module.stride) if conv else (), tuple(module.padding) if conv else ()))
    return layers


class VariationalBatchNorm(nn.Module):
    """BatchNorm ``bn`` followed by the variational channel mask of the module docstring.

    Parameters
    ----------
    bn : BatchNorm1d or BatchNorm2d
        The wrapped layer (affine).
    init_log_alpha : float
        Initial ``log alpha`` of every channel.
    """

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, *, init_log_alpha: float = -6.0):
        super().__init__()
        if not isinstance(bn, nn.modules.batchnorm._BatchNorm) or not bn.affine:
            raise CimcodecError(f"A variational mask needs an affine BatchNorm, not {bn!r}.")
        self.bn = bn
        magnitude = (bn.weight.detach() ** 2 + bn.bias.detach() ** 2).clamp_min(1e-8)
        self.log_sigma2 = nn.Parameter(torch.log(magnitude) + init_log_alpha)

    def log_alpha(self) -> torch.Tensor:
        """``log alpha_c = log sigma_c^2 - log(gamma_c^2 + beta_c^2)``, clipped."""
        magnitude = self.bn.weight ** 2 + self.bn.bias ** 2 + 1e-8
        return (self.log_sigma2 - torch.log(magnitude)).clamp(-LOG_ALPHA_CLIP, LOG_ALPHA_CLIP)

    def keep(self) -> torch.Tensor:
        """Boolean per channel: ``log alpha_c <= 3`` (kept)."""
        return self.log_alpha().detach() <= LOG_ALPHA_THRESHOLD

    def kl(self) -> torch.Tensor:
        """Sum over channels of the KL approximation of the module docstring."""
        la = self.log_alpha()
        return (KL_K1 - KL_K1 * torch.sigmoid(KL_K2 + KL_K3 * la)
                + 0.5 * F.softplus(-la)).sum()

    def forward(self, x):
        y = self.bn(x)
        shape = (x.shape[0], -1) + (1,) * (x.dim() - 2)
        if self.training:
            eps = torch.randn(x.shape[0], y.shape[1], device=x.device, dtype=x.dtype)
            mask = 1 + torch.exp(0.5 * self.log_alpha()) * eps
        else:
            mask = self.keep().to(x.dtype).expand(x.shape[0], -1)
        return y * mask.reshape(shape)


def attach_masks(model: nn.Module, **kwargs) -> nn.Module:
    """A copy of ``model`` with every BatchNorm of ``model.net`` wrapped in a
    :class:`VariationalBatchNorm`."""
    model = copy.deepcopy(model)
    model.net = nn.Sequential(*[
        VariationalBatchNorm(m, **kwargs) if isinstance(m, nn.modules.batchnorm._BatchNorm)
        else m for m in model.net])
    return model


def masks(model: nn.Module) -> list[VariationalBatchNorm]:
    return [m for m in model.modules() if isinstance(m, VariationalBatchNorm)]


def kl_divergence(model: nn.Module) -> torch.Tensor:
    """Sum of :meth:`VariationalBatchNorm.kl` over the model."""
    return sum((m.kl() for m in masks(model)), torch.zeros(()))


def _slice_bn(bn, keep):
    new = type(bn)(int(keep.sum()), eps=bn.eps, momentum=bn.momentum)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(new, name).copy_(getattr(bn, name)[keep])
    return new


def prune_channels(model: nn.Module) -> tuple[nn.Module, list[tuple[int, int]]]:
    """Remove the channels the masks drop (criterion in the module docstring).

    Returns ``(pruned, kept)``: a copy of ``model`` with plain BatchNorms, in eval mode,
    and ``(kept, total)`` channels per mask in order.
    """
    if not isinstance(getattr(model, "net", None), nn.Sequential):
        raise CimcodecError("The model must keep its layers in an nn.Sequential named net.")
    model = copy.deepcopy(model).eval()
    layers, out, kept = list(model.net), [], []
    keep_in, channels_in, flattened = None, None, False
    for idx, layer in enumerate(layers):
        if isinstance(layer, nn.Flatten):
            flattened = True
            out.append(layer)
            continue
        if isinstance(layer, VariationalBatchNorm):
            continue
        if not isinstance(layer, nn.Linear | nn.Conv2d):
            out.append(layer)
            continue
        weight = layer.weight.detach()
        if keep_in is not None:
            index = torch.nonzero(keep_in).flatten()
            if flattened and isinstance(layer, nn.Linear):
                spatial = layer.in_features // channels_in
                index = (index[:, None] * spatial + torch.arange(spatial)).flatten()
            weight = weight[:, index]
        nxt = layers[idx + 1] if idx + 1 < len(layers) else None
        keep_out = torch.ones(weight.shape[0], dtype=torch.bool)
        if isinstance(nxt, VariationalBatchNorm):
            keep_out = nxt.keep()
            if not keep_out.any():
                keep_out[nxt.log_alpha().argmin()] = True
            kept.append((int(keep_out.sum()), len(keep_out)))
        weight = weight[keep_out]
        bias = None if layer.bias is None else layer.bias.detach()[keep_out]
        if isinstance(layer, nn.Linear):
            new = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        else:
            new = nn.Conv2d(weight.shape[1], weight.shape[0], layer.kernel_size, layer.stride,
                            layer.padding, layer.dilation, bias=bias is not None)
        with torch.no_grad():
            new.weight.copy_(weight)
            if bias is not None:
                new.bias.copy_(bias)
        out.append(new)
        if isinstance(nxt, VariationalBatchNorm):
            out.append(_slice_bn(nxt.bn, keep_out))
        keep_in, channels_in, flattened = keep_out, len(keep_out), False
    model.net = nn.Sequential(*out)
    return model.eval(), kept
