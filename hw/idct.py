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
from cimcodec.golden.jpeg.dct import CONST_BITS, FIX, PASS1_BITS
from cimcodec.hw import refuse


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
    """Dequantizes and inverse-transforms 8x8 blocks at one sample per clock on each of
    ``shape.ports`` independent ports, which share one butterfly.

    Parameters
    ----------
    shape : IdctShape

    Attributes
    ----------
    i : In(stream.Signature(coef_layout(shape)))
        64 coefficients per block in natural order (``8*v + u``), each with its
        quantizer. With ``shape.ports`` above 1, ``i`` is an array of that many such
        streams (``i[k]``, ``i__k__valid`` in Verilog), one per port.
    o : Out(stream.Signature(sample_layout()))
        64 samples per block in raster order (``8*y + x``), ``last`` on the final one:
        ``golden.jpeg.dct.idct_islow`` bit for bit. An array like ``i`` with several
        ports: the blocks given to ``i[k]`` leave on ``o[k]``.

    Dataflow, every stage overlapped with the others:

    * **Load** (per port): one coefficient per clock is registered with its quantizer,
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
      banks, bank ``x`` holding column ``x``, so a row is one write). ``D``, ``W``, the
      row reader and ``S`` are per port; a tag carries the port through the butterfly.
    * **Issue**: a complete row has the butterfly before a column, the lowest port
      first. A row is held (``row_hold``) from its completion until issued, which is at
      most ``ports - 1`` clocks later, before the port's next row (4 clocks), so the
      reader never waits. A block occupies the butterfly 16 clocks of every 64 and the
      ``W`` reader 32, so up to 4 ports at one block per 64 clocks each fit one
      butterfly; at 2 ports it is half busy, and the lower port's columns can delay the
      upper port's by a few clocks, never its rows.
    * **Output** (per port): ``S`` streams out one sample per clock through an output
      register.

    Steady state: 64 clocks per block (one sample per clock) on each port, the rate of
    the coefficient decoder in front of it. ``W`` in memory banks read serially replaced
    a register file read a row per clock through 256 eight-way multiplexers, which took
    the block from 2,064 to 1,184 LUT4 (``synth_ecp5``). Sharing the butterfly between
    two lanes saved about 4.5k flip-flops and 24 multipliers per pair in the 4-lane
    decompressor (docs/decoder.md, "One butterfly for several lanes").

    Stream rules: ``o.valid`` never waits for ``o.ready``; ``o.payload`` is a register
    that changes only on a transfer. ``i.ready`` depends on state only.
    """

    def __init__(self, shape: IdctShape = IdctShape()):
        if not isinstance(shape, IdctShape):
            refuse(self, f"IDCT shape must be an IdctShape, not {shape!r}.")
        self._shape = shape
        i = In(stream.Signature(coef_layout(shape)))
        o = Out(stream.Signature(sample_layout()))
        if shape.ports > 1:
            i, o = i.array(shape.ports), o.array(shape.ports)
        super().__init__({"i": i, "o": o})

    @property
    def shape(self) -> IdctShape:
        return self._shape

    def port(self, k: int):
        """The ``(i, o)`` streams of port ``k`` (``i`` and ``o`` themselves with one
        port)."""
        if self._shape.ports == 1:
            return self.i, self.o
        return self.i[k], self.o[k]

    def elaborate(self, platform):
        m = Module()
        shape = self._shape
        ports = [_Port(m, shape, *self.port(k), k, "" if shape.ports == 1 else f"p{k}_")
                 for k in range(shape.ports)]

        # Issue: a complete row (pass 2) has the butterfly, else a column (pass 1); the
        # lowest port first.
        issue = Signal()
        issue_rows = Signal()
        # At least one bit: Verilog has no zero-width wires (constant 0 with one port).
        port_bits = max(1, (shape.ports - 1).bit_length())
        issue_port = Signal(port_bits)
        step = Signal(range(8))
        choices = [(p, True) for p in ports] + [(p, False) for p in ports]
        for n, (p, rows) in enumerate(choices):
            ctx = m.If if n == 0 else m.Elif
            with ctx(p.want_row if rows else p.col_ok):
                m.d.comb += [issue.eq(1), issue_rows.eq(rows), issue_port.eq(p.index)]
                if rows:
                    m.d.comb += step.eq(p.row_index)
                    m.d.sync += p.row_wait.eq(0)
                else:
                    p.issue_column(m, step)
        for p in ports:
            p.row_bookkeeping(m, ~(issue & issue_rows & (issue_port == p.index)))

        # Issue clock: the D read ports take the column's address (each port's own,
        # always), or the row waits in ``row_hold``. Next clock: the issuing port's
        # column or row is picked and registered: the butterfly's inputs.
        tag = data.StructLayout({"valid": 1, "rows": 1, "step": 3, "buf": 1,
                                 "port": port_bits})
        tag0 = Signal(tag)
        m.d.sync += [tag0.valid.eq(issue), tag0.rows.eq(issue_rows), tag0.step.eq(step),
                     tag0.port.eq(issue_port),
                     tag0.buf.eq(_pick([Mux(issue_rows, p.r_sbuf, p.w_wbuf)
                                        for p in ports], issue_port))]
        picked = []
        for k in range(8):
            choice = Signal(signed(32), name=f"bf_i{k}")
            m.d.sync += choice.eq(_pick([Mux(tag0.rows, p.row_hold[k], p.d_read[k])
                                         for p in ports], tag0.port))
            picked.append(choice)
        tag1 = Signal(tag)
        m.d.sync += tag1.eq(tag0)
        # Rounding of the descale, added once to every output (see _butterfly).
        round_const = Mux(tag1.rows, 1 << (CONST_BITS + PASS1_BITS + 3 - 1),
                          1 << (CONST_BITS - PASS1_BITS - 1))
        outputs, depth = _butterfly(m, picked, round_const, shape.dsp)
        tags = [tag1]
        for n in range(depth):
            nxt = Signal(tag, name=f"tag{n + 2}")
            m.d.sync += nxt.eq(tags[-1])
            tags.append(nxt)
        done = tags[-1]

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
        # Write-back into the tagged port: a column into W (bank y gets row y's
        # element, wrapped to 32 bits), or a row of samples into S.
        columns = [o >> (CONST_BITS - PASS1_BITS) for o in outputs]
        for p in ports:
            p.write_back(m, done, columns, done_s, samples)
        return m


def _pick(values, index):
    """``values[index]``, the list padded with its last value to every ``index`` value
    (a complete case in Verilog, which Verilator requires)."""
    if len(values) == 1:
        return values[0]
    return Array(values + values[-1:] * ((1 << len(index)) - len(values)))[index]


class _Port:
    """One port of :class:`Idct`: its load and ``D`` store, ``W`` store and row reader,
    ``S`` store and output, and the flags the shared issue logic reads. ``index``: the
    port's number in the butterfly's tag; names carry ``prefix``."""

    def __init__(self, m, shape, i, o, index, prefix):
        self.index = index

        def sig(shape_, name, **kwargs):
            return Signal(shape_, name=prefix + name, **kwargs)

        d_shape = signed(shape.coef_bits + shape.q_bits + 1)

        # Load: dequantize, register, write into bank v of the loading buffer.
        load_buf = sig(1, "load_buf")
        load_index = sig(range(64), "load_index")
        d_full = self.d_full = sig(2, "d_full")
        m.d.comb += i.ready.eq(~d_full.bit_select(load_buf, 1))
        product = sig(d_shape, "product")
        write_bank = sig(range(8), "write_bank")
        write_addr = sig(4, "write_addr")
        write_en = sig(1, "write_en")
        write_last = sig(1, "write_last")
        # The coefficient and its quantizer are registered before the multiplier, so
        # the product's DSP is fed from registers, not from the coefficient decoder's
        # memory read (that path was the whole decompressor's critical one).
        in_coef = sig(i.payload.coef.shape(), "in_coef")
        in_q = sig(i.payload.q.shape(), "in_q")
        in_bank = sig(range(8), "in_bank")
        in_addr = sig(4, "in_addr")
        in_en = sig(1, "in_en")
        in_last = sig(1, "in_last")
        m.d.sync += [in_en.eq(0), write_en.eq(in_en)]
        m.d.sync += [product.eq(in_coef * in_q), write_bank.eq(in_bank),
                     write_addr.eq(in_addr), write_last.eq(in_last)]
        with m.If(i.valid & i.ready):
            m.d.sync += [
                in_coef.eq(i.payload.coef),
                in_q.eq(i.payload.q),
                in_bank.eq(load_index[3:]),
                in_addr.eq(Cat(load_index[:3], load_buf)),
                in_en.eq(1),
                in_last.eq(load_index == 63),
                load_index.eq(load_index + 1),
            ]
            with m.If(load_index == 63):
                m.d.sync += load_buf.eq(~load_buf)

        self.seq_buf = seq_buf = sig(1, "seq_buf")
        read_addr = sig(4, "read_addr")
        self.d_read = []
        for v in range(8):
            bank = Memory(shape=d_shape, depth=16, init=[])
            m.submodules[f"{prefix}d_bank{v}"] = bank
            wp, rp = bank.write_port(), bank.read_port()
            m.d.comb += [wp.addr.eq(write_addr), wp.data.eq(product),
                         wp.en.eq(write_en & (write_bank == v)), rp.addr.eq(read_addr)]
            self.d_read.append(rp.data)
        # D buffer k is full after its 64th write (freed when its 8th column issues).
        for k in range(2):
            with m.If(write_en & write_last & (write_addr[3] == k)):
                m.d.sync += d_full[k].eq(1)

        # W: 8 memory banks, bank y holding row y of both workspace buffers (address:
        # buffer, column u), so a column from pass 1 is one write of all eight banks and
        # no register is chosen by row. Pass 2 reads a row two elements per clock (two
        # read ports per bank, each through one 8-way pick of the row's bank) into a
        # shift register and issues it when complete: a row every 4 clocks, a block's
        # pass 2 in 32 of its 64.
        self.w_banks = w_banks = []
        for y in range(8):
            bank = Memory(shape=signed(32), depth=16, init=[])
            m.submodules[f"{prefix}w_bank{y}"] = bank
            w_banks.append((bank.write_port(), bank.read_port(domain="comb"),
                            bank.read_port(domain="comb")))
        self.s_full = s_full = sig(2, "s_full")   # S buffer holds a whole block (to output)
        s_alloc = sig(2, "s_alloc")        # S buffer taken by a block, until output

        # Pass 1 sequencer: the 8 columns of a full D buffer into a free W buffer.
        # A buffer is busy from its first column's issue until pass 2 has read it, and
        # full once its last column is written back.
        self.col_step = col_step = sig(range(8), "col_step")
        self.w_busy = w_busy = sig(2, "w_busy")
        self.w_full = w_full = sig(2, "w_full")
        self.w_wbuf = w_wbuf = sig(1, "w_wbuf")   # the W buffer pass 1 writes
        m.d.comb += read_addr.eq(Cat(col_step, seq_buf))
        self.col_ok = (d_full.bit_select(seq_buf, 1)
                       & ((col_step != 0) | ~w_busy.bit_select(w_wbuf, 1)))
        # Pass 2 reader: row ``r_row``, elements ``2 r_k`` and ``2 r_k + 1`` of W buffer
        # ``r_buf``.
        reading = sig(1, "reading")
        r_buf = sig(1, "r_buf")
        r_row = sig(range(8), "r_row")
        r_k = sig(range(4), "r_k")
        assembly = [sig(signed(32), f"w_asm{k}") for k in range(8)]
        self.row_done = row_done = sig(1, "row_done")   # ``assembly`` holds row ``row_index``
        self.row_index = row_index = sig(range(8), "row_index")
        s_buf = sig(1, "s_buf")            # the S buffer the next block takes
        self.r_sbuf = r_sbuf = sig(1, "r_sbuf")   # the S buffer of the block being read
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
        # The reader's last element: the buffer is free for pass 1 again.
        with m.If(reading & (r_k == 3) & (r_row == 7)):
            m.d.sync += r_buf.eq(~r_buf)
            for k in range(2):
                with m.If(r_buf == k):
                    m.d.sync += [w_full[k].eq(0), w_busy[k].eq(0)]
        # A completed row is held until issued (``row_wait`` while it waits past its
        # completion clock).
        self.row_hold = [sig(signed(32), f"row_hold{k}") for k in range(8)]
        with m.If(row_done):
            m.d.sync += [h.eq(a) for h, a in zip(self.row_hold, assembly)]
        self.row_wait = sig(1, "row_wait")
        self.want_row = row_done | self.row_wait

        # S: bank x holds column x of both sample buffers (address: buffer, row), so a
        # row is written in one clock and the output reads one bank (asynchronously).
        self.out_buf = out_buf = sig(1, "out_buf")
        out_index = sig(range(64), "out_index")
        self.s_banks = []
        s_read = []
        for x in range(8):
            bank = Memory(shape=8, depth=16, init=[])
            m.submodules[f"{prefix}s_bank{x}"] = bank
            wp, rp = bank.write_port(), bank.read_port(domain="comb")
            m.d.comb += rp.addr.eq(Cat(out_index[3:], out_buf))
            self.s_banks.append(wp)
            s_read.append(rp.data)

        # Output: S through one register, raster order.
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If((~o.valid | o.ready) & s_full.bit_select(out_buf, 1)):
            m.d.sync += [
                o.valid.eq(1),
                o.payload.sample.eq(Array(s_read)[out_index[:3]]),
                o.payload.last.eq(out_index == 63),
                out_index.eq(out_index + 1),
            ]
            with m.If(out_index == 63):
                m.d.sync += out_buf.eq(~out_buf)
                for k in range(2):
                    with m.If(out_buf == k):
                        m.d.sync += [s_full[k].eq(0), s_alloc[k].eq(0)]

    def issue_column(self, m, step):
        """This port's next column has the butterfly on this clock (inside the issue
        choice): ``step`` is its index; the sequencer advances, and the ``D`` buffer is
        free after the 8th (the read port samples the address on this clock edge)."""
        m.d.comb += step.eq(self.col_step)
        m.d.sync += self.col_step.eq(self.col_step + 1)
        with m.If(self.col_step == 0):
            for k in range(2):
                with m.If(self.w_wbuf == k):
                    m.d.sync += self.w_busy[k].eq(1)
        with m.If(self.col_step == 7):
            m.d.sync += [self.seq_buf.eq(~self.seq_buf), self.w_wbuf.eq(~self.w_wbuf)]
            for k in range(2):
                with m.If(self.seq_buf == k):
                    m.d.sync += self.d_full[k].eq(0)

    def row_bookkeeping(self, m, not_issued):
        """A row completed on this clock and not issued waits (``row_wait``)."""
        with m.If(self.row_done & not_issued):
            m.d.sync += self.row_wait.eq(1)

    def write_back(self, m, done, columns, done_s, samples):
        """The butterfly's results tagged with this port: pass-1 columns into ``W``
        (``done``), pass-2 rows of samples into ``S`` (``done_s``, a clock later)."""
        mine = done.valid & (done.port == self.index)
        for y, (wp, _, _) in enumerate(self.w_banks):
            m.d.comb += [wp.addr.eq(Cat(done.step, done.buf)), wp.data.eq(columns[y]),
                         wp.en.eq(mine & ~done.rows)]
        with m.If(mine & ~done.rows & (done.step == 7)):
            for k in range(2):
                with m.If(done.buf == k):
                    m.d.sync += self.w_full[k].eq(1)
        mine_s = done_s.valid & done_s.rows & (done_s.port == self.index)
        for wp, v in zip(self.s_banks, samples):
            m.d.comb += [wp.addr.eq(Cat(done_s.step, done_s.buf)), wp.data.eq(v),
                         wp.en.eq(mine_s)]
        with m.If(mine_s & (done_s.step == 7)):
            for k in range(2):
                with m.If(done_s.buf == k):
                    m.d.sync += self.s_full[k].eq(1)
