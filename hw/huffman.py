"""Canonical Huffman decoder of baseline JPEG: tables built in hardware from DHT
payloads, one symbol with its extra (EXTEND) bits per clock.

Reference models: :mod:`golden.jpeg.huffman` (``BITS``/``HUFFVAL``, canonical codes, the
Annex F.2.2.3 lookup) and :mod:`golden.blocks.huffman` (what the block emits for a whole
scan: symbols, extra bits, block grammar, restart intervals, the error).
"""

import operator
from functools import reduce

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from cimcodec.golden.blocks.huffman import (
    BLOCK_SIZE,
    MAX_EXTRA,
    HuffmanShape,
)
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg.huffman import MAX_CODE_LENGTH, MAX_SYMBOLS

#: A ring entry: ``LIMIT`` (16 bits, only ``L`` of them used) and ``OFFSET`` (8 bits).
_ENTRY = 16 + 8



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
        byte). One byte per clock. A table's first byte waits until the decoder has
        been idle for a clock (no symbol offered, no bits or table byte taken) or
        has tables to copy, and not while it copies them; decoding pauses until
        the tables are copied again (see Tables).
    bits : In(stream.Signature(bits_layout(shape)))
        The scan's bits, after byte un-stuffing and without markers. A chunk with
        ``first`` set starts a restart interval: it waits until the buffered bits hold
        no complete symbol (the decoder idle for a clock, as for a table), then
        replaces them (the padding of the previous interval) and the next symbol is a
        DC category. An offered chunk starts the copy of the scan's tables when a
        table was built or a slot changed since the last copy; ``ready`` stays low
        for its 16 clocks.
    sym : Out(stream.Signature(symbol_layout()))
        :func:`golden.blocks.huffman.scan_symbols`, symbol for symbol.
    dc_slot, ac_slot : In(range(shape.tables))
        The table slots of the scan's DC and AC tables; hold them while decoding (a
        change stops decoding until the tables are copied again).
    error : Out(1)
        A code of 16 bits is in none of its table's lengths. Decoding stops (``bits``
        and ``sym`` stay idle) and the flag holds until reset.
    table_error : Out(1)
        A table body that is not a valid DHT table: ``last`` before the 16th count,
        ``HUFFVAL`` longer or shorter than the counts say, more than 256 symbols, or
        counts that over-subscribe a length or need an all-ones code
        (:class:`golden.jpeg.huffman.HuffmanTable`'s checks). Holds until reset.

    Tables: each byte of ``BITS`` gives one code length's pair, ``LIMIT[L]`` (the
    first code of length ``L`` past its codes, ``MAXCODE[L] + 1``, or the first code
    of the length when it has none) and ``OFFSET[L] = VALPTR[L] - MINCODE[L]`` modulo
    256, and shifts it into the tail of its slot's ring of 16 pairs; ``HUFFVAL`` goes
    to a memory of 256 bytes per slot. The decoder compares with copies of the DC and
    AC slots' pairs, made in 16 clocks by rotating every ring once round (the heads
    of the two slots shift into the copies): no register is chosen by slot and
    length, which cost a 4-way multiplexer on each of 528 bits. The copy runs when a
    chunk is offered after a table was built or a slot changed, so once per scan in
    a decompressor. A table body that ends before its 16th count (``table_error``)
    leaves its slot's ring turned.

    Decoding: a buffer of ``reserve_bits + chunk_bits`` bits; its top 16 bits are
    compared with all 16 ``LIMIT`` registers at once, and the shortest length ``L``
    whose code is below its limit (the same as Annex F's first ``code <= MAXCODE[L]``:
    when ``L`` has no codes, a code below its limit has a prefix that matched earlier)
    gives the symbol at ``HUFFVAL[code + OFFSET[L]]`` (asynchronous read; the 16 sums
    are formed beside the compares and the shortest length's is picked one-hot); the
    ``size`` bits after the code are the extra bits. A transfer on ``sym`` removes
    ``L + size`` bits, one symbol per clock: the buffer is shifted past the code
    (beside the table read) and then past ``size`` bits, and that is the
    only path from the buffer back into it through the table. The buffer takes a
    chunk whenever it holds at most ``reserve_bits``, written below its valid bits
    before the shift. With full 32-bit chunks every clock and ``reserve_bits = 64``
    it never runs dry: a symbol takes at most 31 bits, so after the first chunk the
    buffer always holds at least 32 and ``sym`` offers one symbol per clock whatever
    the codes (a restart interval costs two clocks: its ``first`` chunk enters once
    the decoder was idle for a clock after the last symbol).

    Latency: a symbol is offered in the clock after the chunk holding its last bit when
    the buffer then holds 15 bits beyond its code (``roomy``), one clock later otherwise.

    Stream rules: ``sym.valid`` never waits for ``sym.ready``. ``sym.payload`` is a
    function of registers that change on a transfer; chunks append bits only after the
    ones the offered symbol reads, so it holds while ``valid``. ``bits.ready`` and
    ``table.ready`` depend on registers and on the offered chunk's ``first`` only.
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
        width = shape.reserve_bits + chunk
        lengths = range(1, MAX_CODE_LENGTH + 1)

        # Each slot's 16 (LIMIT, OFFSET) pairs sit in a ring of registers, length 1 at
        # the head: a table's BITS bytes shift their pairs in at the tail, and a copy
        # rotates every ring once round, so no register is ever chosen by length and
        # slot (see ``copies`` below).
        ring = [[Signal(_ENTRY, name=f"ring{s}_{n}") for n in lengths] for s in range(slots)]
        # One value memory per slot, so the slot (known early) picks among four reads
        # at the end rather than widening every read's address.
        value_writes, value_reads = [], []
        for s in range(slots):
            m.submodules[f"huffval{s}"] = huffval = Memory(shape=8, depth=MAX_SYMBOLS, init=[])
            value_writes.append(huffval.write_port())
            value_reads.append(huffval.read_port(domain="comb"))

        stuck = Signal()                                # see the bit buffer below

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

        copying = Signal()                              # see the copies below
        dirty = Signal()
        m.d.comb += t.ready.eq(~copying & (building | dirty | stuck))
        shift_in = Signal(range(slots + 1))             # the ring taking a pair, or none
        m.d.comb += shift_in.eq(slots)
        with m.If(t.valid & t.ready):
            m.d.sync += [building.eq(~t.payload.last), b_slot.eq(cur_slot),
                         b_counts.eq(counts_after), b_total.eq(total_after),
                         b_values.eq(values_after)]
            with m.If(is_count):
                m.d.sync += b_code.eq(next_code)
                m.d.comb += shift_in.eq(cur_slot)
                for n in lengths:
                    with m.If((cur_counts == n - 1) & (next_code >= (1 << n))):
                        m.d.sync += table_error.eq(1)
            with m.Else():
                for s, port in enumerate(value_writes):
                    m.d.comb += [port.addr.eq(cur_values[:8]), port.data.eq(t.payload.data),
                                 port.en.eq((cur_values < MAX_SYMBOLS) & (cur_slot == s))]
            with m.If(t.payload.last & ((counts_after != MAX_CODE_LENGTH)
                                        | (values_after != total_after)
                                        | (total_after > MAX_SYMBOLS))):
                m.d.sync += table_error.eq(1)

        # ---- Lookup of the symbol at the top of the bit buffer. Every path that feeds
        # back into ``buf`` is: compare the window with the limits (carry chains), pick
        # the shortest length (priority), read the value table at the index added for
        # that length ahead of time, and shift by the value's ``size``; the shift by the
        # code length runs beside the table read, and everything else (the refill, the
        # take decision, the table and restart handshakes) is off that path.
        buf = Signal(width)                             # next bit at the MSB, zeros below
        count = Signal(range(width + 1))                # valid bits in buf
        dc = Signal(init=1)                             # next symbol is a DC category
        index = Signal(range(BLOCK_SIZE + 16))          # coefficient index in the block
        error = Signal()
        slot = Mux(dc, self.dc_slot, self.ac_slot)
        # The scan's DC and AC tables are copies of their slots' rings: the window is
        # compared with both sets and ``dc`` picks the result, so no slot multiplexer
        # sits before the compares. A copy takes 16 clocks (every ring rotates once, the
        # copies shift in the DC and AC slots' heads); it starts when a chunk of bits is
        # offered and the copies are ``dirty``: a table was built, or a slot changed,
        # since the last. Decoding waits for it.
        copied = [Signal(range(slots), name="copied_dc"), Signal(range(slots), name="copied_ac")]
        step = Signal(range(MAX_CODE_LENGTH))
        new_slots = (self.dc_slot != copied[0]) | (self.ac_slot != copied[1])
        stale = Signal(init=1)                          # a table built since the last copy
        m.d.comb += dirty.eq(stale | new_slots)
        new_pair = Cat(next_code[:MAX_CODE_LENGTH], (cur_total - first_code)[:8])
        copies = {}
        for kind, which in (("dc", self.dc_slot), ("ac", self.ac_slot)):
            copies[kind] = [Signal(_ENTRY, name=f"{kind}_pair{n}") for n in lengths]
            with m.If(copying):
                m.d.sync += [a.eq(b) for a, b in zip(copies[kind], copies[kind][1:])]
                m.d.sync += copies[kind][-1].eq(Array(r[0] for r in ring)[which])
        for s_, r in enumerate(ring):
            with m.If(copying | (shift_in == s_)):
                m.d.sync += [a.eq(b) for a, b in zip(r, r[1:])]
                m.d.sync += r[-1].eq(Mux(copying, r[0], new_pair))
        with m.If(t.valid & t.ready & t.payload.last):
            m.d.sync += stale.eq(1)
        with m.If(copying):
            m.d.sync += step.eq(step + 1)
            with m.If(step == MAX_CODE_LENGTH - 1):
                m.d.sync += copying.eq(0)
        with m.Elif(dirty & ~building & self.bits.valid & ~error):
            m.d.sync += [copying.eq(1), step.eq(0), stale.eq(0),
                         copied[0].eq(self.dc_slot), copied[1].eq(self.ac_slot)]
        limits = {k: [c[:n] for n, c in zip(lengths, v)] for k, v in copies.items()}
        offsets = {k: [c[MAX_CODE_LENGTH:] for c in v] for k, v in copies.items()}
        window = buf[width - MAX_CODE_LENGTH:]
        below = Signal(MAX_CODE_LENGTH)                 # bit n-1: the n-bit code is below LIMIT[n]
        pick = Signal(MAX_CODE_LENGTH)                  # one-hot: the shortest such length
        below_dc = Cat(window[MAX_CODE_LENGTH - n:] < limits["dc"][n - 1] for n in lengths)
        below_ac = Cat(window[MAX_CODE_LENGTH - n:] < limits["ac"][n - 1] for n in lengths)
        m.d.comb += below.eq(Mux(dc, below_dc, below_ac))
        m.d.comb += pick.eq(below & ~_any_below(below))
        found = below.any()

        def one_hot(values):
            """The value of the picked length (an AND-OR, no priority chain)."""
            return reduce(operator.or_, (Mux(pick[n - 1], v, 0) for n, v in zip(lengths, values)))

        # The 16 sums are separate (kept) signals, so Yosys does not share one adder
        # behind the pick.
        sums = []
        for n in lengths:
            total = Signal(8, name=f"index{n}", attrs={"keep": 1})
            m.d.comb += total.eq(window[MAX_CODE_LENGTH - n:][:8]
                                 + Mux(dc, offsets["dc"][n - 1], offsets["ac"][n - 1]))
            sums.append(total)
        value_index = Signal(8)
        m.d.comb += value_index.eq(one_hot(sums))
        length = Signal(range(MAX_CODE_LENGTH + 1))
        m.d.comb += length.eq(one_hot(Const(n, len(length)) for n in lengths))
        room = Signal(range(width + 1))                 # bits after the code (when it fits)
        m.d.comb += room.eq(one_hot((count - n)[:len(room)] for n in lengths))
        fits = Signal()                                 # the code itself is in the buffer
        m.d.comb += fits.eq(one_hot(count >= n for n in lengths))
        roomy = Signal()                                # so are any 15 extra bits after it
        m.d.comb += roomy.eq(one_hot(count >= n + MAX_EXTRA for n in lengths))
        m.d.comb += [port.addr.eq(value_index) for port in value_reads]
        symbol = Array(port.data for port in value_reads)[slot]
        size = symbol[:4]
        halted = building | copying | dirty | error
        decodable = found & fits & (size <= room)
        # Whether the symbol is complete is known before the table read when the buffer
        # is ``roomy``; otherwise (the end of an interval, a stalled input) it is
        # registered in ``ok`` and used a clock later, when ``checked`` says nothing
        # changed since. So no path runs from the table read into the take decision.
        checked = Signal(init=1)                        # (after reset: empty)
        ok = Signal()
        m.d.comb += stuck.eq(checked & ~ok)

        # The buffer with this clock's chunk below its valid bits, and that shifted past
        # the code (beside the table read) then past the extra bits.
        b = self.bits
        top_bits = b.payload.data & ~(Const((1 << chunk) - 1, chunk) >> b.payload.count)
        aligned = Cat(Const(0, width - chunk), top_bits)
        refill = Signal()
        m.d.comb += [
            b.ready.eq(~halted & Mux(b.payload.first, stuck, count <= width - chunk)),
            refill.eq(b.valid & b.ready & ~b.payload.first),
        ]
        filled = Signal(width)
        m.d.comb += filled.eq(buf | Mux(refill, aligned >> count, 0))
        past_code = Signal(width)
        m.d.comb += past_code.eq((filled << length)[:width])
        past_extra = Signal(width)
        m.d.comb += past_extra.eq((past_code << size)[:width])
        after = past_code[width - MAX_EXTRA:]

        s = self.sym
        next_index = index + symbol[4:] + 1
        # The block ends when index + run + 1 reaches 64: ``run >= cap`` with ``cap``
        # from the index register, so no adder follows the table read there.
        cap = Signal(5)
        m.d.comb += cap.eq(Mux(index >= BLOCK_SIZE - 1 - 16, BLOCK_SIZE - 1 - index, 16))
        m.d.comb += [
            s.valid.eq(~halted & found & (roomy | (checked & ok))),
            s.payload.symbol.eq(symbol),
            s.payload.extra.eq(after >> (MAX_EXTRA - size).as_unsigned()),
            s.payload.size.eq(size),
            s.payload.dc.eq(dc),
            s.payload.last.eq(~dc & ((symbol == 0) | (symbol[4:] >= cap))),
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
        # ``stuck``: nothing changed since the last clock, whose buffer held no complete
        # symbol; a table byte or a restart interval's first chunk waits for it.
        added = Mux(refill, b.payload.count, 0)
        m.d.sync += [
            checked.eq(~take & ~(b.valid & b.ready) & ~(t.valid & t.ready)
                       & ~halted),
            ok.eq(decodable),
        ]
        with m.If(b.valid & b.ready & b.payload.first):
            m.d.sync += [buf.eq(aligned), count.eq(b.payload.count), dc.eq(1), index.eq(0)]
        with m.Elif(take):
            m.d.sync += [buf.eq(past_extra), count.eq(room - size + added)]
        with m.Else():
            m.d.sync += [buf.eq(filled), count.eq(count + added)]

        m.d.comb += [self.error.eq(error), self.table_error.eq(table_error)]
        return m


def _any_below(bits: Value) -> Value:
    """Bit i set when any bit below i (not i itself) is set."""
    out = [Const(0, 1)]
    for i in range(1, len(bits)):
        out.append(bits[:i].any())
    return Cat(*out)
