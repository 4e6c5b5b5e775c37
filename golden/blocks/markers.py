"""Marker / segment parser of the RTL decompressor: the stream-level behaviour, byte by
byte, that :class:`hw.markers.MarkerParser` reproduces exactly.

:func:`parse` reads a JPEG file one byte at a time, as the hardware does, and returns
the *events* the hardware emits (at most one per input byte, in order), the error code
and the number of bytes consumed. The file layout and every check are those of
:func:`golden.jpeg.reference.decode_full` (the same constants, the same rules); on the files
encoders write, and on corrupt files whose damage is in the headers, the marker
structure or the restart markers, ``parse`` reports an error exactly when
``decode_full`` raises. What needs the Huffman tables (codes absent from a table, too
few entropy-coded bytes for the blocks, coefficient errors) is left to the later stages.

Events
------
A tuple whose first item is a :class:`Kind`; :func:`payload` gives the hardware's
fields ``{kind, tclass, table, index, value}`` (all 0 unless listed).

=================================  ======================================================
``(DQT, tq, k, q)``                entry ``k`` (0..63, zigzag order as in the file) of
                                   quantization table ``tq``: ``table=tq, index=k,
                                   value=q``; 8- or 16-bit precision alike
``(DHT_BITS, tc, th, i, count)``   ``BITS[i]``: codes of length ``i + 1`` in Huffman
                                   table class ``tc`` (0 DC, 1 AC), id ``th``
``(DHT_VAL, tc, th, j, symbol)``   ``HUFFVAL[j]`` of that table
``(HEIGHT, y)``, ``(WIDTH, x)``    frame size, ``value`` (from SOF0 / SOF1)
``(FRAME, tq)``                    the frame's one component uses quantization table
                                   ``tq`` (``table``); the frame header is complete
``(DRI, ri)``                      restart interval (``value``)
``(SCAN, td, ta)``                 the scan header is complete: DC table ``td``
                                   (``table``), AC table ``ta`` (``value``)
``(APP, k, byte)``                 byte ``k`` (``index``) of a ``CIMCODEC`` ``APP11``
                                   payload after its 9-byte signature (``k = 0``: chunk
                                   index, ``k = 1``: chunk count, then the chunk); other
                                   ``APPn`` and ``COM`` segments emit nothing
``(ECS, byte)``                    one entropy-coded byte, un-stuffed
``(RST, m)``                       restart marker ``RSTm`` between two intervals
``(EOI,)``                         end of image: the parse succeeded
``(ERROR, code)``                  the parse failed with :class:`Error` ``code``
=================================  ======================================================

The stream always ends with exactly one ``EOI`` or ``ERROR`` event, and nothing is
consumed after it. An event comes with the byte that completes it: a 16-bit quantizer
with its low byte, ``HEIGHT`` with the low byte of ``Y``, ``FRAME`` with ``Tq``,
``SCAN`` with ``Ah/Al``, ``ECS 0xFF`` with the ``0x00`` after it. A byte that raises an
error emits ``ERROR`` instead of its own event; events before it stand (a table may be
incomplete: consumers discard everything on an error).

Byte rules
----------
* ``SOI`` first. Between segments a ``0xFF``, any number of ``0xFF`` fill bytes, then
  the marker code. ``APPn`` and ``COM`` are skipped by their length; ``DQT``, ``DHT``,
  ``DRI``, ``SOF0``/``SOF1`` and ``SOS`` are parsed; every other marker is an error.
* After the ``SOS`` segment, entropy-coded data: ``0xFF 0x00`` is a data ``0xFF`` (fill
  ``0xFF`` bytes before the ``0x00`` or a marker are dropped), ``0xFF 0xD0..0xD7`` a
  restart marker; any other marker ends the scan and is handled as between segments
  (segments may follow the scan; only ``EOI`` ends the file).
* The input carries a ``last`` flag on the file's final byte (here: the end of
  ``data``); a ``last`` byte that is not the ``EOI`` code is a :data:`Error.TRUNCATED`
  error unless the byte raises an error of its own.

Checks, at the byte named, in this order within a byte (:class:`Error`):

* ``MARKER``: not ``FF D8`` at the start; a byte other than ``0xFF`` where a marker
  belongs; ``SOI``, ``TEM``, ``RSTn`` or ``0x00`` as a segment marker; any marker not
  listed above (``DNL``, ``JPGn``, reserved codes).
* ``ORDER`` (marker code): a second ``SOF``; ``SOS`` before ``SOF`` or a second ``SOS``;
  ``EOI`` before the scan.
* ``UNSUPPORTED`` (marker code): ``SOF2..SOF15`` and ``DAC``. (``DQT`` table byte):
  precision above 1 or id above 3. (``DHT`` table byte): class above 1 or id above 3.
  (``SOF``) ``P != 8``, ``Nf != 1``, sampling factors outside 1..4, ``Tq > 3``. (``SOS``)
  ``Ns != 1``, ``Cs`` not the frame's component, ``Ss, Se, Ah/Al`` not ``0, 63, 0``.
* ``LENGTH``: (second length byte) a length below 2; ``DRI`` not 4; ``SOF`` below 8;
  ``SOS`` below 3. (``Nf`` / ``Ns`` byte) ``SOF`` not 11, ``SOS`` not 8. (table byte
  of ``DQT`` / ``DHT``) fewer bytes left in the segment than the table's 65 or 129 /
  the 17 of its header and ``BITS``.
* ``HUFFMAN`` (each ``BITS`` byte): more than 256 symbols so far, or the canonical code
  overflows its length (``code += BITS[i]; code >= 2**(i+1)``: over-subscribed or the
  all-ones code, :mod:`golden.jpeg.huffman`); (last ``BITS`` byte) more symbols than bytes
  left in the segment.
* ``DIMENSIONS``: (low byte of ``Y``) ``Y`` 0 or above 65500; (low byte of ``X``) ``X``
  0 or above 65500, or ``X * Y`` above 2**28 (the limits of :class:`MarkerShape`).
* ``QUANTIZER`` (high byte of a 16-bit entry): the entry exceeds 32767.
* ``MISSING_TABLE`` (``Ah/Al`` byte): the scan's DC or AC table, or the frame's
  quantization table, was never defined.
* ``RESTART``: (``RSTm`` code) no restart interval, ``m`` not the next in
  ``0, 1, ..., 7, 0, ...``, or the ``k``-th marker with ``k * Ri >= blocks``; (the
  marker code that ends the scan) ``Ri > 0`` and ``(k + 1) * Ri < blocks`` after ``k``
  markers, where ``blocks = ceil(Y / 8) * ceil(X / 8)``.
* ``TRUNCATED``: above.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cimcodec.golden.codec.container import APP_NUMBER, SIGNATURE
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg.dct import MAX_QUANTIZER
from cimcodec.golden.jpeg.huffman import MAX_CODE_LENGTH, MAX_SYMBOLS
from cimcodec.golden.jpeg.reference import (
    _OTHER_SOF,
    _PROGRESSIVE,
    APP0,
    COM,
    DAC,
    DHT,
    DQT,
    DRI,
    EOI,
    MAX_DIMENSION,
    MAX_PIXELS,
    RST0,
    SOF0,
    SOF1,
    SOI,
    SOS,
)


@dataclass(frozen=True)
class MarkerShape:
    """Frame limits of the parser (shared by :func:`parse` and
    :class:`hw.markers.MarkerParser`); the defaults are :mod:`golden.jpeg.reference`'s.

    Attributes
    ----------
    max_dimension : int
        Largest height and width, 1..65535.
    max_pixels : int
        Largest ``height * width``, 1..2**32 - 1.
    """

    max_dimension: int = MAX_DIMENSION
    max_pixels: int = MAX_PIXELS

    def __post_init__(self):
        for name, top in (("max_dimension", 0xFFFF), ("max_pixels", 0xFFFFFFFF)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                raise CimcodecError(
                    f"Parser {name.replace('_', ' ')} must be an integer 1..{top}, "
                    f"not {value!r}."
                )

    @property
    def blocks_bits(self) -> int:
        """Bits of the frame's block count ``ceil(Y/8) * ceil(X/8)``."""
        side = -(-self.max_dimension // 8)
        return min(side * side, self.max_pixels).bit_length()


#: Minimum segment length (the length field) per parsed marker; ``DRI`` must be exact.
MIN_LENGTH = {SOF0: 8, SOF1: 8, SOS: 3, DRI: 4}
SOF_LENGTH = 11
SOS_LENGTH = 8
UNSUPPORTED_MARKERS = frozenset(_PROGRESSIVE | _OTHER_SOF | {DAC})


class Kind(enum.IntEnum):
    """Event kinds (the hardware's 4-bit ``kind`` field)."""

    DQT = 0
    DHT_BITS = 1
    DHT_VAL = 2
    HEIGHT = 3
    WIDTH = 4
    FRAME = 5
    DRI = 6
    SCAN = 7
    APP = 8
    ECS = 9
    RST = 10
    EOI = 11
    ERROR = 12


class Error(enum.IntEnum):
    """Error codes (module docstring); ``NONE`` while parsing and after ``EOI``."""

    NONE = 0
    MARKER = 1
    ORDER = 2
    UNSUPPORTED = 3
    TRUNCATED = 4
    LENGTH = 5
    HUFFMAN = 6
    DIMENSIONS = 7
    QUANTIZER = 8
    MISSING_TABLE = 9
    RESTART = 10


def payload(event: tuple) -> dict:
    """The hardware payload ``{kind, tclass, table, index, value}`` of ``event``."""
    kind, args = Kind(event[0]), event[1:]
    out = {"kind": int(kind), "tclass": 0, "table": 0, "index": 0, "value": 0}
    if kind is Kind.DQT:
        out.update(table=args[0], index=args[1], value=args[2])
    elif kind in (Kind.DHT_BITS, Kind.DHT_VAL):
        out.update(tclass=args[0], table=args[1], index=args[2], value=args[3])
    elif kind is Kind.FRAME:
        out.update(table=args[0])
    elif kind is Kind.SCAN:
        out.update(table=args[0], value=args[1])
    elif kind is Kind.APP:
        out.update(index=args[0], value=args[1])
    elif kind is not Kind.EOI:
        out.update(value=int(args[0]))
    return out


@dataclass(frozen=True)
class Parsed:
    """Result of :func:`parse`.

    Attributes
    ----------
    events : list of tuple
        Every event in order, the last one ``EOI`` or ``ERROR``.
    error : Error
        ``NONE`` after ``EOI``.
    consumed : int
        Bytes read, up to and including the one that emitted the last event.
    """

    events: list
    error: Error
    consumed: int


class _Stop(Exception):
    def __init__(self, code: Error):
        self.code = code


class _Parser:
    """The byte-serial state machine (one ``step`` per byte), as the hardware has it."""

    def __init__(self, shape: MarkerShape):
        self.shape = shape
        self.state = "soi0"
        self.events: list[tuple] = []
        self.frame_seen = self.scan_seen = False
        self.q_def, self.dc_def, self.ac_def = set(), set(), set()
        self.ri = 0
        self.height = self.width = self.component = self.frame_tq = self.blocks = 0

    # ----------------------------------------------------------- marker codes
    def dispatch(self, code: int) -> None:
        """A marker code between segments (or ending the scan)."""
        if code == EOI:
            if not self.scan_seen:
                raise _Stop(Error.ORDER)
            self.events.append((Kind.EOI,))
            self.state = "done"
            return
        if code in (SOF0, SOF1):
            if self.frame_seen:
                raise _Stop(Error.ORDER)
            self.frame_seen = True
        elif code == SOS:
            if not self.frame_seen or self.scan_seen:
                raise _Stop(Error.ORDER)
            self.scan_seen = True
        elif code in UNSUPPORTED_MARKERS:
            raise _Stop(Error.UNSUPPORTED)
        elif not (APP0 <= code <= APP0 + 15 or code in (COM, DQT, DHT, DRI)):
            raise _Stop(Error.MARKER)
        self.marker = code
        self.state = "len_hi"

    # ----------------------------------------------------------- one byte
    def step(self, b: int) -> None:
        state = self.state
        if state == "soi0":
            if b != 0xFF:
                raise _Stop(Error.MARKER)
            self.state = "soi1"
        elif state == "soi1":
            if b != SOI:
                raise _Stop(Error.MARKER)
            self.state = "mark"
        elif state == "mark":
            if b != 0xFF:
                raise _Stop(Error.MARKER)
            self.state = "code"
        elif state == "code":
            if b != 0xFF:
                self.dispatch(b)
        elif state == "len_hi":
            self.len_hi = b
            self.state = "len_lo"
        elif state == "len_lo":
            self.length(b)
        elif state == "ecs":
            if b == 0xFF:
                self.state = "ecs_ff"
            else:
                self.events.append((Kind.ECS, b))
        elif state == "ecs_ff":
            self.ecs_ff(b)
        else:
            self.body(b)

    def length(self, b: int) -> None:
        length = (self.len_hi << 8) | b
        marker = self.marker
        if length < 2 or length < MIN_LENGTH.get(marker, 2) \
                or (marker == DRI and length != MIN_LENGTH[DRI]):
            raise _Stop(Error.LENGTH)
        self.remaining, self.pos = length - 2, 0
        self.dq_header, self.dh_phase = True, "header"  # a DQT/DHT starts with a table
        self.app_match = marker == APP0 + APP_NUMBER
        self.state = "body" if self.remaining else "mark"

    def ecs_ff(self, b: int) -> None:
        if b == 0xFF:
            return
        if b == 0x00:
            self.events.append((Kind.ECS, 0xFF))
            self.state = "ecs"
        elif RST0 <= b <= RST0 + 7:
            if self.ri == 0 or b - RST0 != self.rst_next or self.acc + self.ri >= self.blocks:
                raise _Stop(Error.RESTART)
            self.events.append((Kind.RST, b - RST0))
            self.acc += self.ri
            self.rst_next = (self.rst_next + 1) % 8
            self.state = "ecs"
        else:
            if self.ri and self.acc + self.ri < self.blocks:
                raise _Stop(Error.RESTART)
            self.dispatch(b)

    # ----------------------------------------------------------- segment bodies
    def body(self, b: int) -> None:
        marker, pos = self.marker, self.pos
        if marker == DQT:
            self.dqt(b)
        elif marker == DHT:
            self.dht(b)
        elif marker == DRI:
            if pos == 0:
                self.ri_hi = b
            else:
                self.ri = (self.ri_hi << 8) | b
                self.events.append((Kind.DRI, self.ri))
        elif marker in (SOF0, SOF1):
            self.sof(b)
        elif marker == SOS:
            self.sos(b)
        elif self.app_match:
            if pos < len(SIGNATURE):
                self.app_match = b == SIGNATURE[pos]
            else:
                self.events.append((Kind.APP, pos - len(SIGNATURE), b))
        self.pos += 1
        self.remaining -= 1
        if not self.remaining:
            if marker == SOS:
                self.state, self.acc, self.rst_next = "ecs", 0, 0
            else:
                self.state = "mark"

    def dqt(self, b: int) -> None:
        if self.dq_header:
            pq, tq = b >> 4, b & 15
            if pq > 1 or tq > 3:
                raise _Stop(Error.UNSUPPORTED)
            if self.remaining < 1 + 64 * (pq + 1):
                raise _Stop(Error.LENGTH)
            self.dq_header, self.dq_wide, self.dq_id, self.dq_k = False, bool(pq), tq, 0
            self.dq_low = False
            self.q_def.add(tq)
            return
        if self.dq_wide and not self.dq_low:
            if (b << 8) > MAX_QUANTIZER:
                raise _Stop(Error.QUANTIZER)
            self.dq_hi, self.dq_low = b, True
            return
        value = (self.dq_hi << 8) | b if self.dq_wide else b
        self.events.append((Kind.DQT, self.dq_id, self.dq_k, value))
        self.dq_low = False
        self.dq_k += 1
        if self.dq_k == 64:
            self.dq_header = True

    def dht(self, b: int) -> None:
        if self.dh_phase == "header":
            tc, th = b >> 4, b & 15
            if tc > 1 or th > 3:
                raise _Stop(Error.UNSUPPORTED)
            if self.remaining < 1 + MAX_CODE_LENGTH:
                raise _Stop(Error.LENGTH)
            (self.ac_def if tc else self.dc_def).add(th)
            self.dh_class, self.dh_id, self.dh_phase = tc, th, "bits"
            self.dh_i = self.dh_total = self.dh_code = 0
        elif self.dh_phase == "bits":
            i = self.dh_i
            self.dh_total += b
            self.dh_code += b
            if self.dh_total > MAX_SYMBOLS or self.dh_code >= 1 << (i + 1):
                raise _Stop(Error.HUFFMAN)
            self.dh_code <<= 1
            if i == MAX_CODE_LENGTH - 1 and self.remaining - 1 < self.dh_total:
                raise _Stop(Error.HUFFMAN)
            self.events.append((Kind.DHT_BITS, self.dh_class, self.dh_id, i, b))
            self.dh_i += 1
            if i == MAX_CODE_LENGTH - 1:
                self.dh_phase, self.dh_j = ("vals" if self.dh_total else "header"), 0
        else:
            self.events.append((Kind.DHT_VAL, self.dh_class, self.dh_id, self.dh_j, b))
            self.dh_j += 1
            if self.dh_j == self.dh_total:
                self.dh_phase = "header"

    def sof(self, b: int) -> None:
        pos = self.pos
        if pos == 0:
            if b != 8:
                raise _Stop(Error.UNSUPPORTED)
        elif pos in (1, 3):
            self.hi = b
        elif pos == 2:
            self.height = (self.hi << 8) | b
            if not 1 <= self.height <= self.shape.max_dimension:
                raise _Stop(Error.DIMENSIONS)
            self.events.append((Kind.HEIGHT, self.height))
        elif pos == 4:
            x = (self.hi << 8) | b
            if not 1 <= x <= self.shape.max_dimension \
                    or x * self.height > self.shape.max_pixels:
                raise _Stop(Error.DIMENSIONS)
            self.width = x
            self.blocks = -(-x // 8) * -(-self.height // 8)
            self.events.append((Kind.WIDTH, x))
        elif pos == 5:
            if b != 1:
                raise _Stop(Error.UNSUPPORTED)
            if self.remaining != SOF_LENGTH - 2 - 5:
                raise _Stop(Error.LENGTH)
        elif pos == 6:
            self.component = b
        elif pos == 7:
            if not (1 <= b >> 4 <= 4 and 1 <= b & 15 <= 4):
                raise _Stop(Error.UNSUPPORTED)
        else:
            if b > 3:
                raise _Stop(Error.UNSUPPORTED)
            self.frame_tq = b
            self.events.append((Kind.FRAME, b))

    def sos(self, b: int) -> None:
        pos = self.pos
        if pos == 0:
            if b != 1:
                raise _Stop(Error.UNSUPPORTED)
            if self.remaining != SOS_LENGTH - 2:
                raise _Stop(Error.LENGTH)
        elif pos == 1:
            if b != self.component:
                raise _Stop(Error.UNSUPPORTED)
        elif pos == 2:
            self.td, self.ta = b >> 4, b & 15
        elif pos == 3 or pos == 4:
            if b != (0 if pos == 3 else 63):
                raise _Stop(Error.UNSUPPORTED)
        else:
            if b != 0:
                raise _Stop(Error.UNSUPPORTED)
            if self.td not in self.dc_def or self.ta not in self.ac_def \
                    or self.frame_tq not in self.q_def:
                raise _Stop(Error.MISSING_TABLE)
            self.events.append((Kind.SCAN, self.td, self.ta))


def parse(data, shape: MarkerShape = MarkerShape()) -> Parsed:
    """Parse a JPEG file byte by byte (module docstring).

    Parameters
    ----------
    data : bytes
        The file; its last byte carries the hardware's ``last`` flag.
    shape : MarkerShape
        Frame limits (the defaults are those of :func:`golden.jpeg.reference.decode_full`).

    Returns
    -------
    Parsed
        Events, error code and bytes consumed. Empty ``data`` gives
        ``Error.TRUNCATED`` with nothing consumed (the hardware sees no byte at all).

    Raises
    ------
    CimcodecError
        ``data`` is not bytes.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CimcodecError(f"JPEG data must be bytes, not {type(data).__name__}.")
    data = bytes(data)
    if not isinstance(shape, MarkerShape):
        raise CimcodecError(f"Parser shape must be a MarkerShape, not {shape!r}.")
    parser = _Parser(shape)
    n = len(data)
    if not n:
        return Parsed([(Kind.ERROR, Error.TRUNCATED)], Error.TRUNCATED, 0)
    for index, b in enumerate(data):
        before = len(parser.events)
        try:
            parser.step(b)
            if parser.state != "done" and index == n - 1:
                raise _Stop(Error.TRUNCATED)
        except _Stop as stop:
            del parser.events[before:]  # the error replaces the byte's own event
            parser.events.append((Kind.ERROR, stop.code))
            return Parsed(parser.events, stop.code, index + 1)
        if parser.state == "done":
            return Parsed(parser.events, Error.NONE, index + 1)
    raise AssertionError("unreachable: the last byte ends the parse")
