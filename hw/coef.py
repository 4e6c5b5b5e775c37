"""Coefficient decoder: Huffman symbols in, quantized 8x8 blocks in natural order with
their quantizers out, between :class:`hw.huffman.HuffmanDecoder` and :class:`hw.idct.Idct`.

The reference model is :func:`golden.blocks.coef.decode_blocks`; its docstring is the
specification (DC prediction, EXTEND, EOB and ZRL, restart intervals, the errors).
:class:`CoefShape` sizes both.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from cimcodec.golden.blocks import coef as golden
from cimcodec.golden.blocks.coef import (
    EOB,
    MAX_AC_SIZE,
    MAX_DC_CATEGORY,
    RESTART_BITS,
    ZRL,
    CoefShape,
)
from cimcodec.golden.blocks.huffman import BLOCK_SIZE
from cimcodec.golden.jpeg.zigzag import NATURAL, ZIGZAG
from cimcodec.hw import field_enum, refuse
from cimcodec.hw.huffman import symbol_layout
from cimcodec.hw.idct import coef_layout

ErrorCode = field_enum("ErrorCode", golden.Error, 3, __name__)


def qtable_layout(shape: CoefShape) -> data.StructLayout:
    """One quantizer of the table, zigzag order as ``DQT`` stores it; ``last`` on the
    64th."""
    return data.StructLayout({"q": unsigned(shape.q_bits), "last": 1})


class CoefDecoder(wiring.Component):
    """Rebuilds quantized blocks from Huffman symbols, exactly
    :func:`golden.blocks.coef.decode_blocks`.

    Parameters
    ----------
    shape : CoefShape

    Attributes
    ----------
    qtable : In(stream.Signature(qtable_layout(shape)))
        The 64 quantizers in zigzag order, ``last`` on the 64th; one per clock. Taken
        only while no block is being decoded or sent (a table waiting on ``qtable``
        goes before the next symbol); a symbol may wait in the input register (see
        Latency) before, but none is decoded until a whole table arrived.
    sym : In(stream.Signature(symbol_layout()))
        :class:`hw.huffman.HuffmanDecoder`'s ``sym`` stream: connect it directly. One
        symbol per clock; ``last`` is not used (the block end is recomputed).
    restart_interval : In(16)
        Blocks per restart interval (``DRI``; 0: none); hold it while decoding. The DC
        predictor restarts at 0 on the first block after reset and on every
        ``restart_interval``-th block after it (the symbols carry no restart marks, see
        :mod:`golden.blocks.coef`). Whether it is 0 is registered before use, so set
        it at least a clock before the first symbol is offered.
    o : Out(stream.Signature(coef_layout(shape.idct)))
        64 ``{coef, q}`` per block in natural order (``8*v + u``), for
        :class:`hw.idct.Idct`'s ``i``.
    error : Out(1)
        An error was found; decoding stopped (``sym`` and ``qtable`` stay not ready),
        held until reset. Finished blocks are still sent, the block being decoded is
        dropped.
    error_code : Out(ErrorCode)
        Which error (:class:`golden.blocks.coef.Error`); ``NONE`` while ``error`` is low.

    Dataflow: two banks of 64 coefficients (one 128-entry memory) and a 64-bit
    ``written`` mask per bank, both in zigzag order. The symbol side decodes into one
    bank, writing each nonzero coefficient at its zigzag position and setting the
    position's mask bit; the output side sends the other bank in natural order,
    reading each coefficient and mask bit at the zigzag position of its natural index
    (the inverse ROM, a clock ahead); a coefficient whose mask bit is clear reads as 0,
    and the mask is cleared when the bank's 64th coefficient leaves. So no clock is
    spent zeroing a block, and a reset empties both banks.

    Throughput: a block of ``S`` symbols (2..64) takes ``S`` clocks to decode and 64 to
    send; decoding of the next block overlaps sending, so with symbols offered every
    clock and ``o`` always ready the output runs at one coefficient per clock, 64 clocks
    per block. Latency: a symbol taken waits a clock in an input register, and a block's
    first coefficient is offered two clocks after its last symbol was taken (when the
    other bank is free).

    Stream rules: ``o.valid`` never waits for ``o.ready``; ``o.payload`` is read from a
    bank the symbol side decodes no more symbols into (its one delayed write, at position
    63, lands a clock after the bank is full, at another address than the one read) and
    a table that does not change while a block is waiting, at an index that changes
    only on a transfer, so it holds while ``valid``.
    ``sym.ready`` depends on state and on ``qtable.valid``; ``qtable.ready`` on state.
    """

    def __init__(self, shape: CoefShape = CoefShape()):
        if not isinstance(shape, CoefShape):
            refuse(self, f"Coefficient decoder shape must be a CoefShape, not {shape!r}.")
        self._shape = shape
        super().__init__({
            "qtable": In(stream.Signature(qtable_layout(shape))),
            "sym": In(stream.Signature(symbol_layout())),
            "restart_interval": In(RESTART_BITS),
            "o": Out(stream.Signature(coef_layout(shape.idct))),
            "error": Out(1),
            "error_code": Out(ErrorCode),
        })

    @property
    def shape(self) -> CoefShape:
        return self._shape

    def elaborate(self, platform):
        m = Module()
        shape = self._shape
        last_index = BLOCK_SIZE - 1

        # Zigzag position -> natural address, read by the table.
        m.submodules.zigzag = zigzag = Memory(shape=6, depth=BLOCK_SIZE,
                                              init=[int(n) for n in ZIGZAG])
        zz_table = zigzag.read_port(domain="comb")
        m.submodules.quant = quant = Memory(shape=unsigned(shape.q_bits), depth=BLOCK_SIZE,
                                            init=[])
        q_write = quant.write_port()
        q_read = quant.read_port(domain="comb")
        m.submodules.coefs = coefs = Memory(shape=signed(shape.coef_bits),
                                            depth=2 * BLOCK_SIZE, init=[])
        c_write = coefs.write_port()
        c_read = coefs.read_port(domain="comb")

        error = Signal(ErrorCode)
        halted = error != ErrorCode.NONE
        full = [Signal(name=f"full{b}") for b in range(2)]
        written = [Signal(BLOCK_SIZE, name=f"written{b}") for b in range(2)]
        bank_w = Signal()                   # the bank the symbol side decodes into
        bank_o = Signal()                   # the bank the output side sends
        in_block = Signal()                 # a DC symbol was taken, the block is open
        busy = in_block | full[0] | full[1]

        # ---- Quantization table: one quantizer per clock, while no block is in flight.
        q = self.qtable
        q_index = Signal(range(BLOCK_SIZE))
        loaded = Signal()                   # a whole table arrived and no new one began
        m.d.comb += q.ready.eq(~halted & ~busy)
        q_take = q.valid & q.ready
        m.d.comb += [zz_table.addr.eq(q_index), q_write.addr.eq(zz_table.data),
                     q_write.data.eq(q.payload.q), q_write.en.eq(q_take)]
        with m.If(q_take):
            m.d.sync += q_index.eq(q_index + 1)
            with m.If(q.payload.last):
                m.d.sync += q_index.eq(0)
                with m.If(q_index == last_index):
                    m.d.sync += loaded.eq(1)
                with m.Else():
                    m.d.sync += error.eq(ErrorCode.QTABLE)
            with m.Else():
                m.d.sync += loaded.eq(0)
                with m.If(q_index == last_index):
                    m.d.sync += error.eq(ErrorCode.QTABLE)

        # ---- Symbol side: one symbol per clock into bank_w.
        # A symbol taken from ``sym`` waits a clock in an input register (``p``), with
        # its EXTENDed value (``value``), and is decoded from there: so the path from
        # the symbol queue ends at the register, and the DC prediction's adder and the
        # checks start from registers (at 8 lanes the path from a lane's symbol queue
        # through EXTEND and the DC adder into the coefficient memory was the
        # decompressor's critical path). The register is emptied in the clock it is
        # decoded, so a symbol still moves every clock.
        s = self.sym
        p = Signal(data.StructLayout({"symbol": 8, "dc": 1}))
        p_valid = Signal()
        value = Signal(signed(MAX_AC_SIZE + 7))
        k = Signal(range(BLOCK_SIZE + 1))   # zigzag index of the next coefficient
        pred = Signal(signed(shape.coef_bits))
        left = Signal(RESTART_BITS)         # blocks before the next restart, minus one
        fresh = Signal(init=1)              # no block since reset
        full_w = Mux(bank_w, full[1], full[0])
        take = Signal()                     # the registered symbol is decoded
        m.d.comb += [take.eq(p_valid & ~halted & loaded & ~full_w & ~q_take),
                     s.ready.eq(~halted & (~p_valid | take))]

        # EXTEND(extra, size): negative when the top bit of the size bits is clear.
        sp = s.payload
        top_bit = (Cat(Const(0, 1), sp.extra) >> sp.size)[0]
        with m.If(s.valid & s.ready):
            m.d.sync += [p.symbol.eq(sp.symbol), p.dc.eq(sp.dc), p_valid.eq(1),
                         value.eq(Mux((sp.size != 0) & ~top_bit,
                                      sp.extra - (Const(1, 1) << sp.size) + 1, sp.extra))]
        with m.Elif(take):
            m.d.sync += p_valid.eq(0)
        ri = self.restart_interval
        # ``restart`` is one LUT on registers: whether ``ri`` is nonzero is registered
        # (seen a clock late; it holds while decoding) and so is ``left == 0``, set
        # from the value ``left`` takes (``left`` becomes 0 when it was loaded or held
        # at 1). Before, ``ri``'s 16-bit compare and ``left``'s ran into the DC adder
        # and the memory write.
        ri_set = Signal()
        left_zero = Signal()
        m.d.sync += ri_set.eq(ri != 0)
        restart = fresh | (ri_set & left_zero)
        dc_pred = Signal(signed(shape.coef_bits))
        m.d.comb += dc_pred.eq(Mux(restart, 0, pred) + value)
        run, size = p.symbol[4:], p.symbol[:4]
        k_run = k + run

        code = Signal(ErrorCode)            # the error this symbol raises
        done = Signal()                     # it ends the block
        write = Signal()                    # it writes a coefficient
        position = Signal(6)                # at this zigzag position
        w_data = Signal(signed(shape.coef_bits))
        with m.If(p.dc):
            with m.If(in_block):
                m.d.comb += code.eq(ErrorCode.BLOCK)
            with m.Elif(p.symbol > MAX_DC_CATEGORY):
                m.d.comb += code.eq(ErrorCode.DC_CATEGORY)
            with m.Else():
                m.d.comb += [write.eq(1), position.eq(0), w_data.eq(dc_pred)]
        with m.Elif(~in_block):
            m.d.comb += code.eq(ErrorCode.BLOCK)
        with m.Elif(size == 0):
            with m.If(p.symbol == EOB):
                m.d.comb += done.eq(1)
            with m.Elif(p.symbol != ZRL):
                m.d.comb += code.eq(ErrorCode.AC_SYMBOL)
            with m.Elif(k + 16 > BLOCK_SIZE):
                m.d.comb += code.eq(ErrorCode.RUN)
            with m.Else():
                m.d.comb += done.eq(k + 16 == BLOCK_SIZE)
        with m.Elif(size > MAX_AC_SIZE):
            m.d.comb += code.eq(ErrorCode.AC_SIZE)
        with m.Elif(k_run > last_index):
            m.d.comb += code.eq(ErrorCode.RUN)
        with m.Else():
            m.d.comb += [write.eq(1), position.eq(k_run), w_data.eq(value),
                         done.eq(k_run == last_index)]

        # The coefficient is written a clock later, from registers: the memory's write
        # data then follows no adder. The output side reads a bank only once it is
        # full, and the one write still pending then is the block's last, at zigzag
        # position 63, which it reads 63 clocks later.
        w_addr = Signal.like(c_write.addr)
        w_value = Signal.like(c_write.data)
        w_en = Signal()
        m.d.sync += [w_addr.eq(Cat(position, bank_w)), w_value.eq(w_data),
                     w_en.eq(take & write)]
        m.d.comb += [c_write.addr.eq(w_addr), c_write.data.eq(w_value),
                     c_write.en.eq(w_en)]
        with m.If(take):
            with m.If(code != ErrorCode.NONE):
                m.d.sync += error.eq(code)
            with m.Elif(p.dc):
                left_from = Mux(restart, ri, left)
                m.d.sync += [pred.eq(dc_pred), left.eq(left_from - 1),
                             left_zero.eq(left_from == 1),
                             fresh.eq(0), in_block.eq(1), k.eq(1)]
            with m.Elif(p.symbol == ZRL):
                m.d.sync += k.eq(k + 16)
            with m.Else():
                m.d.sync += k.eq(k_run + 1)
            with m.If(done):
                m.d.sync += [in_block.eq(0), bank_w.eq(~bank_w)]
            for b in range(2):
                with m.If(bank_w == b):
                    with m.If(write):
                        m.d.sync += written[b].eq(written[b] | (Const(1, BLOCK_SIZE)
                                                                << position))
                    with m.If(done):
                        m.d.sync += full[b].eq(1)

        # ---- Output side: bank_o in natural order. The symbol side only decodes into a
        # bank that is not full, so the two sides never touch the same bank's mask or
        # flag (the delayed write of a block's last coefficient lands in the memory a
        # clock after its bank is full, at position 63, read 63 clocks later).
        o = self.o
        n = Signal(6)
        written_o = Mux(bank_o, written[1], written[0])
        # The coefficients and the masks are in zigzag order (bit k: position k was
        # written), so the symbol side writes at the position itself, with no ROM
        # between its adder and the memory's write address (marking by the zigzag
        # ROM's output also cost about 700 LUT4). The output side reads at the zigzag
        # position of its natural index, ``zz_n``: a register loaded from the inverse
        # ROM at ``n + 1`` on each transfer, so no ROM sits before its read either.
        m.submodules.natural = natural = Memory(shape=6, depth=BLOCK_SIZE,
                                                init=[int(k) for k in NATURAL])
        zz_next = natural.read_port(domain="comb")
        zz_n = Signal(6, init=int(NATURAL[0]))
        m.d.comb += zz_next.addr.eq(n + 1)
        m.d.comb += [c_read.addr.eq(Cat(zz_n, bank_o)), q_read.addr.eq(n),
                     o.valid.eq(Mux(bank_o, full[1], full[0])),
                     o.payload.coef.eq(Mux(written_o.bit_select(zz_n, 1), c_read.data, 0)),
                     o.payload.q.eq(q_read.data)]
        with m.If(o.valid & o.ready):
            m.d.sync += [n.eq(n + 1), zz_n.eq(zz_next.data)]
            with m.If(n == last_index):
                m.d.sync += bank_o.eq(~bank_o)
                for b in range(2):
                    with m.If(bank_o == b):
                        m.d.sync += [full[b].eq(0), written[b].eq(0)]

        m.d.comb += [self.error.eq(halted), self.error_code.eq(error)]
        return m
