"""The lossless combinations as tensor codecs of the model container
(:mod:`cimcodec.golden.codec.model`): ``lossless:<combination>``, for example
``lossless:delta-bitmap+huffman``; every name :func:`.registry.combination` knows.
:func:`codec` builds one; :mod:`cimcodec.golden.codec.model` imports this module when it
first meets a ``lossless:`` name (its codec families), so a container that uses one
loads without importing anything first. :data:`BEST` are registered at once.

Settings: ``bits`` (1..8, default 8) and ``sparsity`` (``[0, 1)``, default 0: magnitude
pruning before storing). A float tensor is stored as:

* kind 2, a codebook: when it has at most ``2**bits - 1`` distinct nonzero values (as
  trained quantization or k-means left it) those values, exactly; otherwise, for
  ``bits < 8``, ``2**bits - 1`` shared values by k-means
  (:func:`cimcodec.golden.codec.deep.share`, linear initialisation). The tensor's
  codebook indices (0 for a zero weight) go through the combination.
* kind 1, uniform int8 (``bits == 8`` and more than 255 distinct nonzero values):
  per-tensor symmetric quantization in torch.ao's convention
  (:func:`cimcodec.golden.codec.quant.quantize`), ``w = q * scale``.

Member: ``<B kind>``, then ``<f scale>`` (kind 1) or ``<B k>`` and ``k`` increasing
float32 values (kind 2), then the combination's frame of the integer tensor (its own
shape, CRC-32 of the integers; the codebook and scale are covered by the container's
CRC-32). Exact for kind 2 tensors within the limit; otherwise within the quantization
error. Integer tensors are refused: ``raw`` stores them.
"""

from __future__ import annotations

import struct

import numpy as np

from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.lossless.registry import combination

PREFIX = "lossless:"
UNIFORM, CODEBOOK = 1, 2
SETTINGS = ("bits", "sparsity")
#: Registered with the container at import: the best of each decoder-cost class on the
#: fine-grained pruned layers of docs/lossless.md (ANS, zstd; Huffman; run-length; the
#: bitmap) and the best whole-model container there (bitmap+ans).
BEST = ("dense+ans", "bitmap+ans", "rel+zstd", "rel+huffman", "dense+rle", "bitmap+fixed")


class LosslessCodec:
    """The container codec of one combination (module docstring)."""

    def __init__(self, name: str):
        if not isinstance(name, str) or not name.startswith(PREFIX):
            raise CimcodecError(f"A lossless codec is named {PREFIX}<combination>, not "
                                f"{name!r}.")
        self.combination = combination(name[len(PREFIX):])
        self.name = PREFIX + self.combination.name

    def encode(self, array: np.ndarray, settings: dict) -> tuple[bytes, dict]:
        from cimcodec.golden.codec import deep, quant

        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise CimcodecError(f"The lossless codecs take the settings "
                                f"{', '.join(SETTINGS)}, not {unknown[0]!r}.")
        bits = 8 if settings.get("bits") is None else settings["bits"]
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 8:
            raise CimcodecError(f"Lossless codec bits must be an integer 1..8, not {bits!r}.")
        w = np.asarray(array)
        if w.dtype.kind != "f":
            raise CimcodecError(f"The lossless codecs store floating-point tensors, not "
                                f"{w.dtype}; raw stores integer tensors exactly.")
        w = deep.prune(w, settings.get("sparsity") or 0.0)   # checks finiteness and range
        k = (1 << bits) - 1
        if bits < 8 or np.unique(w[w != 0]).size <= k:
            centroids, labels = deep.share(w, k)
            head = bytes([CODEBOOK, len(centroids)]) + centroids.astype("<f4").tobytes()
            return head + self.combination.encode(labels), {}
        q, params = quant.quantize(w.reshape(w.shape[0], -1) if w.ndim > 1 else
                                   w.reshape(1, -1))
        head = bytes([UNIFORM]) + struct.pack("<f", float(params.scale[0]))
        return head + self.combination.encode(q.reshape(w.shape)), {}

    def decode(self, data: bytes, shape: tuple, dtype: str, options: dict) -> np.ndarray:
        shape = tuple(shape)
        if not data:
            raise CimcodecError(f"A {self.name} member is empty.")
        kind = data[0]
        if kind == UNIFORM:
            if len(data) < 5:
                raise CimcodecError(f"A {self.name} member is truncated.")
            (scale,) = struct.unpack_from("<f", data, 1)
            if not np.isfinite(scale) or scale <= 0:
                raise CimcodecError(f"A {self.name} member has a bad scale.")
            q = self.combination.decode(data[5:], shape)
            if q.size and (int(q.min()) < -128 or int(q.max()) > 127):
                raise CimcodecError(f"A {self.name} member holds values outside int8.")
            return (q.astype(np.float32) * np.float32(scale)).astype(np.float32)
        if kind == CODEBOOK:
            k = data[1] if len(data) > 1 else -1
            if k < 0 or len(data) < 2 + 4 * k:
                raise CimcodecError(f"A {self.name} member is truncated.")
            book = np.concatenate([[0], np.frombuffer(data, "<f4", k, 2)]).astype(np.float32)
            labels = self.combination.decode(data[2 + 4 * k:], shape)
            if labels.size and (int(labels.min()) < 0 or int(labels.max()) > k):
                raise CimcodecError(f"A {self.name} member points outside its codebook.")
            return book[labels]
        raise CimcodecError(f"A {self.name} member has the unknown kind {kind}.")


def codec(name: str) -> LosslessCodec:
    """The codec ``lossless:<combination>`` (one sentence for an unknown combination)."""
    return LosslessCodec(name)


def _register_best() -> None:
    from cimcodec.golden.codec import model

    for name in BEST:
        model.register(codec(PREFIX + name))


_register_best()
