"""The byte layout that the general-purpose (LZ family) coders compress: every value as
an unsigned integer of the fewest whole bytes (1, 2 or 4, little-endian).

Values map to unsigned ``u`` as in step 1 of :mod:`cimcodec.golden.lossless.symbols`
(offset by the minimum when none is negative, zigzag otherwise). Stream: ``varint n``;
when ``n > 0``: the mapping header, ``<B b>`` (bytes per value), then the compressor's
output for the ``n * b`` bytes. :class:`ByteCoder` holds the layout; a coder module
gives only ``compress`` and ``decompress``.
"""

from __future__ import annotations

import numpy as np

from cimcodec.golden.lossless import symbols as alphabet
from cimcodec.golden.lossless.base import Coder, Reader

WIDTHS = {1: "<u1", 2: "<u2", 4: "<u4"}


class ByteCoder(Coder):
    """A coder that compresses the byte layout (module docstring) with a
    general-purpose compressor."""

    def compress(self, raw: bytes) -> bytes:
        raise NotImplementedError

    def decompress(self, data: bytes, size: int, reader: Reader) -> bytes:
        """``size`` bytes from ``data`` (at most that many are produced), or
        ``reader.fail(...)`` raised when ``data`` is not one whole compressed stream."""
        raise NotImplementedError

    def encode_values(self, v: np.ndarray) -> bytes:
        header, u = alphabet.to_unsigned(v)
        top = int(u.max())
        b = 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4
        return header + bytes([b]) + self.compress(u.astype(WIDTHS[b]).tobytes())

    def decode_values(self, r: Reader, n: int) -> np.ndarray:
        mode, base = alphabet.read_header(r)
        b = r.byte()
        if b not in WIDTHS:
            raise r.fail(f"has {b} bytes a value, not 1, 2 or 4")
        raw = self.decompress(r.rest(), n * b, r)
        if len(raw) != n * b:
            raise r.fail(f"decompresses to {len(raw)} bytes, not {n * b}")
        u = np.frombuffer(raw, dtype=WIDTHS[b]).astype(np.uint64)
        return alphabet.from_unsigned(mode, base, u, r)
