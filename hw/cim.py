"""Charge-redistribution compute-in-memory MAC array: the digital twin of seed 001's
analog macro, bit-serial over activations and over the weight planes,
``CimParams.planes_per_clock`` planes at a time.

The reference model is :class:`golden.blocks.cim.CimParams` (the formulas are in the docstring
of :mod:`golden.blocks.cim`); the same object sizes this block.
"""

from amaranth.hdl import Cat, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from cimcodec.golden.blocks.cim import ACT_BITS, WEIGHT_BITS, CimParams
from cimcodec.hw import refuse


def _index_shape(count: int) -> Shape:
    """Unsigned shape of an index ``0..count-1`` (at least one bit)."""
    return unsigned(max(1, (count - 1).bit_length()))


def weight_layout(params: CimParams) -> data.StructLayout:
    """The ``w`` payload: the first cell ``(row, col)`` of a write and its weight, or with
    ``W = params.writes_per_clock > 1`` its ``W`` weights (``weight[k]`` for column
    ``col + k``; ``col`` a multiple of ``W``)."""
    width = params.writes_per_clock
    weight = signed(WEIGHT_BITS)
    return data.StructLayout({
        "row": _index_shape(params.rows),
        "col": _index_shape(params.cols),
        "weight": weight if width == 1 else data.ArrayLayout(weight, width),
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


def _popcount_stages(rows: int) -> int:
    """Registered adder-tree levels of a popcount of ``rows`` bits, four values per adder."""
    stages = 0
    while rows > 1:
        rows, stages = -(-rows // 4), stages + 1
    return stages


class CimArray(wiring.Component):
    """``R x C`` array of 8-bit weights; each activation vector gives ``C`` results.

    Parameters
    ----------
    params : CimParams
        Rows, columns, ADC resolution, activation signedness and weight planes per clock
        ``P`` (all fixed at elaboration).

    Attributes
    ----------
    w : In(stream.Signature(weight_layout(params)))
        Weight writes ``{row, col, weight}``: one cell, or with ``W =
        params.writes_per_clock > 1`` the ``W`` cells ``col .. col + W - 1`` of the row
        (the low ``log2 W`` bits of ``col`` are ignored, so a write always fills one
        aligned group). Accepted while no vector is staged or in the bit-serial
        stage; a write applies to every vector accepted after it or in the same clock.
        The weights land in the cells a clock after the transfer. Writes to a row or
        column outside the array are dropped. All weights reset to 0.
    a : In(stream.Signature(act_layout(params)))
        One activation vector per transfer.
    o : Out(stream.Signature(result_layout(params)))
        One transfer per vector, in order: ``CimParams.compute`` of the weights and
        that vector, bit for bit.
    latency : int
        Clocks from an ``a`` transfer to its result (see Timing).

    Stream rules: ``o`` is a register: ``o.valid`` rises without waiting for
    ``o.ready``, and ``o.valid`` and ``o.payload`` hold until the transfer. ``a.ready``
    and ``w.ready`` are functions of state only, never of ``a.valid``, ``w.valid`` or
    ``o.ready``. The pipeline never holds: a vector once taken runs to its result, and
    a result that finds ``o`` full waits in a queue behind it; ``a`` takes a vector only
    while fewer than ``latency // (64 / P) + 1`` taken vectors have results that have not
    passed out of ``o`` (enough for full rate while ``o.ready`` stays high).

    Timing: a vector takes ``CimParams.clocks_per_vector`` = ``8 * 8 / P`` clocks in the
    bit-serial stage (one activation bit per ``8 / P`` clocks, ``P`` weight planes per
    clock). A vector taken in clock ``t`` is staged in a register, loaded into the rows
    in clock ``t + 1`` and steps from clock ``t + 2``; the next one is accepted in the
    last clock but one of the bit-serial stage, so the throughput is one vector,
    ``R * C`` 8-bit MACs, per ``64 / P`` clocks. With ``o.ready`` high and the ``a``
    transfer in clock ``t``, ``o.valid`` is high in clock ``t + latency``:
    ``latency = 64 / P + 6 + ceil(log4 R)`` (the staging clock, the bit-serial clocks,
    then a clock per register after them: the selected AND gates, ``ceil(log4 R)``
    popcount adder levels, the ADC table, the plane sum, the plane Horner step, and
    ``o``, written by the activation Horner step); 41 for ``R = 64, P = 2``. Each clock
    does ``P C`` popcounts of ``R`` AND gates, ``P C`` ADC table lookups (``R + 1``
    entries, left out for a lossless ADC) and ``C`` ``P``-term shift-adds, and each
    cell selects its ``P`` bits of the clock among its 8 weight bits (``8 / P`` to 1).
    """

    def __init__(self, params: CimParams):
        if not isinstance(params, CimParams):
            refuse(self, f"CIM array parameters must be a CimParams, not {params!r}.")
        self._params = params
        super().__init__({
            "w": In(stream.Signature(weight_layout(params))),
            "a": In(stream.Signature(act_layout(params))),
            "o": Out(stream.Signature(result_layout(params))),
        })

    @property
    def params(self) -> CimParams:
        return self._params

    @property
    def latency(self) -> int:
        """Clocks from an ``a`` transfer (clock ``t``) to ``o.valid`` (clock ``t + latency``)
        without stalls: ``clocks_per_vector + 6 + ceil(log4 R)``."""
        return self._params.clocks_per_vector + 6 + _popcount_stages(self._params.rows)

    def elaborate(self, platform):
        m = Module()
        p = self._params
        rows, cols = p.rows, p.cols
        lanes = p.planes_per_clock                 # P weight planes per clock
        groups = WEIGHT_BITS // lanes              # K clocks per activation bit
        count_shape = unsigned(rows.bit_length())  # 0..R

        # Weight cells, written through ``w``: a one-hot row decode and a one-hot decode
        # of the column group (``W`` columns), the cell's enable their AND (a row or
        # column outside the array decodes to nothing, so its writes are dropped); cell
        # ``c`` of a group takes ``weight[c mod W]``, a fixed wire. The decode and the
        # weights are registered (``wr_*``) and land in the cells a clock after the
        # transfer, so no path runs from ``w`` or ``busy`` through the decode into the
        # enables, each of which reaches a whole row. Every cell, activation and count
        # is a signal of its own rather than a slice of one wide vector, which keeps
        # the simulators' models small.
        weights = [[Signal(signed(WEIGHT_BITS), name=f"weight{r}_{c}") for c in range(cols)]
                   for r in range(rows)]
        busy = Signal()
        write = self.w.valid & self.w.ready
        width = p.writes_per_clock
        shift = width.bit_length() - 1
        wr_row = Signal(rows)
        wr_group = Signal(cols // width)
        # The registered weights have a copy per quarter of the rows (``blocks``), so no
        # one net reaches a column's weights in every row (it was the array's critical
        # path, all routing). Identical copies would be merged by synthesis, and an
        # inverted one would need a LUT before every weight flip-flop, so copy ``b``
        # starts from ``-(b >> 1)`` (all zeros or all ones; the value before the first
        # write is never used) and, when ``b`` is odd, loads only while ``w.valid``
        # (every write has it): four different flip-flops.
        blocks = min(4, rows)
        block = [r * blocks // rows for r in range(rows)]
        w_layout = self.w.payload.weight.shape()
        wr_bits = Shape.cast(w_layout).width
        wr_weights = []
        for b in range(blocks):
            raw = Signal(wr_bits, init=-(b >> 1) % (1 << wr_bits), name=f"wr_weight{b}",
                         reset_less=True)
            load = raw.eq(Value.cast(self.w.payload.weight))
            if b & 1:
                with m.If(self.w.valid):
                    m.d.sync += load
            else:
                m.d.sync += load
            wr_weights.append(data.View(w_layout, raw) if width > 1 else raw.as_signed())
        # Each row's write enable has a second copy for the right half of its columns,
        # so no one net reaches all of a row's weight bits (it was the array's critical
        # path, all routing). It holds the enable inverted (and resets to 1), so
        # synthesis keeps it apart, and the cells take it as an inverted clock enable
        # (free on ECP5).
        halves = min(2, cols)
        half = [c * halves // cols for c in range(cols)]
        wr_row_n = Signal(rows, init=(1 << rows) - 1)
        for r in range(rows):
            hit = write & (self.w.payload.row == r)
            m.d.sync += [wr_row[r].eq(hit), wr_row_n[r].eq(~hit)]
        for g in range(cols // width):
            m.d.sync += wr_group[g].eq((self.w.payload.col >> shift) == g)
        # A row write (one group) needs no group decode: the row's register alone
        # enables its cells, with no LUT between them. (With one column the 1-bit
        # ``col`` can still name column 1, which the decode drops.)
        one_group = cols == width > 1
        for r in range(rows):
            for c in range(cols):
                wr_weight = wr_weights[block[r]]
                value = wr_weight if width == 1 else wr_weight[c % width]
                row_on = wr_row[r] if half[c] == 0 else ~wr_row_n[r]
                enable = row_on if one_group else row_on & wr_group[c // width]
                with m.If(enable):
                    m.d.sync += weights[r][c].eq(value)

        # Each stage of the pipeline carries the flags of the step it holds: activation
        # bit ``7 - i`` (MSB first, so the activation sum is Horner's rule with a fixed
        # shift) and plane group ``k`` (``K - 1`` down to 0, planes ``k P .. k P + P - 1``;
        # the sign plane 7 comes first, so the plane sum is Horner's rule too). The
        # pipeline never holds: a vector, once taken, runs to its result, and a result
        # that finds ``o`` full waits in a queue (see ``capacity`` below). So no enable
        # reaches the datapath registers, and they have no reset.
        flag_layout = data.StructLayout({"valid": 1, "first_i": 1, "last_i": 1,
                                         "first_k": 1, "last_k": 1})
        flags = []

        def stage(name):
            """The flags register of one more stage, loaded from the previous one."""
            f = Signal(flag_layout, name=f"{name}_flags")
            m.d.sync += f.eq(flags[-1])
            flags.append(f)
            return f

        # Stage 0, bit-serial. A vector taken in clock ``t`` is staged (``staged``, a
        # register that loads ``a.payload`` every clock, so no enable reaches it from
        # ``a``), loaded into the rows in clock ``t + 1`` from the registered take
        # (``loading``), and steps from clock ``t + 2``. The rows' vector sits in a shift
        # register; its top bits are the activation bit of the step, ``k`` the plane
        # group. Each quarter of each row (``quarters`` column ranges) keeps its own copy
        # of ``k`` (``row_group``), which selects the weight bits of its cells, and of
        # the activation bit (``row_act``, loaded as the shift register's top bit is):
        # a row's cells lie spread over the columns' adder trees, and a net that reached
        # all of them was the array's critical path. A copy of ``k`` counts from its own
        # value, so synthesis never merges two. Copies of the bit that were the same
        # flip-flop function would be merged (and were), so copy ``q`` holds the bit
        # inverted when ``q`` is odd and starts from ``q >> 1`` (the value before the
        # first vector is never used): four different flip-flops. The load itself has a
        # copy per quarter of the rows (``row_load``, kept apart the same way), so no
        # one net reaches every row.
        quarters = min(4, cols)
        quarter = [c * quarters // cols for c in range(cols)]
        staged = [Signal(ACT_BITS, name=f"staged{r}", reset_less=True) for r in range(rows)]
        acts = [Signal(ACT_BITS, name=f"act{r}", reset_less=True) for r in range(rows)]
        row_act = [[Signal(init=q >> 1, name=f"act{r}_{q}", reset_less=True)
                    for q in range(quarters)] for r in range(rows)]

        def act_copy(q, bit):
            """What copy ``q`` of a row's activation bit (or of the load) holds for
            ``bit``."""
            return ~bit if q & 1 else bit
        def spread(source, name):
            """Per-quarter copies of a control bit that reaches every column, each a
            register of ``source`` (the value the bit takes in the next clock), kept
            apart as the row copies are: what column ``c`` reads is ``copy[quarter[c]]``.
            They have no reset: after a reset their value steers only registers that
            the next vector's first step overwrites."""
            out = []
            for q in range(quarters):
                copy = Signal(init=q >> 1, name=f"{name}_{q}", reset_less=True)
                m.d.sync += copy.eq(act_copy(q, source))
                out.append(act_copy(q, copy))
            return out
        loading = Signal()               # a vector was taken in the last clock
        row_load = [Signal(init=b >> 1, name=f"load{b}", reset_less=True)
                    for b in range(blocks)]
        step = Signal(range(ACT_BITS))
        group = Signal(_index_shape(groups), init=groups - 1)
        row_group = [[Signal(_index_shape(groups), init=groups - 1, name=f"group{r}_{q}")
                      for q in range(quarters)] for r in range(rows)]
        # The clock before the last step: the next vector is taken in it, so that it
        # is loaded in the last step and steps right after it.
        if groups > 1:
            before_last = (step == ACT_BITS - 1) & (group == 1)
        else:
            before_last = step == ACT_BITS - 2
        front = Signal(flag_layout)
        m.d.comb += [
            front.valid.eq(busy),
            front.first_i.eq(step == 0),
            front.last_i.eq(step == ACT_BITS - 1),
            front.first_k.eq(group == groups - 1),
            front.last_k.eq(group == 0),
        ]
        flags.append(front)

        # Stage 1: each cell's ``P`` weight bits of the plane group, AND the activation
        # bit of its row (the charge sharing of one column and plane), registered.
        stage("s1")
        bits = [[[Signal(name=f"bit{c}_{j}_{r}", reset_less=True) for r in range(rows)]
                 for j in range(lanes)] for c in range(cols)]
        for r in range(rows):
            for c in range(cols):
                w_bits = weights[r][c].as_unsigned()
                for j in range(lanes):
                    choice = Cat(*(w_bits[j + lanes * k] for k in range(groups)))
                    q = quarter[c]
                    m.d.sync += bits[c][j][r].eq(act_copy(q, row_act[r][q])
                                                 & choice.bit_select(row_group[r][q], 1))

        # Popcount stages: an adder of four values per level, each level registered.
        values = [[list(bits[c][j]) for j in range(lanes)] for c in range(cols)]
        level = 0
        while len(values[0][0]) > 1:
            level += 1
            stage(f"pop{level}")
            for c in range(cols):
                for j in range(lanes):
                    sums = []
                    for q in range(0, len(values[c][j]), 4):
                        total = Signal(range(min(rows, 4 ** level) + 1), reset_less=True,
                                       name=f"pop{level}_{c}_{j}_{q // 4}")
                        m.d.sync += total.eq(sum(values[c][j][q:q + 4]))
                        sums.append(total)
                    values[c][j] = sums
        counts = [[values[c][j][0] for j in range(lanes)] for c in range(cols)]

        # ADC stage: the table of ``R + 1`` entries (a lossless ADC is the identity),
        # registered. A count never exceeds R, so the default arm is entry R.
        pre_adc = flags[-1]
        adc_flags = stage("adc")
        adc_first_k = spread(pre_adc.first_k, "adc_first_k")
        n_hat = [[Signal(count_shape, name=f"n_hat{c}_{j}", reset_less=True)
                  for j in range(lanes)] for c in range(cols)]
        for c in range(cols):
            for j in range(lanes):
                if p.exact:
                    m.d.sync += n_hat[c][j].eq(counts[c][j])
                    continue
                with m.Switch(counts[c][j]):
                    for k, value in enumerate(p.adc_table[:-1]):
                        with m.Case(k):
                            m.d.sync += n_hat[c][j].eq(value)
                    with m.Default():
                        m.d.sync += n_hat[c][j].eq(p.adc_table[-1])

        # Plane-sum stage: ``t = sum_j s_j 2**j n_hat[j]`` over the group's ``P`` planes
        # (relative weights; the group's place is the Horner step after it); the top
        # plane of the first group is the sign plane 7.
        sum_flags = stage("sum")
        limit = rows << lanes
        terms = [Signal(range(-limit, limit), name=f"term{c}", reset_less=True)
                 for c in range(cols)]
        for c in range(cols):
            planes = n_hat[c]
            low = sum((planes[j] << j for j in range(lanes - 1)), 0)
            top = planes[lanes - 1] << (lanes - 1)
            m.d.sync += terms[c].eq(Mux(adc_first_k[quarter[c]], low - top, low + top))

        # Plane Horner stage: ``p = p * 2**P + t`` over the groups, highest first; after
        # the last group ``p`` is the column's sum over the 8 planes for this bit.
        horner_flags = stage("horner")
        sum_valid = spread(adc_flags.valid, "sum_valid")
        sum_first_k = spread(adc_flags.first_k, "sum_first_k")
        first_i = spread(sum_flags.first_i, "horner_first_i")
        done_copy = spread(sum_flags.valid & sum_flags.last_k, "horner_done")
        part_limit = rows << WEIGHT_BITS
        parts = [Signal(range(-part_limit, part_limit), name=f"part{c}", reset_less=True)
                 for c in range(cols)]
        for c in range(cols):
            with m.If(sum_valid[quarter[c]]):
                m.d.sync += parts[c].eq(Mux(sum_first_k[quarter[c]], 0, parts[c] << lanes)
                                        + terms[c])

        # Activation Horner stage, ``acc = 2 * acc + s_i * p`` once per activation bit;
        # the first is activation bit 7, negative when signed. The last one gives the
        # vector's results.
        shape = result_shape(p)
        acc = [Signal(shape, name=f"acc{c}", reset_less=True) for c in range(cols)]
        acc_next = [Signal(shape, name=f"acc_next{c}") for c in range(cols)]
        for c in range(cols):
            first = first_i[quarter[c]]
            term = Mux(first, -parts[c], parts[c]) if p.signed_acts else parts[c]
            m.d.comb += acc_next[c].eq(Mux(first, 0, acc[c] << 1) + term)
            with m.If(done_copy[quarter[c]]):
                m.d.sync += acc[c].eq(acc_next[c])
        done = horner_flags.valid & horner_flags.last_k
        arrive = done & horner_flags.last_i

        # Results: ``o`` and a queue behind it. ``pending`` counts the vectors taken whose
        # results have not passed out of ``o``; a vector is taken only while it is below
        # ``capacity`` (``o`` and the queue), so every result finds a place. ``capacity``
        # covers the vectors a new one can find still in flight at full rate, so only a
        # slow ``o.ready`` ever keeps ``a.ready`` low.
        capacity = self.latency // p.clocks_per_vector + 1
        queue = [Signal(result_layout(p), name=f"held{k}", reset_less=True)
                 for k in range(capacity - 1)]
        held = Signal(range(capacity))
        pending = Signal(range(capacity + 1))
        out_free = ~self.o.valid | self.o.ready
        pop = out_free & (held != 0)
        into_queue = arrive & ~(out_free & (held == 0))
        take_a = self.a.valid & self.a.ready
        take_o = self.o.valid & self.o.ready
        m.d.comb += self.a.ready.eq(((~busy & ~loading) | (busy & before_last))
                                    & (pending < capacity))
        m.d.sync += [pending.eq(pending + take_a - take_o), held.eq(held - pop + into_queue)]
        with m.If(out_free):
            with m.If(held != 0):
                m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(queue[0])]
            with m.Elif(arrive):
                m.d.sync += self.o.valid.eq(1)
                m.d.sync += [self.o.payload[c].eq(acc_next[c]) for c in range(cols)]
            with m.Else():
                m.d.sync += self.o.valid.eq(0)
        with m.If(pop):
            m.d.sync += [queue[k].eq(queue[k + 1]) for k in range(capacity - 2)]
        with m.If(into_queue):
            for k in range(capacity - 1):
                with m.If(held - pop == k):
                    m.d.sync += [queue[k][c].eq(acc_next[c]) for c in range(cols)]

        # The bit-serial stage: the next step, or a new vector. A row's shift register
        # and its bit copies follow the row's own copies of ``k`` (which run on while
        # no vector steps: what the rows hold then is never used), and a load replaces
        # the step.
        m.d.comb += self.w.ready.eq(~busy & ~loading)
        m.d.sync += [staged[r].eq(self.a.payload[r]) for r in range(rows)]
        m.d.sync += [loading.eq(take_a)]
        m.d.sync += [row_load[b].eq(act_copy(b, take_a)) for b in range(blocks)]
        with m.If(busy):
            with m.If(group == 0):
                m.d.sync += [step.eq(step + 1), group.eq(groups - 1)]
                with m.If(step == ACT_BITS - 1):
                    m.d.sync += [step.eq(0), busy.eq(0)]
            with m.Else():
                m.d.sync += group.eq(group - 1)
        with m.If(loading):
            m.d.sync += [step.eq(0), group.eq(groups - 1), busy.eq(1)]
        for r in range(rows):
            load = act_copy(block[r], row_load[block[r]])
            with m.If(load):
                m.d.sync += acts[r].eq(staged[r])
                m.d.sync += [a.eq(act_copy(q, staged[r][ACT_BITS - 1]))
                             for q, a in enumerate(row_act[r])]
            with m.Elif(row_group[r][0] == 0):
                m.d.sync += acts[r].eq(acts[r] << 1)
            for q, a in enumerate(row_act[r]):
                with m.If(~load & (row_group[r][q] == 0)):
                    m.d.sync += a.eq(act_copy(q, acts[r][ACT_BITS - 2]))
            for g in row_group[r]:
                m.d.sync += g.eq(Mux(load | (g == 0), groups - 1, g - 1))
        return m
