"""Stream-level reference of :class:`hw.huffman.HuffmanDecoder`: the entropy-coded bits of
a scan split into Huffman symbols, each with the raw bits that follow it.

:mod:`golden.jpeg.huffman` defines the tables and the lookup of one code (Annex F.2.2.3);
this module fixes what the hardware emits for a whole scan, so the two can be compared
symbol for symbol. :func:`golden.jpeg.reference.decode_full` reads the same bits the same way
(the tests check that the coefficients rebuilt from these symbols are its own).

Symbols (:func:`scan_symbols`)
------------------------------
Each restart interval is read MSB first from its first bit, starting a new block. The
block grammar (T.81 F.2.2) chooses the table: the first symbol of a block is a DC
category ``t`` decoded with the DC table, the next ones are ``RS`` bytes decoded with
the AC table. Every symbol is followed by ``size = symbol & 15`` raw bits, ``extra``
(``RECEIVE(size)``, MSB first): for a DC category ``size = t`` (categories are 0..11),
for an AC symbol ``size = S``. A block ends (``last``) at EOB (``RS = 0x00``) or when
the coefficient index, 1 after the DC symbol and advanced by ``R + 1`` for every AC
symbol (16 for ``ZRL = 0xF0``), reaches 64; the next symbol is then a DC category.

Decoding stops in an interval when its remaining bits hold no complete symbol with its
extra bits (its padding: fewer than 8 one bits, never a code because no table uses an
all-ones code word). When 16 or more bits remain and no code of 16 bits or fewer
matches, the code is not in its table: decoding stops for good and ``error`` is set.

Invalid categories (DC above 11, AC ``S`` above 10, undefined ``(R, 0)``) are emitted
as they are; rejecting them is the coefficient decoder's job.
"""

from __future__ import annotations

from dataclasses import dataclass

from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg.huffman import MAX_CODE_LENGTH, HuffmanTable
from cimcodec.golden.jpeg.reference import SOS, _read_entropy, decode_full

#: Coefficients per block; a block ends when the coefficient index reaches it.
BLOCK_SIZE = 64


@dataclass(frozen=True)
class ScanSymbol:
    """One decoded symbol: the byte, its ``size`` extra bits ``extra``, whether it was
    decoded with the DC table (``dc``) and whether it ends its block (``last``)."""

    symbol: int
    extra: int
    size: int
    dc: bool
    last: bool


def scan_symbols(intervals, dc_table: HuffmanTable, ac_table: HuffmanTable
                 ) -> tuple[list[ScanSymbol], bool]:
    """Symbols of the un-stuffed restart intervals ``intervals`` (a list of bytes), and
    whether decoding stopped at a code absent from its table (module docstring)."""
    for table in (dc_table, ac_table):
        if not isinstance(table, HuffmanTable):
            raise CimcodecError(f"A Huffman table must be a HuffmanTable, not {table!r}.")
    decoders = {True: dc_table.decoder(), False: ac_table.decoder()}
    out = []
    for segment in intervals:
        value, nbits = int.from_bytes(bytes(segment), "big"), 8 * len(segment)
        pos, dc, index = 0, True, 0
        while True:
            remaining = nbits - pos
            rest = value & ((1 << remaining) - 1)
            if remaining >= MAX_CODE_LENGTH:
                window = rest >> (remaining - MAX_CODE_LENGTH)
            else:
                pad = MAX_CODE_LENGTH - remaining
                window = (rest << pad) | ((1 << pad) - 1)
            found = decoders[dc].lookup(window)
            if found is None:
                if remaining >= MAX_CODE_LENGTH:
                    return out, True
                break
            symbol, length = found
            size = symbol & 15
            if length + size > remaining:
                break
            extra = (rest >> (remaining - length - size)) & ((1 << size) - 1)
            pos += length + size
            was_dc = dc
            if dc:
                last, dc, index = False, False, 1
            else:
                index += (symbol >> 4) + 1
                last = symbol == 0x00 or index >= BLOCK_SIZE
                dc = last
            out.append(ScanSymbol(symbol, extra, size, was_dc, last))
    return out, False


def jpeg_scan(data: bytes) -> tuple[HuffmanTable, HuffmanTable, list[bytes]]:
    """The DC table, the AC table and the un-stuffed restart intervals of the scan of a
    baseline JPEG file that :func:`golden.jpeg.reference.decode_full` accepts."""
    decoded = decode_full(data)
    pos = 2
    while True:
        while data[pos] == 0xFF:
            pos += 1
        marker, length = data[pos], int.from_bytes(data[pos + 1:pos + 3], "big")
        pos += 1 + length
        if marker == SOS:
            break
    intervals, _, _ = _read_entropy(data, pos)
    return decoded.dc_table, decoded.ac_table, intervals


#: Range of the fast table's index width ``K`` (:attr:`HuffmanShape.fast_bits`).
MIN_FAST_BITS, MAX_FAST_BITS = 4, 12
#: Most bits a fast-table hit takes (code and extra bits): its shift fits in four bits,
#: so the hardware's loop shifts by at most 15. A short code with more extra bits is a
#: miss (on our weight files at K = 6 there are none; ``bench.huffman_fast``).
MAX_FAST_SHIFT = 15


def fast_hit(length: int, symbol: int, bits: int) -> bool:
    """Whether a symbol with a code of ``length`` bits takes the fast table's path
    with a ``bits``-bit index: the code is at most ``bits`` long and, with its
    ``symbol & 15`` extra bits, at most :data:`MAX_FAST_SHIFT`."""
    return length <= bits and length + (symbol & 15) <= MAX_FAST_SHIFT


@dataclass(frozen=True)
class FastEntry:
    """One entry of the fast table: ``hit`` when the first ``K`` bits start a code of at
    most ``K`` bits, ``L`` bits long, which decodes to ``symbol``; ``shift = L + (symbol &
    15)``, the bits the symbol takes with its extra bits (they end ``shift`` bits into
    the window). A miss has every field 0."""

    hit: bool
    symbol: int
    shift: int


def _fast_lookups(table: HuffmanTable, bits: int) -> list[tuple[int, int] | None]:
    """Annex F.16's lookup of every ``bits``-bit index followed by zeros: ``(symbol,
    length)`` or ``None`` (the all-ones prefix)."""
    if not isinstance(table, HuffmanTable):
        raise CimcodecError(f"A Huffman table must be a HuffmanTable, not {table!r}.")
    if isinstance(bits, bool) or not isinstance(bits, int) \
            or not MIN_FAST_BITS <= bits <= MAX_FAST_BITS:
        raise CimcodecError(f"Fast table index width must be an integer "
                            f"{MIN_FAST_BITS}..{MAX_FAST_BITS}, not {bits!r}.")
    decoder = table.decoder()
    return [decoder.lookup(index << (MAX_CODE_LENGTH - bits)) for index in range(1 << bits)]


def fast_table(table: HuffmanTable, bits: int) -> list[FastEntry]:
    """The one-lookup table of ``table`` for a ``bits``-bit index (``K``).

    Entry ``i`` describes every bit window whose first ``K`` bits are ``i`` (MSB first):
    Annex F.16's lookup of ``i`` followed by zeros finds the shortest length ``L`` whose
    code is at most ``MAXCODE[L]``; when ``L <= K`` that decision read only the first
    ``L`` bits, so it holds for every window that starts with ``i``, and the entry is a
    hit with that symbol when its shift is at most :data:`MAX_FAST_SHIFT`
    (:func:`fast_hit`). Otherwise (a longer code, more extra bits, or no code: the
    all-ones prefix) it is a miss, and the decoder takes its slow path (Annex F.16 on
    16 bits).
    """
    out = []
    for found in _fast_lookups(table, bits):
        if found is None or not fast_hit(found[1], found[0], bits):
            out.append(FastEntry(False, 0, 0))
        else:
            symbol, length = found
            out.append(FastEntry(True, symbol, length + (symbol & 15)))
    return out


#: Banks of a hardware fast table (by the low index bits): the fill writes a run of
#: identical entries this many at a time.
FILL_BANKS = 4


#: Clocks the hardware decoder spends on a symbol beyond the fast path's one when the
#: fast table misses (a code longer than ``K``, or a buffer too short to tell): the
#: compares are registered, then the value index, then the value memory's symbol.
#: With chunks of at most 15 bits (the decompressor's shape) a hit right after a
#: slow-path symbol waits one clock more: the fast tables' index is not moved by a
#: slow-path symbol and reloads from the shifted buffer first.
SLOW_PATH_CLOCKS = 3
#: Clocks a restart interval costs the hardware decoder: its first chunk enters once the
#: decoder has been idle for three clocks after the last symbol (the registered "nothing
#: decodable" check), one more to take it, and one for its second chunk, which joins
#: the buffer a clock after it is taken.
RESTART_CLOCKS = 5
#: Clocks from offering a scan's first chunk to taking it besides the table copy (16)
#: and the fast-table fills (:func:`fill_steps`): one to start the copy, three for the
#: last write to come through the slow path's registers and the write register, three
#: for the "nothing decodable" check.
START_CLOCKS = 7


def fill_steps(table: HuffmanTable, bits: int, banks: int = FILL_BANKS) -> int:
    """Clocks the hardware takes to fill the fast table of ``table``: it walks the
    indexes in order, and at an index that is a multiple of ``banks`` whose code has at
    most ``K - log2(banks)`` bits (so its run of ``2**(K - L)`` equal entries is
    aligned and at least ``banks`` long) it writes ``banks`` entries at once; otherwise
    one. (The code's length decides, hit or miss: a short code with too many extra
    bits for :data:`MAX_FAST_SHIFT` is a run of misses, written as fast.)"""
    wide = bits - (banks.bit_length() - 1)
    lengths = [None if found is None else found[1] for found in _fast_lookups(table, bits)]
    index = steps = 0
    while index < len(lengths):
        length = lengths[index]
        index += banks if index % banks == 0 and length is not None and length <= wide else 1
        steps += 1
    return steps


def fast_hits(intervals, dc_table: HuffmanTable, ac_table: HuffmanTable,
              bits: int) -> tuple[int, int]:
    """``(hits, symbols)``: how many of the scan's symbols (:func:`scan_symbols`) have
    a fast-table entry that is a hit (:func:`fast_hit`: codes of at most ``bits`` bits
    that take at most :data:`MAX_FAST_SHIFT` with their extra bits)."""
    symbols, _ = scan_symbols(intervals, dc_table, ac_table)
    lengths = {True: dc_table.encoder(), False: ac_table.encoder()}
    hits = sum(fast_hit(lengths[s.dc][s.symbol][1], s.symbol, bits) for s in symbols)
    return hits, len(symbols)


#: Widest extra-bit field: ``size = symbol & 15``.
MAX_EXTRA = 15
#: Most bits one symbol takes: a 16-bit code and 15 extra bits.
MAX_SYMBOL_BITS = MAX_CODE_LENGTH + MAX_EXTRA


@dataclass(frozen=True)
class HuffmanShape:
    """Elaboration-time sizes of :class:`HuffmanDecoder`.

    Attributes
    ----------
    tables : int
        Table slots, 2..4 (baseline JPEG: two DC and two AC tables at most; one scan of
        one component uses one of each).
    chunk_bits : int
        Width of the ``bits`` input, 1..32 bits per transfer.
    reserve_bits : int
        The decoder takes a chunk whenever its bit buffer and the chunk waiting to join
        it hold at most ``reserve_bits + chunk_bits``, so the buffer is ``reserve_bits
        + 2 * chunk_bits`` wide; 31..64. With 64 and full 32-bit chunks every clock it
        does not run dry (a symbol takes at most 31 bits). The decompressor, whose
        entropy bytes arrive at one per clock, uses 32: its buffer is 48 bits.
    fast_bits : int
        ``K``, the index width of the one-lookup fast table (:func:`fast_table`),
        4..12: codes of at most ``K`` bits decode in one table read.
    """

    tables: int = 2
    chunk_bits: int = 32
    reserve_bits: int = 64
    fast_bits: int = 8

    def __post_init__(self):
        for name, low, top in (("tables", 2, 4), ("chunk_bits", 1, 32),
                               ("reserve_bits", MAX_SYMBOL_BITS, 64),
                               ("fast_bits", MIN_FAST_BITS, MAX_FAST_BITS)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= top:
                raise CimcodecError(
                    f"Huffman decoder {name.replace('_', ' ')} must be an integer "
                    f"{low}..{top}, not {value!r}."
                )

    @property
    def max_start_clocks(self) -> int:
        """The most clocks from offering a scan's first chunk to taking it: one to start
        the copy of the scan's tables, 16 to copy them, at most one per entry to fill
        the DC and AC fast tables (:func:`fill_steps` gives the exact count), and
        :data:`START_CLOCKS`."""
        return 16 + (2 << self.fast_bits) + START_CLOCKS
