"""Huffman tables of the baseline JPEG codec: canonical codes (ITU T.81 Annex C),
length-limited optimal tables (Annex K.2, as libjpeg's ``jpeg_gen_optimal_table``),
the standard luminance tables (Annex K.3) and the decoder lookup (Annex F.2.2.3).

A table is given, as in a DHT segment, by ``BITS`` and ``HUFFVAL``: ``bits[L-1]`` is the
number of codes of length ``L`` (1..16) and ``huffval`` lists the symbols in order of
increasing code length.

Canonical codes (Annex C, Figures C.1 and C.2)
----------------------------------------------
``HUFFSIZE`` repeats each length ``L`` ``bits[L-1]`` times. Codes are consecutive
integers within a length, and moving to the next length doubles the code::

    code = 0
    for L in 1..16:
        for each of the bits[L-1] symbols of length L:  HUFFCODE[k] = code; code += 1
        (require code < 2**L)     # libjpeg's check: no code may be all ones
        code <<= 1

Symbol ``huffval[k]`` is sent as the ``HUFFSIZE[k]`` low bits of ``HUFFCODE[k]``, most
significant bit first. The check rejects both over-subscribed ``BITS`` (more codes than
a length can hold, Kraft sum above 1) and a table that uses the all-ones code word,
exactly as libjpeg's ``jpeg_make_d_derived_tbl`` does.

Decoder lookup (Annex F.2.2.3, Figure F.15)
-------------------------------------------
For each length ``L`` with codes, ``VALPTR[L]`` is the index in ``huffval`` of its first
symbol, ``MINCODE[L]`` its first code and ``MAXCODE[L]`` its last code;
``MAXCODE[L] = -1`` when ``bits[L-1] == 0``. Decoding (Figure F.16) reads bits MSB
first, ``code = bit`` then ``code = 2*code + bit`` while ``code > MAXCODE[L]``; the
symbol is ``huffval[VALPTR[L] + code - MINCODE[L]]``, and a code longer than 16 bits is
not in the table.

Optimal tables (:meth:`HuffmanTable.from_frequencies`)
------------------------------------------------------
libjpeg's procedure, with an extra pseudo-symbol 256 of frequency 1:

1. Huffman merging: repeatedly take the two smallest non-zero frequencies ``c1`` (the
   smallest; the largest symbol number on ties) and ``c2`` (the next smallest, again the
   largest symbol on ties), add ``freq[c2]`` to ``freq[c1]``, zero ``freq[c2]`` and
   increment the code size of every symbol in both subtrees.
2. ``bits[L]`` counts the symbols of size ``L``. For ``L`` from the largest size down to
   17, while ``bits[L] > 0``: find the largest ``j <= L - 2`` with ``bits[j] > 0``, then
   ``bits[L] -= 2; bits[L-1] += 1; bits[j+1] += 2; bits[j] -= 1`` (Annex K.2 Figure K.3).
3. Remove the pseudo-symbol: decrement ``bits`` at the largest length in use. Because
   symbol 256 sorts last in that length, no real symbol gets the all-ones code.
4. ``huffval`` lists symbols 0..255 with non-zero frequency by (unadjusted) code size,
   then by symbol value.

libjpeg stops with an error when a code size exceeds 32 (frequencies bounded by image
sizes never do that); here sizes of any depth are adjusted, otherwise the tables are
the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from cimcodec.golden.errors import CimcodecError

MAX_CODE_LENGTH = 16
MAX_SYMBOLS = 256


def _check_table(bits, huffval) -> None:
    if len(bits) != MAX_CODE_LENGTH or any(b < 0 for b in bits):
        raise CimcodecError(
            f"Huffman BITS must be 16 non-negative counts, not {list(bits)!r}."
        )
    total = sum(bits)
    if total > MAX_SYMBOLS:
        raise CimcodecError(f"Huffman table has {total} symbols, more than 256.")
    if total != len(huffval):
        raise CimcodecError(
            f"Huffman BITS count {total} codes but HUFFVAL lists {len(huffval)} symbols."
        )
    if any(not 0 <= v <= 255 for v in huffval):
        raise CimcodecError("Huffman symbols must be bytes 0..255.")
    code = 0
    for length, count in enumerate(bits, start=1):
        code += count
        if code >= 1 << length:
            raise CimcodecError(
                f"Huffman BITS hold too many codes of length {length} (the all-ones "
                f"code or more would be used)."
            )
        code <<= 1


@dataclass(frozen=True)
class HuffmanTable:
    """One Huffman table as ``BITS`` (16 counts) and ``HUFFVAL`` (symbols).

    Attributes
    ----------
    bits : tuple of 16 int
        ``bits[L-1]``: number of codes of length ``L``.
    huffval : tuple of int
        Symbols (bytes) in order of increasing code length.

    Raises
    ------
    CimcodecError
        More than 256 symbols, ``BITS`` not summing to ``len(huffval)``, a symbol
        outside 0..255, or ``BITS`` that over-subscribe a length or need the all-ones
        code (module docstring).
    """

    bits: tuple[int, ...]
    huffval: tuple[int, ...]

    def __post_init__(self):
        bits = tuple(int(b) for b in self.bits)
        huffval = tuple(int(v) for v in self.huffval)
        _check_table(bits, huffval)
        object.__setattr__(self, "bits", bits)
        object.__setattr__(self, "huffval", huffval)

    @classmethod
    def from_frequencies(cls, freq) -> HuffmanTable:
        """The optimal length-limited table for symbol counts ``freq`` (256 counts),
        computed by libjpeg's ``jpeg_gen_optimal_table`` (module docstring)."""
        freq = [int(f) for f in freq]
        if len(freq) != MAX_SYMBOLS or any(f < 0 for f in freq):
            raise CimcodecError("Huffman frequencies must be 256 non-negative counts.")
        if not any(freq):
            raise CimcodecError("Huffman frequencies are all zero: no symbol to code.")
        freq = freq + [1]  # pseudo-symbol 256 reserves the all-ones code word
        codesize = [0] * 257
        others = [-1] * 257
        while True:
            c1 = c2 = -1
            for i in range(257):  # smallest non-zero count, largest symbol on ties
                if freq[i] and (c1 < 0 or freq[i] <= freq[c1]):
                    c1 = i
            for i in range(257):  # next smallest
                if freq[i] and i != c1 and (c2 < 0 or freq[i] <= freq[c2]):
                    c2 = i
            if c2 < 0:
                break
            freq[c1] += freq[c2]
            freq[c2] = 0
            codesize[c1] += 1
            while others[c1] >= 0:
                c1 = others[c1]
                codesize[c1] += 1
            others[c1] = c2
            codesize[c2] += 1
            while others[c2] >= 0:
                c2 = others[c2]
                codesize[c2] += 1

        longest = max(codesize)
        bits = [0] * (max(longest, MAX_CODE_LENGTH) + 1)
        for size in codesize:
            if size:
                bits[size] += 1
        for i in range(longest, MAX_CODE_LENGTH, -1):
            while bits[i] > 0:
                j = i - 2
                while bits[j] == 0:
                    j -= 1
                bits[i] -= 2
                bits[i - 1] += 1
                bits[j + 1] += 2
                bits[j] -= 1
        i = MAX_CODE_LENGTH
        while bits[i] == 0:
            i -= 1
        bits[i] -= 1
        huffval = sorted((s for s in range(MAX_SYMBOLS) if codesize[s]),
                         key=lambda s: (codesize[s], s))
        return cls(tuple(bits[1:MAX_CODE_LENGTH + 1]), tuple(huffval))

    def sizes(self) -> list[int]:
        """``HUFFSIZE``: the code length of each symbol of ``huffval`` (Figure C.1)."""
        return [length for length, count in enumerate(self.bits, start=1)
                for _ in range(count)]

    def codes(self) -> list[int]:
        """``HUFFCODE``: the code of each symbol of ``huffval`` (Figure C.2)."""
        out, code = [], 0
        for count in self.bits:
            out += range(code, code + count)
            code = (code + count) << 1
        return out

    def encoder(self) -> dict[int, tuple[int, int]]:
        """``EHUFCO``/``EHUFSI`` (Figure C.3): symbol -> ``(code, length)``. A symbol
        listed twice keeps its first (shortest) code."""
        out = {}
        for symbol, code, size in zip(self.huffval, self.codes(), self.sizes()):
            out.setdefault(symbol, (code, size))
        return out

    def decoder(self) -> DecoderTable:
        """The Annex F.2.2.3 lookup of this table."""
        return DecoderTable(self)

    def to_bytes(self) -> bytes:
        """The table as in a DHT segment: 16 ``BITS`` bytes then ``HUFFVAL``."""
        return bytes(self.bits) + bytes(self.huffval)


class DecoderTable:
    """``MAXCODE``, ``MINCODE`` and ``VALPTR`` of a :class:`HuffmanTable` (Figure F.15),
    indexed by code length 1..16 (index 0 unused)."""

    def __init__(self, table: HuffmanTable):
        self.huffval = table.huffval
        self.maxcode = [-1] * (MAX_CODE_LENGTH + 1)
        self.mincode = [0] * (MAX_CODE_LENGTH + 1)
        self.valptr = [0] * (MAX_CODE_LENGTH + 1)
        codes = table.codes()
        k = 0
        for length, count in enumerate(table.bits, start=1):
            if count:
                self.valptr[length] = k
                self.mincode[length] = codes[k]
                self.maxcode[length] = codes[k + count - 1]
                k += count

    def lookup(self, window: int) -> tuple[int, int] | None:
        """Decode the code at the top of ``window``, the next 16 bits MSB first
        (Figure F.16): ``(symbol, code length)``, or ``None`` when no code of 16 bits
        or fewer matches."""
        maxcode = self.maxcode
        for length in range(1, MAX_CODE_LENGTH + 1):
            code = window >> (MAX_CODE_LENGTH - length)
            if code <= maxcode[length]:
                index = self.valptr[length] + code - self.mincode[length]
                return self.huffval[index], length
        return None


#: Annex K.3, Table K.3: luminance DC differences.
STD_DC_LUMINANCE = HuffmanTable(
    (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0),
    tuple(range(12)),
)

#: Annex K.3, Table K.5: luminance AC coefficients.
STD_AC_LUMINANCE = HuffmanTable(
    (0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D),
    (
        0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12,
        0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
        0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08,
        0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52, 0xD1, 0xF0,
        0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16,
        0x17, 0x18, 0x19, 0x1A, 0x25, 0x26, 0x27, 0x28,
        0x29, 0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39,
        0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
        0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59,
        0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
        0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79,
        0x7A, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
        0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98,
        0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7,
        0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6,
        0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5,
        0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4,
        0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE1, 0xE2,
        0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA,
        0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8,
        0xF9, 0xFA,
    ),
)
