"""The byte alphabet the table coders (Huffman, ANS) code: any value of the domain as
one symbol 0..255 and a few raw extra bits, as JPEG codes its DC differences.

Mapping
-------
1. To unsigned ``u``: when every value is ``>= 0``, ``u = v - m`` with ``m`` the smallest
   value (``offset``, mode 0); otherwise ``u = zigzag(v)`` (mode 1, values around 0 of
   either sign get small codes).
2. To a symbol: ``u < DIRECT`` (223) is its own symbol with no extra bits. Larger ``u``
   escape: with ``x = u - DIRECT`` and ``c`` the bit length of ``x`` (0..32), the symbol
   is ``DIRECT + c`` and the extra bits are the ``c - 1`` bits of ``x`` below its leading
   one (none for ``c <= 1``). The 33 escape symbols cover every ``u < 2**32``.

Header: ``<B mode>`` then, for mode 0, the varint of ``m``. A table coder writes its
symbol stream, then the extra bits of every escaped value in order, MSB first, padded
with 1 bits to a byte.
"""

from __future__ import annotations

import numpy as np

from cimcodec.golden.codec.entropy import pack_bits
from cimcodec.golden.lossless.base import (
    INT_MAX,
    Reader,
    bit_lengths,
    packed_size,
    svarint,
    unpack_fields,
    unzigzag,
    zigzag,
)

DIRECT = 223
OFFSET, ZIGZAG = 0, 1


def to_unsigned(values: np.ndarray) -> tuple[bytes, np.ndarray]:
    """``(header, u)``: step 1 of the mapping of int64 ``values`` (module docstring),
    ``u`` uint64 below ``2**32``."""
    if values.size and int(values.min()) < 0:
        return bytes([ZIGZAG]), zigzag(values)
    base = int(values.min()) if values.size else 0
    return bytes([OFFSET]) + svarint(base), (values - base).astype(np.uint64)


def from_unsigned(mode: int, base: int, u: np.ndarray, reader: Reader) -> np.ndarray:
    """The inverse of :func:`to_unsigned` (int64); ``reader`` names errors."""
    if mode == ZIGZAG:
        if u.size and int(u.max()) >= 1 << 32:
            raise reader.fail("holds a value outside the signed 32-bit range")
        return unzigzag(u)
    if u.size and int(u.max()) > INT_MAX - base:
        raise reader.fail("holds a value outside the signed 32-bit range")
    return u.astype(np.int64) + base


def to_symbols(values: np.ndarray) -> tuple[bytes, np.ndarray, bytes]:
    """``(header, symbols, extra)``: the mapping of int64 ``values`` (module
    docstring); ``symbols`` int64 in 0..255, ``extra`` the packed extra bits."""
    header, u = to_unsigned(values)
    escaped = u >= DIRECT
    symbols = u.astype(np.int64)
    if not escaped.any():
        return header, symbols, b""
    x = u[escaped] - np.uint64(DIRECT)
    c = bit_lengths(x)
    symbols[escaped] = DIRECT + c
    lengths = np.maximum(c - 1, 0)
    mask = (np.uint64(1) << np.maximum(c - 1, 0).astype(np.uint64)) - np.uint64(1)
    return header, symbols, pack_bits(x & mask, lengths)


def read_header(reader: Reader) -> tuple[int, int]:
    """``(mode, base)`` of a mapping header."""
    mode = reader.byte()
    if mode == ZIGZAG:
        return mode, 0
    if mode != OFFSET:
        raise reader.fail(f"has the unknown value mapping {mode}")
    base = reader.svarint()
    if base < 0:
        raise reader.fail("has a negative offset")
    return mode, base


def extra_bytes(symbols: np.ndarray) -> int:
    """Bytes of the extra bits that ``symbols`` carry."""
    c = symbols[symbols > DIRECT] - DIRECT
    return packed_size(int(np.maximum(c - 1, 0).sum()))


def from_symbols(mode: int, base: int, symbols: np.ndarray, extra: bytes,
                 reader: Reader) -> np.ndarray:
    """The int64 values of ``symbols`` and their ``extra`` bytes (exactly
    :func:`extra_bytes` of them; the caller takes them); ``reader`` names errors."""
    if symbols.size and int(symbols.max()) > DIRECT + 32:
        raise reader.fail("holds a symbol outside its alphabet")
    u = symbols.astype(np.uint64)
    escaped = symbols >= DIRECT
    if escaped.any():
        c = symbols[escaped] - DIRECT
        low = unpack_fields(extra, np.maximum(c - 1, 0))
        lead = np.where(c > 0, np.uint64(1) << np.maximum(c - 1, 0).astype(np.uint64),
                        np.uint64(0))
        u[escaped] = np.uint64(DIRECT) + lead + low
    return from_unsigned(mode, base, u, reader)
