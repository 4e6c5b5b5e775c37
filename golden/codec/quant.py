"""8-bit weight quantization in torch.ao's convention, and the JPEG level shift.

Integer weights live in ``qmin..qmax`` (default ``-128..127``, torch's ``qint8``)::

    q = clamp(round(x * inv_scale) + zero_point, qmin, qmax)   (round half to even)
    inv_scale = float32(1 / scale)                              (all float32, as torch)
    x_hat = (q - zero_point) * scale

with one ``(scale, zero_point)`` for the whole tensor (*per tensor*) or one per output
channel, i.e. per row of the 2-D weight matrix (*per channel*, torch's ``axis=0``).
Parameters follow ``torch.ao.quantization``'s ``MinMaxObserver`` /
``PerChannelMinMaxObserver`` (``_calculate_qparams``), in float32::

    lo = min(min(x), 0),  hi = max(max(x), 0)
    symmetric:  scale = max(-lo, hi) / ((qmax - qmin) / 2),   zero_point = 0
    affine:     scale = (hi - lo) / (qmax - qmin)
                zero_point = clamp(qmin - round(lo / scale), qmin, qmax)
    scale = max(scale, float32 eps)

The 8-bit *sample* of a weight is ``q + 128`` (the JPEG level shift, :func:`to_samples`),
so a decoder's output sample ``s`` is the integer weight ``s - 128``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from cimcodec.golden.codec import chunks
from cimcodec.golden.errors import CimcodecError

QMIN, QMAX = -128, 127
LEVEL_SHIFT = 128
_EPS = np.finfo(np.float32).eps


class QScheme(enum.Enum):
    """Granularity and symmetry of the quantization (torch's ``qscheme`` names)."""

    PER_TENSOR_SYMMETRIC = 0
    PER_TENSOR_AFFINE = 1
    PER_CHANNEL_SYMMETRIC = 2
    PER_CHANNEL_AFFINE = 3

    @property
    def per_channel(self) -> bool:
        return self in (QScheme.PER_CHANNEL_SYMMETRIC, QScheme.PER_CHANNEL_AFFINE)

    @property
    def symmetric(self) -> bool:
        return self in (QScheme.PER_TENSOR_SYMMETRIC, QScheme.PER_CHANNEL_SYMMETRIC)

    @classmethod
    def of(cls, *, per_channel: bool, symmetric: bool) -> QScheme:
        return cls(2 * bool(per_channel) + (not symmetric))


@dataclass(frozen=True, eq=False)
class QuantParams:
    """Quantization parameters of one weight matrix.

    Attributes
    ----------
    scheme : QScheme
    scale : numpy.ndarray of float32, shape ``(1,)`` or ``(rows,)``
    zero_point : numpy.ndarray of int32, same shape
    qmin, qmax : int
        Integer range, inside ``-128..127``.

    Raises
    ------
    CimcodecError
        A scale that is not finite and positive, a zero point outside ``qmin..qmax``,
        arrays of different lengths, or a bad range.
    """

    scheme: QScheme
    scale: np.ndarray
    zero_point: np.ndarray
    qmin: int = QMIN
    qmax: int = QMAX

    def __post_init__(self):
        object.__setattr__(self, "scheme", QScheme(self.scheme))
        scale = np.atleast_1d(np.asarray(self.scale, dtype=np.float32))
        zp = np.atleast_1d(np.asarray(self.zero_point)).astype(np.int32)
        if not QMIN <= self.qmin < self.qmax <= QMAX:
            raise CimcodecError(
                f"The integer range must satisfy -128 <= qmin < qmax <= 127, not "
                f"{self.qmin}..{self.qmax}.")
        if scale.ndim != 1 or scale.shape != zp.shape or scale.size == 0:
            raise CimcodecError("Scales and zero points must be 1-D arrays of one length.")
        if not self.scheme.per_channel and scale.size != 1:
            raise CimcodecError(
                f"A per-tensor scheme has one scale, not {scale.size}.")
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            raise CimcodecError("Every quantization scale must be finite and positive.")
        if np.any(zp < self.qmin) or np.any(zp > self.qmax):
            raise CimcodecError(
                f"Every zero point must lie in {self.qmin}..{self.qmax}.")
        if self.scheme.symmetric and np.any(zp != 0):
            raise CimcodecError("A symmetric scheme has zero points of 0.")
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "zero_point", zp)

    def column(self, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Scale and zero point as ``(rows, 1)`` columns (broadcast over a matrix)."""
        if self.scheme.per_channel and self.scale.size != rows:
            raise CimcodecError(
                f"Per-channel parameters hold {self.scale.size} channels, not {rows}.")
        n = rows if self.scheme.per_channel else 1
        return (np.broadcast_to(self.scale.reshape(-1, 1), (n, 1)),
                np.broadcast_to(self.zero_point.reshape(-1, 1), (n, 1)))

    def rows(self, start: int, stop: int) -> QuantParams:
        """The parameters of rows ``start..stop-1`` of the matrix (per tensor: the same)."""
        if not self.scheme.per_channel:
            return self
        return QuantParams(self.scheme, self.scale[start:stop], self.zero_point[start:stop],
                           self.qmin, self.qmax)

    def quantize(self, weights) -> np.ndarray:
        """``clamp(round(x * (1 / scale)) + zero_point, qmin, qmax)`` as int8, in float32
        as torch's ``quantize_val`` (the reciprocal first, then a product); computed a
        few rows at a time (:mod:`golden.codec.chunks`)."""
        w = _matrix(weights)
        scale, zp = self.column(w.shape[0])
        inv = (np.float32(1) / scale).astype(np.float32)
        out = np.empty(w.shape, dtype=np.int8)
        for a, b in chunks.row_spans(*w.shape):
            part = slice(a, b) if len(inv) > 1 else slice(None)
            q = np.round(w[a:b] * inv[part]) + zp[part]
            out[a:b] = np.clip(q, self.qmin, self.qmax)
        return out

    def dequantize(self, q) -> np.ndarray:
        """``(q - zero_point) * scale`` as float32; ``q`` may be real (codebook centroids)."""
        q = np.asarray(q)
        if q.ndim != 2:
            raise CimcodecError(f"Expected a 2-D integer matrix, not {q.ndim}-D.")
        scale, zp = self.column(q.shape[0])
        return ((q.astype(np.float32) - zp.astype(np.float32)) * scale).astype(np.float32)


def _matrix(weights) -> np.ndarray:
    """``weights`` as a float32 matrix (the precision of torch's observers), checked
    finite before and after the cast (float64 beyond the float32 range is refused, not
    turned into infinities)."""
    w = np.asarray(weights)
    if w.dtype.kind not in "biuf":
        raise CimcodecError(f"Quantization takes real numbers, not {w.dtype}.")
    if w.ndim != 2 or w.size == 0:
        raise CimcodecError(
            f"Quantization takes a non-empty 2-D matrix, not shape {tuple(w.shape)}.")
    check_finite(w)
    if w.dtype != np.float32:
        with np.errstate(over="ignore"):
            w = w.astype(np.float32)
        if not np.all(np.isfinite(w)):
            raise CimcodecError(
                f"The weights exceed the float32 range (magnitudes up to "
                f"{np.finfo(np.float32).max:.3g}) that quantization computes in.")
    return w


def check_finite(weights: np.ndarray) -> None:
    """Raise unless every value of the floating-point array is finite (checked piece by
    piece, without a whole-array temporary)."""
    flat = weights.reshape(-1)
    for a, b in chunks.spans(flat.size):
        if not np.all(np.isfinite(flat[a:b])):
            raise CimcodecError("The weights hold NaN or infinite values.")


def choose_params(weights, *, per_channel: bool = False, symmetric: bool = True,
                  qmin: int = QMIN, qmax: int = QMAX) -> QuantParams:
    """Min/max parameters of torch.ao's observers (module docstring)."""
    w = _matrix(weights)
    axis = 1 if per_channel else None
    lo = np.minimum(w.min(axis=axis), 0).astype(np.float32).reshape(-1)
    hi = np.maximum(w.max(axis=axis), 0).astype(np.float32).reshape(-1)
    if symmetric:
        scale = np.maximum(-lo, hi) / np.float32((qmax - qmin) / 2)
        scale = np.maximum(scale, _EPS).astype(np.float32)
        zp = np.zeros_like(scale, dtype=np.int32)
    else:
        scale = np.maximum((hi - lo) / np.float32(qmax - qmin), _EPS).astype(np.float32)
        zp = np.clip(qmin - np.round(lo / scale), qmin, qmax).astype(np.int32)
    return QuantParams(QScheme.of(per_channel=per_channel, symmetric=symmetric),
                       scale, zp, qmin, qmax)


def quantize(weights, *, per_channel: bool = False, symmetric: bool = True,
             qmin: int = QMIN, qmax: int = QMAX) -> tuple[np.ndarray, QuantParams]:
    """Choose parameters and quantize: ``(int8 matrix, params)``."""
    params = choose_params(weights, per_channel=per_channel, symmetric=symmetric,
                           qmin=qmin, qmax=qmax)
    return params.quantize(weights), params


def to_samples(q, *, in_place: bool = False) -> np.ndarray:
    """JPEG level shift: int8 weights to uint8 samples ``q + 128`` (flipping the top bit
    of the two's-complement byte, no wider temporary); ``in_place`` writes them over
    ``q``'s own bytes."""
    q = np.asarray(q)
    if q.dtype != np.int8:
        raise CimcodecError(f"Expected int8 weights, not {q.dtype}.")
    u = q.view(np.uint8)
    return np.bitwise_xor(u, np.uint8(LEVEL_SHIFT), out=u if in_place else None)


def from_samples(samples) -> np.ndarray:
    """The inverse level shift: uint8 samples to int8 weights ``s - 128``."""
    s = np.asarray(samples)
    if s.dtype != np.uint8:
        raise CimcodecError(f"Expected uint8 samples, not {s.dtype}.")
    return (s ^ np.uint8(LEVEL_SHIFT)).view(np.int8)
