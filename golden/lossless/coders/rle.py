"""Run-length coding of zeros: every nonzero value with the count of zeros before it,
both in fixed-width fields (the runs in one section, the values in another, so that a
decoder reads both with shift registers).

Tokens: a run field ``f`` of ``r`` bits; ``f == M = 2**r - 1`` stands for ``M`` zeros and
no value, any other ``f`` for ``f`` zeros followed by the next value. A run of ``z``
zeros before a value is ``z // M`` fields of ``M`` and one field ``z % M``. Zeros after
the last value are implied by the count.

Stream: ``varint n``; when ``n > 0``: ``<B r>`` (1..16, the width that makes the stream
shortest), the signed varint of ``m`` (smallest nonzero value, 0 if none) and ``<B w>``
(``bit_length(max - m)`` over the nonzero values), ``varint k`` (run fields), the ``k``
run fields (``r`` bits each, padded to a byte), then the values less ``m``, ``w`` bits
each, padded. Size::

    len(varint(n)) + [n > 0] * (2 + len(svarint(m)) + len(varint(k))
                                + ceil(k * r / 8) + ceil(z * w / 8))

with ``z`` the nonzero values and ``k = z + sum over runs (run // M)``.
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
    varint,
)

WIDTHS = range(1, 17)


def _fields(runs: np.ndarray, r: int) -> int:
    return int(runs.size + (runs // ((1 << r) - 1)).sum())


class RunLength(Coder):
    name = "rle"
    what = "A run-length stream"
    cost = Cost(1, "1", "an r-bit run counter and a w-bit value register")

    def encode_values(self, v: np.ndarray) -> bytes:
        where = np.flatnonzero(v)
        nonzero = v[where]
        runs = np.diff(where, prepend=-1) - 1
        base = int(nonzero.min()) if nonzero.size else 0
        w = bit_width(int(nonzero.max()) - base) if nonzero.size else 0
        r = min(WIDTHS, key=lambda r: _fields(runs, r) * r)
        big = (1 << r) - 1
        fillers = runs // big
        fields = np.full(_fields(runs, r), big, dtype=np.uint64)
        fields[np.arange(runs.size) + np.cumsum(fillers)] = (runs % big).astype(np.uint64)
        return (bytes([r]) + svarint(base) + bytes([w])
                + varint(fields.size) + pack_fixed(fields, r)
                + pack_fixed((nonzero - base).astype(np.uint64), w))

    def decode_values(self, rd: Reader, n: int) -> np.ndarray:
        r = rd.byte()
        if r not in WIDTHS:
            raise rd.fail(f"has a run width of {r} bits, not 1..16")
        base = rd.svarint()
        w = rd.byte()
        if w > 32:
            raise rd.fail(f"has a value width of {w} bits, above 32")
        k = rd.count(n)
        fields = unpack_fixed(rd.take(packed_size(k * r)), k, r).astype(np.int64)
        big = (1 << r) - 1
        has_value = fields < big
        m = int(has_value.sum())
        values = unpack_fixed(rd.take(packed_size(m * w)), m, w).astype(np.int64) + base
        ends = np.cumsum(fields + has_value)
        if k and int(ends[-1]) > n:
            raise rd.fail(f"describes more than its {n} values")
        if m and int(values.max()) > INT_MAX:
            raise rd.fail("holds a value outside the signed 32-bit range")
        out = np.zeros(n, dtype=np.int64)
        out[ends[has_value] - 1] = values
        return out


ALGORITHMS = (RunLength(),)
