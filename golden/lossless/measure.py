"""Prune, quantize and measure weight tensors under lossless combinations: the engine of
``cimcodec lossless-bench`` and ``bench/lossless.py``.

Variants (:class:`Variant`)
---------------------------
* Pruning ``fine``: the ``sparsity`` fraction of the tensor's weights smallest in
  magnitude set to 0 (:func:`cimcodec.golden.codec.deep.prune`); ``channel``: the
  ``round(sparsity * rows)`` output channels (rows of the ``shape[0] x rest`` matrix)
  with the smallest L1 norms set to 0; ``none``.
* Quantization ``bits == 8``: per-tensor symmetric int8 in torch.ao's convention
  (:func:`cimcodec.golden.codec.quant.quantize`, values -128..127); ``bits`` 1..7:
  k-means weight sharing with ``2**bits - 1`` shared values (linear initialisation,
  :func:`cimcodec.golden.codec.deep.share`), the tensor holding codebook indices
  0..``2**bits - 1`` (0 for a zero weight). Integer tensors are taken as they are.

Figures (:class:`Measurement`, over every tensor of a set)
----------------------------------------------------------
``bytes``: the sum of the frames (:meth:`~.registry.Combination.encode`: shape, headers,
tables, stream lengths and CRC included). ``ratio = weights * bits / (8 * bytes)``
against the dense ``bits``-bit tensors; ``x CSC`` the ``csc+fixed`` bytes over these;
bits per nonzero ``8 * bytes / nonzeros``; encode and decode speed in MB/s of the dense
tensors at one byte a weight (millions of weights a second) of *processor* time
(``time.process_time``: the machines are shared, and wall time there measures the
neighbours). Every frame is decoded and compared with its tensor (``exact``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.lossless.base import bit_width
from cimcodec.golden.lossless.registry import combination

PRUNINGS = ("none", "fine", "channel")
#: The CSC baseline of the accelerator formats.
BASELINE = "csc+fixed"


@dataclass(frozen=True)
class Variant:
    """One pruning and quantization of a tensor (module docstring)."""

    pruning: str = "fine"
    sparsity: float = 0.0
    bits: int = 8

    def __post_init__(self):
        if self.pruning not in PRUNINGS:
            raise CimcodecError(f"Pruning must be one of {', '.join(PRUNINGS)}, not "
                                f"{self.pruning!r}.")
        if not isinstance(self.sparsity, (int, float)) or not 0 <= self.sparsity < 1:
            raise CimcodecError(f"Sparsity must be in [0, 1), not {self.sparsity!r}.")
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or \
                not 1 <= self.bits <= 8:
            raise CimcodecError(f"Quantization bits must be an integer 1..8, not "
                                f"{self.bits!r}.")

    @property
    def label(self) -> str:
        kind = "int8" if self.bits == 8 else f"kmeans{self.bits}"
        return f"{kind} {self.pruning} {self.sparsity:g}"


def _floats(weights) -> np.ndarray:
    w = np.asarray(weights)
    if w.dtype.kind != "f":
        raise CimcodecError(f"Pruning and quantization take floating-point weights, not "
                            f"{w.dtype}.")
    if w.ndim < 1 or w.size == 0:
        raise CimcodecError(f"A weight tensor must have elements, not shape {w.shape}.")
    if not np.all(np.isfinite(w)):
        raise CimcodecError("The weights hold NaN or infinite values.")
    return w.astype(np.float32)


def prune(weights, pruning: str, sparsity: float) -> np.ndarray:
    """A pruned float32 copy of ``weights`` (module docstring)."""
    from cimcodec.golden.codec import deep

    w = _floats(weights)
    Variant(pruning, sparsity)
    if pruning == "fine" and sparsity:
        return deep.prune(w, sparsity)
    if pruning == "channel" and sparsity:
        rows = w.reshape(w.shape[0], -1) if w.ndim > 1 else w.reshape(1, -1)
        drop = np.argsort(np.abs(rows).sum(axis=1), kind="stable")[:int(round(
            sparsity * rows.shape[0]))]
        rows = rows.copy()
        rows[drop] = 0
        return rows.reshape(w.shape)
    return w.copy()


def quantize(weights, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """``(integers, dequantized)``: float ``weights`` at ``bits`` (module docstring) as an
    int64 tensor, and the float32 weights it stands for; both of the same shape."""
    from cimcodec.golden.codec import deep, quant

    w = _floats(weights)
    Variant(bits=bits)
    if bits == 8:
        q, params = quant.quantize(w.reshape(w.shape[0], -1) if w.ndim > 1 else
                                   w.reshape(1, -1))
        return q.astype(np.int64).reshape(w.shape), params.dequantize(q).reshape(w.shape)
    centroids, labels = deep.share(w, (1 << bits) - 1)
    book = np.concatenate([[0], centroids]).astype(np.float32)
    return labels.astype(np.int64), book[labels]


def integer_tensor(weights, variant: Variant) -> np.ndarray:
    """``weights`` pruned and quantized as ``variant`` says; an integer tensor is
    returned as it is (int64) when the variant prunes nothing."""
    w = np.asarray(weights)
    if w.dtype.kind in "iu":
        if variant.pruning != "none" and variant.sparsity:
            raise CimcodecError("An integer tensor is measured as it is: it cannot be "
                                "pruned here.")
        return w.astype(np.int64)
    return quantize(prune(w, variant.pruning, variant.sparsity), variant.bits)[0]


def value_bits(tensors: dict) -> int:
    """Bits of the dense integer tensors: the width of their joint value range (at
    least 1)."""
    lo = min(int(t.min()) for t in tensors.values() if t.size)
    hi = max(int(t.max()) for t in tensors.values() if t.size)
    return max(1, bit_width(hi - lo))


@dataclass
class Measurement:
    """One combination over a set of integer tensors (module docstring)."""

    combination: str
    cost_class: str
    bits: int
    bytes: int = 0
    weights: int = 0
    nonzeros: int = 0
    encode_s: float = 0.0
    decode_s: float = 0.0
    exact: bool = True
    layers: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.weights * self.bits / (8 * self.bytes)

    @property
    def bits_per_nonzero(self) -> float:
        return 8 * self.bytes / max(1, self.nonzeros)

    @property
    def encode_mbs(self) -> float:
        return self.weights / 1e6 / max(self.encode_s, 1e-9)

    @property
    def decode_mbs(self) -> float:
        return self.weights / 1e6 / max(self.decode_s, 1e-9)


def measure(tensors: dict, names, *, bits: int | None = None,
            progress: bool = False) -> list[Measurement]:
    """Every combination of ``names`` over every integer tensor of ``tensors``
    (``{name: array}``): encoded, timed, decoded and compared (module docstring).
    ``bits`` is the dense width the ratio is against (default :func:`value_bits`)."""
    from tqdm import tqdm

    if not tensors:
        raise CimcodecError("There is no tensor to measure.")
    bits = bits or value_bits(tensors)
    combos = [combination(n) for n in names]
    out = []
    for combo in tqdm(combos, desc="lossless", unit="combination", disable=not progress):
        m = Measurement(combo.name, combo.cost_class, bits)
        for name, tensor in tensors.items():
            t0 = time.process_time()
            data = combo.encode(tensor)
            t1 = time.process_time()
            back = combo.decode(data, tensor.shape)
            t2 = time.process_time()
            m.encode_s += t1 - t0
            m.decode_s += t2 - t1
            m.exact &= bool(np.array_equal(back, tensor))
            m.bytes += len(data)
            m.layers[name] = len(data)
            m.weights += tensor.size
            m.nonzeros += int(np.count_nonzero(tensor))
        out.append(m)
    return out


def against(measurements: list[Measurement], baseline: str = BASELINE) -> dict:
    """``{combination: baseline bytes / its bytes}`` (``x CSC``), or ``{}`` when the
    baseline was not measured."""
    base = next((m for m in measurements if m.combination == baseline), None)
    return {} if base is None else {m.combination: base.bytes / m.bytes for m in measurements}
