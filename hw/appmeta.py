"""Container metadata reader: the ``CIMCODEC`` ``APP11`` payload (the marker parser's
``APP`` events) in; the matrix size, the remap unit's configuration, the control-word
generator's job and the snap table out.

The reference model is :mod:`golden.blocks.appmeta`; its docstring lists the fields kept, the
fields walked over and every check.
"""

import operator
from functools import reduce

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from cimcodec.golden.blocks.appmeta import SCHEMES
from cimcodec.golden.blocks.decompressor import DecompressorShape
from cimcodec.golden.blocks.lfsr import MAXIMAL_TAPS, MIN_WIDTH
from cimcodec.golden.codec.container import FLAG_SNAP, MAX_NDIM, VERSION
from cimcodec.golden.jpeg.reference import MAX_DIMENSION
from cimcodec.hw import field_enum, refuse
from cimcodec.hw.lfsr import config_layout as generator_config_layout
from cimcodec.hw.markers import EventKind, event_layout

#: Snap-table entries.
SNAP_ENTRIES = 256
#: Codebook bytes per entry (``<b`` level, ``<f`` centroid) and quantization bytes per
#: channel (``<f`` scale, ``<h`` zero point).
BOOK_BYTES = 5
QUANT_BYTES = 6


#: The metadata's ``scheme`` byte: the index in :data:`golden.blocks.appmeta.SCHEMES`.
RemapScheme = field_enum("RemapScheme", {s.name: i for i, s in enumerate(SCHEMES)}, 2,
                         __name__)


class _Field(enum.Enum, shape=5):
    """The metadata field the next ``APP`` byte belongs to."""

    CHUNK = 0
    COUNT = 1
    VERSION = 2
    FLAGS = 3
    ROWS = 4
    COLS = 5
    NDIM = 6
    SHAPE0 = 7
    SHAPE = 8
    QSCHEME = 9
    QRANGE = 10
    NQ = 11
    QPARAMS = 12
    K = 13
    BOOK = 14
    SNAP = 15
    SCHEME = 16
    KIND = 17
    STAGE = 18
    NSEEDS = 19
    SEED0 = 20
    SEED1 = 21
    CRC = 22
    DONE = 23


def snap_layout() -> data.StructLayout:
    """One snap-table entry, ``last`` on the 256th."""
    return data.StructLayout({"value": 8, "last": 1})


def bit_length(value, bits):
    """``value.bit_length()`` of a ``bits``-bit value, as a priority encoder."""
    out = Const(0, range(bits + 1))
    for k in range(bits):
        out = Mux(value[k], k + 1, out)
    return out


def _times(value, constant: int):
    """``value * constant`` as a sum of shifted copies of ``value`` (no multiplier)."""
    return sum(value << i for i in range(constant.bit_length()) if constant >> i & 1)


class AppMeta(wiring.Component):
    """Reads the metadata from the parser's events, exactly :func:`golden.blocks.appmeta.parse`.

    Parameters
    ----------
    shape : DecompressorShape

    Attributes
    ----------
    event : In(event_layout())
        The parser's event.
    take : In(1)
        ``event`` is transferred this clock (and the file is not decoded as RAW).
    present : Out(1)
        An ``APP`` event was taken: the file is a container. Held.
    error : Out(1)
        Set in the clock after the event that breaks a check (registered, so no path
        runs from the checks into the decompressor's error latch), then held.
    rows, cols : Out(16)
        The matrix size (valid from the end of the segment).
    fits : Out(1)
        ``rows x cols`` fits the shape's matrix.
    remap, snap_on : Out(1)
        A remap scheme other than none; a snap table present.
    snap : Out(stream.Signature(snap_layout()))
        The snap entries as they arrive, one per ``APP`` event; ``ready`` is ignored
        (the consumer must take one per clock). Not offered after an error; the entry
        that raises one (an index not below ``K``) is still offered, and nothing is
        decoded after it.
    gen_cfg : Out(stream.Signature(generator config))
        One job (:meth:`golden.blocks.remap.RemapShape.generator_config`) after the metadata
        ended, for a remap other than none that fits: ``valid`` holds until the
        transfer or an error (``error`` withdraws the job, in the clock it rises),
        the payload is of registers that no longer change.

    Latency: the job is offered ``ceil(n_words / W) + 2`` clocks after the CRC's last
    byte (the default progressive stage length is found by repeated subtraction).
    """

    def __init__(self, shape: DecompressorShape = DecompressorShape()):
        if not isinstance(shape, DecompressorShape):
            refuse(self, f"Metadata reader shape must be a DecompressorShape, not {shape!r}.")
        self._shape = shape
        self._gen = shape.remap.generator_shape()
        super().__init__({
            "event": In(event_layout()),
            "take": In(1),
            "present": Out(1),
            "error": Out(1),
            "rows": Out(16),
            "cols": Out(16),
            "fits": Out(1),
            "remap": Out(1),
            "snap_on": Out(1),
            "snap": Out(stream.Signature(snap_layout())),
            "gen_cfg": Out(stream.Signature(generator_config_layout(self._gen))),
        })

    def elaborate(self, platform):
        m = Module()
        shape, gen = self._shape, self._gen
        ev = self.event
        b = ev.value[:8]
        is_app = ev.kind == EventKind.APP
        app = self.take & is_app

        field = Signal(_Field)
        left = Signal(19)
        word = Signal(24)                  # the previous three bytes, newest on top
        v32 = Cat(word, b)                 # the last four bytes, little-endian
        v16 = v32[16:]
        flags = Signal(2)
        ndim = Signal(4)
        per_channel = Signal()
        k = Signal(9)
        scheme = Signal(RemapScheme)
        galois = Signal()
        stage = Signal(32)
        seeds = [Signal(gen.lfsr_width, name=f"seed{i}") for i in range(2)]
        frame = Signal()                   # the frame header went by
        closed = Signal()                  # the segment ended
        held = Signal()
        bad = Signal()
        m.d.comb += self.error.eq(held)
        with m.If(bad):
            m.d.sync += held.eq(1)

        # Geometry: W = max(bitlen(Rp - 1), bitlen(Cp - 1)), bitlen(8 * B - 1) being
        # bitlen(B - 1) + 3. Registered, five deep (block counts, bit lengths and the
        # word count, W, the split and its field widths): the rows and columns are set at
        # least 20 bytes and the scheme 6 bytes before the first check that reads these
        # (NSEEDS), and the metadata arrives at most one byte per clock; so the checks
        # see them settled, and each register is one adder, priority encoder or
        # compare away from the one before.
        rows, cols = self.rows, self.cols
        block_rows = Signal(14)
        block_cols = Signal(14)
        m.d.sync += [block_rows.eq((rows + 7) >> 3), block_cols.eq((cols + 7) >> 3)]
        w_rows = Signal(range(17))
        w_cols = Signal(range(17))
        n_words = Signal(14)
        m.d.sync += [w_rows.eq(bit_length((block_rows - 1)[:13], 13) + 3),
                     w_cols.eq(bit_length((block_cols - 1)[:13], 13) + 3),
                     n_words.eq(block_rows + block_cols)]
        width = Signal(range(17))
        m.d.sync += width.eq(Mux(w_rows > w_cols, w_rows, w_cols))
        two = Signal()                     # split with W > 3: two LFSRs
        m.d.sync += two.eq((scheme == RemapScheme.SPLIT) & (width > 3))
        width0 = Signal(range(17))
        width1 = Signal(range(17))
        nfields = Signal(2)
        m.d.sync += [width0.eq(Mux(two, 3, width)),
                     width1.eq(Mux(width < 3 + MIN_WIDTH, MIN_WIDTH, width - 3)),
                     nfields.eq(Mux(scheme == RemapScheme.NONE, 0, Mux(two, 2, 1)))]
        m.d.comb += [
            self.fits.eq((rows <= shape.max_rows) & (cols <= shape.max_cols)),
            self.remap.eq(scheme != RemapScheme.NONE),
            self.snap_on.eq(flags[1]),
        ]

        # The lengths of the quantizer and codebook fields, formed from the bytes before
        # the field's last one by shifts and adds (a multiplier shared between them sat
        # behind the field decode, on the way into ``left``).
        quant_len = Signal(19)
        book_len = Signal(12)
        m.d.comb += [quant_len.eq(_times(v32[:16], QUANT_BYTES)),
                     book_len.eq(_times(v16[:9], BOOK_BYTES))]

        # ``last``: ``left == 1`` (the byte is its field's last), a register kept with
        # ``left``, so that no compare of ``left`` leads the checks.
        last = Signal()

        def goto(target, length=1):
            m.d.sync += [field.eq(target), left.eq(length), last.eq(length == 1)]

        # ---- The checks read the field's earlier bytes only through flags of ``word``
        # registered when its newest byte came (``w_*``, from ``v32[8:]``, the word after
        # this byte, and from registers settled long before), so the byte's own clock
        # holds one compare of ``b`` per check and the OR behind them: no 32-bit compare
        # or shift sits between the event register and the error latch. Each flag is
        # the part of the check on the low bytes: ``v32 == 0`` is ``w_zero & (b == 0)``,
        # ``v32 > MAX_DIMENSION`` is ``(b != 0) | w_big``, and so on.
        nw = v32[8:]
        w_zero, w_big, w_rows, w_nq, w_version, w_flags, w_low = (
            Signal(name=f"w_{n}") for n in ("zero", "big", "rows", "nq", "version", "flags",
                                            "low"))
        # The seeds' out-of-range bits below bit 16, ``~(2**width - 1)``, a register
        # behind the widths (settled, like them, before the first seed byte); the widths
        # are at most 16, so every bit from 16 up is out of range.
        assert len(width0) == len(width1) == 5
        over = [Signal(16, name=f"over{i}") for i in range(2)]
        m.d.sync += [over[0].eq(~((Const(1, 17) << width0) - 1)),
                     over[1].eq(~((Const(1, 17) << width1) - 1))]
        w_over = [Signal(name=f"w_over{i}") for i in range(2)]
        upper = nw[16:] != 0                   # the word's newest byte (v16's low byte)
        with m.If(app):
            m.d.sync += [
                w_zero.eq(nw == 0),
                w_big.eq(upper | (nw[:16] > MAX_DIMENSION)),
                w_rows.eq(upper | (nw[:16] != rows)),
                w_nq.eq(upper | (nw[:16] != Mux(per_channel, rows, 1))),
                w_version.eq(nw[16:] != VERSION & 0xFF),
                w_flags.eq((nw[18:] != 0) | (nw[16:18] == FLAG_SNAP)),
                w_low.eq(upper),
                w_over[0].eq(upper | ((nw[:16] & over[0]) != 0)),
                w_over[1].eq(upper | ((nw[:16] & over[1]) != 0)),
            ]
        zero32 = w_zero & (b == 0)                           # v32 == 0
        k_zero = ~w_low & (b == 0)                           # v16 == 0

        # ---- The checks: ``bad`` is one flat OR of terms, each a field's decode and a
        # compare of ``b`` (with the flags above), with ``refused``, ``last`` and ``app``
        # at its last levels rather than at the head of a priority chain. (A byte the
        # field sequencing below refuses or takes as the ``CHUNK`` byte is decided by
        # those terms alone, as no other term's field is ``CHUNK``; a ``SNAP`` byte
        # is checked whether it is its field's last or not.)
        def at(*fields):
            return reduce(operator.or_, (field == f for f in fields))

        on_last = [
            (at(_Field.COUNT), b != 1),
            (at(_Field.VERSION), w_version | (b != VERSION >> 8)),           # v16 != VERSION
            (at(_Field.FLAGS), w_flags | (b != 0)),    # v16[2:] != 0 or v16[:2] == FLAG_SNAP
            (at(_Field.ROWS, _Field.COLS), zero32 | w_big | (b != 0)),  # 0 or > MAX_DIMENSION
            (at(_Field.NDIM), (b == 0) | (b > MAX_NDIM)),
            (at(_Field.SHAPE0), w_rows | (b != 0)),                           # v32 != rows
            (at(_Field.QSCHEME, _Field.SCHEME), b > 3),
            (at(_Field.NQ), w_nq | (b != 0)),           # v32 != (rows if per_channel else 1)
            # v16 > SNAP_ENTRIES (256), or a codebook's presence against flags[0]
            (at(_Field.K), (b > 1) | ((b == 1) & w_low) | (~k_zero != flags[0])),
            (at(_Field.KIND), b > 1),
            (at(_Field.STAGE), ~zero32 & (scheme != RemapScheme.PROGRESSIVE)),
            (at(_Field.NSEEDS), b != nfields),
            # 0, or a bit at or above the field's width
            (at(_Field.SEED0), zero32 | w_over[0] | (b != 0)),
            (at(_Field.SEED1), zero32 | w_over[1] | (b != 0)),
            (at(_Field.DONE), 1),                                 # a byte after the CRC
        ]
        # An APP byte after the frame, after the segment closed, or opening a second
        # segment is refused: it is ``bad`` and no field acts on it.
        refused = frame | closed | ((ev.index == 0) & self.present)
        app_bad = reduce(operator.or_, [
            refused,
            at(_Field.CHUNK) & ((ev.index != 0) | (b != 0)),
            at(_Field.SNAP) & (b >= k),
            last & reduce(operator.or_, (f & c for f, c in on_last)),
        ])
        m.d.comb += bad.eq((app & app_bad)
                           | (self.take & ~is_app & self.present & ~closed
                              & (field != _Field.DONE)))

        # ---- One APP byte: a field's bytes are counted down in ``left``; its registers
        # act on its last byte (``v32`` then holds it, right-aligned in the top bytes);
        # a field of zero bytes is skipped by its predecessor.
        with m.If(self.take & ~is_app & self.present):
            m.d.sync += closed.eq(1)
        with m.If(self.take & (ev.kind == EventKind.FRAME)):
            m.d.sync += frame.eq(1)
        with m.If(app):
            m.d.sync += [self.present.eq(1), word.eq(nw)]
        with m.If(app & ~refused):
            with m.If(field == _Field.CHUNK):
                goto(_Field.COUNT)
            with m.Elif(~last):
                m.d.sync += [left.eq(left - 1), last.eq(left == 2)]
            with m.Else():
                with m.Switch(field):
                    with m.Case(_Field.COUNT):
                        goto(_Field.VERSION, 2)
                    with m.Case(_Field.VERSION):
                        goto(_Field.FLAGS, 2)
                    with m.Case(_Field.FLAGS):
                        goto(_Field.ROWS, 4)
                    with m.Case(_Field.ROWS):
                        goto(_Field.COLS, 4)
                    with m.Case(_Field.COLS):
                        goto(_Field.NDIM)
                    with m.Case(_Field.NDIM):
                        goto(_Field.SHAPE0, 4)
                    with m.Case(_Field.SHAPE0):
                        with m.If(ndim > 1):
                            goto(_Field.SHAPE, (ndim - 1) << 2)
                        with m.Else():
                            goto(_Field.QSCHEME)
                    with m.Case(_Field.SHAPE):
                        goto(_Field.QSCHEME)
                    with m.Case(_Field.QSCHEME):
                        goto(_Field.QRANGE, 2)
                    with m.Case(_Field.QRANGE):
                        goto(_Field.NQ, 4)
                    with m.Case(_Field.NQ):
                        goto(_Field.QPARAMS, quant_len)
                    with m.Case(_Field.QPARAMS):
                        goto(_Field.K, 2)
                    with m.Case(_Field.K):
                        with m.If(v16 != 0):
                            goto(_Field.BOOK, book_len)
                        with m.Else():
                            goto(_Field.SCHEME)
                    with m.Case(_Field.BOOK):
                        with m.If(flags[1]):
                            goto(_Field.SNAP, SNAP_ENTRIES)
                        with m.Else():
                            goto(_Field.SCHEME)
                    with m.Case(_Field.SNAP):
                        goto(_Field.SCHEME)
                    with m.Case(_Field.SCHEME):
                        goto(_Field.KIND)
                    with m.Case(_Field.KIND):
                        goto(_Field.STAGE, 4)
                    with m.Case(_Field.STAGE):
                        goto(_Field.NSEEDS)
                    with m.Case(_Field.NSEEDS):
                        with m.If(b != 0):
                            goto(_Field.SEED0, 4)
                        with m.Else():
                            goto(_Field.CRC, 4)
                    with m.Case(_Field.SEED0):
                        with m.If(two):
                            goto(_Field.SEED1, 4)
                        with m.Else():
                            goto(_Field.CRC, 4)
                    with m.Case(_Field.SEED1):
                        goto(_Field.CRC, 4)
                    with m.Default():     # CRC, or DONE: a byte after the CRC
                        goto(_Field.DONE)
        # The fields' values, kept on their last byte past the segment checks (outside
        # the ``Switch``, whose Verilog ``case`` then covers every value of ``field``
        # for each signal it sets, as Verilator's lint wants).
        at_last = app & ~refused & (field != _Field.CHUNK) & last
        for target, stmt in [
                (_Field.FLAGS, flags.eq(v16[:2])), (_Field.ROWS, rows.eq(v32[:16])),
                (_Field.COLS, cols.eq(v32[:16])), (_Field.NDIM, ndim.eq(b)),
                (_Field.QSCHEME, per_channel.eq(b[1])), (_Field.K, k.eq(v16)),
                (_Field.SCHEME, scheme.eq(b[:2])), (_Field.KIND, galois.eq(b[0])),
                (_Field.STAGE, stage.eq(v32)), (_Field.SEED0, seeds[0].eq(v32)),
                (_Field.SEED1, seeds[1].eq(v32))]:
            with m.If(at_last & (field == target)):
                m.d.sync += stmt

        # ---- Snap entries as they go by.
        snap_index = Signal(8)
        m.d.comb += [
            # Not gated by this byte's own checks (only by an earlier error), so no
            # path runs from them into the snap table's write.
            self.snap.valid.eq(app & (field == _Field.SNAP) & ~held),
            self.snap.payload.value.eq(b),
            self.snap.payload.last.eq(snap_index == SNAP_ENTRIES - 1),
        ]
        with m.If(self.snap.valid):
            m.d.sync += snap_index.eq(snap_index + 1)

        # ---- The generator job once the metadata is complete. The default progressive
        # stage length ceil(n_words / W) is found by repeated subtraction.
        started = Signal()
        dividing = Signal()
        remainder = Signal.like(n_words)
        quotient = Signal.like(n_words)
        pending = Signal()
        with m.If((field == _Field.DONE) & ~started):
            m.d.sync += [started.eq(1), dividing.eq(1), remainder.eq(n_words),
                         quotient.eq(0)]
        with m.If(dividing):
            m.d.sync += quotient.eq(quotient + 1)
            with m.If(remainder > width):
                m.d.sync += remainder.eq(remainder - width)
            with m.Else():
                m.d.sync += [dividing.eq(0),
                             pending.eq(self.remap & self.fits)]
        limit = (1 << gen.count_bits) - 1
        stage_len = Mux(stage == 0, quotient, Mux(stage > limit, limit, stage))
        progressive = scheme == RemapScheme.PROGRESSIVE
        job = self.gen_cfg.payload

        def taps(w):
            out = Const(0, gen.lfsr_width)
            for n in range(MIN_WIDTH, gen.lfsr_width + 1):
                out = Mux(w == n, MAXIMAL_TAPS[n], out)
            return out

        f0, f1 = job.fields[0], job.fields[1]
        m.d.comb += [
            # (Gated by the registered error, not by this clock's checks.)
            self.gen_cfg.valid.eq(pending & ~held),
            f0.taps.eq(taps(width0)), f0.seed.eq(seeds[0]), f0.galois.eq(galois),
            f0.take.eq(width0),
            job.count.eq(n_words),
            job.ramp_start.eq(progressive),
            job.ramp_len.eq(Mux(progressive, stage_len, 0)),
        ]
        with m.If(two):
            m.d.comb += [f1.taps.eq(taps(width1)), f1.seed.eq(seeds[1]),
                         f1.galois.eq(galois), f1.take.eq(width - 3)]
        with m.If(self.gen_cfg.valid & self.gen_cfg.ready):
            m.d.sync += pending.eq(0)
        return m
