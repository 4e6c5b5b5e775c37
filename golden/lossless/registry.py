"""The registry of lossless algorithms and the combinations it enumerates.

Discovery
---------
:func:`discover` imports every module of the packages :data:`PACKAGES`
(``cimcodec.golden.lossless.coders`` and ``.formats``) and registers the objects of its
``ALGORITHMS`` tuple; :func:`register` adds one directly. An algorithm is a
:class:`~cimcodec.golden.lossless.base.Coder`, ``Representation`` or ``Transform``.

Combinations
------------
A combination is named ``[<transform>-]<representation>+<coder>[+<coder>...]``, for
example ``bitmap+fixed``, ``delta-dense+huffman`` or ``dense+huffman+zstd`` (the second
coder compresses the first one's bytes). :func:`combinations` enumerates every
``[transform-]representation+coder`` (no transform, or one, times every representation
times every coder); :func:`combination` builds any name.

Frame (:meth:`Combination.encode`), the bytes of one integer tensor
-------------------------------------------------------------------
=====================  ======================================================
``varint d``           dimensions (0..32), then ``d`` varints: the shape
``varint h`` + ``h``   the representation's header (e.g. ``r`` of ``rel``)
per stream             in the representation's order: ``varint s`` + ``s`` bytes,
                       the stream through the coders
``<I crc>``            ``zlib.crc32`` of the tensor's values as little-endian int32
=====================  ======================================================

The tensor is coded as a matrix: ``shape[0] x prod(shape[1:])`` (a conv kernel
``out x in*kh*kw``), ``1 x n`` for 1-D and ``1 x 1`` for 0-D. The CRC makes every
corruption an error: a damaged stream that still parses decodes to other values, and
their CRC differs.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
import re
import struct
import zlib

import numpy as np

from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.lossless.base import (
    CLASSES,
    MAX_COUNT,
    Coder,
    Cost,
    Reader,
    Representation,
    Transform,
    as_values,
    varint,
)

PACKAGES = ("cimcodec.golden.lossless.coders", "cimcodec.golden.lossless.formats")
KINDS = {"coder": Coder, "representation": Representation, "transform": Transform}
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_registry: dict = {kind: {} for kind in KINDS}
_discovered = False
MAX_DIMS = 32


def register(algorithm) -> None:
    """Add ``algorithm`` (a coder, representation or transform: ``kind``, ``name``,
    ``cost`` and its methods) under its name, replacing one of that kind and name."""
    kind = getattr(algorithm, "kind", None)
    if kind not in KINDS or not isinstance(algorithm, KINDS[kind]):
        raise CimcodecError(f"A lossless algorithm must be a Coder, Representation or "
                            f"Transform, not {type(algorithm).__name__}.")
    if not _NAME.match(getattr(algorithm, "name", "") or ""):
        raise CimcodecError(f"A lossless algorithm's name must be lower-case letters, "
                            f"digits and _, not {getattr(algorithm, 'name', None)!r}.")
    if not isinstance(algorithm.cost, Cost):
        raise CimcodecError(f"The lossless {kind} {algorithm.name} has no Cost note.")
    _registry[kind][algorithm.name] = algorithm


def unregister(kind: str, name: str) -> None:
    """Remove the ``kind`` algorithm ``name`` (a no-op when there is none)."""
    _registry[kind].pop(name, None)


def discover() -> None:
    """Import every module of :data:`PACKAGES` (including modules added to their
    ``__path__`` since the last call) and register its ``ALGORITHMS``."""
    global _discovered
    for package in PACKAGES:
        pkg = importlib.import_module(package)
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            module = importlib.import_module(f"{package}.{info.name}")
            for algorithm in getattr(module, "ALGORITHMS", ()):
                register(algorithm)
    _discovered = True


def _kind(kind: str) -> dict:
    if not _discovered:
        discover()
    return dict(sorted(_registry[kind].items()))


def coders() -> dict:
    """``{name: coder}`` of every registered coder, by name."""
    return _kind("coder")


def representations() -> dict:
    """``{name: representation}``, by name."""
    return _kind("representation")


def transforms() -> dict:
    """``{name: transform}``, by name."""
    return _kind("transform")


def combinations() -> list[str]:
    """Every ``[transform-]representation+coder`` name: no transform or one, times every
    representation, times every coder."""
    prefixes = [""] + [f"{t}-" for t in transforms()]
    return [f"{p}{r}+{c}" for p in prefixes for r in representations() for c in coders()]


def combination(name: str) -> Combination:
    """The combination called ``name`` (module docstring).

    Raises
    ------
    CimcodecError
        One sentence naming what is unknown and what there is.
    """
    if not isinstance(name, str):
        raise CimcodecError(f"A lossless combination is named by a string, not {name!r}.")
    head, *chain = name.split("+")
    *prefix, rep = head.split("-")
    known = (f"write [transform-]representation+coder with a transform of "
             f"{', '.join(transforms())}, a representation of "
             f"{', '.join(representations())} and coders of {', '.join(coders())}")
    unknown = ([t for t in prefix if t not in transforms()]
               + ([rep] if rep not in representations() else [])
               + [c for c in chain if c not in coders()])
    if unknown or not chain:
        what = f"{unknown[0]!r} is not known" if unknown else "it names no coder"
        raise CimcodecError(f"{name!r} is not a lossless combination ({what}): {known}.")
    return Combination(tuple(transforms()[t] for t in prefix), representations()[rep],
                       tuple(coders()[c] for c in chain))


def as_matrix(array) -> tuple[np.ndarray, tuple]:
    """``(matrix, shape)``: an integer tensor as the 2-D int64 matrix a representation
    takes (module docstring), and its own shape."""
    a = np.asarray(array)
    shape = tuple(int(s) for s in a.shape)
    if len(shape) > MAX_DIMS:
        raise CimcodecError(f"A tensor has {len(shape)} dimensions, more than {MAX_DIMS}.")
    values = as_values(a, "A tensor")
    return values.reshape(_matrix_shape(shape)), shape


def _matrix_shape(shape: tuple) -> tuple:
    if len(shape) >= 2:
        return shape[0], math.prod(shape[1:])
    return 1, (shape[0] if shape else 1)


class Combination:
    """A transform chain, a representation and a coder chain (module docstring).

    Attributes
    ----------
    name : str
    transforms : tuple
    representation : Representation
    coders : tuple
    cost : Cost
        The highest-ranked note of its algorithms (the decoder-cost class).
    """

    def __init__(self, transforms: tuple, representation, coders: tuple):
        self.transforms, self.representation, self.coders = transforms, representation, \
            coders
        head = "-".join([t.name for t in transforms] + [representation.name])
        self.name = "+".join([head] + [c.name for c in coders])
        parts = (*transforms, representation, *coders)
        top = max(parts, key=lambda a: a.cost.rank)
        self.cost = top.cost

    @property
    def cost_class(self) -> str:
        """``"<rank> <class>"`` of the decoder-cost class."""
        return f"{self.cost.rank} {CLASSES[self.cost.rank]}"

    def __repr__(self) -> str:
        return f"<lossless combination {self.name}>"

    # --------------------------------------------------------------- streams

    def split(self, matrix: np.ndarray) -> tuple[bytes, dict]:
        """The representation's header and named streams of a 2-D int64 ``matrix``
        after the transforms."""
        for t in self.transforms:
            matrix = t.forward(matrix)
        return self.representation.split(matrix)

    def encode_stream(self, values) -> bytes:
        data = self.coders[0].encode(values)
        for coder in self.coders[1:]:
            data = coder.encode(np.frombuffer(data, dtype=np.uint8))
        return data

    def decode_stream(self, data: bytes, limit: int) -> np.ndarray:
        bound = [limit]
        for _ in self.coders[1:]:
            bound.append(16 * bound[-1] + 4096)
        for coder, most in zip(self.coders[:0:-1], bound[:0:-1]):
            inner = coder.decode(data, most)
            if inner.size and (int(inner.min()) < 0 or int(inner.max()) > 255):
                raise CimcodecError(f"A {coder.name} stream of a stacked coder holds "
                                    f"values that are not bytes.")
            data = inner.astype(np.uint8).tobytes()
        return self.coders[0].decode(data, limit)

    # --------------------------------------------------------------- frames

    def encode(self, array) -> bytes:
        """The frame of an integer tensor (module docstring)."""
        matrix, shape = as_matrix(array)
        header, streams = self.split(matrix)
        out = bytearray(varint(len(shape)))
        for s in shape:
            out += varint(s)
        out += varint(len(header)) + header
        for name in self.representation.streams:
            data = self.encode_stream(streams[name])
            out += varint(len(data)) + data
        crc = zlib.crc32(matrix.astype("<i4").tobytes())
        return bytes(out) + struct.pack("<I", crc)

    def decode(self, data: bytes, shape=None, limit: int = MAX_COUNT) -> np.ndarray:
        """The int64 tensor of a frame; ``shape``, when given, must be the frame's;
        at most ``limit`` elements.

        Raises
        ------
        CimcodecError
            A truncated or corrupt frame (one sentence).
        """
        r = Reader(data, f"A {self.name} frame")
        dims = r.varint(MAX_DIMS)
        own = tuple(r.varint(limit) for _ in range(dims))
        if shape is not None and own != tuple(shape):
            raise r.fail(f"holds a tensor of shape {own}, not {tuple(shape)}")
        if math.prod(own) > limit:
            raise r.fail(f"holds {math.prod(own)} elements, more than {limit}")
        matrix_shape = _matrix_shape(own)
        header = r.take(r.varint(255))
        limits = self.representation.limits(matrix_shape)
        streams = {}
        for name in self.representation.streams:
            streams[name] = self.decode_stream(r.take(r.varint(len(r.data))), limits[name])
        (crc,) = struct.unpack("<I", r.take(4))
        r.end()
        matrix = self.representation.join(header, streams, matrix_shape)
        for t in reversed(self.transforms):
            matrix = t.inverse(matrix)
        if zlib.crc32(matrix.astype("<i4").tobytes()) != crc:
            raise r.fail("decodes to values whose CRC-32 differs: it is corrupt")
        return matrix.reshape(own)
