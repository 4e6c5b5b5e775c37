"""Charge-redistribution compute-in-memory MAC array: the digital twin of seed 001's
analog macro, bit-serial over activations, all weight planes in parallel.

The reference model is :class:`golden.blocks.cim.CimParams` (the formulas are in the docstring
of :mod:`golden.blocks.cim`); the same object sizes this block.
"""

from amaranth.hdl import Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from cimcodec.golden.blocks.cim import ACT_BITS, WEIGHT_BITS, CimParams
from cimcodec.golden.errors import CimcodecError


def _index_shape(count: int) -> Shape:
    """Unsigned shape of an index ``0..count-1`` (at least one bit)."""
    return unsigned(max(1, (count - 1).bit_length()))


def weight_layout(params: CimParams) -> data.StructLayout:
    """The ``w`` payload: one weight and the cell it goes to."""
    return data.StructLayout({
        "row": _index_shape(params.rows),
        "col": _index_shape(params.cols),
        "weight": signed(WEIGHT_BITS),
    })


def act_layout(params: CimParams) -> data.ArrayLayout:
    """The ``a`` payload: one activation vector, one 8-bit entry per row."""
    shape = signed(ACT_BITS) if params.signed_acts else unsigned(ACT_BITS)
    return data.ArrayLayout(shape, params.rows)


def result_shape(params: CimParams) -> Shape:
    """A signed shape holding every result the ADC setting can give."""
    low, high = params.result_range
    return Shape.cast(range(low, high + 1))


def result_layout(params: CimParams) -> data.ArrayLayout:
    """The ``o`` payload: one result per column."""
    return data.ArrayLayout(result_shape(params), params.cols)


def _popcount(bits):
    """Number of ones among ``bits``, as a balanced adder tree."""
    values = list(bits)
    while len(values) > 1:
        pairs = [a + b for a, b in zip(values[0::2], values[1::2])]
        values = pairs + values[len(pairs) * 2:]
    return values[0]


class CimArray(wiring.Component):
    """``R x C`` array of 8-bit weights; each activation vector gives ``C`` results.

    Parameters
    ----------
    params : CimParams
        Rows, columns, ADC resolution and activation signedness (all fixed at
        elaboration).

    Attributes
    ----------
    w : In(stream.Signature(weight_layout(params)))
        Weight writes ``{row, col, weight}``. Accepted while no vector is in the
        bit-serial stage; a write applies to every vector accepted after it (or in the
        same clock). Writes to a row or column outside the array are dropped. All
        weights reset to 0.
    a : In(stream.Signature(act_layout(params)))
        One activation vector per transfer.
    o : Out(stream.Signature(result_layout(params)))
        One transfer per vector, in order: ``CimParams.compute`` of the weights and
        that vector, bit for bit.

    Stream rules: ``o`` is a register: ``o.valid`` rises without waiting for
    ``o.ready``, and ``o.valid`` and ``o.payload`` hold until the transfer. ``a.ready``
    and ``w.ready`` are functions of state and of ``o.ready`` (the whole pipeline holds
    while a finished result waits), never of ``a.valid`` or ``w.valid``.

    Timing: a vector takes 8 clocks in the bit-serial stage, and the next one is
    accepted in its last clock, so the throughput is one vector, ``R * C`` 8-bit MACs,
    per 8 clocks. ``o.valid`` rises 10 clocks after the ``a`` transfer. Each clock does
    ``8 C`` popcounts of ``R`` AND gates, ``8 C`` ADC table lookups (``R + 1`` entries,
    left out for a lossless ADC) and ``C`` 8-term shift-adds.
    """

    def __init__(self, params: CimParams):
        if not isinstance(params, CimParams):
            raise CimcodecError(f"CIM array parameters must be a CimParams, not {params!r}.")
        self._params = params
        super().__init__({
            "w": In(stream.Signature(weight_layout(params))),
            "a": In(stream.Signature(act_layout(params))),
            "o": Out(stream.Signature(result_layout(params))),
        })

    @property
    def params(self) -> CimParams:
        return self._params

    def elaborate(self, platform):
        m = Module()
        p = self._params
        rows, cols = p.rows, p.cols
        count_shape = unsigned(rows.bit_length())  # 0..R

        # Weight cells, written through ``w``. Every cell, activation and count is a
        # signal of its own rather than a slice of one wide vector, which keeps the
        # simulators' models small.
        weights = [[Signal(signed(WEIGHT_BITS), name=f"weight{r}_{c}") for c in range(cols)]
                   for r in range(rows)]
        busy = Signal()
        m.d.comb += self.w.ready.eq(~busy)
        write = self.w.valid & self.w.ready
        for r in range(rows):
            for c in range(cols):
                with m.If(write & (self.w.payload.row == r) & (self.w.payload.col == c)):
                    m.d.sync += weights[r][c].eq(self.w.payload.weight)

        # Stage 0, bit-serial: the vector sits in a shift register and is applied most
        # significant bit first (bit 7 - step), so stage 1 can accumulate by Horner's
        # rule, ``acc = 2 * acc + s_i * p_i``, with a fixed shift instead of a barrel
        # shifter. Each column and weight plane counts its rows with act bit AND weight
        # bit (the charge sharing), and the ADC table turns the count into ``n_hat``.
        acts = [Signal(ACT_BITS, name=f"act{r}") for r in range(rows)]
        step = Signal(range(ACT_BITS))
        n_hat = [[Signal(count_shape, name=f"n_hat{c}_{j}") for j in range(WEIGHT_BITS)]
                 for c in range(cols)]
        for c in range(cols):
            for j in range(WEIGHT_BITS):
                count = _popcount(acts[r][ACT_BITS - 1] & weights[r][c][j] for r in range(rows))
                if p.exact:
                    m.d.comb += n_hat[c][j].eq(count)
                    continue
                # The ADC as a ROM of R + 1 entries; a count never exceeds R, so the
                # default arm is entry R.
                n = Signal(count_shape, name=f"count{c}_{j}")
                m.d.comb += n.eq(count)
                with m.Switch(n):
                    for k, value in enumerate(p.adc_table[:-1]):
                        with m.Case(k):
                            m.d.comb += n_hat[c][j].eq(value)
                    with m.Default():
                        m.d.comb += n_hat[c][j].eq(p.adc_table[-1])

        # Stage 1, shift-add: p = sum_j s_j 2**j n_hat[j] per column, then Horner over
        # the activation bits; the first step is activation bit 7, negative when signed.
        s1_valid, s1_first, s1_last = Signal(), Signal(), Signal()
        s1_n_hat = [[Signal(count_shape, name=f"s1_n_hat{c}_{j}") for j in range(WEIGHT_BITS)]
                    for c in range(cols)]
        shape = result_shape(p)
        acc = [Signal(shape, name=f"acc{c}") for c in range(cols)]
        acc_next = [Signal(shape, name=f"acc_next{c}") for c in range(cols)]
        for c in range(cols):
            planes = s1_n_hat[c]
            partial = Signal(range(-(rows << (WEIGHT_BITS - 1)),
                                   (rows << (WEIGHT_BITS - 1)) - rows + 1), name=f"partial{c}")
            m.d.comb += partial.eq(sum(planes[j] << j for j in range(WEIGHT_BITS - 1))
                                   - (planes[WEIGHT_BITS - 1] << (WEIGHT_BITS - 1)))
            term = Mux(s1_first, -partial, partial) if p.signed_acts else partial
            m.d.comb += acc_next[c].eq(Mux(s1_first, 0, acc[c] << 1) + term)

        # The pipeline moves as one; it holds only while a finished result would land
        # in an ``o`` register that is still waiting for its transfer.
        advance = Signal()
        m.d.comb += [
            advance.eq(~(s1_valid & s1_last & self.o.valid & ~self.o.ready)),
            self.a.ready.eq(advance & (~busy | (step == ACT_BITS - 1))),
        ]

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(advance):
            m.d.sync += [
                s1_valid.eq(busy),
                s1_first.eq(step == 0),
                s1_last.eq(step == ACT_BITS - 1),
            ]
            m.d.sync += [s1_n_hat[c][j].eq(n_hat[c][j])
                         for c in range(cols) for j in range(WEIGHT_BITS)]
            with m.If(busy):
                m.d.sync += [acts[r].eq(acts[r] << 1) for r in range(rows)]
                m.d.sync += step.eq(step + 1)
                with m.If(step == ACT_BITS - 1):
                    m.d.sync += [step.eq(0), busy.eq(0)]
            with m.If(self.a.valid & self.a.ready):
                m.d.sync += [acts[r].eq(self.a.payload[r]) for r in range(rows)]
                m.d.sync += [step.eq(0), busy.eq(1)]
            with m.If(s1_valid):
                with m.If(s1_last):
                    m.d.sync += self.o.valid.eq(1)
                    m.d.sync += [self.o.payload[c].eq(acc_next[c]) for c in range(cols)]
                with m.Else():
                    m.d.sync += [acc[c].eq(acc_next[c]) for c in range(cols)]
        return m
