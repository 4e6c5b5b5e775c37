"""Canonical Huffman decoder of baseline JPEG: tables built in hardware from DHT
payloads, one symbol with its extra (EXTEND) bits per clock.

Reference models: :mod:`golden.huffman` (``BITS``/``HUFFVAL``, canonical codes, the
Annex F.2.2.3 lookup) and :mod:`golden.huffman_stream` (what the block emits for a whole
scan: symbols, extra bits, block grammar, restart intervals, the error).
"""

from dataclasses import dataclass

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.errors import CimcodecError
from golden.huffman import MAX_CODE_LENGTH, MAX_SYMBOLS
from golden.huffman_stream import BLOCK_SIZE

#: Widest extra-bit field: ``size = symbol & 15``.
MAX_EXTRA = 15
#: Bits the buffer keeps beyond one chunk: a code and its extra bits need at most 31,
#: and a chunk is taken whenever at most this many are left (see HuffmanDecoder).
_RESERVE = 64


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
    """

    tables: int = 2
    chunk_bits: int = 32

    def __post_init__(self):
        for name, low, top in (("tables", 2, 4), ("chunk_bits", 1, 32)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= top:
                raise CimcodecError(
                    f"Huffman decoder {name.replace('_', ' ')} must be an integer "
                    f"{low}..{top}, not {value!r}."
                )


def table_layout(shape: HuffmanShape) -> data.StructLayout:
    """One DHT payload byte of the table in slot ``slot``; ``last`` on its final byte."""
    return data.StructLayout({"data": 8, "last": 1, "slot": range(shape.tables)})


def bits_layout(shape: HuffmanShape) -> data.StructLayout:
    """A chunk of un-stuffed entropy-coded bits: the ``count`` top bits of ``data``, the
    first one at the MSB (bits below them are ignored). ``first`` marks the first chunk
    of a restart interval."""
    return data.StructLayout({
        "data": shape.chunk_bits,
        "count": range(shape.chunk_bits + 1),
        "first": 1,
    })


def symbol_layout() -> data.StructLayout:
    """A decoded symbol, the ``size = symbol & 15`` raw bits after it (``extra``, right
    aligned), ``dc`` when decoded with the DC table, ``last`` on the end of a block."""
    return data.StructLayout({
        "symbol": 8,
        "extra": MAX_EXTRA,
        "size": range(MAX_EXTRA + 1),
        "dc": 1,
        "last": 1,
    })


class HuffmanDecoder(wiring.Component):
    """Decodes the entropy-coded data of a baseline scan into Huffman symbols.

    Parameters
    ----------
    shape : HuffmanShape

    Attributes
    ----------
    table : In(stream.Signature(table_layout(shape)))
        A DHT table body: 16 ``BITS`` counts then the ``HUFFVAL`` symbols (at most 256),
        ``last`` on its final byte, ``slot`` naming where it goes (read on the first
        byte). One byte per clock. A table is accepted only while no symbol is offered
        on ``sym``; decoding pauses until its last byte.
    bits : In(stream.Signature(bits_layout(shape)))
        The scan's bits, after byte un-stuffing and without markers. A chunk with
        ``first`` set starts a restart interval: it waits until the buffered bits hold
        no complete symbol, then replaces them (the padding of the previous interval)
        and the next symbol is a DC category.
    sym : Out(stream.Signature(symbol_layout()))
        :func:`golden.huffman_stream.scan_symbols`, symbol for symbol.
    dc_slot, ac_slot : In(range(shape.tables))
        The table slots of the scan's DC and AC tables; hold them while decoding.
    error : Out(1)
        A code of 16 bits is in none of its table's lengths. Decoding stops (``bits``
        and ``sym`` stay idle) and the flag holds until reset.
    table_error : Out(1)
        A table body that is not a valid DHT table: ``last`` before the 16th count,
        ``HUFFVAL`` longer or shorter than the counts say, more than 256 symbols, or
        counts that over-subscribe a length or need an all-ones code
        (:class:`golden.huffman.HuffmanTable`'s checks). Holds until reset.

    Tables: each byte of ``BITS`` sets one code length's registers, ``LIMIT[L]`` (the
    first code of length ``L`` past its codes, ``MAXCODE[L] + 1``, or the first code
    of the length when it has none) and ``OFFSET[L] = VALPTR[L] - MINCODE[L]`` modulo
    256; ``HUFFVAL`` goes to a memory of 256 bytes per slot.

    Decoding: a buffer of ``64 + chunk_bits`` bits; its top 16 bits are compared with
    all 16 ``LIMIT`` registers at once, and the shortest length ``L`` whose code is
    below its limit (the same as Annex F's first ``code <= MAXCODE[L]``: when
    ``L`` has no codes, a code below its limit has a prefix that matched earlier)
    gives the symbol at ``HUFFVAL[code + OFFSET[L]]`` (asynchronous read); the
    ``size`` bits after the code are the extra bits. A transfer on ``sym`` removes
    ``L + size`` bits, one symbol per clock. The buffer takes a chunk whenever it holds
    at most 64 bits. With full 32-bit chunks offered every clock it therefore never
    runs dry: a symbol takes at most 31 bits, so after the first chunk the buffer
    always holds at least 32 and ``sym`` offers one symbol per clock whatever the
    codes (restart intervals cost two clocks each: the ``first`` chunk enters only
    after the interval's last symbol left).

    Latency: a symbol is offered in the clock after the chunk holding its last bit.

    Stream rules: ``sym.valid`` never waits for ``sym.ready``. ``sym.payload`` is a
    function of registers that change on a transfer; chunks append bits only after the
    ones the offered symbol reads, so it holds while ``valid``. ``bits.ready`` and
    ``table.ready`` depend on state and on the offered chunk's ``first`` only.
    """

    def __init__(self, shape: HuffmanShape = HuffmanShape()):
        if not isinstance(shape, HuffmanShape):
            raise CimcodecError(f"Huffman decoder shape must be a HuffmanShape, not {shape!r}.")
        self._shape = shape
        super().__init__({
            "table": In(stream.Signature(table_layout(shape))),
            "bits": In(stream.Signature(bits_layout(shape))),
            "sym": Out(stream.Signature(symbol_layout())),
            "dc_slot": In(range(shape.tables)),
            "ac_slot": In(range(shape.tables)),
            "error": Out(1),
            "table_error": Out(1),
        })

    @property
    def shape(self) -> HuffmanShape:
        return self._shape

    def elaborate(self, platform):
        m = Module()
        shape = self._shape
        slots = shape.tables
        chunk = shape.chunk_bits
        width = _RESERVE + chunk
        lengths = range(1, MAX_CODE_LENGTH + 1)

        limit = [[Signal(n, name=f"limit{s}_{n}") for n in lengths] for s in range(slots)]
        offset = [[Signal(8, name=f"offset{s}_{n}") for n in lengths] for s in range(slots)]
        m.submodules.huffval = huffval = Memory(shape=8, depth=MAX_SYMBOLS * slots, init=[])
        value_write = huffval.write_port()
        value_read = huffval.read_port(domain="comb")

        # ---- Table build: one DHT byte per clock.
        building = Signal()
        b_slot = Signal(range(slots))
        b_counts = Signal(range(MAX_CODE_LENGTH + 1))   # BITS bytes received
        b_code = Signal(18)                             # code after the last length
        b_total = Signal(13)                            # symbols the counts announce
        b_values = Signal(13)                           # HUFFVAL bytes received
        table_error = Signal()
        t = self.table
        cur_slot = Mux(building, b_slot, t.payload.slot)
        cur_counts = Mux(building, b_counts, 0)
        cur_code = Mux(building, b_code, 0)
        cur_total = Mux(building, b_total, 0)
        cur_values = Mux(building, b_values, 0)
        is_count = cur_counts < MAX_CODE_LENGTH
        first_code = cur_code << 1                      # first code of this length
        next_code = first_code + t.payload.data
        counts_after = cur_counts + is_count
        total_after = Mux(is_count, cur_total + t.payload.data, cur_total)
        values_after = cur_values + ~is_count

        m.d.comb += t.ready.eq(building | ~self.sym.valid)
        with m.If(t.valid & t.ready):
            m.d.sync += [building.eq(~t.payload.last), b_slot.eq(cur_slot),
                         b_counts.eq(counts_after), b_total.eq(total_after),
                         b_values.eq(values_after)]
            with m.If(is_count):
                m.d.sync += b_code.eq(next_code)
                for n in lengths:
                    with m.If(cur_counts == n - 1):
                        with m.If(next_code >= (1 << n)):
                            m.d.sync += table_error.eq(1)
                        for s in range(slots):
                            with m.If(cur_slot == s):
                                m.d.sync += [limit[s][n - 1].eq(next_code),
                                             offset[s][n - 1].eq(cur_total - first_code)]
            with m.Else():
                m.d.comb += [value_write.addr.eq(Cat(cur_values[:8], cur_slot)),
                             value_write.data.eq(t.payload.data),
                             value_write.en.eq(cur_values < MAX_SYMBOLS)]
            with m.If(t.payload.last & ((counts_after != MAX_CODE_LENGTH)
                                        | (values_after != total_after)
                                        | (total_after > MAX_SYMBOLS))):
                m.d.sync += table_error.eq(1)

        # ---- Lookup of the symbol at the top of the bit buffer.
        buf = Signal(width)                             # next bit at the MSB, zeros below
        count = Signal(range(width + 1))                # valid bits in buf
        dc = Signal(init=1)                             # next symbol is a DC category
        index = Signal(range(BLOCK_SIZE + 16))          # coefficient index in the block
        error = Signal()
        slot = Mux(dc, self.dc_slot, self.ac_slot)
        window = buf[width - MAX_CODE_LENGTH:]
        found = Signal()
        length = Signal(range(MAX_CODE_LENGTH + 1))
        value_index = Signal(8)
        # A priority chain from length 1: the first length whose code is below its limit.
        for n in lengths:
            code = window[MAX_CODE_LENGTH - n:]
            code_limit = Array(limit[s][n - 1] for s in range(slots))[slot]
            code_offset = Array(offset[s][n - 1] for s in range(slots))[slot]
            with (m.If if n == 1 else m.Elif)(code < code_limit):
                m.d.comb += [found.eq(1), length.eq(n), value_index.eq(code + code_offset)]
        m.d.comb += value_read.addr.eq(Cat(value_index, slot))
        symbol = value_read.data
        size = symbol[:4]
        after = (buf << length)[width - MAX_EXTRA:width]
        needed = length + size
        decodable = found & (needed <= count)
        halted = building | error

        s = self.sym
        next_index = index + symbol[4:] + 1
        m.d.comb += [
            s.valid.eq(decodable & ~halted),
            s.payload.symbol.eq(symbol),
            s.payload.extra.eq(after >> (MAX_EXTRA - size).as_unsigned()),
            s.payload.size.eq(size),
            s.payload.dc.eq(dc),
            s.payload.last.eq(~dc & ((symbol == 0) | (next_index >= BLOCK_SIZE))),
        ]
        take = s.valid & s.ready
        with m.If(take):
            with m.If(dc):
                m.d.sync += [dc.eq(0), index.eq(1)]
            with m.Else():
                m.d.sync += index.eq(next_index)
                with m.If(s.payload.last):
                    m.d.sync += dc.eq(1)
        with m.If(~halted & ~found & (count >= MAX_CODE_LENGTH)):
            m.d.sync += error.eq(1)

        # ---- Bit buffer: remove the symbol taken, append the chunk below what is left.
        b = self.bits
        kept = Signal(range(width + 1))                 # bits left after the transfer
        consumed = Mux(take, needed, 0)
        m.d.comb += kept.eq(count - consumed)
        shifted = (buf << consumed)[:width]
        top_bits = b.payload.data & ~(Const((1 << chunk) - 1, chunk) >> b.payload.count)
        aligned = Cat(Const(0, width - chunk), top_bits)
        m.d.comb += b.ready.eq(~halted & Mux(b.payload.first, ~decodable,
                                             count <= width - chunk))
        with m.If(b.valid & b.ready & b.payload.first):
            m.d.sync += [buf.eq(aligned), count.eq(b.payload.count), dc.eq(1), index.eq(0)]
        with m.Elif(b.valid & b.ready):
            m.d.sync += [buf.eq(shifted | (aligned >> kept)), count.eq(kept + b.payload.count)]
        with m.Else():
            m.d.sync += [buf.eq(shifted), count.eq(kept)]

        m.d.comb += [self.error.eq(error), self.table_error.eq(table_error)]
        return m
