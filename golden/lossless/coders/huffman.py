"""Canonical Huffman coding with the JPEG tables (:mod:`cimcodec.golden.jpeg.huffman`:
libjpeg's optimal code limited to 16 bits) through the byte streams of
:mod:`cimcodec.golden.codec.entropy`.

Stream: ``varint n``; when ``n > 0``: the value mapping of :mod:`..symbols` (one symbol
0..255 per value plus extra bits for large values), then ``<B 0>`` and the one symbol
when all symbols are equal (no payload: a one-symbol code needs no bits), otherwise
``<B 1>`` and the entropy stream (mode byte, DHT-style table of 16 + ``k`` bytes for
``k`` symbols, codes; or 8-bit symbols when that is shorter), then the extra bits.

Bound: the mean code length ``L`` of the symbols lies in ``[H, H + 1)`` for the
symbols' zeroth-order entropy ``H`` (libjpeg's reserved all-ones code and the 16-bit
limit cost a little over the unconstrained optimum, never the bound).
"""

from __future__ import annotations

import numpy as np

from cimcodec.golden.codec import entropy
from cimcodec.golden.lossless import symbols as alphabet
from cimcodec.golden.lossless.base import Coder, Cost, Reader

CONSTANT, CODED = 0, 1


class Huffman(Coder):
    name = "huffman"
    what = "A Huffman stream"
    cost = Cost(2, "1",
                "the canonical table: 16 length counts + k <= 256 symbols (16 + k bytes), "
                "16 code comparators or a 2**16-entry lookup, and an extra-bit shifter")

    def encode_values(self, v: np.ndarray) -> bytes:
        header, symbols, extra = alphabet.to_symbols(v)
        out = header
        if int(symbols.min()) == int(symbols.max()):
            out += bytes([CONSTANT, int(symbols[0])])
        else:
            out += bytes([CODED]) + entropy.encode(symbols, huffman=True, width=8)
        return out + extra

    def decode_values(self, r: Reader, n: int) -> np.ndarray:
        mode, base = alphabet.read_header(r)
        kind = r.byte()
        if kind == CONSTANT:
            symbols = np.full(n, r.byte(), dtype=np.int64)
        elif kind == CODED:
            if n > 8 * (len(r.data) - r.pos):
                raise r.fail("is truncated")
            symbols, r.pos = entropy.decode(r.data, n, r.pos)
            symbols = symbols.astype(np.int64)          # the stream's uint8 symbols
        else:
            raise r.fail(f"has the unknown kind {kind}")
        extra = r.take(alphabet.extra_bytes(symbols))
        return alphabet.from_symbols(mode, base, symbols, extra, r)


ALGORITHMS = (Huffman(),)
