"""Dequantization and 8x8 inverse DCT, bit exact with libjpeg's ``jpeg_idct_islow``.

The reference model is :func:`golden.jpeg.dct.idct_islow`; the formulas (LLM butterfly,
``CONST_BITS = 13``, ``PASS1_BITS = 2``, the 32-bit workspace after pass 1, level shift
and saturation) are in the docstring of :mod:`golden.jpeg.dct`. :class:`IdctShape` sizes the
inputs.
"""

from functools import partial

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from cimcodec.golden.blocks.idct import IdctShape
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg.dct import CONST_BITS, FIX, PASS1_BITS


def coef_layout(shape: IdctShape) -> data.StructLayout:
    """One quantized coefficient with its quantizer, natural order within the block."""
    return data.StructLayout({"coef": signed(shape.coef_bits), "q": unsigned(shape.q_bits)})


def sample_layout() -> data.StructLayout:
    """One output sample; ``last`` on the 64th sample of a block."""
    return data.StructLayout({"sample": 8, "last": 1})


class _Pipe:
    """Registers of one pipeline stage: ``pipe.reg(value, name)`` is ``value`` one clock
    later. The butterfly pipeline never stalls, so every register loads every clock."""

    def __init__(self, m, prefix):
        self._m, self._prefix = m, prefix

    def reg(self, value, name):
        value = Value.cast(value)
        sig = Signal(value.shape(), name=f"{self._prefix}_{name}")
        self._m.d.sync += sig.eq(value)
        return sig


#: Width of the low part of a split constant product (17 bits: an 18x18 signed DSP
#: multiplier takes it as a non-negative operand).
_SPLIT = 17


def csd_digits(const: int) -> list[tuple[int, int]]:
    """The canonical signed-digit form of the positive integer ``const``: ``(shift,
    sign)`` pairs, ``sign`` +1 or -1, no two shifts adjacent, with ``const ==
    sum(sign << shift)``; the fewest nonzero digits of any signed-digit form."""
    assert const > 0
    digits, shift = [], 0
    while const:
        if const & 1:
            sign = 2 - (const & 3)          # +1 if the low bits are 01, -1 if 11
            digits.append((shift, sign))
            const -= sign
        const >>= 1
        shift += 1
    return digits


def _shift_sum(x, digits):
    """``sum(sign * (x << shift))`` over ``digits`` (0 for none), exact: Amaranth widens
    every sum and difference."""
    total = None
    for shift, sign in digits:
        term = x << shift
        if total is None:
            total = term if sign > 0 else -term
        else:
            total = total + term if sign > 0 else total - term
    return total if total is not None else Const(0)


def _times(pipe, x, const, name, dsp=True):
    """``x * const`` (``const`` positive, below ``2**17``) over two clocks with
    :func:`_join`, exact for every ``x`` of up to 35 bits. The butterfly's negative
    constants are applied as subtractions of these products.

    * ``dsp``: the low ``_SPLIT`` bits and the signed high part of ``x`` are each
      multiplied by the constant and registered (one DSP each, no adder behind it),
      then the two products are added (shifted) and registered.
    * Otherwise the constant's canonical signed digits (:func:`csd_digits`, 4 to 7 of
      them for the islow constants) are split in two halves; each half's sum of shifted
      ``x`` is registered, then the two sums are added and registered: at most three
      adders in a row per clock (the 7-digit ``FIX_0_899976223``), one in the join."""
    assert 0 < const < 1 << _SPLIT
    if dsp:
        lo = pipe.reg(x[:_SPLIT].as_unsigned() * const, f"{name}_lo")
        hi = pipe.reg(x[_SPLIT:].as_signed() * const, f"{name}_hi")
        return lo, hi, _SPLIT
    digits = csd_digits(const)
    half = (len(digits) + 1) // 2
    lo = pipe.reg(_shift_sum(x, digits[:half]), f"{name}_lo")
    hi = pipe.reg(_shift_sum(x, digits[half:]), f"{name}_hi")
    return lo, hi, 0


def _join(pipe, parts, name):
    lo, hi, shift = parts
    return pipe.reg((hi << shift) + lo, name)


def _butterfly(m, i, round_const, dsp=True):
    """The LLM inverse butterfly of :mod:`golden.jpeg.dct` as a 7-stage pipeline (one set of
    inputs per clock): returns the registers of the eight outputs ``o_k + round_const``
    seven clocks after ``i`` (``round_const`` a value known with the inputs, added once
    to every output through ``t0`` and ``t1``) and the pipeline depth. ``dsp``: the
    constant products on DSPs, else in logic (:func:`_times`)."""
    f = FIX
    times = partial(_times, dsp=dsp)
    p = [_Pipe(m, f"bf{n}") for n in range(7)]
    # 1: input sums.
    a0, a1, a2, a3 = i[7], i[5], i[3], i[1]
    t0 = p[0].reg(i[0] + i[4], "t0")
    t1 = p[0].reg(i[0] - i[4], "t1")
    e = p[0].reg(i[2] + i[6], "e")
    z1 = p[0].reg(a0 + a3, "z1")
    z2 = p[0].reg(a1 + a2, "z2")
    z3 = p[0].reg(a0 + a2, "z3")
    z4 = p[0].reg(a1 + a3, "z4")
    x2, x6 = p[0].reg(i[2], "i2"), p[0].reg(i[6], "i6")
    b = [p[0].reg(v, f"a{k}") for k, v in enumerate((a0, a1, a2, a3))]
    rnd = p[0].reg(round_const, "rnd")
    # 2: partial products (two DSPs each) and z3 + z4.
    z34 = p[1].reg(z3 + z4, "z34")
    m_e = times(p[1], e, f["0_541196100"], "me")
    m_i6 = times(p[1], x6, f["1_847759065"], "mi6")
    m_i2 = times(p[1], x2, f["0_765366865"], "mi2")
    m_z1 = times(p[1], z1, f["0_899976223"], "mz1")
    m_z2 = times(p[1], z2, f["2_562915447"], "mz2")
    m_z3 = times(p[1], z3, f["1_961570560"], "mz3")
    m_z4 = times(p[1], z4, f["0_390180644"], "mz4")
    m_b = [times(p[1], v, f[c], f"mb{k}") for k, (v, c) in enumerate(
        zip(b, ("0_298631336", "2_053119869", "3_072711026", "1_501321110")))]
    t0, t1, rnd = p[1].reg(t0, "t0"), p[1].reg(t1, "t1"), p[1].reg(rnd, "rnd")
    # 3: whole products; partial products of z5 = (z3 + z4) * FIX_1_175875602.
    pe, pi6, pi2 = _join(p[2], m_e, "pe"), _join(p[2], m_i6, "pi6"), _join(p[2], m_i2, "pi2")
    pz1, pz2 = _join(p[2], m_z1, "pz1"), _join(p[2], m_z2, "pz2")
    pz3, pz4 = _join(p[2], m_z3, "pz3"), _join(p[2], m_z4, "pz4")
    pb = [_join(p[2], parts, f"pb{k}") for k, parts in enumerate(m_b)]
    m_z5 = times(p[2], z34, f["1_175875602"], "mz5")
    t0 = p[2].reg((t0 << CONST_BITS) + rnd, "t0s")
    t1 = p[2].reg((t1 << CONST_BITS) + rnd, "t1s")
    # 4: even-part products combined; odd-part pairs that need no z5.
    z5 = _join(p[3], m_z5, "z5")
    t2 = p[3].reg(pe - pi6, "t2")
    t3 = p[3].reg(pe + pi2, "t3")
    q = [p[3].reg(pb[0] - pz1, "q0"), p[3].reg(pb[1] - pz2, "q1"),
         p[3].reg(pb[2] - pz2, "q2"), p[3].reg(pb[3] - pz1, "q3")]
    pz3, pz4 = p[3].reg(pz3, "pz3"), p[3].reg(pz4, "pz4")
    t0, t1 = p[3].reg(t0, "t0s"), p[3].reg(t1, "t1s")
    # 5: z3 and z4 with z5; the even outputs.
    z3m = p[4].reg(z5 - pz3, "z3m")
    z4m = p[4].reg(z5 - pz4, "z4m")
    t10, t13 = p[4].reg(t0 + t3, "t10"), p[4].reg(t0 - t3, "t13")
    t11, t12 = p[4].reg(t1 + t2, "t11"), p[4].reg(t1 - t2, "t12")
    q = [p[4].reg(v, f"q{k}") for k, v in enumerate(q)]
    # 6: the odd outputs.
    b0 = p[5].reg(q[0] + z3m, "b0")
    b1 = p[5].reg(q[1] + z4m, "b1")
    b2 = p[5].reg(q[2] + z3m, "b2")
    b3 = p[5].reg(q[3] + z4m, "b3")
    t10, t11, t12, t13 = (p[5].reg(v, n) for v, n in
                          ((t10, "t10"), (t11, "t11"), (t12, "t12"), (t13, "t13")))
    # 7: the eight outputs.
    outs = [t10 + b3, t11 + b2, t12 + b1, t13 + b0, t13 - b0, t12 - b1, t11 - b2, t10 - b3]
    return [p[6].reg(o, f"o{k}") for k, o in enumerate(outs)], 7


class Idct(wiring.Component):
    """Dequantizes and inverse-transforms 8x8 blocks at one sample per clock.

    Parameters
    ----------
    shape : IdctShape

    Attributes
    ----------
    i : In(stream.Signature(coef_layout(shape)))
        64 coefficients per block in natural order (``8*v + u``), each with its
        quantizer.
    o : Out(stream.Signature(sample_layout()))
        64 samples per block in raster order (``8*y + x``), ``last`` on the final one:
        ``golden.jpeg.dct.idct_islow`` bit for bit.

    Dataflow, every stage overlapped with the others:

    * **Load**: one coefficient per clock is registered with its quantizer,
      dequantized (one DSP multiplier fed from those registers, one register) and
      written into the coefficient store ``D``: two block buffers in 8
      memory banks, bank ``v`` holding row ``v`` of each block, so that one read of all
      eight banks gives a whole column.
    * **Transform**: one pipelined butterfly (:func:`_butterfly`, 7 stages, 12 constant
      products on two DSPs each, or in logic with ``IdctShape(dsp=False)``) takes one column
      or one row per clock. Pass 1 issues the 8 columns of a full ``D`` buffer into a free
      buffer of the double-buffered 32-bit workspace ``W``: 8 memory banks, bank ``y``
      holding row ``y``, so a column is one write of all eight. Pass 2 reads a full ``W``
      buffer row by row, two elements per clock (two read ports per bank, one 8-way pick of
      the row's bank each) into a shift register, and issues each row when it is complete,
      every 4 clocks, into a free buffer of the double-buffered sample store ``S`` (8 memory
      banks, bank ``x`` holding column ``x``, so a row is one write); a row takes the
      butterfly before a column. A block occupies the butterfly 16 clocks of every 64, the
      ``W`` reader 32.
    * **Output**: ``S`` streams out one sample per clock through an output register.

    Steady state: 64 clocks per block (one sample per clock), the rate of the
    coefficient decoder in front of it. ``W`` in memory banks read serially replaced a
    register file read a row per clock through 256 eight-way multiplexers, which took
    the block from 2,064 to 1,184 LUT4 (``synth_ecp5``). Widening to 8 samples per clock means one
    butterfly issue per clock for both passes (the pipeline already takes a new set
    of inputs every clock), a ``W`` that is written a column and read a row per clock
    (that register file again, or banks with a rotation on each side), and 8-sample-wide
    load and output ports.

    Stream rules: ``o.valid`` never waits for ``o.ready``; ``o.payload`` is a register
    that changes only on a transfer. ``i.ready`` depends on state only.
    """

    def __init__(self, shape: IdctShape = IdctShape()):
        if not isinstance(shape, IdctShape):
            raise CimcodecError(f"IDCT shape must be an IdctShape, not {shape!r}.")
        self._shape = shape
        super().__init__({
            "i": In(stream.Signature(coef_layout(shape))),
            "o": Out(stream.Signature(sample_layout())),
        })

    @property
    def shape(self) -> IdctShape:
        return self._shape

    def elaborate(self, platform):
        m = Module()
        shape = self._shape
        d_shape = signed(shape.coef_bits + shape.q_bits + 1)

        # Load: dequantize, register, write into bank v of the loading buffer.
        load_buf = Signal()
        load_index = Signal(range(64))
        d_full = Signal(2)
        m.d.comb += self.i.ready.eq(~d_full.bit_select(load_buf, 1))
        product = Signal(d_shape)
        write_bank = Signal(range(8))
        write_addr = Signal(4)
        write_en = Signal()
        write_last = Signal()
        # The coefficient and its quantizer are registered before the multiplier, so
        # the product's DSP is fed from registers, not from the coefficient decoder's
        # memory read (that path was the whole decompressor's critical one).
        in_coef = Signal.like(self.i.payload.coef)
        in_q = Signal.like(self.i.payload.q)
        in_bank = Signal(range(8))
        in_addr = Signal(4)
        in_en = Signal()
        in_last = Signal()
        m.d.sync += [in_en.eq(0), write_en.eq(in_en)]
        m.d.sync += [product.eq(in_coef * in_q), write_bank.eq(in_bank),
                     write_addr.eq(in_addr), write_last.eq(in_last)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [
                in_coef.eq(self.i.payload.coef),
                in_q.eq(self.i.payload.q),
                in_bank.eq(load_index[3:]),
                in_addr.eq(Cat(load_index[:3], load_buf)),
                in_en.eq(1),
                in_last.eq(load_index == 63),
                load_index.eq(load_index + 1),
            ]
            with m.If(load_index == 63):
                m.d.sync += load_buf.eq(~load_buf)

        seq_buf = Signal()
        read_addr = Signal(4)
        d_read = []
        for v in range(8):
            bank = Memory(shape=d_shape, depth=16, init=[])
            m.submodules[f"d_bank{v}"] = bank
            wp, rp = bank.write_port(), bank.read_port()
            m.d.comb += [wp.addr.eq(write_addr), wp.data.eq(product),
                         wp.en.eq(write_en & (write_bank == v)), rp.addr.eq(read_addr)]
            d_read.append(rp.data)

        # W: 8 memory banks, bank y holding row y of both workspace buffers (address:
        # buffer, column u), so a column from pass 1 is one write of all eight banks and
        # no register is chosen by row. Pass 2 reads a row two elements per clock (two
        # read ports per bank, each through one 8-way pick of the row's bank) into a
        # shift register and issues it when complete: a row every 4 clocks, a block's
        # pass 2 in 32 of its 64.
        w_banks = []
        for y in range(8):
            bank = Memory(shape=signed(32), depth=16, init=[])
            m.submodules[f"w_bank{y}"] = bank
            w_banks.append((bank.write_port(), bank.read_port(domain="comb"),
                            bank.read_port(domain="comb")))
        s_full = Signal(2)                  # S buffer holds a whole block (to output)
        s_alloc = Signal(2)                 # S buffer taken by a block, until output

        # Pass 1 sequencer: the 8 columns of a full D buffer into a free W buffer.
        # A buffer is busy from its first column's issue until pass 2 has read it, and
        # full once its last column is written back.
        col_step = Signal(range(8))
        w_busy = Signal(2)
        w_full = Signal(2)
        w_wbuf = Signal()                   # the W buffer pass 1 writes
        m.d.comb += read_addr.eq(Cat(col_step, seq_buf))
        # Pass 2 reader: row ``r_row``, elements ``2 r_k`` and ``2 r_k + 1`` of W buffer
        # ``r_buf``.
        reading = Signal()
        r_buf = Signal()
        r_row = Signal(range(8))
        r_k = Signal(range(4))
        assembly = [Signal(signed(32), name=f"w_asm{k}") for k in range(8)]
        row_done = Signal()                 # ``assembly`` holds row ``row_index``
        row_index = Signal(range(8))
        s_buf = Signal()                    # the S buffer the next block takes
        r_sbuf = Signal()                   # the S buffer of the block being read
        m.d.sync += row_done.eq(0)
        # The read addresses come straight from registers, not gated by ``reading``
        # (only the captures below are): each drives all 128 read ports, and a gate
        # would put a LUT and a wide net behind ``reading`` on the way to them.
        for _, even, odd in w_banks:
            m.d.comb += [even.addr.eq(Cat(0, r_k, r_buf)), odd.addr.eq(Cat(1, r_k, r_buf))]
        with m.If(reading):
            m.d.sync += [a.eq(b) for a, b in zip(assembly, assembly[2:])]
            m.d.sync += [assembly[-2].eq(Array(e.data for _, e, _ in w_banks)[r_row]),
                         assembly[-1].eq(Array(o.data for _, _, o in w_banks)[r_row]),
                         r_k.eq(r_k + 1)]
            with m.If(r_k == 3):
                m.d.sync += [r_row.eq(r_row + 1), row_done.eq(1), row_index.eq(r_row)]
                with m.If(r_row == 7):
                    m.d.sync += reading.eq(0)
        with m.Elif(w_full.bit_select(r_buf, 1) & ~s_alloc.bit_select(s_buf, 1)):
            m.d.sync += [reading.eq(1), r_row.eq(0), r_k.eq(0), r_sbuf.eq(s_buf),
                         s_buf.eq(~s_buf)]
            for k in range(2):
                with m.If(s_buf == k):
                    m.d.sync += s_alloc[k].eq(1)

        # Issue: a complete row (pass 2) has the butterfly, else a column (pass 1).
        issue = Signal()
        issue_rows = Signal()
        step = Signal(range(8))
        col_ok = d_full.bit_select(seq_buf, 1) & ((col_step != 0) | ~w_busy.bit_select(w_wbuf, 1))
        with m.If(row_done):
            m.d.comb += [issue.eq(1), issue_rows.eq(1), step.eq(row_index)]
        with m.Elif(col_ok):
            m.d.comb += [issue.eq(1), step.eq(col_step)]
            m.d.sync += col_step.eq(col_step + 1)
            with m.If(col_step == 0):
                for k in range(2):
                    with m.If(w_wbuf == k):
                        m.d.sync += w_busy[k].eq(1)
            with m.If(col_step == 7):
                m.d.sync += [seq_buf.eq(~seq_buf), w_wbuf.eq(~w_wbuf)]

        # D buffer bookkeeping: full after its 64th write, free after its 8th column
        # read was issued (the read port samples it on that clock edge).
        for k in range(2):
            with m.If(write_en & write_last & (write_addr[3] == k)):
                m.d.sync += d_full[k].eq(1)
            with m.If(issue & ~issue_rows & (step == 7) & (seq_buf == k)):
                m.d.sync += d_full[k].eq(0)

        # Issue clock: the D read ports take the column's address, or the row leaves the
        # assembly register. Next clock: the column arrives from the read ports and is
        # registered; one clock later the butterfly's inputs are chosen and registered.
        tag = data.StructLayout({"valid": 1, "rows": 1, "step": 3, "buf": 1})
        tag0 = Signal(tag)
        m.d.sync += [tag0.valid.eq(issue), tag0.rows.eq(issue_rows), tag0.step.eq(step),
                     tag0.buf.eq(Mux(issue_rows, r_sbuf, w_wbuf))]
        w_row, d_col = [], []
        for k in range(8):
            row = Signal(signed(32), name=f"w_row{k}")
            with m.If(issue_rows):
                m.d.sync += row.eq(assembly[k])
            col = Signal(d_shape, name=f"d_col{k}")
            m.d.sync += col.eq(d_read[k])
            w_row.append(row)
            d_col.append(col)
        tag1 = Signal(tag)
        m.d.sync += tag1.eq(tag0)
        ins = [Signal(signed(32), name=f"bf_i{k}") for k in range(8)]
        m.d.sync += [v.eq(Mux(tag1.rows, r, c)) for v, r, c in zip(ins, w_row, d_col)]
        tag2 = Signal(tag)
        m.d.sync += tag2.eq(tag1)
        # Rounding of the descale, added once to every output (see _butterfly).
        round_const = Mux(tag2.rows, 1 << (CONST_BITS + PASS1_BITS + 3 - 1),
                          1 << (CONST_BITS - PASS1_BITS - 1))
        outputs, depth = _butterfly(m, ins, round_const, shape.dsp)
        tags = [tag2]
        for n in range(depth):
            nxt = Signal(tag, name=f"tag{n + 3}")
            m.d.sync += nxt.eq(tags[-1])
            tags.append(nxt)
        done = tags[-1]

        # Write-back: a column into W (bank y gets row y's element, wrapped to 32 bits),
        # or a row of samples into S.
        for y, (wp, _, _) in enumerate(w_banks):
            m.d.comb += [wp.addr.eq(Cat(done.step, done.buf)),
                         wp.data.eq(outputs[y] >> (CONST_BITS - PASS1_BITS)),
                         wp.en.eq(done.valid & ~done.rows)]
        with m.If(done.valid & ~done.rows & (done.step == 7)):
            for k in range(2):
                with m.If(done.buf == k):
                    m.d.sync += w_full[k].eq(1)
        # The reader's last element: the buffer is free for pass 1 again.
        with m.If(reading & (r_k == 3) & (r_row == 7)):
            m.d.sync += r_buf.eq(~r_buf)
            for k in range(2):
                with m.If(r_buf == k):
                    m.d.sync += [w_full[k].eq(0), w_busy[k].eq(0)]
        # Pass 2 results: level shift and saturation in one more pipeline stage. ``v``
        # is in -128..127 exactly when its bits from 7 up are all equal; then
        # ``v + 128`` is its low byte with bit 7 inverted, else 0 or 255 by its sign.
        samples = []
        for x, o in enumerate(outputs):
            v = o[CONST_BITS + PASS1_BITS + 3:]
            top = v[7:]
            sample = Signal(8, name=f"sample{x}")
            m.d.sync += sample.eq(Mux(~top.any() | top.all(), Cat(v[:7], ~v[7]),
                                      Mux(v[-1], 0, 255)))
            samples.append(sample)
        done_s = Signal(tag)
        m.d.sync += done_s.eq(done)
        # S: bank x holds column x of both sample buffers (address: buffer, row), so a
        # row is written in one clock and the output reads one bank (asynchronously).
        out_buf = Signal()
        out_index = Signal(range(64))
        s_read = []
        for x, v in enumerate(samples):
            bank = Memory(shape=8, depth=16, init=[])
            m.submodules[f"s_bank{x}"] = bank
            wp, rp = bank.write_port(), bank.read_port(domain="comb")
            m.d.comb += [wp.addr.eq(Cat(done_s.step, done_s.buf)), wp.data.eq(v),
                         wp.en.eq(done_s.valid & done_s.rows),
                         rp.addr.eq(Cat(out_index[3:], out_buf))]
            s_read.append(rp.data)
        with m.If(done_s.valid & done_s.rows & (done_s.step == 7)):
            for k in range(2):
                with m.If(done_s.buf == k):
                    m.d.sync += s_full[k].eq(1)

        # Output: S through one register, raster order.
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If((~self.o.valid | self.o.ready) & s_full.bit_select(out_buf, 1)):
            m.d.sync += [
                self.o.valid.eq(1),
                self.o.payload.sample.eq(Array(s_read)[out_index[:3]]),
                self.o.payload.last.eq(out_index == 63),
                out_index.eq(out_index + 1),
            ]
            with m.If(out_index == 63):
                m.d.sync += out_buf.eq(~out_buf)
                for k in range(2):
                    with m.If(out_buf == k):
                        m.d.sync += [s_full[k].eq(0), s_alloc[k].eq(0)]
        return m
