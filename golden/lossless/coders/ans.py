"""Asymmetric numeral systems (range ANS) with the empirical symbol frequencies, by
``constriction`` (its default ``AnsCoder``: 64-bit state, 32-bit words, probabilities
quantized to 24 bits).

Stream: ``varint n``; when ``n > 0``: the value mapping of :mod:`..symbols`, ``varint
k`` (distinct symbols); ``k == 1``: that symbol (``<B>``), no payload; otherwise the
``k`` symbols in increasing order, each as a varint (the first absolute, then the
difference to the previous one) followed by its count (varint, summing to ``n``), then
``varint W`` and ``W`` little-endian 32-bit words of ANS data, then the extra bits.

The decoder rebuilds the same categorical model from the counts (``constriction``'s
``Categorical(counts / n, perfect=False)`` is deterministic), decodes ``n`` symbols
and checks that the words are used up. The payload is within a few words of ``n``
times the symbols' zeroth-order entropy.
"""

from __future__ import annotations

import numpy as np

from cimcodec.golden.lossless import symbols as alphabet
from cimcodec.golden.lossless.base import Coder, Cost, Reader, varint


def _model(counts: np.ndarray):
    import constriction

    p = counts.astype(np.float64) / float(counts.sum())
    return constriction.stream.model.Categorical(p, perfect=False)


def code(symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(words, present, counts)``: the ANS words of ``symbols`` (two or more distinct)
    under their empirical model, the distinct symbols in increasing order and their
    counts."""
    import constriction

    present, index, counts = np.unique(symbols, return_inverse=True, return_counts=True)
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(index.astype(np.int32).reshape(-1), _model(counts))
    return coder.get_compressed().astype("<u4"), present, counts


class Ans(Coder):
    name = "ans"
    what = "An ANS stream"
    cost = Cost(3, "1",
                "a 64-bit state, a 32-bit word input, a multiplier, k <= 256 frequencies "
                "and cumulative frequencies of 24 bits, a slot-to-symbol search")

    def encode_values(self, v: np.ndarray) -> bytes:
        header, symbols, extra = alphabet.to_symbols(v)
        out = bytearray(header)
        if int(symbols.min()) == int(symbols.max()):
            return bytes(out + varint(1)) + bytes([int(symbols[0])]) + extra
        words, present, counts = code(symbols)
        out += varint(present.size)
        for s, prev, c in zip(present, np.concatenate([[0], present[:-1]]), counts):
            out += varint(int(s - prev)) + varint(int(c))
        return bytes(out) + varint(words.size) + words.tobytes() + extra

    def decode_values(self, r: Reader, n: int) -> np.ndarray:
        import constriction

        mode, base = alphabet.read_header(r)
        k = r.varint(256)
        if k == 0:
            raise r.fail("lists no symbol")
        if k == 1:
            symbols = np.full(n, r.byte(), dtype=np.int64)
        else:
            present, counts, s = np.zeros(k, np.int64), np.zeros(k, np.int64), 0
            for i in range(k):
                step = r.varint(255)
                if i and not step:
                    raise r.fail("lists a symbol twice")
                s += step
                present[i], counts[i] = s, r.varint(n)
            if s > 255 or counts.min() < 1 or int(counts.sum()) != n:
                raise r.fail("has a bad frequency table")
            # At most 24 bits a symbol (the model's precision) and two words of state.
            words = r.varint(n + 2)
            payload = np.frombuffer(r.take(4 * words), dtype="<u4").astype(np.uint32)
            try:
                coder = constriction.stream.stack.AnsCoder(payload)
                index = coder.decode(_model(counts), n)
            except ValueError:
                raise r.fail("holds invalid ANS data") from None
            if not coder.is_empty():
                raise r.fail("holds ANS data beyond its symbols")
            symbols = present[index.astype(np.int64)]
        extra = r.take(alphabet.extra_bytes(symbols))
        return alphabet.from_symbols(mode, base, symbols, extra, r)


ALGORITHMS = (Ans(),)
