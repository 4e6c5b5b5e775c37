"""What every lossless algorithm shares: the value domain, the hardware-cost note, byte
and bit helpers, and the three kinds of algorithm (:class:`Coder`, :class:`Representation`,
:class:`Transform`).

Value domain
------------
Every coder and representation works on integers in the signed 32-bit range
``-2**31 .. 2**31 - 1`` (:func:`as_values` checks it; floating-point input is refused, not
cast) and returns ``int64`` arrays. Streams hold at most :data:`MAX_COUNT` values.

Shared encodings
----------------
* ``varint``: unsigned LEB128 (7 bits a byte, least significant group first, the high
  bit set on every byte but the last); at most 10 bytes.
* ``zigzag``: ``v -> 2v`` for ``v >= 0``, ``-2v - 1`` for ``v < 0`` (so small magnitudes
  of either sign get small codes); the signed varint is the varint of the zigzag.
* Bit strings are written most significant bit first, back to back, the last byte padded
  with 1 bits (as :func:`cimcodec.golden.codec.entropy.pack_bits`).

Decoder-cost classes (:class:`Cost`)
------------------------------------
``rank`` orders what a hardware decoder of the algorithm needs, cheapest first:

=====  ============  =================================================================
rank   class         decoder
=====  ============  =================================================================
0      wires         fixed-width fields: a shift register, no state beyond a counter
1      counter       variable lengths found from the bits alone (leading-zero count,
                     run counters, prefix sums of a bitmap); no table
2      table         a code table from the stream (canonical Huffman: 16 counts and
                     up to 256 symbols, or a 2**16-entry lookup for one code a clock)
3      arithmetic    a multi-bit state, a multiplier and a frequency table (ANS)
4      dictionary    a history window of kilobytes to megabytes (LZ77 family)
=====  ============  =================================================================

A combination's class is the highest rank among its transform, representation and
coders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cimcodec.golden.errors import CimcodecError

INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1
#: Most values a stream (or a matrix) may hold: what a decoder allocates is bounded.
MAX_COUNT = 1 << 28
#: The decoder-cost class names by rank (module docstring).
CLASSES = ("wires", "counter", "table", "arithmetic", "dictionary")


@dataclass(frozen=True)
class Cost:
    """The hardware-cost note of one algorithm (module docstring).

    Attributes
    ----------
    rank : int
        The decoder-cost class, 0..4.
    symbols_per_clock : str
        Output values a straightforward decoder delivers per clock.
    state : str
        The table or state the decoder needs, as a formula of the stream's parameters.
    """

    rank: int
    symbols_per_clock: str
    state: str

    def __post_init__(self):
        if not 0 <= self.rank < len(CLASSES):
            raise CimcodecError(f"A cost rank must be 0..{len(CLASSES) - 1}, not "
                                f"{self.rank!r}.")

    @property
    def label(self) -> str:
        return f"{self.rank} {CLASSES[self.rank]}"


class Algorithm:
    """What every algorithm has: a ``name`` (lower case letters, digits, ``_``), a
    ``kind`` and a :class:`Cost` note ``cost``."""

    name: str = ""
    kind: str = ""
    cost: Cost = Cost(0, "", "")

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name}>"


class Coder(Algorithm):
    """A lossless coder of one stream of integers.

    ``encode(values) -> bytes`` takes a 1-D array of the value domain (any length,
    0 included) and gives a self-describing stream: ``varint n`` (the count), then, when
    ``n > 0``, what :meth:`encode_values` writes. ``decode(data, limit) -> int64 array``
    returns exactly those values; it raises one :class:`CimcodecError` sentence on a
    truncated or malformed stream, on bytes after its end, or when it says it holds more
    than ``limit`` values; it never hangs and never allocates more than ``limit`` values.
    A coder module implements :meth:`encode_values` and :meth:`decode_values` (or
    overrides ``encode`` and ``decode`` whole); ``what`` names its streams in errors.
    """

    kind = "coder"
    what = "A stream"

    def encode(self, values) -> bytes:
        v = as_values(values)
        return varint(v.size) + (self.encode_values(v) if v.size else b"")

    def decode(self, data: bytes, limit: int = MAX_COUNT) -> np.ndarray:
        reader = Reader(data, self.what)
        n = reader.count(limit)
        out = self.decode_values(reader, n) if n else np.zeros(0, dtype=np.int64)
        reader.end()
        return out

    def encode_values(self, values: np.ndarray) -> bytes:
        """The stream after its count, for ``values`` (int64, at least one)."""
        raise NotImplementedError

    def decode_values(self, reader: Reader, n: int) -> np.ndarray:
        """``n > 0`` values read from ``reader`` (which checks the end afterwards)."""
        raise NotImplementedError


class Representation(Algorithm):
    """A storage format of an integer matrix as named streams.

    ``streams`` names the streams in stored order. ``split(matrix) -> (header, streams)``
    takes a 2-D int64 matrix and gives a few header bytes (often none) and a dict of
    1-D int64 arrays; ``join(header, streams, shape)`` is its exact inverse and raises a
    :class:`CimcodecError` sentence when the streams do not describe a matrix of
    ``shape``. ``limits(shape)`` gives the most values each stream can hold.
    """

    kind = "representation"
    streams: tuple = ()

    def split(self, matrix: np.ndarray) -> tuple[bytes, dict]:
        raise NotImplementedError

    def join(self, header: bytes, streams: dict, shape: tuple) -> np.ndarray:
        raise NotImplementedError

    def limits(self, shape: tuple) -> dict:
        n = shape[0] * shape[1]
        return dict.fromkeys(self.streams, n)


class Transform(Algorithm):
    """An exact, shape-preserving map of integer matrices applied before a
    representation: ``forward(matrix)`` and ``inverse(matrix)`` (both 2-D int64)."""

    kind = "transform"

    def forward(self, matrix: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def inverse(self, matrix: np.ndarray) -> np.ndarray:
        raise NotImplementedError


# ------------------------------------------------------------------ values


def as_values(values, what: str = "A stream") -> np.ndarray:
    """``values`` as a 1-D int64 array of the value domain (module docstring).

    Raises
    ------
    CimcodecError
        A non-integer dtype, or a value outside the signed 32-bit range.
    """
    a = np.asarray(values)
    if a.size == 0:
        return np.zeros(0, dtype=np.int64)
    if a.dtype.kind not in "iu":
        raise CimcodecError(f"{what} must hold integers, not {a.dtype}.")
    if a.dtype.kind == "u" and a.dtype.itemsize == 8 and int(a.max()) > INT_MAX:
        raise CimcodecError(f"{what} holds values outside the signed 32-bit range.")
    a = a.astype(np.int64).reshape(-1)
    if int(a.min()) < INT_MIN or int(a.max()) > INT_MAX:
        raise CimcodecError(f"{what} holds values outside the signed 32-bit range.")
    if a.size > MAX_COUNT:
        raise CimcodecError(f"{what} holds {a.size} values, more than {MAX_COUNT}.")
    return a


def zigzag(v: np.ndarray) -> np.ndarray:
    """Signed int64 values of the domain to their zigzag codes (uint64)."""
    v = np.asarray(v, dtype=np.int64)
    return ((v << 1) ^ (v >> 63)).astype(np.uint64)


def unzigzag(u: np.ndarray) -> np.ndarray:
    """The inverse of :func:`zigzag` (int64)."""
    u = np.asarray(u, dtype=np.uint64)
    return ((u >> np.uint64(1)).astype(np.int64) ^ -(u & np.uint64(1)).astype(np.int64))


def bit_lengths(x: np.ndarray) -> np.ndarray:
    """``int.bit_length`` of every unsigned ``x`` below ``2**53`` (int64)."""
    return np.frexp(np.asarray(x, dtype=np.uint64).astype(np.float64))[1].astype(np.int64)


def bit_width(n: int) -> int:
    """Bits of the largest of the unsigned values up to ``n`` (0 for ``n == 0``)."""
    return int(n).bit_length()


def wrap32(v: np.ndarray) -> np.ndarray:
    """int64 values reduced to the signed 32-bit range modulo ``2**32``."""
    v = np.asarray(v, dtype=np.int64)
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


# ------------------------------------------------------------------ bytes


def varint(n: int) -> bytes:
    """Unsigned LEB128 of ``n >= 0``."""
    n = int(n)
    if n < 0:
        raise CimcodecError(f"A varint must be non-negative, not {n}.")
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def svarint(n: int) -> bytes:
    """The varint of the zigzag of a signed ``n``."""
    n = int(n)
    return varint(2 * n if n >= 0 else -2 * n - 1)


class Reader:
    """A cursor over ``data`` that reads varints and byte strings and raises one
    sentence naming ``what`` when the bytes run out or do not parse."""

    def __init__(self, data: bytes, what: str):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CimcodecError(f"{what} must be bytes, not {type(data).__name__}.")
        self.data, self.what, self.pos = bytes(data), what, 0

    def fail(self, problem: str) -> CimcodecError:
        return CimcodecError(f"{self.what} {problem}.")

    def varint(self, limit: int | None = None) -> int:
        value, shift = 0, 0
        for _ in range(10):
            if self.pos >= len(self.data):
                raise self.fail("is truncated")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                if limit is not None and value > limit:
                    raise self.fail(f"has a field of {value}, above its limit {limit}")
                return value
        raise self.fail("has a varint longer than 10 bytes")

    def svarint(self) -> int:
        u = self.varint(1 << 33)
        value = u >> 1 if not u & 1 else -(u >> 1) - 1
        if not INT_MIN <= value <= INT_MAX:
            raise self.fail("has a value outside the signed 32-bit range")
        return value

    def byte(self) -> int:
        return self.take(1)[0]

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail("is truncated")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def rest(self) -> bytes:
        out = self.data[self.pos:]
        self.pos = len(self.data)
        return out

    def count(self, limit: int) -> int:
        """A value count, at most ``limit``."""
        n = self.varint()
        if n > limit:
            raise self.fail(f"holds {n} values, more than the {limit} it may")
        return n

    def end(self) -> None:
        if self.pos != len(self.data):
            raise self.fail(f"has {len(self.data) - self.pos} bytes after its end")


# ------------------------------------------------------------------ bits


def pack_fixed(u: np.ndarray, width: int) -> bytes:
    """Unsigned ``u`` (each below ``2**width``) in ``width`` bits each, MSB first, the
    last byte padded with 1 bits."""
    u = np.asarray(u, dtype=np.uint64)
    if not width or not u.size:
        return b""
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64)
    bits = ((u[:, None] >> shifts) & np.uint64(1)).astype(np.uint8).reshape(-1)
    pad = -bits.size % 8
    if pad:
        bits = np.concatenate([bits, np.ones(pad, dtype=np.uint8)])
    return np.packbits(bits).tobytes()


def unpack_fixed(data: bytes, count: int, width: int) -> np.ndarray:
    """``count`` unsigned ``width``-bit fields of ``data`` (which must be exactly
    ``ceil(count * width / 8)`` bytes; the caller checks), as uint64."""
    if not width or not count:
        return np.zeros(count, dtype=np.uint64)
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[:count * width]
    bits = bits.reshape(count, width).astype(np.uint64)
    out = np.zeros(count, dtype=np.uint64)
    for b in range(width):
        out = (out << np.uint64(1)) | bits[:, b]
    return out


def unpack_fields(data: bytes, lengths: np.ndarray) -> np.ndarray:
    """Fields of ``lengths[i]`` bits (0..64) back to back in ``data``, MSB first, as
    uint64: the inverse of :func:`cimcodec.golden.codec.entropy.pack_bits`. ``data``
    must be exactly ``ceil(sum(lengths) / 8)`` bytes; the caller checks."""
    lengths = np.asarray(lengths, dtype=np.int64)
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    return fields_at(bits, np.cumsum(lengths) - lengths, lengths)


def fields_at(bits: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The fields of ``lengths[i]`` bits (0..64) starting at bit ``starts[i]`` of the
    0/1 array ``bits``, MSB first, as uint64 (every field lies inside ``bits``)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    out = np.zeros(lengths.size, dtype=np.uint64)
    bits = np.asarray(bits).astype(np.uint64)
    for b in range(int(lengths.max(initial=0))):
        take = lengths > b
        out[take] = (out[take] << np.uint64(1)) | bits[starts[take] + b]
    return out


def packed_size(bits: int) -> int:
    """Bytes of a bit string of ``bits`` bits."""
    return (int(bits) + 7) // 8
