"""LZMA2 (``lzma`` at its default preset 6, raw stream: no container header) of the byte
layout of :mod:`cimcodec.golden.lossless.bytewise`."""

from __future__ import annotations

import lzma

from cimcodec.golden.lossless.base import Cost, Reader
from cimcodec.golden.lossless.bytewise import ByteCoder

FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6}]


class Xz(ByteCoder):
    name = "lzma"
    what = "An LZMA stream"
    cost = Cost(4, "<= 1 byte (a binary range decoder: one bit decision a clock)",
                "a history window up to min(8 MiB, data size) and about 14 K 11-bit "
                "probabilities (lc=3, lp=0)")

    def compress(self, raw: bytes) -> bytes:
        return lzma.compress(raw, format=lzma.FORMAT_RAW, filters=FILTERS)

    def decompress(self, data: bytes, size: int, reader: Reader) -> bytes:
        d = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=FILTERS)
        try:
            out = d.decompress(data, size)
        except lzma.LZMAError:
            raise reader.fail("holds corrupt LZMA data") from None
        if len(out) == size and not d.eof:
            try:     # the end marker may follow the last byte
                more = d.decompress(b"", 1)
            except lzma.LZMAError:
                raise reader.fail("holds corrupt LZMA data") from None
            if more:
                raise reader.fail("holds more than its values")
        if not d.eof or d.unused_data:
            raise reader.fail("is truncated or holds more than its values")
        return out


ALGORITHMS = (Xz(),)
