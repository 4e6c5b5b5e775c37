"""Fixed-width bit packing with a frame of reference: no entropy coding, the baseline
every accelerator format (CSC, bitmap) is quoted in.

Stream: ``varint n``; when ``n > 0``: ``<B w>``, the signed varint of ``m = min(v)``, then
every ``v - m`` in ``w = bit_length(max(v) - min(v))`` bits (0..32), MSB first, padded
with 1 bits. Size in bytes, exactly::

    len(varint(n)) + [n > 0] * (1 + len(svarint(m)) + ceil(n * w / 8))

(``len(varint(x))`` is ``max(1, ceil(bit_length(x) / 7))``; ``svarint(m)`` is the
varint of ``2m`` for ``m >= 0`` and ``-2m - 1`` otherwise.) An all-equal stream costs no
payload at all.
"""

from __future__ import annotations

import numpy as np

from cimcodec.golden.lossless.base import (
    MAX_COUNT,
    Coder,
    Cost,
    Reader,
    as_values,
    bit_width,
    pack_fixed,
    packed_size,
    svarint,
    unpack_fixed,
    varint,
)


class Fixed(Coder):
    name = "fixed"
    cost = Cost(0, "1 (or bus_width / w)", "a w-bit field register and the base m")

    def encode(self, values) -> bytes:
        v = as_values(values)
        if not v.size:
            return varint(0)
        base = int(v.min())
        w = bit_width(int(v.max()) - base)
        return (varint(v.size) + bytes([w]) + svarint(base)
                + pack_fixed((v - base).astype(np.uint64), w))

    def decode(self, data: bytes, limit: int = MAX_COUNT) -> np.ndarray:
        r = Reader(data, "A fixed-width stream")
        n = r.count(limit)
        if not n:
            r.end()
            return np.zeros(0, dtype=np.int64)
        w = r.byte()
        if w > 32:
            raise r.fail(f"has a field width of {w} bits, above 32")
        base = r.svarint()
        payload = r.take(packed_size(n * w))
        r.end()
        out = unpack_fixed(payload, n, w).astype(np.int64) + base
        if w and int(out.max()) > (1 << 31) - 1:
            raise r.fail("holds a value outside the signed 32-bit range")
        return out


ALGORITHMS = (Fixed(),)
