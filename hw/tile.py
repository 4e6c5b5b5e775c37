"""The accelerator tile: :class:`hw.decompressor.Decompressor` (container mode) ->
:class:`WeightAdapter` -> :class:`hw.cim.CimArray` -> column accumulator -> output stage.

The reference model is :class:`golden.blocks.tile.TileModel`; its module docstring
defines a job, the window, the partial sums and every formula of the output stage. The
same :class:`golden.blocks.tile.TileShape` sizes this block.
"""

import functools
import operator

from amaranth.hdl import Const, Module, Mux, ResetInserter, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from cimcodec.golden.blocks import tile as golden
from cimcodec.golden.blocks.tile import MULTIPLIER_BITS, SHIFT_BITS, TileShape
from cimcodec.hw import field_enum, refuse
from cimcodec.hw.cim import CimArray, act_layout, weight_layout
from cimcodec.hw.decompressor import Decompressor, ErrorCode, lane_layout
from cimcodec.hw.markers import byte_layout

ClampCode = field_enum("ClampCode", golden.Clamp, 2, __name__)


class Phase(enum.Enum, shape=3):
    """The tile's job phases."""

    IDLE = 0        # waiting for a job
    LOAD = 1        # the file through the decompressor into the staging memory
    COPY = 2        # the staged window into the array
    STATUS = 3      # the job's status into ``s``
    MAC = 4         # the vectors through the array
    STOPPED = 5     # a load failed: nothing until reset
ACC_BITS = 32


def config_layout(shape: TileShape) -> data.StructLayout:
    """The ``cfg`` payload: one job (:meth:`golden.blocks.tile.TileParams.config`)."""
    return data.StructLayout({
        "load": 1,
        "row0": range(shape.max_rows),
        "col0": range(shape.max_cols),
        "count": range(shape.vectors + 1),
        "first": 1,
        "last": 1,
        "relu": 1,
        "clamp": ClampCode,
        "multiplier": unsigned(MULTIPLIER_BITS),
        "shift": unsigned(SHIFT_BITS),
        "bias": data.ArrayLayout(signed(ACC_BITS), shape.cols),
    })


def status_layout(shape: TileShape) -> data.StructLayout:
    """The ``s`` payload: a job's status, after its load phase."""
    return data.StructLayout({
        "error": 1,
        "code": ErrorCode,
        "written": range(shape.rows * shape.cols + 1),
    })


def output_layout(shape: TileShape) -> data.ArrayLayout:
    """The ``o`` payload: the ``C`` outputs of one vector."""
    return data.ArrayLayout(signed(ACC_BITS), shape.cols)


def sample_layout(shape: TileShape) -> data.Layout:
    """The adapter's input: one decoded sample at its matrix position, or with
    ``shape.lanes > 1`` one slot ``{valid, row, col, sample}`` per lane (the
    decompressor's :func:`hw.decompressor.lane_layout`)."""
    if shape.lanes > 1:
        return data.ArrayLayout(lane_layout(shape.decompressor), shape.lanes)
    remap = shape.decompressor.remap
    return data.StructLayout({"row": remap.row_bits, "col": remap.col_bits, "sample": 8})


class WeightAdapter(wiring.Component):
    """Decoded samples -> the window of the array, staged, then copied into the array.

    Attributes
    ----------
    row0, col0 : In
        The window origin, held while samples arrive.
    i : In(stream.Signature(sample_layout(shape)))
        Samples, one per lane per transfer; always ready. A sample inside the window is
        staged as the weight ``sample - 128`` of cell ``(row - row0, col - col0)``.
    clear : In(1)
        Forget every staged cell (the next copy writes 0 where no sample came).
    copy : In(1)
        Start writing the ``R * C`` staged cells into the array, row-major, ``W =
        shape.writes_per_clock`` cells per write.
    w : Out(stream.Signature(weight_layout(shape.cim)))
        The array's weight writes.
    busy : Out(1)
        A copy is running.

    The staging memory keeps the array untouched until the file is known to be good
    (the decompressor finds some errors only at the end of the scan). Its words are
    the array's writes, ``W`` cells each; every lane has a write port with a byte
    enable per cell (two lanes never write one cell in the same clock: the samples of
    a file are at distinct positions).
    """

    def __init__(self, shape: TileShape):
        self._shape = shape
        super().__init__({
            "row0": In(range(shape.max_rows)),
            "col0": In(range(shape.max_cols)),
            "i": In(stream.Signature(sample_layout(shape))),
            "clear": In(1),
            "copy": In(1),
            "w": Out(stream.Signature(weight_layout(shape.cim))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        rows, cols = self._shape.rows, self._shape.cols
        width = self._shape.writes_per_clock
        shift = width.bit_length() - 1
        cells = rows * cols
        words = cells // width
        word_layout = data.ArrayLayout(signed(8), width)
        m.submodules.staging = staging = Memory(shape=word_layout, depth=words, init=[])
        read = staging.read_port()
        staged = Signal(cells)             # cells a sample reached since ``clear``
        m.d.comb += self.i.ready.eq(1)

        # ---- Staging: per lane the window test, the cell address, a byte-enabled write.
        if self._shape.lanes > 1:
            slots = [(self.i.payload[k], self.i.payload[k].valid)
                     for k in range(self._shape.lanes)]
        else:
            slots = [(self.i.payload, 1)]
        marks = []
        for k, (sample, valid) in enumerate(slots):
            write = staging.write_port(granularity=1)
            r = Signal(signed(sample.row.shape().width + 1), name=f"r{k}")
            c = Signal(signed(sample.col.shape().width + 1), name=f"c{k}")
            m.d.comb += [r.eq(sample.row - self.row0), c.eq(sample.col - self.col0)]
            inside = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
            address = Signal(range(cells), name=f"address{k}")
            enable = Signal(name=f"enable{k}")
            m.d.comb += [
                address.eq(r * cols + c),
                enable.eq(self.i.valid & valid & inside),
                write.addr.eq(address >> shift),
                write.en.eq(Mux(enable, Const(1, width) << address[:shift], 0) if shift
                            else enable),
            ]
            m.d.comb += [write.data[j].eq(sample.sample - 128) for j in range(width)]
            marks.append(Mux(enable, Const(1, cells) << address, 0))
        with m.If(self.clear):
            m.d.sync += staged.eq(0)
        with m.Else():
            m.d.sync += staged.eq(staged | functools.reduce(operator.or_, marks))

        # ---- Copy: one word (``W`` cells) per clock, read one clock ahead of its write.
        index = Signal(range(words + 1))
        row, col = Signal(range(rows)), Signal(range(cols))
        active = Signal()
        keep = Signal(width)
        w = self.w
        advance = ~w.valid | w.ready
        issue = active & (index != words)
        m.d.comb += [
            read.addr.eq(index),
            read.en.eq(advance),
            self.busy.eq(active | w.valid),
        ]
        if width == 1:
            m.d.comb += w.payload.weight.eq(Mux(keep, read.data[0], 0))
        else:
            m.d.comb += [w.payload.weight[j].eq(Mux(keep[j], read.data[j], 0))
                         for j in range(width)]
        with m.If(advance):
            m.d.sync += [w.valid.eq(issue), w.payload.row.eq(row), w.payload.col.eq(col),
                         keep.eq(staged.word_select(index, width))]
            with m.If(issue):
                m.d.sync += [index.eq(index + 1),
                             col.eq(Mux(col == cols - width, 0, col + width))]
                with m.If(col == cols - width):
                    m.d.sync += row.eq(row + 1)
            with m.Elif(active):
                m.d.sync += active.eq(0)
        with m.If(self.copy):
            m.d.sync += [active.eq(1), index.eq(0), row.eq(0), col.eq(0)]
        return m


class Tile(wiring.Component):
    """Compressed weights in, requantized layer outputs out, exactly
    :class:`golden.blocks.tile.TileModel`.

    Parameters
    ----------
    shape : TileShape

    Attributes
    ----------
    cfg : In(stream.Signature(config_layout(shape)))
        One transfer per job, taken when the previous job has no vector left to send
        or result left to accumulate.
    i : In(stream.Signature(byte_layout()))
        The job's file (``load = 1``), one byte per transfer.
    a : In(stream.Signature(act_layout(shape.cim)))
        The job's ``count`` activation vectors, taken after its status.
    s : Out(stream.Signature(status_layout(shape)))
        One transfer per job after its load phase (right away with ``load = 0``):
        ``error`` and ``code`` of the decompressor's status event, and ``written``,
        the weights the array took in this job (``R * C``, or 0; ``W =
        shape.writes_per_clock`` per write).
    o : Out(stream.Signature(output_layout(shape)))
        For a ``last`` job, one transfer of ``C`` outputs per vector, in order.
    error : Out(1)
        A load failed; held until reset. After the failing job's status the tile takes
        nothing more.
    code : Out(ErrorCode)
        That load's error code.

    Timing: the file's bytes and samples pass at the decompressor's rate (one sample
    per lane per clock once its headers are read; the staging memory takes them all);
    the copy into the array takes ``R * C / W`` clocks; a vector takes
    ``shape.cim.clocks_per_vector`` clocks in the array (8 at the default
    ``planes_per_clock = 8``). The decompressor is reset (by the
    tile) after every status event, so each load starts afresh.

    Stream rules: ``s`` and ``o`` are registers (``valid`` never waits for ``ready``).
    """

    def __init__(self, shape: TileShape = TileShape()):
        if not isinstance(shape, TileShape):
            refuse(self, f"Tile shape must be a TileShape, not {shape!r}.")
        self._shape = shape
        super().__init__({
            "cfg": In(stream.Signature(config_layout(shape))),
            "i": In(stream.Signature(byte_layout())),
            "a": In(stream.Signature(act_layout(shape.cim))),
            "s": Out(stream.Signature(status_layout(shape))),
            "o": Out(stream.Signature(output_layout(shape))),
            "error": Out(1),
            "code": Out(ErrorCode),
        })

    @property
    def shape(self) -> TileShape:
        return self._shape

    def elaborate(self, platform):
        m = Module()
        shape = self._shape
        restart = Signal()
        decompressor = Decompressor(shape.decompressor)
        m.submodules.decompressor = ResetInserter(restart)(decompressor)
        m.submodules.adapter = adapter = WeightAdapter(shape)
        m.submodules.cim = cim = CimArray(shape.cim)
        wiring.connect(m, adapter.w, cim.w)

        job = Signal(config_layout(shape))
        written = Signal.like(self.s.payload.written)
        sent = Signal(range(shape.vectors + 1))       # vectors into the array
        done = Signal(range(shape.vectors + 1))       # results accumulated
        dec = decompressor.o
        m.d.comb += [
            adapter.row0.eq(job.row0),
            adapter.col0.eq(job.col0),
            decompressor.i.payload.eq(self.i.payload),
            cim.a.payload.eq(self.a.payload),
        ]
        if shape.lanes > 1:
            m.d.comb += adapter.i.payload.eq(dec.payload.lane)
        else:
            m.d.comb += [adapter.i.payload.row.eq(dec.payload.row),
                         adapter.i.payload.col.eq(dec.payload.col),
                         adapter.i.payload.sample.eq(dec.payload.sample)]
        with m.If(cim.w.valid & cim.w.ready):
            m.d.sync += written.eq(written + shape.writes_per_clock)

        s = self.s
        with m.If(s.ready):
            m.d.sync += s.valid.eq(0)

        phase = Signal(Phase)
        # (If / Elif rather than a Switch: Yosys writes a Switch as one incomplete case
        # statement per signal, which Verilator rejects.)
        with m.If(phase == Phase.IDLE):
            m.d.comb += self.cfg.ready.eq(1)
            with m.If(self.cfg.valid):
                m.d.sync += [job.eq(self.cfg.payload), written.eq(0), sent.eq(0),
                             done.eq(0)]
                m.d.comb += adapter.clear.eq(1)
                with m.If(self.cfg.payload.load):
                    m.d.sync += phase.eq(Phase.LOAD)
                with m.Else():
                    m.d.sync += phase.eq(Phase.STATUS)
        with m.Elif(phase == Phase.LOAD):
            m.d.comb += [
                decompressor.i.valid.eq(self.i.valid),
                self.i.ready.eq(decompressor.i.ready),
                # The status event waits for the previous job's status to leave.
                dec.ready.eq(~dec.payload.end | ~s.valid),
                adapter.i.valid.eq(dec.valid & ~dec.payload.end),
            ]
            with m.If(dec.valid & dec.ready & dec.payload.end):
                m.d.comb += restart.eq(1)
                with m.If(dec.payload.error):
                    # ``written`` counts the weights the array took: 0 unless some
                    # weight reached the array before the error.
                    m.d.sync += [s.valid.eq(1), s.payload.error.eq(1),
                                 s.payload.code.eq(dec.payload.code),
                                 s.payload.written.eq(written),
                                 self.error.eq(1), self.code.eq(dec.payload.code)]
                    m.d.sync += phase.eq(Phase.STOPPED)
                with m.Else():
                    m.d.comb += adapter.copy.eq(1)
                    m.d.sync += phase.eq(Phase.COPY)
        with m.Elif(phase == Phase.COPY):
            with m.If(~adapter.busy):
                m.d.sync += phase.eq(Phase.STATUS)
        with m.Elif(phase == Phase.STATUS):
            with m.If(~s.valid):
                m.d.sync += [s.valid.eq(1), s.payload.error.eq(0), s.payload.code.eq(0),
                             s.payload.written.eq(written)]
                m.d.sync += phase.eq(Phase.MAC)
        with m.Elif(phase == Phase.MAC):
            more = sent != job.count
            m.d.comb += [cim.a.valid.eq(self.a.valid & more),
                         self.a.ready.eq(cim.a.ready & more)]
            with m.If(cim.a.valid & cim.a.ready):
                m.d.sync += sent.eq(sent + 1)
            with m.If((done == job.count) & ~more):
                m.d.sync += phase.eq(Phase.IDLE)
        # STOPPED: nothing until reset.

        # ---- Column accumulator: one int32 partial sum per vector and column.
        cols = shape.cols
        row_layout = data.ArrayLayout(signed(ACC_BITS), cols)
        m.submodules.acc = acc = Memory(shape=row_layout, depth=shape.vectors, init=[])
        acc_read = acc.read_port(domain="comb")
        acc_write = acc.write_port()
        partial = cim.o.payload
        sums = Signal(row_layout)
        m.d.comb += acc_read.addr.eq(done)
        for c in range(cols):
            m.d.comb += sums[c].eq(partial[c] + Mux(job.first, 0, acc_read.data[c]))

        # ---- Output stage (last job): bias, requantization, ReLU, clamp.
        o = self.o
        take = cim.o.valid & cim.o.ready
        m.d.comb += [
            cim.o.ready.eq(~job.last | ~o.valid | o.ready),
            acc_write.addr.eq(done),
            acc_write.data.eq(sums),
            acc_write.en.eq(take),
        ]
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(take):
            m.d.sync += done.eq(done + 1)
            with m.If(job.last):
                m.d.sync += o.valid.eq(1)
                for c in range(cols):
                    m.d.sync += o.payload[c].eq(self._requantize(m, job, sums[c], job.bias[c],
                                                                 c))
        return m

    @staticmethod
    def _requantize(m, job, total, bias, c):
        """``y`` of one column (golden.blocks.tile, step 3), as a combinational value."""
        v = Signal(signed(ACC_BITS), name=f"v{c}")
        r = Signal(signed(ACC_BITS + MULTIPLIER_BITS + 1), name=f"r{c}")
        half = (Const(1, 1) << job.shift) >> 1
        m.d.comb += [
            v.eq(total + bias),
            r.eq((v * job.multiplier + half) >> job.shift),
        ]
        low = Mux(job.clamp == ClampCode.UINT8, 0,
                  Mux(job.clamp == ClampCode.INT8, -128, golden.INT32[0]))
        high = Mux(job.clamp == ClampCode.UINT8, 255,
                   Mux(job.clamp == ClampCode.INT8, 127, golden.INT32[1]))
        low = Mux(job.relu & (low < 0), 0, low)
        return Mux(r < low, low, Mux(r > high, high, r))
