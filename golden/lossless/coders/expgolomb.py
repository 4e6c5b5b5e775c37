"""Exp-Golomb coding of order ``k`` (as H.264's ``ue(v)`` for ``k = 0``): the unsigned
``u`` (step 1 of :mod:`cimcodec.golden.lossless.symbols`: offset by the minimum, or
zigzag when a value is negative) is sent as ``L - 1 - k`` zero bits, then ``u + 2**k``
in ``L = bit_length(u + 2**k)`` bits: ``2L - 1 - k`` bits in all.

Stream: ``varint n``; when ``n > 0``: the mapping header, ``<B k>`` (0..16, the order
that makes the stream shortest), then the code words MSB first, padded with 1 bits.
"""

from __future__ import annotations

from array import array

import numpy as np

from cimcodec.golden.codec.entropy import pack_bits
from cimcodec.golden.lossless import symbols as alphabet
from cimcodec.golden.lossless.base import (
    Coder,
    Cost,
    Reader,
    bit_lengths,
    fields_at,
    packed_size,
)

ORDERS = range(17)


def _lengths(u: np.ndarray, k: int) -> np.ndarray:
    """``L`` of every ``u`` at order ``k``."""
    return bit_lengths(u + np.uint64(1 << k))


class ExpGolomb(Coder):
    name = "expgolomb"
    what = "An Exp-Golomb stream"
    cost = Cost(1, "1", "a leading-zero counter and a shifter of up to 33 bits; no table")

    def encode_values(self, v: np.ndarray) -> bytes:
        header, u = alphabet.to_unsigned(v)
        k = min(ORDERS, key=lambda k: int((2 * _lengths(u, k) - 1 - k).sum()))
        lengths = _lengths(u, k)
        codes = np.zeros(2 * u.size, dtype=np.uint64)
        sizes = np.zeros(2 * u.size, dtype=np.int64)
        codes[1::2] = u + np.uint64(1 << k)
        sizes[0::2], sizes[1::2] = lengths - 1 - k, lengths
        return header + bytes([k]) + pack_bits(codes, sizes)

    def decode_values(self, r: Reader, n: int) -> np.ndarray:
        mode, base = alphabet.read_header(r)
        k = r.byte()
        if k not in ORDERS:
            raise r.fail(f"has the order {k}, not 0..16")
        payload = r.rest()
        total = 8 * len(payload)
        if n > total:
            raise r.fail("is truncated")
        bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
        # The first 1 at or after every bit position (total where there is none), and
        # the length of the code word that would start there.
        ones = np.where(bits == 1, np.arange(total), total)
        next_one = np.minimum.accumulate(ones[::-1])[::-1]
        zeros = next_one - np.arange(total)
        jump = array("q", (2 * zeros + 1 + k).tobytes())
        starts = array("q", bytes(8 * n))
        pos = 0
        for i in range(n):          # the one sequential step: code word after code word
            if pos >= total:
                raise r.fail("is truncated")
            starts[i] = pos
            pos += jump[pos]
        starts = np.frombuffer(starts, dtype=np.int64)
        prefix = zeros[starts]
        if int(prefix.max()) > 32 or pos > total:
            raise r.fail("is truncated or holds a bad code word")
        if packed_size(pos) != len(payload):
            raise r.fail(f"has {len(payload) - packed_size(pos)} bytes after its end")
        lengths = prefix + 1 + k
        starts = starts + prefix
        u = fields_at(bits, starts, lengths) - np.uint64(1 << k)
        return alphabet.from_unsigned(mode, base, u, r)


ALGORITHMS = (ExpGolomb(),)
