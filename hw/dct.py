"""Dequantization and 8x8 inverse DCT, bit exact with libjpeg's ``jpeg_idct_islow``.

The reference model is :func:`golden.dct.idct_islow`; the formulas (LLM butterfly,
``CONST_BITS = 13``, ``PASS1_BITS = 2``, the 32-bit workspace after pass 1, level shift
and saturation) are in the docstring of :mod:`golden.dct`. :class:`IdctShape` sizes the
inputs.
"""

from dataclasses import dataclass

from amaranth.hdl import Array, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.dct import CONST_BITS, FIX, PASS1_BITS
from golden.errors import CimcodecError


@dataclass(frozen=True)
class IdctShape:
    """Input widths: ``coef_bits`` (signed quantized coefficient) and ``q_bits``
    (unsigned quantizer). The defaults, 16 and 15, cover every file the golden decoder
    accepts (16-bit ``JCOEF``, quantizers up to 32767)."""

    coef_bits: int = 16
    q_bits: int = 15

    def __post_init__(self):
        for name, top in (("coef_bits", 16), ("q_bits", 15)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= top:
                raise CimcodecError(
                    f"IDCT {name.replace('_', ' ')} must be an integer 2..{top}, not {value!r}."
                )


def coef_layout(shape: IdctShape) -> data.StructLayout:
    """One quantized coefficient with its quantizer, natural order within the block."""
    return data.StructLayout({"coef": signed(shape.coef_bits), "q": unsigned(shape.q_bits)})


def sample_layout() -> data.StructLayout:
    """One output sample; ``last`` on the 64th sample of a block."""
    return data.StructLayout({"sample": 8, "last": 1})


def _butterfly(m, i, name):
    """The LLM inverse butterfly of :mod:`golden.dct` on Amaranth values: signals of the
    eight un-descaled outputs ``o0..o7`` for inputs ``i0..i7``. Every intermediate is a
    signal of its own, so each product exists once in the netlist."""
    f = FIX

    def node(value, label):
        sig = Signal(value.shape(), name=f"{name}_{label}")
        m.d.comb += sig.eq(value)
        return sig

    z1 = node((i[2] + i[6]) * f["0_541196100"], "ez1")
    t2 = node(z1 - i[6] * f["1_847759065"], "t2")
    t3 = node(z1 + i[2] * f["0_765366865"], "t3")
    t0 = node((i[0] + i[4]) << CONST_BITS, "t0")
    t1 = node((i[0] - i[4]) << CONST_BITS, "t1")
    t10, t13 = node(t0 + t3, "t10"), node(t0 - t3, "t13")
    t11, t12 = node(t1 + t2, "t11"), node(t1 - t2, "t12")

    a0, a1, a2, a3 = i[7], i[5], i[3], i[1]
    z1, z2 = node(a0 + a3, "z1"), node(a1 + a2, "z2")
    z3, z4 = node(a0 + a2, "z3"), node(a1 + a3, "z4")
    z5 = node((z3 + z4) * f["1_175875602"], "z5")
    z1 = node(z1 * -f["0_899976223"], "z1m")
    z2 = node(z2 * -f["2_562915447"], "z2m")
    z3 = node(z3 * -f["1_961570560"] + z5, "z3m")
    z4 = node(z4 * -f["0_390180644"] + z5, "z4m")
    b0 = node(a0 * f["0_298631336"] + z1 + z3, "b0")
    b1 = node(a1 * f["2_053119869"] + z2 + z4, "b1")
    b2 = node(a2 * f["3_072711026"] + z2 + z3, "b2")
    b3 = node(a3 * f["1_501321110"] + z1 + z4, "b3")
    outs = [t10 + b3, t11 + b2, t12 + b1, t13 + b0, t13 - b0, t12 - b1, t11 - b2, t10 - b3]
    return [node(o, f"o{k}") for k, o in enumerate(outs)]


def _descale(x, n):
    """``(x + 2**(n-1)) >> n``, arithmetic shift."""
    return (x + (1 << (n - 1))) >> n


class Idct(wiring.Component):
    """Dequantizes and inverse-transforms 8x8 blocks.

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
        ``golden.dct.idct_islow`` bit for bit.

    Dataflow: the coefficients fill the register file ``D`` (one per clock); the column
    pass then takes 8 clocks, one column per clock through the shared butterfly, into the
    32-bit workspace ``W``; the row pass takes 8 more, one row per clock, into the
    sample buffer ``S``, which streams out one sample per clock. ``D`` takes the next
    block as soon as the column pass has read it, so blocks overlap: steady state
    72 clocks per 64 samples (1.125 clocks per sample). One butterfly (12 constant
    multipliers) serves both passes; widening to 8 samples per clock means one
    butterfly per pass and double buffers.

    Stream rules: ``o.valid`` never waits for ``o.ready``; ``o.payload`` is read from
    registers that change only on a transfer. ``i.ready`` depends on state only.
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

        d = [Signal(d_shape, name=f"d{n}") for n in range(64)]
        w = [Signal(signed(32), name=f"w{n}") for n in range(64)]
        s = [Signal(8, name=f"s{n}") for n in range(64)]

        # Load: one dequantized coefficient per clock into D.
        load_index = Signal(range(64))
        d_full = Signal()
        m.d.comb += self.i.ready.eq(~d_full)
        with m.If(self.i.valid & self.i.ready):
            product = self.i.payload.coef * self.i.payload.q
            for n in range(64):
                with m.If(load_index == n):
                    m.d.sync += d[n].eq(product)
            m.d.sync += load_index.eq(load_index + 1)
            with m.If(load_index == 63):
                m.d.sync += d_full.eq(1)

        # Transform: 8 column steps then 8 row steps through one butterfly.
        step = Signal(range(8))
        rows_pass = Signal()
        busy = Signal()
        s_full = Signal()
        col_in = [Array(d[8 * k:8 * k + 8])[step] for k in range(8)]
        row_in = [Array(w[k::8])[step] for k in range(8)]
        ins = [Signal(signed(32), name=f"bf_i{k}") for k in range(8)]
        m.d.comb += [v.eq(Mux(rows_pass, r, c)) for v, r, c in zip(ins, row_in, col_in)]
        outputs = _butterfly(m, ins, "bf")

        with m.If(~busy & d_full):
            m.d.sync += [busy.eq(1), rows_pass.eq(0), step.eq(0)]
        with m.If(busy & ~rows_pass):
            for u in range(8):
                with m.If(step == u):
                    m.d.sync += [w[8 * y + u].eq(_descale(o, CONST_BITS - PASS1_BITS))
                                 for y, o in enumerate(outputs)]  # wraps to 32 bits
            m.d.sync += step.eq(step + 1)
            with m.If(step == 7):
                m.d.sync += [rows_pass.eq(1), d_full.eq(0)]
        with m.If(busy & rows_pass & ~s_full):
            samples = []
            for o in outputs:
                v = _descale(o, CONST_BITS + PASS1_BITS + 3)
                samples.append(Mux(v < -128, 0, Mux(v > 127, 255, v + 128)))
            for y in range(8):
                with m.If(step == y):
                    m.d.sync += [s[8 * y + x].eq(v) for x, v in enumerate(samples)]
            m.d.sync += step.eq(step + 1)
            with m.If(step == 7):
                m.d.sync += [busy.eq(0), s_full.eq(1)]

        # Output: stream S in raster order.
        out_index = Signal(range(64))
        m.d.comb += [
            self.o.valid.eq(s_full),
            self.o.payload.sample.eq(Array(s)[out_index]),
            self.o.payload.last.eq(out_index == 63),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += out_index.eq(out_index + 1)
            with m.If(out_index == 63):
                m.d.sync += s_full.eq(0)
        return m
