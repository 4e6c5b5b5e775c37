"""The RTL weight decompressor: JPEG file bytes in, ``(row, col, sample)`` out.

:class:`hw.markers.MarkerParser` -> :class:`EventRouter` -> :class:`hw.huffman.
HuffmanDecoder` -> :class:`hw.coef.CoefDecoder` -> :class:`hw.idct.Idct` -> block
placement -> :class:`hw.remap.RemapEngine` -> snap table -> output register. Beside
the parser, :class:`hw.appmeta.AppMeta` reads the container's ``APP11`` metadata (matrix
size, the remap unit's configuration and generator job, the snap table) and
:class:`hw.crc.ScanCrc` checks the CRC-32 of the entropy-coded data, so a container
needs nothing but its bytes (``DecompressorShape(container=False)`` leaves all of that
out: a plain JPEG decoder). The reference model is
:func:`golden.blocks.decompressor.expected`; its docstring defines the modes (RAW, container
with remap and snap), the output order and the status codes.
"""

from dataclasses import replace

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from cimcodec.golden.blocks import decompressor as golden
from cimcodec.golden.blocks.coef import RESTART_BITS, CoefShape
from cimcodec.golden.blocks.decompressor import HUFFMAN_SHAPE, WATCHDOG, DecompressorShape
from cimcodec.golden.jpeg.huffman import MAX_CODE_LENGTH
from cimcodec.hw import field_enum, refuse
from cimcodec.hw.appmeta import AppMeta
from cimcodec.hw.coef import CoefDecoder, qtable_layout
from cimcodec.hw.crc import ScanCrc
from cimcodec.hw.huffman import HuffmanDecoder, bits_layout, symbol_layout, table_layout
from cimcodec.hw.idct import Idct
from cimcodec.hw.lfsr import ControlWordGenerator
from cimcodec.hw.markers import EventKind, MarkerParser, byte_layout, event_layout
from cimcodec.hw.remap import RemapEngine, RemapUnit, coord_layout, remap_config_layout

COEF_SHAPE = CoefShape()
#: Quantization tables the parser can define (ids 0..3), 64 entries each.
QTABLES = 4
BLOCK = 64
#: Entropy-coded bytes each lane of a multi-lane decompressor queues (one block RAM):
#: the parser goes on feeding the other lanes while one lane's queue fills.
LANE_QUEUE = 512


ErrorCode = field_enum("ErrorCode", golden.Error, 5, __name__)


def output_layout(shape: DecompressorShape) -> data.StructLayout:
    """A sample at its position, or (``end``) the final status event. With
    ``shape.lanes > 1``: a beat of ``lane[k] = {valid, row, col, sample}``, one slot per
    lane (:func:`lane_layout`), or the status event."""
    remap = shape.remap
    if shape.lanes > 1:
        return data.StructLayout({
            "lane": data.ArrayLayout(lane_layout(shape), shape.lanes),
            "end": 1,
            "error": 1,
            "code": ErrorCode,
        })
    return data.StructLayout({
        "row": remap.row_bits,
        "col": remap.col_bits,
        "sample": 8,
        "end": 1,
        "error": 1,
        "code": ErrorCode,
    })


def input_layout(shape: DecompressorShape) -> data.StructLayout:
    """The ``i`` payload: with ``shape.in_bytes = 1`` one file byte
    (:func:`hw.markers.byte_layout`); else ``in_bytes`` bytes, the first in the low
    byte of ``data``, of which the first ``more + 1`` are the file's (``more`` is
    ``in_bytes - 1`` but on the file's last beat, which has ``last``)."""
    if shape.in_bytes == 1:
        return byte_layout()
    return _bytes_layout(shape.in_bytes, "last")


def chunk_layout(shape: DecompressorShape) -> data.StructLayout:
    """(``shape.in_bytes > 1``) A lane queue's entry: the first ``more + 1`` bytes of
    ``data`` (the first in the low byte) are entropy-coded data, ``first`` on the first
    chunk of a restart interval."""
    return _bytes_layout(shape.in_bytes, "first")


def _bytes_layout(count: int, flag: str) -> data.StructLayout:
    """``count`` bytes in ``data`` (the first in the low byte), ``more + 1`` of them
    used, and a one-bit ``flag``."""
    return data.StructLayout({"data": 8 * count, "more": range(count), flag: 1})


def lane_layout(shape: DecompressorShape) -> data.StructLayout:
    """One lane's slot of a multi-lane output beat."""
    remap = shape.remap
    return data.StructLayout({
        "valid": 1,
        "row": remap.row_bits,
        "col": remap.col_bits,
        "sample": 8,
    })


class EventRouter(wiring.Component):
    """Sends the marker parser's events where they belong.

    Attributes
    ----------
    i : In(stream.Signature(event_layout()))
        :class:`hw.markers.MarkerParser`'s events.
    table : Out(stream.Signature(table_layout(HUFFMAN_SHAPE)))
        ``DHT_BITS`` / ``DHT_VAL`` bytes, slot ``Cat(id[0], class)``, ``last`` on the
        table's final byte (the counts are summed here).
    bits : Out(stream.Signature(bits_layout(HUFFMAN_SHAPE)))
        One 8-bit chunk per ``ECS`` byte, ``first`` on the first after ``SCAN`` and after
        each ``RST``.
    qtable : Out(stream.Signature(qtable_layout(COEF_SHAPE)))
        After ``SCAN``: the 64 zigzag quantizers of the frame's table, read from a
        4 x 64 memory that every ``DQT`` entry writes.
    height, width, restart_interval : Out(16)
        From ``HEIGHT``, ``WIDTH``, ``DRI`` (0 until then).
    frame : Out(1)
        The frame header is complete (``FRAME``), held.
    dc_slot, ac_slot : Out(range(4))
        The scan's table slots (from ``SCAN``).
    slot_error : Out(1)
        At ``SCAN``: a scan table's slot was last loaded with another id. Held.
    scan : Out(1)
        The scan header was taken (``SCAN``), held.
    lane : Out(range(lanes))
        (``lanes > 1``) The lane of the restart interval whose bytes ``bits`` carries:
        0 from ``SCAN``, one more (modulo ``lanes``) at each ``RST``.
    wide : In(1)
        (``wide``) Entropy-coded bytes that went past the parser were queued for the
        current interval this clock: the next ``bits`` chunk is not its first.

    ``i.ready`` is the ready of the stream the event goes to (``DQT``: not while the
    table is being sent), 1 for the events only registered or ignored. The output
    streams' ``valid`` and ``payload`` are ``i``'s, so they hold while ``valid``;
    ``qtable`` reads registers and a memory not written while it is valid.
    """

    def __init__(self, lanes: int = 1, wide: bool = False):
        self._lanes = lanes
        self._wide = wide
        lane = {"lane": Out(exact_log2(lanes))} if lanes > 1 else {}
        if wide:
            lane["wide"] = In(1)
        super().__init__({
            **lane,
            "scan": Out(1),
            "i": In(stream.Signature(event_layout())),
            "table": Out(stream.Signature(table_layout(HUFFMAN_SHAPE))),
            "bits": Out(stream.Signature(bits_layout(HUFFMAN_SHAPE))),
            "qtable": Out(stream.Signature(qtable_layout(COEF_SHAPE))),
            "height": Out(16),
            "width": Out(16),
            "restart_interval": Out(RESTART_BITS),
            "frame": Out(1),
            "dc_slot": Out(range(HUFFMAN_SHAPE.tables)),
            "ac_slot": Out(range(HUFFMAN_SHAPE.tables)),
            "slot_error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        ev = self.i.payload
        kind = ev.kind
        take = self.i.valid & self.i.ready

        # ---- Quantization tables: written by DQT, sent after SCAN.
        m.submodules.qmem = qmem = Memory(shape=COEF_SHAPE.q_bits, depth=QTABLES * BLOCK,
                                          init=[])
        q_write = qmem.write_port()
        q_read = qmem.read_port(domain="comb")
        sending = Signal()
        q_index = Signal(range(BLOCK))
        tq = Signal(2)
        m.d.comb += [
            q_write.addr.eq(Cat(ev.index[:6], ev.table)),
            q_write.data.eq(ev.value),
            q_write.en.eq(take & (kind == EventKind.DQT)),
            q_read.addr.eq(Cat(q_index, tq)),
            self.qtable.valid.eq(sending),
            self.qtable.payload.q.eq(q_read.data),
            self.qtable.payload.last.eq(q_index == BLOCK - 1),
        ]
        with m.If(self.qtable.valid & self.qtable.ready):
            m.d.sync += q_index.eq(q_index + 1)
            with m.If(self.qtable.payload.last):
                m.d.sync += sending.eq(0)

        # ---- Huffman tables: the counts are summed to find the table's last byte.
        total = Signal(range(16 * 256 + 1))
        bits_total = Mux(ev.index == 0, 0, total) + ev.value[:8]
        owner = [Signal(2, name=f"owner{s}") for s in range(HUFFMAN_SHAPE.tables)]
        slot = Cat(ev.table[0], ev.tclass)
        is_bits = kind == EventKind.DHT_BITS
        t = self.table
        m.d.comb += [
            t.valid.eq(self.i.valid & (is_bits | (kind == EventKind.DHT_VAL))),
            t.payload.data.eq(ev.value[:8]),
            t.payload.slot.eq(slot),
            t.payload.last.eq(Mux(is_bits, (ev.index == MAX_CODE_LENGTH - 1) & (bits_total == 0),
                                  ev.index + 1 == total)),
        ]
        with m.If(t.valid & t.ready & is_bits):
            m.d.sync += total.eq(bits_total)
            with m.If(ev.index == 0):
                for s in range(HUFFMAN_SHAPE.tables):
                    with m.If(slot == s):
                        m.d.sync += owner[s].eq(ev.table)

        # ---- Entropy-coded bytes: one 8-bit chunk each.
        first = Signal()
        b = self.bits
        m.d.comb += [
            b.valid.eq(self.i.valid & (kind == EventKind.ECS)),
            b.payload.data.eq(ev.value[:8]),
            b.payload.count.eq(8),
            b.payload.first.eq(first),
        ]
        with m.If((b.valid & b.ready) | (self.wide if self._wide else 0)):
            m.d.sync += first.eq(0)

        # ---- Ready per kind; registered events.
        with m.If((kind == EventKind.DHT_BITS) | (kind == EventKind.DHT_VAL)):
            m.d.comb += self.i.ready.eq(t.ready)
        with m.Elif(kind == EventKind.ECS):
            m.d.comb += self.i.ready.eq(b.ready)
        with m.Elif(kind == EventKind.DQT):
            m.d.comb += self.i.ready.eq(~sending)
        with m.Else():
            m.d.comb += self.i.ready.eq(1)

        with m.If(take):
            with m.If(kind == EventKind.HEIGHT):
                m.d.sync += self.height.eq(ev.value)
            with m.If(kind == EventKind.WIDTH):
                m.d.sync += self.width.eq(ev.value)
            with m.If(kind == EventKind.DRI):
                m.d.sync += self.restart_interval.eq(ev.value)
            with m.If(kind == EventKind.FRAME):
                m.d.sync += [self.frame.eq(1), tq.eq(ev.table)]
            with m.If(kind == EventKind.RST):
                m.d.sync += first.eq(1)
                if self._lanes > 1:
                    m.d.sync += self.lane.eq(self.lane + 1)
            with m.If(kind == EventKind.SCAN):
                m.d.sync += self.scan.eq(1)
                if self._lanes > 1:
                    m.d.sync += self.lane.eq(0)
                td, ta = ev.table, ev.value[:2]
                dc_owner = Mux(td[0], owner[1], owner[0])
                ac_owner = Mux(ta[0], owner[3], owner[2])
                m.d.sync += [
                    first.eq(1), sending.eq(1), q_index.eq(0),
                    self.dc_slot.eq(Cat(td[0], Const(0, 1))),
                    self.ac_slot.eq(Cat(ta[0], Const(1, 1))),
                    self.slot_error.eq((dc_owner != td) | (ac_owner != ta)),
                ]
        return m


class FrameCrop(wiring.Component):
    """The remap engine's place in a decompressor built without the container hardware:
    positions inside the ``cfg.rows x cfg.cols`` frame pass through one register, the
    block padding is dropped. Same ports as :class:`hw.remap.RemapEngine` but
    ``gen_cfg``; ``cfg.enable`` is ignored.

    Stream rules: ``o`` is a register (``o.valid`` never waits for ``o.ready``);
    ``i.ready`` is ``o``'s being empty or transferring."""

    def __init__(self, shape):
        super().__init__({
            "cfg": In(remap_config_layout(shape)),
            "i": In(stream.Signature(coord_layout(shape))),
            "o": Out(stream.Signature(coord_layout(shape))),
        })

    def elaborate(self, platform):
        m = Module()
        i, o = self.i, self.o
        m.d.comb += i.ready.eq(~o.valid | o.ready)
        with m.If(i.ready):
            m.d.sync += [o.valid.eq(i.valid & (i.payload.row < self.cfg.rows)
                                    & (i.payload.col < self.cfg.cols)),
                         o.payload.eq(i.payload)]
        return m


class Decompressor(wiring.Component):
    """JPEG bytes in, samples at their (original) coordinates out, exactly
    :func:`golden.blocks.decompressor.expected`.

    Parameters
    ----------
    shape : DecompressorShape

    Attributes
    ----------
    i : In(stream.Signature(input_layout(shape)))
        The whole file, one byte per transfer, ``last`` on its final byte; with
        ``shape.in_bytes > 1``, ``in_bytes`` bytes per transfer (the last beat may carry
        fewer), see :func:`input_layout`.
    raw : In(1)
        Held for the whole file: decode it as a plain JPEG (frame coordinates, no
        remap, no snap, the ``CIMCODEC`` segment ignored). With ``raw = 0`` a file with
        a ``CIMCODEC`` ``APP11`` segment is a container: :class:`hw.appmeta.AppMeta`
        reads the matrix size, the remap and the snap table from it, the frame must be
        the padded matrix and the CRC-32 of the entropy-coded data is checked
        (:class:`hw.crc.ScanCrc`); a file without one is decoded as RAW. Ignored by a
        decompressor built with ``DecompressorShape(container=False)``, which has none
        of that hardware (a :class:`FrameCrop` in place of the remap engine) and
        decodes every file as RAW.
    o : Out(stream.Signature(output_layout(shape)))
        ``{row, col, sample}`` in the order of the golden model, then one status event
        (``end = 1``, ``error``, ``code``); nothing after it until reset. With
        ``shape.lanes > 1`` each beat has one ``{valid, row, col, sample}`` slot per
        lane, each lane's samples in the order of
        :func:`golden.blocks.decompressor.expected_lanes`.
    done : Out(1)
        The file decoded without error and every sample left. Held until reset.
    error : Out(1)
        Set on the first error, held until reset; the input stops being consumed and
        no sample leaves after it, only the status event.
    code : Out(ErrorCode)
        The first error's code.

    Throughput: the coefficient decoder and the IDCT each take 64 clocks per 8x8
    block, so samples leave at one per clock; the marker parser takes one byte per
    clock, so a block whose entropy-coded data is longer than 64 bytes (quality near
    100) is paced by its bytes instead. With ``shape.in_bytes > 1`` a beat of
    entropy-coded data without ``0xFF`` goes past the parser to its lane in one clock,
    so lanes are no longer bound to the parser's byte per clock; a beat that holds
    ``0xFF`` (a stuffed byte or a marker), a header byte or the file's last beat goes
    through the parser a byte per clock. After an error or ``EOI`` the beat holding
    that byte is the last taken.
    Errors found after the last byte (entropy data that ends inside a block) are caught
    by a watchdog: :data:`golden.blocks.decompressor.WATCHDOG` clocks after ``EOI`` without a
    sample while ``o`` is not stalled. Without backpressure the status event comes at
    most ``WATCHDOG`` + 8 clocks after the last byte taken or sample out (checked on
    every damaged file of ``tests/rtl/test_decompressor.py``).

    Stream rules: ``o`` is a register: ``o.valid`` never waits for ``o.ready`` and
    ``o.payload`` changes only when ``o`` is empty or transferring.
    """

    def __init__(self, shape: DecompressorShape = DecompressorShape()):
        if not isinstance(shape, DecompressorShape):
            refuse(self, f"Decompressor shape must be a DecompressorShape, not {shape!r}.")
        self._shape = shape
        super().__init__({
            "i": In(stream.Signature(input_layout(shape))),
            "raw": In(1),
            "o": Out(stream.Signature(output_layout(shape))),
            "done": Out(1),
            "error": Out(1),
            "code": Out(ErrorCode),
        })

    @property
    def shape(self) -> DecompressorShape:
        return self._shape

    def elaborate(self, platform):
        m = Module()
        shape = self._shape
        remap_shape = shape.remap
        lanes = shape.lanes
        container = shape.container

        def name(base, k):
            return base if lanes == 1 else f"{base}{k}"

        m.submodules.parser = parser = MarkerParser(shape.markers)
        wide = shape.in_bytes > 1
        m.submodules.router = router = EventRouter(lanes, wide)
        huffman, coef, idct, remap = [], [], [], []
        dsp_lanes = lanes if shape.dsp_lanes is None else shape.dsp_lanes
        share = shape.idct_share
        for g in range(lanes // share):
            # Lanes g*share.. are the ports of IDCT g; ``idct[k]``: lane k's (i, o).
            unit = Idct(replace(COEF_SHAPE.idct, dsp=g * share < dsp_lanes, ports=share))
            m.submodules[name("idct", g)] = unit
            idct += [unit.port(j) for j in range(share)]
        for k in range(lanes):
            # Lane 0's decoder builds, copies and fills the tables for every lane.
            huffman.append(HuffmanDecoder(HUFFMAN_SHAPE, leader=huffman[0] if k else None))
            coef.append(CoefDecoder(COEF_SHAPE))
            m.submodules[name("huffman", k)] = huffman[k]
            m.submodules[name("coef", k)] = coef[k]
            if not container:
                remap.append(FrameCrop(remap_shape))
                m.submodules[name("crop", k)] = remap[k]
            elif lanes == 1:
                remap.append(RemapEngine(remap_shape))
                m.submodules.remap = remap[k]
            else:
                remap.append(RemapUnit(remap_shape))
                m.submodules[name("remap", k)] = remap[k]

        error = Signal()
        code = Signal(ErrorCode)
        finished = Signal()                 # the status event was loaded into ``o``

        # ---- Input, gated on an error.
        # With ``in_bytes`` > 1 a beat is held in ``beat`` and its bytes go to the parser
        # one per clock, unless the parser is in the entropy-coded data (``ecs``) and
        # the beat is ``in_bytes`` bytes without ``0xFF`` (no stuffed byte, no marker,
        # ``whole``): then the beat waits for the parser's stages to empty
        # (``ecs_idle``, two clocks after a beat that went through it) and goes past
        # the parser whole into the current interval's lane queue (``bypass``), the CRC
        # taking it at once. The parser would have
        # made one ECS event per byte and changed nothing else, so the lanes see the same
        # bytes and the output is the same, at up to ``in_bytes`` bytes per clock.
        bypass = Signal()
        if wide:
            width = shape.in_bytes
            held = Signal()
            beat = Signal(input_layout(shape))
            index = Signal(range(width))
            # ``beat.data`` shifts down a byte per take, so the parser's (and the CRC's)
            # byte comes straight from a register, not through a pick by ``index`` (beat
            # to pick to parser was the 2-lane, 4-byte critical path). Only a beat with
            # nothing taken (``index == 0``) is checked for ``0xFF`` or goes past the
            # parser, so there ``beat.data`` is the whole beat.
            beat_bytes = [beat.data[8 * k:8 * k + 8] for k in range(width)]
            ptake = Signal()
            final = Signal()
            whole = Signal()
            m.d.comb += [
                parser.i.valid.eq(held & ~error & ~(whole & parser.ecs)),
                parser.i.payload.data.eq(beat.data[:8]),
                parser.i.payload.last.eq(beat.last & (index == beat.more)),
                ptake.eq(parser.i.valid & parser.i.ready),
                final.eq(ptake & (index == beat.more)),
                self.i.ready.eq((~held | final | bypass) & ~error),
            ]
            with m.If(ptake):
                m.d.sync += [index.eq(index + 1), beat.data.eq(beat.data >> 8)]
            with m.If(self.i.valid & self.i.ready):
                m.d.sync += [held.eq(1), beat.eq(self.i.payload), index.eq(0)]
            with m.Elif(final | bypass):
                m.d.sync += held.eq(0)
            no_ff = Cat(b != 0xFF for b in beat_bytes).all()
            m.d.comb += whole.eq(held & (index == 0) & (beat.more == width - 1) & ~beat.last
                                 & no_ff)
        else:
            m.d.comb += [
                parser.i.payload.eq(self.i.payload),
                parser.i.valid.eq(self.i.valid & ~error),
                self.i.ready.eq(parser.i.ready & ~error),
            ]
        wiring.connect(m, parser.o, router.i)
        # The DHT bytes and the entropy bytes reach the Huffman decoders through queues:
        # their ready and valid are registers, so no handshake path runs from a Huffman
        # decoder's code lookup back into the router, the parser and the metadata reader
        # (one did: 54 ns, the whole decompressor's critical path). Both run at full
        # rate. Order holds: a scan's first entropy byte follows its SOS segment, so
        # every DHT byte before it has left its queue.
        # The symbols leave through a third, so the coefficient decoder's ready does not
        # reach back into the code lookup either.
        m.submodules.table_queue = table_queue = SyncFIFO(
            width=table_layout(HUFFMAN_SHAPE).size, depth=2)
        wiring.connect(m, router.table, table_queue.w_stream)
        # Only lane 0's decoder builds tables (the others follow it, see
        # hw.huffman's Followers). A table's first byte waits until lane 0 is building
        # or has tables to copy, or every other lane is idle, so that no table is
        # built under a lane still decoding (a DHT after the scan data, before EOI).
        # A lane is idle, and lane 0 takes a table byte, only while no chunk is offered
        # to it; that covers every chunk of the scan because the last one is offered
        # clocks before the table's first byte can be: five bytes without events
        # (FF C4, the length, Tc/Th) come between them, and a chunk is offered two
        # clocks after its lane queue's write (three with the wide input's unpacker),
        # against the parser's two stages and this queue's clock (7 clocks apart with
        # one lane, measured in the Amaranth simulator in session 26). A register more
        # on the bits' path, or fewer on the tables', must keep that order.
        lead, table_in = huffman[0], table_queue.r_stream
        if lanes == 1:
            wiring.connect(m, table_in, lead.table)
        else:
            allow = lead.tables_open | Cat(h.idle for h in huffman[1:]).all()
            m.d.comb += [lead.table.valid.eq(table_in.valid & allow),
                         lead.table.payload.eq(table_in.payload),
                         table_in.ready.eq(lead.table.ready & allow)]
        if wide:
            # Lane k's queue holds chunks of up to ``in_bytes`` bytes: a bypassing beat
            # whole, a byte from the parser alone (as a chunk of one). An unpacker
            # hands the lane's Huffman decoder one byte per clock.
            chunk = chunk_layout(shape)
            readies = []
            lane_now = router.lane if lanes > 1 else Const(0)
            for k in range(lanes):
                queue = SyncFIFOBuffered(width=chunk.size,
                                         depth=LANE_QUEUE if lanes > 1 else 4)
                m.submodules[name("bits_queue", k)] = queue
                entry = chunk(queue.w_data)
                here = lane_now == k
                with m.If(bypass):
                    m.d.comb += [entry.data.eq(beat.data), entry.more.eq(width - 1)]
                with m.Else():
                    m.d.comb += [entry.data.eq(router.bits.payload.data), entry.more.eq(0)]
                m.d.comb += [entry.first.eq(router.bits.payload.first),
                             queue.w_en.eq((router.bits.valid | bypass) & here)]
                readies.append(queue.w_rdy)
                _unpack(m, shape, queue.r_stream, huffman[k].bits, name("unpack", k))
            room = Array(readies)[lane_now] if lanes > 1 else readies[0]
            m.d.comb += [router.bits.ready.eq(room), router.wide.eq(bypass),
                         bypass.eq(whole & parser.ecs_idle & room & ~error)]
        elif lanes == 1:
            # A registered output (as the lanes' queues have), so a restart chunk's
            # ``first`` and bits come from registers into the Huffman decoder's restart
            # multiplexers, not from the queue memory's read.
            m.submodules.bits_queue = queue = SyncFIFOBuffered(
                width=bits_layout(HUFFMAN_SHAPE).size, depth=3)
            wiring.connect(m, router.bits, queue.w_stream)
            wiring.connect(m, queue.r_stream, huffman[0].bits)
        else:
            # Lane k takes the bytes of restart intervals k, k + lanes, ...: one queue
            # of LANE_QUEUE bytes each, so the parser feeds the next lane while one
            # lane's queue is full.
            readies = []
            for k in range(lanes):
                queue = SyncFIFOBuffered(width=bits_layout(HUFFMAN_SHAPE).size,
                                         depth=LANE_QUEUE)
                m.submodules[f"bits_queue{k}"] = queue
                m.d.comb += [queue.w_data.eq(router.bits.payload),
                             queue.w_en.eq(router.bits.valid & (router.lane == k))]
                readies.append(queue.w_rdy)
                wiring.connect(m, queue.r_stream, huffman[k].bits)
            m.d.comb += router.bits.ready.eq(Array(readies)[router.lane])
        # The symbols reach the coefficient decoders through queues with a registered
        # output, so a coefficient decoder's EXTEND and DC adders start at a register
        # rather than behind a queue memory's read (a clock more of latency).
        for k in range(lanes):
            queue = SyncFIFOBuffered(width=symbol_layout().size, depth=3)
            m.submodules[name("sym_queue", k)] = queue
            wiring.connect(m, huffman[k].sym, queue.w_stream)
            wiring.connect(m, queue.r_stream, coef[k].sym)
            wiring.connect(m, coef[k].o, idct[k][0])
        _broadcast(m, router.qtable, [c.qtable for c in coef])
        # ---- Container metadata from the APP events (ignored in RAW mode).
        matrix = Signal()
        if container:
            m.submodules.meta = meta = AppMeta(shape)
            # The reader takes each event a clock after the router does, from
            # registers: its checks then start from registers rather than from the
            # parser's output handshake (the stream's ready chain), and its error comes
            # two clocks after its event. The parser's error reaches the error latch a
            # clock later too (``parser_error`` below), so a metadata error still goes
            # before a parser error on a later event, as in the golden order.
            meta_event = Signal.like(parser.o.payload)
            meta_take = Signal()
            m.d.sync += [meta_event.eq(parser.o.payload),
                         meta_take.eq(parser.o.valid & parser.o.ready & ~self.raw)]
            m.d.comb += [meta.event.eq(meta_event), meta.take.eq(meta_take)]
            if lanes == 1:
                wiring.connect(m, meta.gen_cfg, remap[0].gen_cfg)
            else:
                # One control-word generator loads every lane's remap tables.
                m.submodules.gen = gen = ControlWordGenerator(remap_shape.generator_shape())
                wiring.connect(m, meta.gen_cfg, gen.cfg)
                _broadcast(m, gen.o, [r.cw for r in remap])
            m.d.comb += matrix.eq(meta.present & ~self.raw)
        ri = router.restart_interval
        for k in range(lanes):
            m.d.comb += [
                huffman[k].dc_slot.eq(router.dc_slot),
                huffman[k].ac_slot.eq(router.ac_slot),
                coef[k].restart_interval.eq(ri),
            ]

        crc_bad = None
        if container:
            # ---- CRC-32 of the entropy-coded data (hw.crc), checked against the last
            # four bytes of the CIMCODEC APP11 payload (the metadata's ``crc`` field) in
            # the clock after the marker ending the scan is taken (``end`` registered:
            # the parser's ``i.ready`` chain no longer runs through the byte's take into
            # the error latch; the CRC holds once ``ended``). The error is still latched
            # no later than the parser's ``done`` (which takes the marker's event a clock
            # after its byte), so before the status event can leave. The raw bytes taken
            # while the parser's ``scan`` is high are the scan's.
            m.submodules.crc = scan_crc = ScanCrc(shape.in_bytes)
            m.d.comb += [
                scan_crc.byte.eq(parser.i.payload.data),
                scan_crc.take.eq(parser.i.valid & parser.i.ready),
                scan_crc.scan.eq(parser.scan),
            ]
            if wide:
                m.d.comb += [scan_crc.wide.eq(beat.data), scan_crc.wide_take.eq(bypass)]
            has_meta = Signal()
            stored_crc = Signal(32)
            app = parser.o.payload
            with m.If(parser.o.valid & parser.o.ready & (app.kind == EventKind.APP)
                      & ~self.raw):
                m.d.sync += has_meta.eq(1)
                with m.If(app.index == 0):
                    m.d.sync += stored_crc.eq(0)
                with m.Elif(app.index >= 2):
                    m.d.sync += stored_crc.eq(Cat(stored_crc[8:], app.value[:8]))
            crc_end = Signal()
            m.d.sync += crc_end.eq(scan_crc.end)
            crc_bad = has_meta & crc_end & (scan_crc.crc != stored_crc)

        # ---- Frame geometry. In RAW mode the remap unit (off) gets the frame size, so
        # it drops the block padding; in matrix mode the matrix size.
        height, width = router.height, router.width
        block_rows = Signal(range(remap_shape.table_rows + 1))
        block_cols = Signal(range(remap_shape.table_cols + 1))
        # Registered: the frame header sets the size long before the scan's first block
        # (the path from the router's size through this adder into the lanes' block
        # skipping was the 4-lane decompressor's critical one).
        m.d.sync += [block_rows.eq((height + 7) >> 3), block_cols.eq((width + 7) >> 3)]
        rows = Signal(range(shape.max_rows + 1))
        cols = Signal(range(shape.max_cols + 1))
        if container:
            m.d.comb += [rows.eq(Mux(matrix, meta.rows, height)),
                         cols.eq(Mux(matrix, meta.cols, width))]
        else:
            m.d.comb += [rows.eq(height), cols.eq(width)]
        # The remap units' configuration is registered: it is static from the frame
        # header on (the metadata comes before it), and the first sample reaches the
        # units many clocks after the frame header, so no path runs from ``raw`` or the
        # metadata through the size multiplexer into the units.
        for r in remap:
            m.d.sync += [r.cfg.rows.eq(rows), r.cfg.cols.eq(cols)]
            if container:
                m.d.sync += r.cfg.enable.eq(matrix & meta.remap)
        blocks = Signal(range(remap_shape.table_rows * remap_shape.table_cols + 1))
        total = Signal(range(shape.max_rows * shape.max_cols + 1))
        m.d.sync += [blocks.eq(block_rows * block_cols), total.eq(rows * cols)]
        frame_too_big = (height > shape.max_rows) | (width > shape.max_cols)
        if container:
            # Registered: the metadata (an APP segment after the frame header is an
            # error) sets the matrix size long before the frame header is checked.
            padded_rows = Signal(len(meta.rows) + 1)
            padded_cols = Signal(len(meta.cols) + 1)
            m.d.sync += [padded_rows.eq(((meta.rows + 7) >> 3) << 3),
                         padded_cols.eq(((meta.cols + 7) >> 3) << 3)]
            frame_bad = router.frame & Mux(
                matrix, (height != padded_rows) | (width != padded_cols) | ~meta.fits,
                frame_too_big)
        else:
            frame_bad = router.frame & frame_too_big

        # ---- Scan checks on the symbols (each lane's): blocks started (DC symbols)
        # never beyond the frame's, and ``Ri`` of them per restart interval (checked
        # when the lane's next interval's first chunk enters its Huffman decoder: every
        # symbol before it has left by then).
        excess = Signal()
        interval_bad = Signal()
        progress = Signal()                 # a symbol or a sample moved (watchdog)
        # Lane k's interval starts at block ``base`` (k * Ri for its first, then lanes *
        # Ri further each time); ``count`` blocks of it started. A DC symbol past the
        # frame's last block is EXCESS; one more than Ri in an interval, or a next
        # interval after fewer, is INTERVAL (with lanes it would put blocks at another
        # lane's positions).
        # The two events (a DC symbol taken, a first chunk's byte taken) are registered
        # and checked a clock later: the checks then start from registers, not from the
        # lane's Huffman handshake (the path of its ``ready`` through the checks into
        # the error latch was the 4-lane decompressor's critical path). Both are
        # delayed alike, so their order is kept; the error comes a clock later, long
        # before the symbol's samples leave the IDCT (and a block past the frame is
        # dropped at placement anyway).
        span = Signal(len(blocks) + RESTART_BITS + 4)          # a row of intervals
        m.d.sync += span.eq(ri * lanes)
        for k in range(lanes):
            base = Signal(len(span), name=name("base", k))
            count = Signal(max(len(blocks), RESTART_BITS) + 1, name=name("count", k))
            opened = Signal(name=name("opened", k))     # the lane's first interval began
            sym, bits = huffman[k].sym, huffman[k].bits
            dc_taken = Signal(name=name("dc_taken", k))
            first_taken = Signal(name=name("first_taken", k))
            m.d.sync += [dc_taken.eq(sym.valid & sym.ready & sym.payload.dc),
                         first_taken.eq(bits.valid & bits.ready & bits.payload.first)]
            with m.If(dc_taken):
                with m.If(base + count >= blocks):
                    m.d.comb += excess.eq(1)
                with m.Elif((ri != 0) & (count == ri)):
                    m.d.comb += interval_bad.eq(1)
                with m.Else():
                    m.d.sync += count.eq(count + 1)
            with m.If(first_taken):
                m.d.sync += [opened.eq(1), count.eq(0)]
                with m.If(opened):
                    m.d.sync += base.eq(base + span)
                    with m.If(count != ri):
                        m.d.comb += interval_bad.eq(1)
                with m.Else():
                    m.d.sync += base.eq(ri * k)
        for k in range(lanes):
            with m.If(huffman[k].sym.valid & huffman[k].sym.ready):
                m.d.comb += progress.eq(1)

        # ---- Block placement: JPEG block order, raster inside a block. Blocks past the
        # frame's last are consumed and dropped. With lanes, each lane skips the blocks
        # of the other lanes' intervals: (lanes - 1) * Ri after each of its intervals,
        # k * Ri before its first (one block row per two clocks, the IDCT waiting: the
        # first registers the row's room, ``block_cols - bcol``, the second compares the
        # skip with it and takes the row or the rest of the skip).
        if lanes > 1:
            skip_step = Signal(len(span))
            m.d.sync += skip_step.eq(ri * (lanes - 1))
            scan_start = Signal()
            scan_prev = Signal()
            m.d.sync += scan_prev.eq(router.scan)
            m.d.comb += scan_start.eq(router.scan & ~scan_prev)
        for k in range(lanes):
            pos = Signal(6, name=name("pos", k))
            brow = Signal.like(block_rows, name=name("brow", k))
            bcol = Signal.like(block_cols, name=name("bcol", k))
            inside = brow < block_rows
            src, dst = idct[k][1], remap[k].i
            hold = Const(0)
            if lanes > 1:
                skip = Signal(len(span), name=f"skip{k}")
                done_blocks = Signal(RESTART_BITS, name=f"done_blocks{k}")
                hold = skip != 0
                room = Signal.like(block_cols, name=f"room{k}")
                staged = Signal(name=f"staged{k}")        # ``room`` is this row's
                rest = Signal(signed(len(span) + 1), name=f"rest{k}")
                m.d.comb += rest.eq(skip - room)
                with m.If(scan_start):
                    m.d.sync += [skip.eq(ri * k), staged.eq(0)]
                with m.Elif(hold & ~staged):
                    m.d.sync += [room.eq(block_cols - bcol), staged.eq(1)]
                with m.Elif(hold):
                    m.d.sync += staged.eq(0)
                    with m.If(~inside):
                        m.d.sync += skip.eq(0)
                    with m.Elif(rest >= 0):
                        m.d.sync += [skip.eq(rest), bcol.eq(0), brow.eq(brow + 1)]
                    with m.Else():
                        m.d.sync += [skip.eq(0), bcol.eq(bcol + skip)]
            m.d.comb += [
                dst.valid.eq(src.valid & inside & ~error & ~hold),
                dst.payload.row.eq(Cat(pos[3:], brow)),
                dst.payload.col.eq(Cat(pos[:3], bcol)),
                dst.payload.data.eq(src.payload.sample),
                src.ready.eq(~error & ~hold & (dst.ready | ~inside)),
            ]
            with m.If(dst.valid & dst.ready):
                m.d.comb += progress.eq(1)
            with m.If(src.valid & src.ready):
                m.d.sync += pos.eq(pos + 1)
                with m.If(pos == BLOCK - 1):
                    with m.If(bcol + 1 == block_cols):
                        m.d.sync += bcol.eq(0)
                        with m.If(inside):
                            m.d.sync += brow.eq(brow + 1)
                    with m.Else():
                        m.d.sync += bcol.eq(bcol + 1)
                    if lanes > 1:
                        with m.If(done_blocks + 1 == ri):
                            m.d.sync += [done_blocks.eq(0), skip.eq(skip_step)]
                        with m.Else():
                            m.d.sync += done_blocks.eq(done_blocks + 1)

        # ---- Snap table (one read port per lane).
        samples = [r.o.payload.data for r in remap]
        if container:
            m.submodules.snap = snap = Memory(shape=8, depth=256, init=[])
            snap_write = snap.write_port()
            snap_index = Signal(8)
            # The write is registered one clock: the table is read only after the scan.
            write_en, write_addr, write_data = Signal(), Signal(8), Signal(8)
            m.d.sync += [write_en.eq(meta.snap.valid), write_addr.eq(snap_index),
                         write_data.eq(meta.snap.payload.value)]
            m.d.comb += [
                meta.snap.ready.eq(1),
                snap_write.addr.eq(write_addr),
                snap_write.data.eq(write_data),
                snap_write.en.eq(write_en),
            ]
            with m.If(meta.snap.valid):
                m.d.sync += snap_index.eq(Mux(meta.snap.payload.last, 0, snap_index + 1))
            for k in range(lanes):
                snap_read = snap.read_port(domain="comb")
                m.d.comb += snap_read.addr.eq(remap[k].o.payload.data)
                samples[k] = Mux(matrix & meta.snap_on, snap_read.data, samples[k])

        # ---- Output register: samples (one per lane per beat), then the status event.
        o = self.o
        emitted = Signal.like(total)
        free = ~o.valid | o.ready
        with m.If(o.valid & o.ready):
            m.d.sync += o.valid.eq(0)
        for r in remap:
            m.d.comb += r.o.ready.eq(free & ~error & ~finished)
        any_sample = Signal()
        m.d.comb += any_sample.eq(Cat(r.o.valid for r in remap).any())
        with m.If(any_sample & free & ~error & ~finished):
            m.d.sync += [o.valid.eq(1), o.payload.eq(0)]
            if lanes == 1:
                m.d.sync += [
                    o.payload.row.eq(remap[0].o.payload.row),
                    o.payload.col.eq(remap[0].o.payload.col),
                    o.payload.sample.eq(samples[0]),
                    emitted.eq(emitted + 1),
                ]
            else:
                taken = 0
                for k, r in enumerate(remap):
                    slot = o.payload.lane[k]
                    m.d.sync += [slot.valid.eq(r.o.valid), slot.row.eq(r.o.payload.row),
                                 slot.col.eq(r.o.payload.col), slot.sample.eq(samples[k])]
                    taken = taken + r.o.valid
                m.d.sync += emitted.eq(emitted + taken)
        complete = parser.done & router.frame & (emitted == total)
        with m.Elif(free & ~finished & (error | complete)):
            m.d.sync += [o.valid.eq(1), o.payload.eq(0), o.payload.end.eq(1),
                         o.payload.error.eq(error), o.payload.code.eq(code),
                         finished.eq(1)]
            with m.If(~error):
                m.d.sync += self.done.eq(1)

        # ---- Watchdog: after EOI, clocks without a sample while ``o`` is not stalled.
        idle = Signal(range(WATCHDOG + 1))
        starved = Signal()
        with m.If(~parser.done | progress):
            m.d.sync += idle.eq(0)
        with m.Elif(~(o.valid & ~o.ready) & ~finished & (idle != WATCHDOG)):
            m.d.sync += idle.eq(idle + 1)
        m.d.comb += starved.eq(idle == WATCHDOG)

        # ---- The first error, latched (simultaneous ones: the first listed). The
        # metadata reader's error is registered: it comes a clock after its event (two
        # with the container hardware, whose reader takes its events from registers),
        # so it goes before the parser's (whose error is that of the current event,
        # a clock late with the container hardware).
        # ``error`` takes the OR of the causes; the causes themselves (and the parser's
        # code) are registered beside it in ``caught``, and ``code`` is the first of
        # them, picked from those registers: the same code in the same clock as a
        # priority chain into a code register, without that chain behind every cause
        # (it was the 2-lane decompressor's critical path).
        parser_code = Signal.like(parser.code)         # the parser's code, registered
        # With the container hardware, the parser's error and code a clock late (see
        # the metadata reader above).
        if container:
            parser_error = Signal()
            parser_code_late = Signal.like(parser.code)
            m.d.sync += [parser_error.eq(parser.error), parser_code_late.eq(parser.code)]
        else:
            parser_error, parser_code_late = parser.error, parser.code
        causes = [
            (meta.error if container else None, ErrorCode.METADATA),
            (parser_error, parser_code),
            (Cat(h.table_error for h in huffman).any(), ErrorCode.HUFFMAN_TABLE),
            (router.slot_error, ErrorCode.TABLE_SLOT),
            (frame_bad, ErrorCode.FRAME),
            (Cat(h.error for h in huffman).any(), ErrorCode.HUFFMAN_CODE),
            (Cat(c.error for c in coef).any(), ErrorCode.COEFFICIENT),
            (excess, ErrorCode.EXCESS),
            (interval_bad, ErrorCode.INTERVAL),
            (crc_bad, ErrorCode.CRC),
            (starved, ErrorCode.STARVED),
        ]
        # Without the container hardware there is no metadata or CRC to check.
        causes = [(cause, value) for cause, value in causes if cause is not None]
        caught = Signal(len(causes))
        with m.If(~error):
            m.d.sync += [error.eq(Cat(c for c, _ in causes).any()),
                         caught.eq(Cat(c for c, _ in causes)),
                         parser_code.eq(parser_code_late)]
        first = Const(0, code.shape())
        for index, (_, value) in reversed(list(enumerate(causes))):
            first = Mux(caught[index], value, first)
        m.d.comb += [code.eq(first), self.error.eq(error), self.code.eq(code)]
        return m


def _unpack(m, shape, src, dst, name):
    """Hand the bytes of ``src``'s chunks (:func:`chunk_layout`) to the Huffman bits
    stream ``dst`` one per clock, ``first`` with a first chunk's first byte; the next
    chunk is taken in the clock the last byte leaves, so a lane gets a byte every
    clock."""
    width = shape.in_bytes
    held = Signal(name=f"{name}_held")
    chunk = Signal(chunk_layout(shape), name=f"{name}_chunk")
    index = Signal(range(width), name=f"{name}_index")
    moved = dst.valid & dst.ready
    last = index == chunk.more
    m.d.comb += [
        dst.valid.eq(held),
        dst.payload.data.eq(chunk.data.word_select(index, 8)),
        dst.payload.count.eq(8),
        dst.payload.first.eq(chunk.first & (index == 0)),
        src.ready.eq(~held | (moved & last)),
    ]
    with m.If(moved):
        m.d.sync += index.eq(index + 1)
    with m.If(src.valid & src.ready):
        m.d.sync += [held.eq(1), chunk.eq(src.payload), index.eq(0)]
    with m.Elif(moved & last):
        m.d.sync += held.eq(0)


def _broadcast(m, src, dsts):
    """Connect the stream ``src`` to every stream of ``dsts`` at once: a transfer when
    all are ready (their ``ready`` must not depend on their ``valid``). One
    destination: a plain connection."""
    if len(dsts) == 1:
        wiring.connect(m, src, dsts[0])
        return
    ready = Cat(d.ready for d in dsts).all()
    m.d.comb += src.ready.eq(ready)
    for d in dsts:
        m.d.comb += [d.valid.eq(src.valid & ready), d.payload.eq(src.payload)]
