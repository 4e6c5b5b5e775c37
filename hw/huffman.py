"""Canonical Huffman decoder of baseline JPEG: tables built in hardware from DHT
payloads, one symbol with its extra (EXTEND) bits per clock through a one-lookup fast
table, three clocks more for codes longer than its index.

Reference models: :mod:`golden.jpeg.huffman` (``BITS``/``HUFFVAL``, canonical codes, the
Annex F.2.2.3 lookup) and :mod:`golden.blocks.huffman` (what the block emits for a whole
scan: symbols, extra bits, block grammar, restart intervals, the error).
"""

import operator
from functools import reduce

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from cimcodec.golden.blocks.huffman import (
    BLOCK_SIZE,
    FILL_BANKS,
    MAX_EXTRA,
    MAX_FAST_SHIFT,
    MAX_SYMBOL_BITS,
    HuffmanShape,
)
from cimcodec.golden.jpeg.huffman import MAX_CODE_LENGTH, MAX_SYMBOLS
from cimcodec.hw import quiet_if_unused, refuse

#: A ring entry: ``LIMIT`` (16 bits, only ``L`` of them used) and ``OFFSET`` (8 bits).
_ENTRY = 16 + 8



#: A fast-table entry (:class:`golden.blocks.huffman.FastEntry`).
FAST_ENTRY = data.StructLayout({
    "hit": 1,
    "symbol": 8,
    "shift": range(MAX_FAST_SHIFT + 1),
})


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
    leader : HuffmanDecoder, optional
        Another decoder of the same shape whose tables this one uses (see Followers).

    Attributes
    ----------
    table : In(stream.Signature(table_layout(shape)))
        A DHT table body: 16 ``BITS`` counts then the ``HUFFVAL`` symbols (at most 256),
        ``last`` on its final byte, ``slot`` naming where it goes (read on the first
        byte). One byte per clock. A table's first byte waits until the decoder has
        been idle for a clock (no symbol offered, no bits or table byte taken) with no
        chunk offered on ``bits``, or has tables to copy, and not while it copies them;
        decoding pauses until the tables are copied again (see Tables). (A ``DHT``
        after the scan data is valid. The scan's later intervals are then decoded with
        the scan's tables before it is built, provided their chunks are offered on
        ``bits`` by the time the table's first byte is: a decompressor queues them
        first, see hw.decompressor.)
    bits : In(stream.Signature(bits_layout(shape)))
        The scan's bits, after byte un-stuffing and without markers. A chunk with
        ``first`` set starts a restart interval: it waits until the buffered bits hold
        no complete symbol (the decoder idle for a clock, as for a table), then
        replaces them (the padding of the previous interval) and the next symbol is a
        DC category. An offered chunk starts the copy of the scan's tables when a
        table was built or a slot changed since the last copy; ``ready`` stays low
        for its 16 clocks and the fast-table fill that follows.
    sym : Out(stream.Signature(symbol_layout()))
        :func:`golden.blocks.huffman.scan_symbols`, symbol for symbol.
    dc_slot, ac_slot : In(range(shape.tables))
        The table slots of the scan's DC and AC tables; hold them while decoding (a
        change stops decoding until the tables are copied again). They are registered
        before use, so a change is seen a clock later: set them at least a clock
        before the scan's first chunk is offered.
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
    256, and shifts it into the tail of its slot's ring of 16 pairs a clock later (from
    registers; a copy never starts in a clock a table byte is taken); ``HUFFVAL`` goes
    to one memory, 256 bytes per slot. The decoder compares with copies of the DC and
    AC slots' pairs, made in 16 clocks by rotating every ring once round (the heads
    of the two slots shift into the copies): no register is chosen by slot and
    length, which cost a 4-way multiplexer on each of 528 bits. The copy runs when a
    chunk is offered after a table was built or a slot changed, so once per scan in
    a decompressor. A table body that ends before its 16th count (``table_error``)
    leaves its slot's ring turned.

    Decoding: a buffer of ``reserve_bits + 2 * chunk_bits`` bits. **Fast path**: its
    first ``K = shape.fast_bits`` bits index the fast table of the DC or AC table (the
    two tables share memories, ``dc`` the top address bit; :data:`FAST_ENTRY` entries,
    read asynchronously), which gives,
    for a code of at most ``K`` bits that takes at most
    :data:`golden.blocks.huffman.MAX_FAST_SHIFT` (15) bits with its extra bits, the
    symbol and the total shift ``L + size`` (code and extra bits); when the buffer holds
    ``K + 15`` bits or more (a condition on the count register alone) the symbol is
    offered at once, and a transfer shifts the buffer by the total shift. That is the
    only loop through the table: window, one table read, one shift, back to the buffer.
    The extra bits are cut beside it: they end ``shift`` bits into the buffer, so one
    right shift of its top 31 bits and a mask of ``size`` bits give them. **Slow path**:
    otherwise (a longer code, or a short buffer at the end of an interval) the top 16
    bits are compared with all 16 ``LIMIT`` registers at once, and the shortest length
    ``L`` whose code is below its limit (the same as Annex F's first ``code <=
    MAXCODE[L]``: when ``L`` has no codes, a code below its limit has a prefix that
    matched earlier) gives the value index ``code + OFFSET[L]``. The 16 compare results
    and the window are registered (``p_*``); in the next clock the shortest length's sum
    is picked one-hot (the 16 sums are formed beside the pick), and the index and ``L``
    are registered (``a_*``); in the next the value memory gives the symbol, and when
    the buffer held the code and its ``size`` extra bits at the lookup, the result is
    registered (``held``) and offered in the clock after. So no path runs from the
    buffer through the compares and the pick, or through the value memory, in one clock.
    The buffer takes a chunk whenever it and the staged chunk hold at most
    ``reserve_bits + chunk_bits``; the chunk waits a clock in a register and then joins
    the buffer below its valid bits before the shift, placed from registers beside the
    table read, so the loop's shifter reads registers only (and the table's shift). With
    chunks of at most 15 bits the fast tables' index is taken from the shifted buffer
    without the joining chunk (it is whole whenever a hit can be taken; see
    ``window_index``). With full 32-bit chunks every clock and ``reserve_bits = 64`` it
    does not run dry after an interval's first chunks: a symbol takes at most 31 bits,
    and ``sym`` offers one symbol per clock for the fast table's hits, four clocks for
    the rest (:data:`golden.blocks.huffman.SLOW_PATH_CLOCKS` more; with chunks of at
    most 15 bits a hit right after one waits a clock more, see ``stale_index``); a
    restart interval
    costs :data:`golden.blocks.huffman.RESTART_CLOCKS`: its ``first`` chunk enters once
    the decoder was idle for three clocks after the last symbol, and every later chunk
    joins the buffer a clock after it is taken (it waits in a register, ``stage``).

    Fast tables: :func:`golden.blocks.huffman.fast_table`, entry for entry (a miss is
    all zeros). They are filled after every copy of the scan's tables (see Tables), DC
    then AC, once per scan, by the slow path's lookup of the index followed by zeros:
    the entry is a hit when the length found is at most ``K``. The tables are
    ``FILL_BANKS`` memories by the low index bits, so a code of at most ``K - 2`` bits
    found at a multiple of four (its run of equal entries is aligned) is written four
    entries at once; otherwise one (:func:`golden.blocks.huffman.fill_steps` clocks per
    table). Each bank holds both tables, the DC table's entries in its lower half and
    the AC table's in its upper half, so that the table is chosen by an address bit
    (``dc``, a register) ahead of the read rather than by a multiplexer after it, where
    it lay in the loop. They are ``fast_banks``, a list of
    :class:`amaranth.lib.memory.Memory`: entry ``i`` of the DC table is entry ``i //
    FILL_BANKS`` of bank ``i % FILL_BANKS``, the AC table's the same plus half the
    bank's depth, so a simulation can read them.

    Latency: a symbol is offered three clocks after the chunk holding its last bit is
    taken (two clocks for an interval's first chunk) when it takes the fast path, three
    clocks later otherwise: it is taken a clock earlier, into the output register that
    offers it (see Stream rules). A scan's first chunk is taken
    after the table copy and fill: ``16 + fill_steps(DC) + fill_steps(AC) +
    START_CLOCKS`` clocks after it is offered (:data:`golden.blocks.huffman.START_CLOCKS`),
    at most :attr:`HuffmanShape.max_start_clocks`.

    Stream rules: ``sym`` is offered from an output register (the symbol, its flags,
    the buffer's top 31 bits and its total shift; the extra bits are cut from those),
    which takes the next symbol in the clock it is emptied. ``sym.valid`` never waits
    for ``sym.ready``, and ``sym.payload`` holds while ``valid``. ``bits.ready`` and
    ``table.ready`` depend on registers and on the offered chunk's ``valid`` and
    ``first`` only.

    Followers: a decoder made with ``leader`` builds no tables. Its ``table`` port is
    never ready, and ``dc_slot``, ``ac_slot`` and ``table_error`` are unused. It compares
    with its leader's copies of the DC and AC pairs. Its value memory and fast tables
    are its own, so it reads them on its own ports, but they take the leader's writes in
    the same clocks. It is halted while the leader builds, copies or fills tables, or
    has tables to copy (``tables_busy``). So N lanes of one scan keep one set of rings
    and copies (2,304 flip-flops at four slots), not N, and fill their fast tables once.
    The leader copies when a chunk is offered to it or to any of its followers, so a
    follower never waits on a leader without bits (a first restart interval without
    any, which is damage). No table may be built under a follower still decoding: a
    follower's ``idle`` (it is ``stuck``, and no chunk is offered to it) and the
    leader's ``tables_open`` (building, or tables to copy) let a decompressor hold a
    table's first byte until the leader is open or every follower is idle (a ``DHT``
    after the scan data, before ``EOI``, is valid). A follower sees its leader's
    ``tables_busy`` through a register, a clock late. A follower decodes like its
    leader, symbol for symbol. It starts without its own copy and fill, so it is ready
    as soon as its leader is.
    """

    def __init__(self, shape: HuffmanShape = HuffmanShape(), leader=None):
        if not isinstance(shape, HuffmanShape):
            refuse(self, f"Huffman decoder shape must be a HuffmanShape, not {shape!r}.")
        if leader is not None and (not isinstance(leader, HuffmanDecoder)
                                   or leader._leader is not None or leader.shape != shape):
            refuse(self, "A Huffman decoder's leader must be a HuffmanDecoder of the same "
                         f"shape that has no leader itself, not {leader!r}.")
        self._shape = shape
        self._leader = leader
        self._followers = []
        if leader is not None:
            leader._followers.append(self)
        # ``idle`` (a follower's): it is ``stuck``, quiet for three clocks with no
        # complete symbol held, and no chunk is offered to it; ``tables_open`` (a
        # leader's): it is building a table or has tables to copy. A decompressor lets
        # a table's first byte reach the leader only when it is ``tables_open`` or every
        # follower is ``idle``, so that no table is built under a follower still
        # decoding (see Followers).
        self.idle = Signal(name="idle")
        self.tables_open = Signal(name="tables_open")
        # What a follower takes from its leader (see Followers): the copies of the
        # scan's DC and AC pairs, their slots, whether the tables are being built,
        # copied or filled, and the writes of the value memory and the fast tables.
        lengths = range(1, MAX_CODE_LENGTH + 1)
        self._copies = {kind: [Signal(_ENTRY, name=f"{kind}_pair{n}") for n in lengths]
                        for kind in ("dc", "ac")}
        self._copied = [Signal(range(shape.tables), name="copied_dc"),
                        Signal(range(shape.tables), name="copied_ac")]
        self._busy = Signal(name="tables_busy")
        # The write ports are made here so that a follower can copy its leader's.
        self._huffval = Memory(shape=8, depth=shape.tables * MAX_SYMBOLS, init=[],
                               attrs={"no_rw_check": 1})
        self._value_write = self._huffval.write_port()
        # The fast tables' banks (see Fast tables for where an entry is), made here so
        # that a simulation can read them. When the decoder is never elaborated, its own
        # "never used" warning says so, not one per bank.
        self.fast_banks = [Memory(shape=FAST_ENTRY, depth=2 * (1 << shape.fast_bits)
                                  // FILL_BANKS, init=[]) for _ in range(FILL_BANKS)]
        for memory in self.fast_banks:
            quiet_if_unused(memory)
        quiet_if_unused(self._huffval)
        self._fast_writes = [memory.write_port() for memory in self.fast_banks]
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
        # The buffer has room for a chunk more than ``reserve_bits + chunk_bits``: a chunk
        # taken joins it a clock later (see ``stage``).
        width = shape.reserve_bits + 2 * chunk
        lengths = range(1, MAX_CODE_LENGTH + 1)

        # Each slot's 16 (LIMIT, OFFSET) pairs sit in a ring of registers, length 1 at
        # the head: a table's BITS bytes shift their pairs in at the tail, and a copy
        # rotates every ring once round, so no register is ever chosen by length and
        # slot (see ``copies`` below).
        ring = [[Signal(_ENTRY, name=f"ring{s}_{n}") for n in lengths] for s in range(slots)]
        # One value memory for every slot, entry ``256 * slot + index``, read
        # synchronously: its address register is the slow path's second stage (see
        # ``a_*`` below), so it fits a block RAM, and the slot is an address bit rather
        # than a multiplexer after four LUT-RAM reads (whose 16-way read trees, the
        # slot pick and the size's pick made the path into ``fits``).
        # ``no_rw_check``: Yosys builds no logic for a read and a write of one address
        # in one clock (it had put a compare of the two addresses and a bypass register
        # behind the read address). None can matter: the values are written only while
        # a table loads, when nothing reads them (decoding and the fill wait for the
        # table copy, which starts after the last write has landed; a follower is
        # halted while its leader builds).
        m.submodules.huffval = huffval = self._huffval
        value_write = self._value_write
        value_read = huffval.read_port(domain="sync")
        # A follower builds no tables: its value memory and fast tables take its
        # leader's writes, and it reads its leader's copies (see Followers).
        follower = self._leader is not None
        source = self._leader if follower else self
        if follower:
            lead = source._value_write
            m.d.comb += [value_write.addr.eq(lead.addr), value_write.data.eq(lead.data),
                         value_write.en.eq(lead.en)]

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
        filling = Signal()                              # see the fast tables below
        dirty = Signal()
        shift_in = Signal(range(slots + 1))             # the ring taking a pair, or none
        m.d.comb += shift_in.eq(slots)
        # A follower builds no table: its ``table`` port is never ready.
        if not follower:
            # Not while a chunk is offered: a decoder between two restart intervals is
            # ``stuck`` too, and would take the next interval's first chunk and a table
            # byte in the same clock, then decode that interval with the new table.
            m.d.comb += t.ready.eq(~copying & ~filling
                                   & (building | dirty | (stuck & ~self.bits.valid)))
            m.d.sync += value_write.en.eq(0)
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
                    # The HUFFVAL write is registered (it lands a clock later; the values
                    # are read only after the table copy), so no path runs from
                    # ``table.ready`` into the memories' write ports.
                    m.d.sync += [value_write.addr.eq(Cat(cur_values[:8], cur_slot)),
                                 value_write.data.eq(t.payload.data),
                                 value_write.en.eq(cur_values < MAX_SYMBOLS)]
                with m.If(t.payload.last & ((counts_after != MAX_CODE_LENGTH)
                                            | (values_after != total_after)
                                            | (total_after > MAX_SYMBOLS))):
                    m.d.sync += table_error.eq(1)

        # ---- Lookup of the symbol at the top of the bit buffer. The path that feeds
        # back into ``buf`` in one clock is the fast one: read the fast table at the
        # buffer's first K bits, shift by the entry's total shift. The compare path
        # (limits, pick, value index; then the value table) is registered twice and
        # reaches ``buf`` only through ``held``.
        buf = Signal(width)                             # next bit at the MSB, zeros below
        count = Signal(range(width + 1))                # valid bits in buf
        dc = Signal(init=1)                             # next symbol is a DC category
        index = Signal(range(BLOCK_SIZE + 16))          # coefficient index in the block
        error = Signal()
        # The fast tables are filled by the slow path's lookup of each K-bit index
        # (followed by zeros), DC table first (``fill`` below K), then AC.
        fast_bits = shape.fast_bits
        fill = Signal(fast_bits + 1)
        wide = Signal()                                 # the fill writes four entries
        fill_dc = ~fill[fast_bits]
        look_dc = Mux(filling, fill_dc, dc)             # the table the slow path reads
        # The scan's DC and AC tables are copies of their slots' rings: the window is
        # compared with both sets and ``dc`` picks the result, so no slot multiplexer
        # sits before the compares. A copy takes 16 clocks (every ring rotates once, the
        # copies shift in the DC and AC slots' heads); it starts when a chunk of bits is
        # offered and the copies are ``dirty``: a table was built, or a slot changed,
        # since the last. Decoding waits for it.
        copied = source._copied
        step = Signal(range(MAX_CODE_LENGTH))
        copies = source._copies
        # A follower has none of this: its ``building``, ``copying``, ``filling`` and
        # ``dirty`` stay low, and its leader's ``tables_busy`` halts it instead.
        if not follower:
            # The slot inputs are registered before they are compared, so that no path runs
            # from them into ``bits.ready`` (a change is seen a clock later).
            slot_regs = [Signal(range(slots), name="dc_slot_r"),
                         Signal(range(slots), name="ac_slot_r")]
            m.d.sync += [slot_regs[0].eq(self.dc_slot), slot_regs[1].eq(self.ac_slot)]
            new_slots = (slot_regs[0] != copied[0]) | (slot_regs[1] != copied[1])
            stale = Signal(init=1)                          # a table built since the last copy
            m.d.comb += dirty.eq(stale | new_slots)
            new_pair = Cat(next_code[:MAX_CODE_LENGTH], (cur_total - first_code)[:8])
            for kind, which in (("dc", slot_regs[0]), ("ac", slot_regs[1])):
                with m.If(copying):
                    m.d.sync += [a.eq(b) for a, b in zip(copies[kind], copies[kind][1:])]
                    m.d.sync += copies[kind][-1].eq(Array(r[0] for r in ring)[which])
            # A count byte's pair enters its ring a clock after the byte is taken, from
            # registers (``ring_in``, ``ring_pair``): the rings' 384-flop enables then come
            # from a register rather than from ``table.ready`` and the slot compare. A copy
            # does not start in a clock a table byte is taken, so its pair has entered
            # before the rings rotate.
            ring_in = Signal(slots)
            ring_pair = Signal(_ENTRY)
            m.d.sync += [ring_in.eq(Cat(shift_in == s_ for s_ in range(slots))),
                         ring_pair.eq(new_pair)]
            for s_, r in enumerate(ring):
                with m.If(copying | ring_in[s_]):
                    m.d.sync += [a.eq(b) for a, b in zip(r, r[1:])]
                    m.d.sync += r[-1].eq(Mux(copying, r[0], ring_pair))
            with m.If(t.valid & t.ready & t.payload.last):
                m.d.sync += stale.eq(1)
            # A chunk offered to any follower starts the copy too, so that an interval
            # 0 without bits (damage) cannot halt the followers for good.
            offered = self.bits.valid
            if self._followers:
                offered = Cat(d.bits.valid for d in (self, *self._followers)).any()
                m.d.comb += self.tables_open.eq(building | dirty)
            with m.If(copying):
                m.d.sync += step.eq(step + 1)
                with m.If(step == MAX_CODE_LENGTH - 1):
                    m.d.sync += [copying.eq(0), filling.eq(1), fill.eq(0)]
            with m.Elif(filling):
                # A code of at most K - 2 bits at an index that is a multiple of four fills
                # the four entries from there (its run of 2**(K - L) is aligned); the
                # index then steps by four, else by one.
                next_fill = Signal(fast_bits + 2)
                m.d.comb += next_fill.eq(fill + Mux(wide, FILL_BANKS, 1))
                m.d.sync += fill.eq(next_fill)
                with m.If(next_fill[fast_bits + 1]):
                    m.d.sync += filling.eq(0)
            with m.Elif(dirty & ~building & offered & ~error
                        & ~(t.valid & t.ready)):
                m.d.sync += [copying.eq(1), step.eq(0), stale.eq(0),
                             copied[0].eq(slot_regs[0]), copied[1].eq(slot_regs[1])]
        limits = {k: [c[:n] for n, c in zip(lengths, v)] for k, v in copies.items()}
        offsets = {k: [c[MAX_CODE_LENGTH:] for c in v] for k, v in copies.items()}
        window = Mux(filling, Cat(Const(0, MAX_CODE_LENGTH - fast_bits), fill[:fast_bits]),
                     buf[width - MAX_CODE_LENGTH:])
        below = Signal(MAX_CODE_LENGTH)                 # bit n-1: the n-bit code is below LIMIT[n]
        below_dc = Cat(window[MAX_CODE_LENGTH - n:] < limits["dc"][n - 1] for n in lengths)
        below_ac = Cat(window[MAX_CODE_LENGTH - n:] < limits["ac"][n - 1] for n in lengths)
        m.d.comb += below.eq(Mux(look_dc, below_dc, below_ac))
        found = below.any()
        # The fill steps by four when the code found has at most K - 2 bits: when a
        # length up to K - 2 has its code below the limit (the shortest such length is
        # the one found), so the step needs no pick.
        low = exact_log2(FILL_BANKS)
        m.d.comb += wide.eq(below[:fast_bits - low].any() & (fill[:low] == 0))
        # The slow path's first register (``p_*``): the compares and the window. The
        # pick, the value index and the length are formed from them in the next clock.
        p_below = Signal(MAX_CODE_LENGTH)
        p_window = Signal(MAX_CODE_LENGTH)
        p_dc, p_live, p_filling, p_wide = (Signal(name=f"p_{n}") for n in (
            "dc", "live", "filling", "wide"))
        p_fill = Signal(fast_bits + 1)
        p_count = Signal.like(count)
        m.d.sync += [p_below.eq(below), p_window.eq(window), p_dc.eq(look_dc),
                     p_count.eq(count), p_fill.eq(fill), p_filling.eq(filling),
                     p_wide.eq(wide)]
        # ``below`` is a thermometer code: once an n-bit prefix is below ``LIMIT[n]``,
        # every longer prefix is below its own limit, since the (n+1)-bit prefix is at
        # most ``2 * prefix + 1 < 2 * LIMIT[n]``, the first code of length n + 1, which
        # is at most ``LIMIT[n + 1]``. (That holds for every table without
        # ``table_error``: its limits are below ``2**n``, so none is cut off at n bits.)
        # So the shortest length is where it turns on, one AND from the register, and
        # no priority chain leads the value index.
        pick = Signal(MAX_CODE_LENGTH)                  # one-hot: the shortest such length
        m.d.comb += pick.eq(p_below & ~Cat(Const(0, 1), p_below[:-1]))

        def one_hot(values):
            """The value of the picked length (an AND-OR, no priority chain)."""
            return reduce(operator.or_, (Mux(pick[n - 1], v, 0) for n, v in zip(lengths, values)))

        # The 16 sums are separate (kept) signals, so Yosys does not share one adder
        # behind the pick.
        sums = []
        for n in lengths:
            total = Signal(8, name=f"index{n}", attrs={"keep": 1})
            m.d.comb += total.eq(p_window[MAX_CODE_LENGTH - n:][:8]
                                 + Mux(p_dc, offsets["dc"][n - 1], offsets["ac"][n - 1]))
            sums.append(total)
        value_index = Signal(8)
        m.d.comb += value_index.eq(one_hot(sums))
        length = Signal(range(MAX_CODE_LENGTH + 1))
        m.d.comb += length.eq(one_hot(Const(n, len(length)) for n in lengths))
        # The slow path's second register: the value index (the value memory's own
        # address register, with the slot above it) and the length (``a_*``), then the
        # value memory gives the symbol. ``p_live`` / ``a_live``: the buffer and ``dc``
        # did not change since the lookup, so the registered lookup still describes them.
        a_length = Signal(range(MAX_CODE_LENGTH + 1))
        a_found, a_dc, a_live, a_filling = (Signal(name=f"a_{n}") for n in (
            "found", "dc", "live", "filling"))
        a_fill = Signal(fast_bits + 1)
        a_wide = Signal()
        a_count = Signal.like(count)            # the bits the lookup saw (zeros below)
        m.d.sync += [a_length.eq(length), a_found.eq(p_below.any()),
                     a_count.eq(p_count),
                     a_dc.eq(p_dc), a_fill.eq(p_fill), a_filling.eq(p_filling),
                     a_wide.eq(p_wide)]
        m.d.comb += value_read.addr.eq(Cat(value_index, Mux(p_dc, copied[0], copied[1])))
        symbol = value_read.data
        size = symbol[:4]
        w_hit, w_filling, w_wide = (Signal(name=f"w_{n}") for n in ("hit", "filling", "wide"))
        w_fill = Signal(fast_bits + 1)
        held_symbol = Signal(8)
        held_shift = Signal(range(MAX_SYMBOL_BITS + 1))
        if follower:
            # The leader's busy flag reaches a follower through a register of its own:
            # the flag is formed next to the leader, and went to every lane across the
            # chip (at 8 lanes, with ABC sharing its LUTs between lanes, the path from
            # the leader's ``filling`` through it into the leader's own buffer was the
            # decompressor's critical path). So a follower stops a clock after the
            # leader's busy rises and resumes a clock after it falls. Rising, it
            # follows a table byte taken (every follower idle with no chunk offered,
            # see ``table``) or ``dirty``, which is set a clock before any copy starts:
            # the copies and the fast tables change only while the follower is halted.
            busy_seen = Signal(name="busy_seen")
            m.d.sync += busy_seen.eq(source._busy)
            halted = busy_seen | error
        else:
            busy = building | copying | filling | p_filling | a_filling | w_filling | dirty
            m.d.comb += self._busy.eq(busy)
            halted = busy | error
        # The buffer held the looked-up code and its extra bits when it was looked up
        # (bits appended since were zeros to the lookup: a code longer than the bits
        # then held may be wrong, and is looked up again).
        # (``room``, the bits after the code, comes from registers beside the value
        # memory's read, so only a compare follows the symbol.)
        # The compare with the symbol's size is registered on its own (``fits``): the
        # registers that read ``decodable`` (``held``, ``ok``) are each the AND of a
        # register of the rest and ``fits``, so the value memory's read ends in one
        # compare.
        room = Signal.like(a_count)
        m.d.comb += room.eq(a_count - a_length)
        decodable = a_live & a_found & (a_length <= a_count)
        # (``room >= n`` for every size ``n`` is formed from the registers beside the
        # read, so the symbol's size only picks one of them: no compare follows the
        # value memory.)
        fits = Signal()
        room_for = Cat(Const(1, 1), *(room >= n for n in range(1, MAX_EXTRA + 1)))
        m.d.sync += fits.eq(room_for.bit_select(size, 1))

        # ---- Fast tables: ``K``-bit index -> FAST_ENTRY, one for the DC and one for the
        # AC table, written while ``filling`` with the slow path's lookup of each index.
        # The write is registered (``w_*``; its symbol and shift are ``held_symbol`` and
        # ``held_shift``), so no path runs from the value memory into the tables.
        m.d.sync += [w_hit.eq(a_found & (a_length <= fast_bits)), w_fill.eq(a_fill),
                     w_filling.eq(a_filling), w_wide.eq(a_wide)]
        entry = Signal(FAST_ENTRY)
        # A hit takes at most MAX_FAST_SHIFT bits (``fast_hit``), so the loop's shift
        # is four bits; the test is on the registered shift, beside the write.
        with m.If(w_hit & (held_shift <= MAX_FAST_SHIFT)):  # a miss is all zeros
            m.d.comb += [entry.hit.eq(1), entry.symbol.eq(held_symbol),
                         entry.shift.eq(held_shift)]
        w_fill_dc = ~w_fill[fast_bits]
        # The fast tables' index is a copy of the buffer's first K bits in a register of
        # its own: the buffer's top bits also drive the compares and the shifter, and
        # the tables' address needs no share of that load. Every bit of its reset value
        # differs from ``buf``'s (all ones against zeros), so that Yosys merges none of
        # them even where both take the same next value (the reset value is never read:
        # the index is only read once ``count`` has grown, clocks later). With chunks of
        # at most ``MAX_EXTRA`` bits the index is taken from the shifted buffer alone
        # (see ``next_buf`` below), and it has two copies, each addressing half the
        # banks, which halves the load on each: the second resets to zeros, apart from
        # the first by its reset and from ``buf`` by its next value.
        window_index = Signal(fast_bits, init=(1 << fast_bits) - 1)
        window_ac = (Signal(fast_bits, name="window_ac") if chunk <= MAX_EXTRA
                     else window_index)
        reads = []
        for bank, memory in enumerate(self.fast_banks):
            m.submodules[f"fast{bank}"] = memory
            port = self._fast_writes[bank]
            if follower:
                lead = source._fast_writes[bank]
                m.d.comb += [port.addr.eq(lead.addr), port.data.eq(lead.data),
                             port.en.eq(lead.en)]
            else:
                m.d.comb += [
                    port.addr.eq(Cat(w_fill[low:fast_bits], ~w_fill_dc)),
                    port.data.eq(entry),
                    port.en.eq(w_filling & (w_wide | (w_fill[:low] == bank))),
                ]
            read = memory.read_port(domain="comb")
            index_reg = window_index if bank < FILL_BANKS // 2 else window_ac
            m.d.comb += read.addr.eq(Cat(index_reg[low:], ~dc))
            reads.append(read.data)
        fast = FAST_ENTRY(Array(reads)[window_index[:low]])
        # A hit is taken at once when the buffer holds the longest symbol a hit can be
        # (``K`` + 15 bits): ``deep``, ``count >= K + MAX_EXTRA``, a register kept with
        # ``count`` (below), so that no compare of ``count`` leads the take into the
        # buffer's multiplexer.
        deep_at = fast_bits + MAX_EXTRA
        deep = Signal()
        # ``stale_index``: the fast tables' index was not moved by the last symbol (a
        # held one, see ``fast_shift`` below); it is reloaded from the buffer in this
        # clock and no hit is taken on it.
        stale_index = Signal()
        fast_ok = Signal()
        m.d.comb += fast_ok.eq(fast.hit & deep & ~stale_index)
        # Slow path: a symbol the fast table misses (a code longer than K, or a buffer
        # too short to know) is looked up by the compares above (``p_*``, then ``a_*``),
        # read from the value memory in the next clock and registered in ``held``; it
        # is offered from there, three clocks after the lookup. The buffer's top bits only
        # change on a transfer or a restart, so the held symbol stays right.
        held_rest = Signal()
        held = Signal()
        m.d.comb += held.eq(held_rest & fits)
        m.d.sync += [held_symbol.eq(symbol), held_shift.eq(a_length + size)]
        out_symbol = Mux(held, held_symbol, fast.symbol)
        shift = Mux(held, held_shift, fast.shift)
        # Whether the buffer holds a complete symbol at all (for a restart chunk or a
        # table byte, which wait until it holds none) is registered in ``ok`` from the
        # slow path's third clock, and used when ``checked`` says nothing changed in
        # the three clocks since the lookup.
        checked = Signal(init=1)                        # (after reset: empty)
        quiet_1, quiet_2 = Signal(), Signal()           # ``quiet`` one and two clocks ago
        ok_rest = Signal()
        ok = Signal()
        m.d.comb += [ok.eq(ok_rest & fits), stuck.eq(checked & ~ok)]
        if follower:
            m.d.comb += self.idle.eq(stuck & ~self.bits.valid)

        # A chunk taken waits a clock in ``stage`` and joins the buffer in the next (below
        # its valid bits, before the shift), so the loop's shifter reads registers only
        # and no path runs from ``bits`` or ``bits.ready`` into it. A chunk is taken when
        # the buffer and the staged chunk together hold at most ``reserve_bits +
        # chunk_bits``, so the buffer has room for it when it joins.
        b = self.bits
        top_bits = b.payload.data & ~(Const((1 << chunk) - 1, chunk) >> b.payload.count)
        aligned = Cat(Const(0, width - chunk), top_bits)
        stage = Signal(chunk)
        stage_count = Signal(range(chunk + 1))
        staged = Signal()
        added = Mux(staged, stage_count, 0)
        m.d.comb += b.ready.eq(~halted & Mux(b.payload.first, stuck,
                                             count + added <= shape.reserve_bits + chunk))
        refill = b.valid & b.ready & ~b.payload.first
        m.d.sync += [staged.eq(refill), stage.eq(top_bits), stage_count.eq(b.payload.count)]
        # The shift of this clock: the symbol's total shift when one is taken, else 0
        # (a miss's fast entry is all zeros, so the fast shift needs no ``hit``).
        # The selects are formed from registers beside the table read, so the tables'
        # shifts meet only an AND-OR.
        # ``ready``: the output register (below) is free or is emptied in this clock.
        ready = Signal()
        go = ~halted & ready
        fast_go = go & ~held & deep & ~stale_index
        shift_now = Signal(range(MAX_SYMBOL_BITS + 1))
        m.d.comb += shift_now.eq(Mux(held & go, held_shift, 0)
                                 | Mux(fast_go, fast.shift, 0))
        # The staged chunk joins below the valid bits, at ``count`` from the top, before
        # the shift. It is placed from registers only, beside the table read: when
        # ``chunk`` is a power of two dividing the buffer, as a rotate by ``count %
        # chunk`` and a pick of the chunk-wide slot ``count // chunk`` (two mux levels
        # rather than a shifter of the buffer's width).
        arriving = Signal(width)
        if chunk & (chunk - 1) == 0 and width % chunk == 0:
            low_bits = exact_log2(chunk)
            slot = count[low_bits:]
            pair = Signal(2 * chunk)
            m.d.comb += pair.eq(Cat(Const(0, chunk), stage) >> count[:low_bits])
            parts = [Mux(slot == k, pair[chunk:], 0) | Mux(slot == k - 1, pair[:chunk], 0)
                     for k in range(width // chunk)]           # slot 0 at the top
            placed = Cat(*reversed(parts))
        else:
            placed = Cat(Const(0, width - chunk), stage) >> count
        m.d.comb += arriving.eq(Mux(staged, placed, 0))
        filled = Signal(width)
        m.d.comb += filled.eq(buf | arriving)
        # The buffer has two shifters, each with its own select and no ``go`` in it
        # (``halted`` and the stream's ``ready`` are several LUTs deep): the held
        # symbol's, from registers only, and the table's, four bits (a hit takes at most
        # MAX_FAST_SHIFT), so that the table read meets a 16-way pick rather than the
        # held symbol's select and a 32-way shifter. Whether and which symbol is taken
        # (``held & go``, ``fast_go``: no table read in either) picks between the
        # shifted and the unshifted buffer after them. Equal to ``filled << shift_now``.
        fast_shift = Signal(range(MAX_FAST_SHIFT + 1))
        m.d.comb += fast_shift.eq(fast.shift)
        past_symbol = Signal(width)
        m.d.comb += past_symbol.eq(Mux(held & go, (filled << held_shift)[:width],
                                       Mux(fast_go, (filled << fast_shift)[:width], filled)))
        next_index = index + out_symbol[4:] + 1
        # The block ends when index + run + 1 reaches 64: ``run >= cap`` with ``cap``
        # from the index register, so no adder follows the table read there.
        cap = Signal(5)
        m.d.comb += cap.eq(Mux(index >= BLOCK_SIZE - 1 - 16, BLOCK_SIZE - 1 - index, 16))
        last = ~dc & ((out_symbol == 0) | (out_symbol[4:] >= cap))
        take = Signal()
        m.d.comb += take.eq(~halted & (fast_ok | held) & ready)
        with m.If(take):
            with m.If(dc):
                m.d.sync += [dc.eq(0), index.eq(1)]
            with m.Else():
                m.d.sync += index.eq(next_index)
                with m.If(last):
                    m.d.sync += dc.eq(1)

        # ---- Output register: a symbol taken is offered from registers in the next
        # clock, with the buffer's top 31 bits and its total shift, and its extra bits
        # are cut from those there. So the extra-bit shifter follows registers rather
        # than the fast table's read (a clock more of latency, none of throughput).
        s = self.sym
        o_valid, o_dc, o_last = Signal(name="o_valid"), Signal(name="o_dc"), Signal(name="o_last")
        o_symbol = Signal(8)
        o_top = Signal(MAX_SYMBOL_BITS)
        o_shift = Signal.like(held_shift)
        m.d.comb += ready.eq(~o_valid | s.ready)
        with m.If(take):
            m.d.sync += [o_valid.eq(1), o_symbol.eq(out_symbol), o_dc.eq(dc), o_last.eq(last),
                         o_top.eq(buf[width - MAX_SYMBOL_BITS:]), o_shift.eq(shift)]
        with m.Elif(s.ready):
            m.d.sync += o_valid.eq(0)
        # The extra bits end ``shift`` bits into the buffer: one right shift of its top
        # 31 bits puts them at the bottom, and ``size`` masks off the code above them.
        o_size = o_symbol[:4]
        ending = (o_top >> (MAX_SYMBOL_BITS - o_shift).as_unsigned())[:MAX_EXTRA]
        extra_mask = Signal(MAX_EXTRA)
        m.d.comb += extra_mask.eq(Const((1 << MAX_EXTRA) - 1, MAX_EXTRA)
                                  >> (MAX_EXTRA - o_size).as_unsigned())
        m.d.comb += [
            s.valid.eq(o_valid),
            s.payload.symbol.eq(o_symbol),
            s.payload.extra.eq(ending & extra_mask),
            s.payload.size.eq(o_size),
            s.payload.dc.eq(o_dc),
            s.payload.last.eq(o_last),
        ]
        with m.If(~halted & ~found & (count >= MAX_CODE_LENGTH)):
            m.d.sync += error.eq(1)

        # ---- Bit buffer: remove the symbol taken, append the chunk below what is left.
        # ``stuck``: nothing changed since the last clock, whose buffer held no complete
        # symbol; a table byte or a restart interval's first chunk waits for it.
        # (A restart waits for ``stuck``, three quiet clocks, so nothing is staged then.)
        # The same as ``b.valid & b.ready & b.payload.first`` (``ready`` is ``~halted &
        # stuck`` for a first chunk), written without the refill's compare of ``count``,
        # which would otherwise lead the restart into the buffer's and the index's
        # resets (the one-lane decoder's critical path at one seed).
        restart = b.valid & b.payload.first & stuck & ~halted
        quiet = ~take & ~(b.valid & b.ready) & ~staged & ~(t.valid & t.ready) & ~halted
        m.d.sync += [
            p_live.eq(~halted & ~take & ~restart),
            a_live.eq(p_live & ~halted & ~take & ~restart),
            quiet_1.eq(quiet),
            quiet_2.eq(quiet_1),
            checked.eq(quiet & quiet_1 & quiet_2),
            ok_rest.eq(decodable),
            held_rest.eq(~halted & ~take & ~restart & ~fast_ok & decodable),
        ]
        next_buf = Signal(width)
        m.d.sync += buf.eq(next_buf)
        # The fast tables' index: the next buffer's first K bits. When a chunk is at most
        # ``MAX_EXTRA`` bits they are taken from the shifted buffer alone, without the
        # chunk joining it: the loop through the table then holds one shifter. They
        # are the same whenever a hit is taken: the index is short of the chunk's
        # bits only when fewer than K bits are left after the shift, and then the
        # next clock's count is below K + chunk <= K + 15 and no hit is taken; the
        # index is whole again a clock later.
        # The index's shifter has its own select, ``fast_shift``: the fast table's
        # shift alone, with no ``go`` and no held symbol in it, and whether a hit is
        # taken picks between the shifted and the unshifted window after it. So the
        # select is one multiplexer (``dc``) after the table read, its nets carry
        # eight bits' pick rather than the whole buffer's shifter, and the stream's
        # ``ready`` meets the loop only in the last multiplexer. The table's shift is
        # four bits (``MAX_FAST_SHIFT``): it picks one of 16 windows. A held symbol
        # (the slow path) leaves the index unshifted, ``stale_index``, and it is
        # reloaded from the shifted buffer in the next clock (a clock more after a
        # slow-path symbol, see ``SLOW_PATH_CLOCKS``).
        if chunk <= MAX_EXTRA:
            windows = Array(buf[width - fast_bits - n:width - n]
                            for n in range(MAX_FAST_SHIFT + 1))
            top = slice(width - fast_bits, width)
            m.d.sync += [copy.eq(Mux(restart, aligned[top],
                                     Mux(fast_go, windows[fast_shift], buf[top])))
                         for copy in (window_index, window_ac)]
            m.d.sync += stale_index.eq(held & go & ~restart)
        else:
            m.d.sync += window_index.eq(next_buf[width - fast_bits:])
        # The next ``deep`` for each shift the clock may take: the held symbol's and no
        # shift from registers alone, the table's as one compare of its four-bit shift
        # with a bound from registers (``count + added - (K + MAX_EXTRA)``).
        kept = Signal(len(count) + 1)
        m.d.comb += kept.eq(count + added)
        bound = Signal(signed(len(kept) + 1))
        m.d.comb += bound.eq(kept - deep_at)
        with m.If(restart):
            m.d.comb += next_buf.eq(aligned)
            m.d.sync += [count.eq(b.payload.count), dc.eq(1), index.eq(0),
                         deep.eq(b.payload.count >= deep_at)]
        with m.Else():
            m.d.comb += next_buf.eq(past_symbol)
            m.d.sync += [count.eq(kept - shift_now),
                         deep.eq(Mux(held & go, kept - held_shift >= deep_at,
                                     Mux(fast_go, fast_shift <= bound, bound >= 0)))]
        m.d.comb += [self.error.eq(error), self.table_error.eq(table_error)]
        return m

