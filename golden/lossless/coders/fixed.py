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
    INT_MAX,
    Coder,
    Cost,
    Reader,
    bit_width,
    pack_fixed,
    packed_size,
    svarint,
    unpack_fixed,
)


class Fixed(Coder):
    name = "fixed"
    what = "A fixed-width stream"
    cost = Cost(0, "1 (or bus_width / w)", "a w-bit field register and the base m")

    def encode_values(self, v: np.ndarray) -> bytes:
        base = int(v.min())
        w = bit_width(int(v.max()) - base)
        return bytes([w]) + svarint(base) + pack_fixed((v - base).astype(np.uint64), w)

    def decode_values(self, r: Reader, n: int) -> np.ndarray:
        w = r.byte()
        if w > 32:
            raise r.fail(f"has a field width of {w} bits, above 32")
        base = r.svarint()
        out = unpack_fixed(r.take(packed_size(n * w)), n, w).astype(np.int64) + base
        if w and int(out.max()) > INT_MAX:
            raise r.fail("holds a value outside the signed 32-bit range")
        return out


ALGORITHMS = (Fixed(),)
