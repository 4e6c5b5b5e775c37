"""Marker / segment parser: JPEG file bytes in, table, frame, scan and entropy-coded
byte events out, one byte per clock.

The reference model is :func:`golden.blocks.markers.parse`; its docstring is the specification
(events, byte rules, every check and the byte it happens at). :class:`MarkerShape`
gives the frame limits to both.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from cimcodec.golden.blocks import markers as golden
from cimcodec.golden.blocks.markers import MarkerShape
from cimcodec.golden.codec.container import APP_NUMBER, SIGNATURE
from cimcodec.golden.jpeg.dct import MAX_QUANTIZER
from cimcodec.golden.jpeg.huffman import MAX_CODE_LENGTH, MAX_SYMBOLS
from cimcodec.golden.jpeg.reference import APP0, COM, DHT, DQT, DRI, EOI, RST0, SOF0, SOF1, SOI, SOS
from cimcodec.hw import field_enum, refuse

EventKind = field_enum("EventKind", golden.Kind, 4, __name__)


ErrorCode = field_enum("ErrorCode", golden.Error, 4, __name__)


class _State(enum.Enum, shape=4):
    """Where the parser is in the file."""

    SOI0 = 0
    SOI1 = 1
    MARK = 2
    CODE = 3
    LEN_HI = 4
    LEN_LO = 5
    BODY = 6
    ECS = 7
    ECS_FF = 8
    DONE = 9


class _Segment(enum.Enum, shape=3):
    """Which segment body the parser is in."""

    SKIP = 0
    APP = 1
    DQT = 2
    DHT = 3
    DRI = 4
    SOF = 5
    SOS = 6


class _DhtPhase(enum.Enum, shape=2):
    HEADER = 0
    BITS = 1
    VALS = 2


#: A byte of two 4-bit fields (``Pq/Tq``, ``Tc/Th``, ``H/V``, ``Td/Ta``).
NIBBLES = data.StructLayout({"low": 4, "high": 4})


def byte_layout() -> data.StructLayout:
    """The ``i`` payload: one file byte, ``last`` on the file's final byte."""
    return data.StructLayout({"data": 8, "last": 1})


def event_layout() -> data.StructLayout:
    """The ``o`` payload: one event (:func:`golden.blocks.markers.payload`)."""
    return data.StructLayout({
        "kind": EventKind, "tclass": 1, "table": 2, "index": 16, "value": 16,
    })


class MarkerParser(wiring.Component):
    """Parses a JPEG file into events, exactly :func:`golden.blocks.markers.parse`.

    Parameters
    ----------
    shape : MarkerShape
        Frame limits.

    Attributes
    ----------
    i : In(stream.Signature(byte_layout()))
        The whole file, one byte per transfer, ``last`` on its final byte.
    o : Out(stream.Signature(event_layout()))
        The events: at most one per input byte, transferred in order; the last one is
        ``EOI`` or ``ERROR`` (``value`` = the :class:`ErrorCode`).
    error : Out(1)
        Set with the ``ERROR`` event, held until reset.
    code : Out(ErrorCode)
        The error code (``NONE`` until an error), held until reset.
    done : Out(1)
        Set with the ``EOI`` event, held until reset.
    scan : Out(1)
        The SOS segment has been taken (see below); held until reset.
    ecs : Out(1)
        In the entropy-coded data, the last byte taken not ``0xFF`` (nor a marker's
        code that ended the scan), no error.
    ecs_idle : Out(1)
        ``ecs`` and both stages empty: a run of bytes without ``0xFF`` may go past the parser
        now (it would give one ``ECS`` event per byte and change nothing else).

    After ``EOI`` or an error ``i.ready`` stays low until reset: nothing after the byte
    that ended the parse is consumed.

    Two stages. The byte's stage decodes the byte taken (its state updates, and the
    event or error it gives) into a register; the event stage turns that register into
    the ``o`` register, so the input byte's compares never reach the output mux. An
    event appears on ``o`` two clocks after its byte's transfer, and the parser takes
    one byte per clock while ``o.ready`` is high, but for the frame's width byte: its
    pixel count is checked in the event stage, from a registered product (``WIDTH``,
    or the ``DIMENSIONS`` / ``TRUNCATED`` error), so no path runs from the input byte
    through a multiplier into ``o``, and the next byte waits that clock (it must not be
    taken when the count ends the parse). A 16x16 and a 13x13 multiplier check the
    frame size and count its blocks (for the restart marker checks); everything else
    is counters and comparators.

    Stream rules: ``o.valid`` rises without waiting for ``o.ready``; ``o.payload`` is a
    register that changes only when ``o`` is empty or transferring, so it holds while
    ``valid``. ``i.ready`` is low once ``error`` or ``done`` is set, while the byte
    stage holds the byte that ends the parse or the width byte, and while the byte
    stage is full and ``o`` is full and not ready; it never depends on ``i.valid``.

    ``scan`` rises the clock after the SOS segment's last byte is taken: every byte
    taken while it is high is entropy-coded data, up to and with the marker that ends
    the scan.
    """

    def __init__(self, shape: MarkerShape = MarkerShape()):
        if not isinstance(shape, MarkerShape):
            refuse(self, f"Parser shape must be a MarkerShape, not {shape!r}.")
        self._shape = shape
        super().__init__({
            "i": In(stream.Signature(byte_layout())),
            "o": Out(stream.Signature(event_layout())),
            "error": Out(1),
            "code": Out(ErrorCode),
            "done": Out(1),
            "scan": Out(1),
            "ecs": Out(1),
            "ecs_idle": Out(1),
        })

    @property
    def shape(self) -> MarkerShape:
        return self._shape

    def elaborate(self, platform):
        m = Module()
        shape = self._shape

        # The byte stage's register: the event or error of the byte it took (``a_err``,
        # ``a_ev``), whether it was the frame's width byte (``a_area``: the pixel count
        # is checked in the event stage) and whether it ends the parse (``a_end``).
        take = Signal()
        a_valid, a_end, a_last, a_finish, a_ev_valid, a_area = (Signal() for _ in range(6))
        a_err = Signal(ErrorCode)
        a_ev = Signal(event_layout())
        area_check = Signal()
        b = self.i.payload.data
        nib = NIBBLES(b)
        b_take = a_valid & (~self.o.valid | self.o.ready)
        # The byte after the frame's width byte waits while the width byte is in the
        # byte stage (``a_area``): the pixel count checked in the event stage may end
        # the parse there, and then that byte must not be taken.
        m.d.comb += [
            self.i.ready.eq(~self.error & ~self.done & ~(a_valid & (a_end | a_area))
                            & (~a_valid | ~self.o.valid | self.o.ready)),
            take.eq(self.i.valid & self.i.ready),
        ]

        # What the byte being taken does, decided combinationally: an error code, or an
        # event, or nothing; ``finish`` on the EOI code. The registers below update with
        # the transfer; an error replaces the byte's own event.
        err = Signal(ErrorCode)
        ev = Signal(event_layout())
        ev_valid = Signal()
        finish = Signal()
        frame_area = Signal(32)

        def fail(code):
            m.d.comb += err.eq(code)

        def emit(kind, *, tclass=0, table=0, index=0, value=0):
            m.d.comb += [ev_valid.eq(1), ev.kind.eq(kind), ev.tclass.eq(tclass),
                         ev.table.eq(table), ev.index.eq(index), ev.value.eq(value)]

        # Parser state.
        state = Signal(_State)
        seg = Signal(_Segment)
        len_hi = Signal(8)
        remaining = Signal(16)
        pos = Signal(16)
        frame_seen, scan_seen = Signal(), Signal()
        q_def, dc_def, ac_def = Signal(4), Signal(4), Signal(4)
        app_match = Signal()
        dq_header, dq_wide, dq_low = Signal(), Signal(), Signal()
        dq_id, dq_k, dq_hi = Signal(2), Signal(6), Signal(8)
        dh_phase = Signal(_DhtPhase)
        dh_class, dh_id, dh_i = Signal(), Signal(2), Signal(4)
        dh_total = Signal(range(MAX_SYMBOLS + 1))
        dh_code = Signal(MAX_CODE_LENGTH + 1)
        dh_j = Signal(8)
        hi = Signal(8)
        height = Signal(16)
        blocks = Signal(shape.blocks_bits)
        component = Signal(8)
        frame_tq = Signal(2)
        td, ta = Signal(4), Signal(4)
        ri = Signal(16)
        acc = Signal(shape.blocks_bits)
        rst_next = Signal(3)

        def defined(mask, index):
            return (index < 4) & (mask >> index)[0]

        def dispatch(code):
            """A marker code between segments, or the one that ends the scan."""
            is_app = ((code >= APP0) & (code <= APP0 + 15)) | (code == COM)
            unsupported = 0
            for other in sorted(golden.UNSUPPORTED_MARKERS):
                unsupported = unsupported | (code == other)
            with m.If(code == EOI):
                with m.If(~scan_seen):
                    fail(ErrorCode.ORDER)
                with m.Else():
                    emit(EventKind.EOI)
                    m.d.comb += finish.eq(1)
                    m.d.sync += state.eq(_State.DONE)
            with m.Elif((code == SOF0) | (code == SOF1)):
                with m.If(frame_seen):
                    fail(ErrorCode.ORDER)
                m.d.sync += [frame_seen.eq(1), seg.eq(_Segment.SOF), state.eq(_State.LEN_HI)]
            with m.Elif(code == SOS):
                with m.If(~frame_seen | scan_seen):
                    fail(ErrorCode.ORDER)
                m.d.sync += [scan_seen.eq(1), seg.eq(_Segment.SOS), state.eq(_State.LEN_HI)]
            with m.Elif(unsupported):
                fail(ErrorCode.UNSUPPORTED)
            with m.Elif(code == DQT):
                m.d.sync += [seg.eq(_Segment.DQT), state.eq(_State.LEN_HI)]
            with m.Elif(code == DHT):
                m.d.sync += [seg.eq(_Segment.DHT), state.eq(_State.LEN_HI)]
            with m.Elif(code == DRI):
                m.d.sync += [seg.eq(_Segment.DRI), state.eq(_State.LEN_HI)]
            with m.Elif(is_app):
                m.d.sync += seg.eq(Mux(code == APP0 + APP_NUMBER, _Segment.APP, _Segment.SKIP))
                m.d.sync += state.eq(_State.LEN_HI)
            with m.Else():
                fail(ErrorCode.MARKER)

        with m.If(take):
            with m.If(state == _State.SOI0):
                with m.If(b != 0xFF):
                    fail(ErrorCode.MARKER)
                m.d.sync += state.eq(_State.SOI1)
            with m.Elif(state == _State.SOI1):
                with m.If(b != SOI):
                    fail(ErrorCode.MARKER)
                m.d.sync += state.eq(_State.MARK)
            with m.Elif(state == _State.MARK):
                with m.If(b != 0xFF):
                    fail(ErrorCode.MARKER)
                m.d.sync += state.eq(_State.CODE)
            with m.Elif(state == _State.CODE):
                with m.If(b != 0xFF):
                    dispatch(b)
            with m.Elif(state == _State.LEN_HI):
                m.d.sync += len_hi.eq(b)
                m.d.sync += state.eq(_State.LEN_LO)
            with m.Elif(state == _State.LEN_LO):
                length = Cat(b, len_hi)
                min_length = Const(2, 16)
                for marker, least in golden.MIN_LENGTH.items():
                    seg_of = {SOF0: _Segment.SOF, SOF1: _Segment.SOF, SOS: _Segment.SOS,
                              DRI: _Segment.DRI}[marker]
                    min_length = Mux(seg == seg_of, least, min_length)
                exact = (seg == _Segment.DRI) & (length != golden.MIN_LENGTH[DRI])
                with m.If((length < min_length) | exact):
                    fail(ErrorCode.LENGTH)
                m.d.sync += [
                    remaining.eq(length - 2), pos.eq(0),
                    dq_header.eq(1), dh_phase.eq(_DhtPhase.HEADER),
                    app_match.eq(seg == _Segment.APP),
                ]
                m.d.sync += state.eq(_State.BODY)
                with m.If(length == 2):
                    m.d.sync += state.eq(_State.MARK)
            with m.Elif(state == _State.BODY):
                # Every body byte counts; the last one leaves the segment (SOS: into
                # the entropy-coded data).
                m.d.sync += [pos.eq(pos + 1), remaining.eq(remaining - 1)]
                with m.If(remaining == 1):
                    with m.If(seg == _Segment.SOS):
                        m.d.sync += [acc.eq(0), rst_next.eq(0), self.scan.eq(1)]
                        m.d.sync += state.eq(_State.ECS)
                    with m.Else():
                        m.d.sync += state.eq(_State.MARK)
                with m.If(seg == _Segment.APP):
                    sig = Const(0, 8)
                    for k, char in enumerate(SIGNATURE):
                        sig = Mux(pos == k, char, sig)
                    with m.If(pos < len(SIGNATURE)):
                        m.d.sync += app_match.eq(app_match & (b == sig))
                    with m.Elif(app_match):
                        emit(EventKind.APP, index=pos - len(SIGNATURE), value=b)
                with m.Elif(seg == _Segment.DQT):
                    with m.If(dq_header):
                        with m.If((nib.high > 1) | (nib.low > 3)):
                            fail(ErrorCode.UNSUPPORTED)
                        with m.Elif(remaining < Mux(nib.high == 1, 129, 65)):
                            fail(ErrorCode.LENGTH)
                        m.d.sync += [
                            dq_header.eq(0), dq_wide.eq(nib.high == 1), dq_low.eq(0),
                            dq_id.eq(nib.low), dq_k.eq(0),
                            q_def.eq(q_def | (Const(1, 4) << nib.low)),
                        ]
                    with m.Elif(dq_wide & ~dq_low):
                        with m.If(b > MAX_QUANTIZER >> 8):
                            fail(ErrorCode.QUANTIZER)
                        m.d.sync += [dq_hi.eq(b), dq_low.eq(1)]
                    with m.Else():
                        emit(EventKind.DQT, table=dq_id, index=dq_k,
                             value=Mux(dq_wide, Cat(b, dq_hi), b))
                        m.d.sync += [dq_low.eq(0), dq_k.eq(dq_k + 1)]
                        with m.If(dq_k == 63):
                            m.d.sync += dq_header.eq(1)
                with m.Elif(seg == _Segment.DHT):
                    with m.If(dh_phase == _DhtPhase.HEADER):
                        with m.If((nib.high > 1) | (nib.low > 3)):
                            fail(ErrorCode.UNSUPPORTED)
                        with m.Elif(remaining < 1 + MAX_CODE_LENGTH):
                            fail(ErrorCode.LENGTH)
                        bit = Const(1, 4) << nib.low
                        with m.If(nib.high == 1):
                            m.d.sync += ac_def.eq(ac_def | bit)
                        with m.Else():
                            m.d.sync += dc_def.eq(dc_def | bit)
                        m.d.sync += [
                            dh_class.eq(nib.high == 1), dh_id.eq(nib.low),
                            dh_i.eq(0), dh_total.eq(0), dh_code.eq(0),
                            dh_phase.eq(_DhtPhase.BITS),
                        ]
                    with m.Elif(dh_phase == _DhtPhase.BITS):
                        # Canonical codes (golden.jpeg.huffman): code += BITS[i]
                        # must stay below 2**(i+1), then doubles.
                        total = dh_total + b
                        code = dh_code + b
                        final = dh_i == MAX_CODE_LENGTH - 1
                        with m.If((total > MAX_SYMBOLS)
                                  | (code >= (Const(2, 18) << dh_i))):
                            fail(ErrorCode.HUFFMAN)
                        with m.Elif(final & (remaining - 1 < total)):
                            fail(ErrorCode.HUFFMAN)
                        emit(EventKind.DHT_BITS, tclass=dh_class, table=dh_id,
                             index=dh_i, value=b)
                        m.d.sync += [dh_total.eq(total), dh_code.eq(code << 1),
                                     dh_i.eq(dh_i + 1), dh_j.eq(0)]
                        with m.If(final):
                            m.d.sync += dh_phase.eq(Mux(
                                total == 0, _DhtPhase.HEADER, _DhtPhase.VALS))
                    with m.Else():
                        emit(EventKind.DHT_VAL, tclass=dh_class, table=dh_id,
                             index=dh_j, value=b)
                        m.d.sync += dh_j.eq(dh_j + 1)
                        with m.If(dh_j + 1 == dh_total):
                            m.d.sync += dh_phase.eq(_DhtPhase.HEADER)
                with m.Elif(seg == _Segment.DRI):
                    with m.If(pos == 0):
                        m.d.sync += hi.eq(b)
                    with m.Else():
                        m.d.sync += ri.eq(Cat(b, hi))
                        emit(EventKind.DRI, value=Cat(b, hi))
                with m.Elif(seg == _Segment.SOF):
                    word = Cat(b, hi)
                    with m.If(pos == 0):
                        with m.If(b != 8):
                            fail(ErrorCode.UNSUPPORTED)
                    with m.Elif((pos == 1) | (pos == 3)):
                        m.d.sync += hi.eq(b)
                    with m.Elif(pos == 2):
                        with m.If((word == 0) | (word > shape.max_dimension)):
                            fail(ErrorCode.DIMENSIONS)
                        m.d.sync += height.eq(word)
                        emit(EventKind.HEIGHT, value=word)
                    with m.Elif(pos == 4):
                        # The pixel count is checked in the event stage, from a
                        # registered product: no path runs from the input byte through
                        # a multiplier into ``o``.
                        with m.If((word == 0) | (word > shape.max_dimension)):
                            fail(ErrorCode.DIMENSIONS)
                        with m.Else():
                            m.d.comb += area_check.eq(1)
                            emit(EventKind.WIDTH, value=word)
                        m.d.sync += [blocks.eq(((word + 7) >> 3) * ((height + 7) >> 3)),
                                     frame_area.eq(word * height)]
                    with m.Elif(pos == 5):
                        with m.If(b != 1):
                            fail(ErrorCode.UNSUPPORTED)
                        with m.Elif(remaining != golden.SOF_LENGTH - 2 - 5):
                            fail(ErrorCode.LENGTH)
                    with m.Elif(pos == 6):
                        m.d.sync += component.eq(b)
                    with m.Elif(pos == 7):
                        with m.If((nib.high < 1) | (nib.high > 4)
                                  | (nib.low < 1) | (nib.low > 4)):
                            fail(ErrorCode.UNSUPPORTED)
                    with m.Else():
                        with m.If(b > 3):
                            fail(ErrorCode.UNSUPPORTED)
                        m.d.sync += frame_tq.eq(b)
                        emit(EventKind.FRAME, table=b)
                with m.Elif(seg == _Segment.SOS):
                    with m.If(pos == 0):
                        with m.If(b != 1):
                            fail(ErrorCode.UNSUPPORTED)
                        with m.Elif(remaining != golden.SOS_LENGTH - 2):
                            fail(ErrorCode.LENGTH)
                    with m.Elif(pos == 1):
                        with m.If(b != component):
                            fail(ErrorCode.UNSUPPORTED)
                    with m.Elif(pos == 2):
                        m.d.sync += [td.eq(nib.high), ta.eq(nib.low)]
                    with m.Elif(pos == 3):
                        with m.If(b != 0):
                            fail(ErrorCode.UNSUPPORTED)
                    with m.Elif(pos == 4):
                        with m.If(b != 63):
                            fail(ErrorCode.UNSUPPORTED)
                    with m.If(pos == 5):
                        with m.If(b != 0):
                            fail(ErrorCode.UNSUPPORTED)
                        with m.Elif(~defined(dc_def, td) | ~defined(ac_def, ta)
                                    | ~defined(q_def, frame_tq)):
                            fail(ErrorCode.MISSING_TABLE)
                        with m.Else():
                            emit(EventKind.SCAN, table=td, value=ta)
            with m.Elif(state == _State.ECS):
                with m.If(b == 0xFF):
                    m.d.sync += state.eq(_State.ECS_FF)
                with m.Else():
                    emit(EventKind.ECS, value=b)
            with m.Elif(state == _State.ECS_FF):
                with m.If(b == 0x00):
                    emit(EventKind.ECS, value=0xFF)
                    m.d.sync += state.eq(_State.ECS)
                with m.Elif((b >= RST0) & (b <= RST0 + 7)):
                    number = b - RST0
                    with m.If((ri == 0) | (number != rst_next) | (acc + ri >= blocks)):
                        fail(ErrorCode.RESTART)
                    emit(EventKind.RST, value=number)
                    m.d.sync += [acc.eq(acc + ri), rst_next.eq(rst_next + 1)]
                    m.d.sync += state.eq(_State.ECS)
                with m.Elif(b != 0xFF):
                    with m.If((ri != 0) & (acc + ri < blocks)):
                        fail(ErrorCode.RESTART)
                    with m.Else():
                        dispatch(b)

        m.d.comb += [
            self.ecs.eq((state == _State.ECS) & ~self.error & ~self.done),
            self.ecs_idle.eq(self.ecs & ~a_valid & ~self.o.valid),
        ]

        # The byte stage's register, loaded with every byte taken.
        with m.If(b_take):
            m.d.sync += a_valid.eq(0)
        with m.If(take):
            m.d.sync += [
                a_valid.eq(1), a_err.eq(err), a_ev.eq(ev), a_ev_valid.eq(ev_valid),
                a_finish.eq(finish), a_last.eq(self.i.payload.last),
                a_area.eq(area_check),
                a_end.eq((err != ErrorCode.NONE) | finish | self.i.payload.last),
            ]

        # The event stage: the ``o`` register and the held status. An error replaces
        # the byte's own event; a file that ends without EOI is TRUNCATED.
        def error_event(code):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(0),
                         self.o.payload.kind.eq(EventKind.ERROR),
                         self.o.payload.value.eq(code),
                         self.error.eq(1), self.code.eq(code)]

        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(b_take):
            with m.If(a_err != ErrorCode.NONE):
                error_event(a_err)
            with m.Elif(a_area & (frame_area > shape.max_pixels)):
                error_event(ErrorCode.DIMENSIONS)
            with m.Elif(a_last & ~a_finish):
                error_event(ErrorCode.TRUNCATED)
            with m.Elif(a_ev_valid):
                m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(a_ev)]
                with m.If(a_finish):
                    m.d.sync += self.done.eq(1)
        return m
