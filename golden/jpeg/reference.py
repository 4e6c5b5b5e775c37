"""Baseline JPEG codec for one 8-bit grayscale component: the bit-exact reference that
the RTL decoder must reproduce, with IJG libjpeg (through Pillow) as the external oracle.

Decoding (:func:`decode`, :func:`decode_full`)
----------------------------------------------
Accepted: SOF0 (baseline) or SOF1 (extended sequential, Huffman) frames with 8-bit
samples and exactly one component, in one sequential scan. Markers are read in order:

* ``SOI`` first; before each marker any number of ``0xFF`` fill bytes; ``APPn`` and
  ``COM`` are skipped by their length (payloads kept in :class:`Decoded`); ``DQT``
  (8- or 16-bit precision, entries 0..32767), ``DHT``, ``DRI`` may come anywhere before
  ``SOS``; one ``SOF0``/``SOF1``; one ``SOS``, followed by the entropy-coded data; then
  ``EOI``. Bytes after ``EOI`` are ignored.
* Entropy-coded data ends at the first marker other than ``RSTn``; ``0xFF 0x00`` is a
  stuffed ``0xFF`` byte (fill ``0xFF`` bytes before the ``0x00`` or a marker are
  dropped). With a restart interval ``Ri > 0`` the scan is split into
  ``ceil(blocks / Ri)`` intervals separated by ``RST0, RST1, ..., RST7, RST0, ...``;
  each interval starts byte aligned with the DC predictor at 0.
* Blocks are in raster order over ``ceil(X/8)`` by ``ceil(Y/8)`` blocks (one block per
  MCU whatever the sampling factors, T.81 A.2.2). Per block (T.81 F.2.2): DC category
  ``t = DECODE(DC table)`` (0..11), ``diff = EXTEND(RECEIVE(t), t)``,
  ``pred += diff``, coefficient 0 is ``pred`` wrapped to 16 bits (libjpeg's ``JCOEF``);
  then AC symbols ``RS = DECODE(AC table)``, ``R = RS >> 4``, ``S = RS & 15``:
  ``0x00`` is EOB, ``0xF0`` skips 16 zeros, otherwise ``k += R`` and coefficient ``k``
  (zigzag) is ``EXTEND(RECEIVE(S), S)`` with ``S`` 1..10;
  ``EXTEND(v, t) = v if v >= 2**(t-1) else v - 2**t + 1``.
* Samples are :func:`golden.jpeg.dct.idct_islow` of the coefficients (natural order) with the
  frame's quantization table, cropped to ``Y`` rows and ``X`` columns.

Stricter than libjpeg (which warns and carries on): every deviation raises
:class:`CimcodecError` with one sentence -- truncation anywhere, a missing or
misnumbered ``RSTn``, a code absent from its Huffman table, DC categories above 11, AC
sizes above 10, undefined AC symbols ``(R, 0)`` with ``0 < R < 15``, runs past
coefficient 63, a quantizer above 32767, a missing ``EOI``. Files encoders write decode
exactly as libjpeg does (the tests check Pillow's libjpeg-turbo at every quality, with
restart markers and 8- and 16-bit tables). Only on corrupt files with huge dequantized
coefficients can libjpeg-turbo differ: its SIMD IDCT keeps 16-bit intermediates, while
the model follows the C arithmetic of ``jidctint.c`` and saturates (:mod:`golden.jpeg.dct`).

Resources: before decoding, the scan must hold at least ``blocks * (shortest DC code +
shortest AC code)`` bits (at least 2 per block), so memory stays proportional to the
file size (at most about 400 bytes per byte of entropy-coded data: int16 coefficients and
uint8 samples); the IDCT runs in batches of :data:`IDCT_BATCH` blocks.

Encoding (:func:`encode`)
-------------------------
Writes ``SOI``, ``APP0`` JFIF 1.01 (aspect ratio 1:1, no thumbnail), the caller's
``APPn`` segments, ``DQT`` (table 0; 16-bit precision when an entry exceeds 255),
``SOF0`` (``SOF1`` when the table is 16-bit, as libjpeg does: baseline forbids 16-bit
tables), two ``DHT`` (DC 0 and AC 0), ``DRI`` when ``restart_interval > 0``, ``SOS``,
the entropy-coded data and ``EOI``. The image is padded to whole blocks by replicating
its last column and row (as libjpeg does); coefficients are
:func:`golden.jpeg.dct.forward` (libjpeg's islow forward DCT and rounding). Entropy coding
mirrors decoding; each interval is padded to a byte with 1 bits, and every ``0xFF``
byte is followed by a stuffed ``0x00``. The file is byte for byte what Pillow
(libjpeg-turbo) writes for the same quality or table, ``optimize`` and restart interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from bitstring import Bits

from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg import dct
from cimcodec.golden.jpeg.huffman import STD_AC_LUMINANCE, STD_DC_LUMINANCE, HuffmanTable
from cimcodec.golden.jpeg.zigzag import ZIGZAG, from_zigzag, to_zigzag

#: IJG's standard luminance quantization table (T.81 Table K.1), natural order.
STD_LUMINANCE_QTABLE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.int64)
STD_LUMINANCE_QTABLE.setflags(write=False)

MAX_DIMENSION = 65500  # libjpeg's JPEG_MAX_DIMENSION
MAX_PIXELS = 1 << 28
IDCT_BATCH = 4096

SOI, EOI, SOS, DQT, DHT, DRI, COM = 0xD8, 0xD9, 0xDA, 0xDB, 0xC4, 0xDD, 0xFE
SOF0, SOF1, SOF2, DAC, DNL = 0xC0, 0xC1, 0xC2, 0xCC, 0xDC
RST0, APP0 = 0xD0, 0xE0
_PROGRESSIVE = {0xC2, 0xC6, 0xCA, 0xCE}
_OTHER_SOF = {0xC3, 0xC5, 0xC7, 0xC9, 0xCB, 0xCD, 0xCF}


def quality_table(quality: int, *, force_baseline: bool = True) -> np.ndarray:
    """The standard luminance table scaled for IJG ``quality`` (``jcparam.c``)::

        scale = 5000 // quality if quality < 50 else 200 - 2 * quality
        Q[n]  = clip((STD[n] * scale + 50) // 100, 1, 255 if force_baseline else 32767)
    """
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) \
            or not 1 <= quality <= 100:
        raise CimcodecError(f"JPEG quality must be an integer 1..100, not {quality!r}.")
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    top = 255 if force_baseline else dct.MAX_QUANTIZER
    return np.clip((STD_LUMINANCE_QTABLE * scale + 50) // 100, 1, top)


# --------------------------------------------------------------------------- encoder


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big") + payload


def _category(value: int) -> int:
    return abs(value).bit_length()


def _symbols(zz: list[list[int]], restart_interval: int):
    """Per restart interval, the list of ``(table, symbol, nbits, bits)`` to send
    (table 0: DC, 1: AC)."""
    step = restart_interval or len(zz) or 1
    intervals = []
    for start in range(0, len(zz), step):
        out, pred = [], 0
        for block in zz[start:start + step]:
            diff = block[0] - pred
            pred = block[0]
            t = _category(diff)
            out.append((0, t, t, diff if diff >= 0 else diff + (1 << t) - 1))
            run = 0
            for value in block[1:]:
                if value == 0:
                    run += 1
                    continue
                while run > 15:
                    out.append((1, 0xF0, 0, 0))
                    run -= 16
                s = _category(value)
                out.append((1, (run << 4) | s, s, value if value >= 0 else value + (1 << s) - 1))
                run = 0
            if run:
                out.append((1, 0x00, 0, 0))
        intervals.append(out)
    return intervals


def _entropy_code(symbols, tables) -> bytes:
    codes = [t.encoder() for t in tables]
    parts = []
    for table, symbol, nbits, bits in symbols:
        try:
            code, size = codes[table][symbol]
        except KeyError:
            raise CimcodecError(
                f"The {'AC' if table else 'DC'} Huffman table has no code for symbol "
                f"0x{symbol:02X}."
            ) from None
        parts.append(Bits.from_dtype(f"u{size}", code))
        if nbits:
            parts.append(Bits.from_dtype(f"u{nbits}", bits))
    stream = Bits.from_joined(parts)
    stream = Bits.from_joined([stream, Bits.from_ones(-len(stream) % 8)])  # 1-bit padding
    return stream.to_bytes().replace(b"\xff", b"\xff\x00")


def _check_app_segments(app_segments) -> list[tuple[int, bytes]]:
    out = []
    for item in app_segments:
        try:
            n, payload = item
            payload = bytes(payload)
        except (TypeError, ValueError):
            raise CimcodecError(
                f"An APP segment must be a pair (n, bytes), not {item!r}."
            ) from None
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n <= 15:
            raise CimcodecError(f"An APP segment number must be 0..15, not {n!r}.")
        if len(payload) > 65533:
            raise CimcodecError(
                f"An APP segment holds at most 65533 bytes, not {len(payload)}."
            )
        out.append((int(n), payload))
    return out


def encode(samples, *, quality: int | None = None, qtable=None, optimize: bool = True,
           restart_interval: int = 0, app_segments=()) -> bytes:
    """Encode a grayscale image as a baseline JFIF file (module docstring).

    Parameters
    ----------
    samples : 2-D array of uint8
        The image, ``(height, width)``, each 1..65500.
    quality : int, optional
        IJG quality 1..100 (default 75) scaling the standard table, see
        :func:`quality_table` (baseline: entries clamped to 255).
    qtable : 64 ints, optional
        A quantization table in natural order, entries 1..32767, instead of ``quality``.
    optimize : bool
        Optimal Huffman tables for this image (:meth:`HuffmanTable.from_frequencies`)
        instead of the standard tables of T.81 Annex K.3.
    restart_interval : int
        Blocks per restart interval, 0..65535 (0: no ``DRI``, no ``RSTn``).
    app_segments : iterable of (int, bytes)
        Extra ``APPn`` segments, written after the JFIF ``APP0``.

    Returns
    -------
    bytes
        The JPEG file.

    Raises
    ------
    CimcodecError
        Bad image, quality, table, restart interval or segment.
    """
    image = np.asarray(samples)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise CimcodecError(
            f"The image must be a 2-D uint8 array, not {image.dtype} of shape {image.shape}."
        )
    height, width = image.shape
    if not (1 <= height <= MAX_DIMENSION and 1 <= width <= MAX_DIMENSION):
        raise CimcodecError(
            f"Image dimensions must be 1..{MAX_DIMENSION}, not {width}x{height}."
        )
    if qtable is not None:
        if quality is not None:
            raise CimcodecError("Give either a quality or a quantization table, not both.")
        q = np.asarray(qtable)
        if q.shape != (64,) or not np.issubdtype(q.dtype, np.integer) \
                or q.min() < 1 or q.max() > dct.MAX_QUANTIZER:
            raise CimcodecError(
                f"A quantization table must be 64 integers 1..{dct.MAX_QUANTIZER} in "
                "natural order."
            )
        q = q.astype(np.int64)
    else:
        q = quality_table(75 if quality is None else quality)
    if isinstance(restart_interval, bool) or not isinstance(restart_interval, (int, np.integer)) \
            or not 0 <= restart_interval <= 0xFFFF:
        raise CimcodecError(
            f"The restart interval must be an integer 0..65535, not {restart_interval!r}."
        )
    apps = _check_app_segments(app_segments)

    by, bx = -(-height // 8), -(-width // 8)
    padded = np.pad(image, ((0, 8 * by - height), (0, 8 * bx - width)), mode="edge")
    blocks = padded.reshape(by, 8, bx, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)
    zz = to_zigzag(dct.forward(blocks, q)).tolist()
    intervals = _symbols(zz, int(restart_interval))
    if optimize:
        freq = [[0] * 256, [0] * 256]
        for interval in intervals:
            for table, symbol, _, _ in interval:
                freq[table][symbol] += 1
        tables = [HuffmanTable.from_frequencies(f) for f in freq]
    else:
        tables = [STD_DC_LUMINANCE, STD_AC_LUMINANCE]

    wide = bool(q.max() > 255)
    out = [bytes((0xFF, SOI)),
           _segment(APP0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")]
    out += [_segment(APP0 + n, payload) for n, payload in apps]
    values = q[ZIGZAG].tolist()
    body = b"".join(v.to_bytes(2, "big") for v in values) if wide else bytes(values)
    out.append(_segment(DQT, bytes((0x10 if wide else 0x00,)) + body))
    out.append(_segment(SOF1 if wide else SOF0, bytes((8,)) + height.to_bytes(2, "big")
                        + width.to_bytes(2, "big") + bytes((1, 1, 0x11, 0))))
    out.append(_segment(DHT, b"\x00" + tables[0].to_bytes()))
    out.append(_segment(DHT, b"\x10" + tables[1].to_bytes()))
    if restart_interval:
        out.append(_segment(DRI, int(restart_interval).to_bytes(2, "big")))
    out.append(_segment(SOS, bytes((1, 1, 0x00, 0, 63, 0))))
    for i, interval in enumerate(intervals):
        if i:
            out.append(bytes((0xFF, RST0 + (i - 1) % 8)))
        out.append(_entropy_code(interval, tables))
    out.append(bytes((0xFF, EOI)))
    return b"".join(out)


# --------------------------------------------------------------------------- decoder


@dataclass(frozen=True)
class Decoded:
    """Everything :func:`decode_full` read from a file.

    Attributes
    ----------
    samples : numpy.ndarray of uint8, shape ``(height, width)``
        The decoded image.
    coefficients : numpy.ndarray of int16, shape ``(ceil(height/8), ceil(width/8), 64)``
        Quantized coefficients of each block, natural order.
    qtable : numpy.ndarray of int64, shape ``(64,)``
        The quantization table of the component, natural order.
    dc_table, ac_table : HuffmanTable
        The Huffman tables of the scan.
    restart_interval : int
        Blocks per restart interval (0: none).
    frame : int
        The SOF marker code, ``0xC0`` or ``0xC1``.
    app_segments : tuple of (int, bytes)
        ``APPn`` segments in file order, as ``(n, payload)``.
    comments : tuple of bytes
        ``COM`` payloads in file order.
    """

    samples: np.ndarray
    coefficients: np.ndarray
    qtable: np.ndarray
    dc_table: HuffmanTable
    ac_table: HuffmanTable
    restart_interval: int
    frame: int
    app_segments: tuple = field(default=())
    comments: tuple = field(default=())


@dataclass
class _Frame:
    height: int
    width: int
    component: int
    tq: int
    marker: int


class _State:
    def __init__(self):
        self.qtables: dict[int, np.ndarray] = {}
        self.dc: dict[int, HuffmanTable] = {}
        self.ac: dict[int, HuffmanTable] = {}
        self.restart = 0
        self.frame: _Frame | None = None
        self.apps: list[tuple[int, bytes]] = []
        self.comments: list[bytes] = []
        self.result: Decoded | None = None


def _marker_name(code: int) -> str:
    if RST0 <= code <= RST0 + 7:
        return f"RST{code - RST0}"
    if APP0 <= code <= APP0 + 15:
        return f"APP{code - APP0}"
    if 0xC0 <= code <= 0xCF and code not in (DHT, 0xC8, DAC):
        return f"SOF{code - 0xC0}"
    return {SOI: "SOI", EOI: "EOI", SOS: "SOS", DQT: "DQT", DHT: "DHT", DRI: "DRI",
            COM: "COM", DAC: "DAC", DNL: "DNL"}.get(code, f"0xFF{code:02X}")


def _parse_dqt(state: _State, payload: bytes) -> None:
    pos = 0
    while pos < len(payload):
        pq, tq = payload[pos] >> 4, payload[pos] & 15
        if pq > 1 or tq > 3:
            raise CimcodecError(
                f"DQT table has precision {pq} and id {tq}; expected precision 0 or 1 "
                "and id 0..3."
            )
        size = 128 if pq else 64
        body = payload[pos + 1:pos + 1 + size]
        if len(body) < size:
            raise CimcodecError("DQT segment is shorter than the tables it declares.")
        if pq:
            values = np.frombuffer(body, dtype=">u2").astype(np.int64)
        else:
            values = np.frombuffer(body, dtype=np.uint8).astype(np.int64)
        if values.max() > dct.MAX_QUANTIZER:
            raise CimcodecError(
                f"DQT table {tq} has a quantizer {int(values.max())} above "
                f"{dct.MAX_QUANTIZER}."
            )
        table = np.empty(64, dtype=np.int64)
        table[ZIGZAG] = values
        state.qtables[tq] = table
        pos += 1 + size


def _parse_dht(state: _State, payload: bytes) -> None:
    pos = 0
    while pos < len(payload):
        tc, th = payload[pos] >> 4, payload[pos] & 15
        if tc > 1 or th > 3:
            raise CimcodecError(
                f"DHT table has class {tc} and id {th}; expected class 0 or 1 and id 0..3."
            )
        bits = payload[pos + 1:pos + 17]
        if len(bits) < 16:
            raise CimcodecError("DHT segment ends inside the BITS counts of a table.")
        total = sum(bits)
        if total > 256:
            raise CimcodecError(f"DHT table lists {total} symbols, more than 256.")
        huffval = payload[pos + 17:pos + 17 + total]
        if len(huffval) < total:
            raise CimcodecError(
                f"DHT BITS count {total} symbols but the segment holds only "
                f"{len(huffval)}."
            )
        (state.ac if tc else state.dc)[th] = HuffmanTable(tuple(bits), tuple(huffval))
        pos += 17 + total


def _parse_sof(state: _State, marker: int, payload: bytes) -> None:
    if state.frame is not None:
        raise CimcodecError("The file has a second SOF marker; only one frame is allowed.")
    if len(payload) < 6:
        raise CimcodecError("SOF segment is too short.")
    precision = payload[0]
    height = int.from_bytes(payload[1:3], "big")
    width = int.from_bytes(payload[3:5], "big")
    count = payload[5]
    if precision != 8:
        raise CimcodecError(f"Sample precision {precision} is not supported, only 8 bits.")
    if count != 1:
        raise CimcodecError(
            f"The frame has {count} components; only single-component grayscale is "
            "supported."
        )
    if len(payload) != 9:
        raise CimcodecError(f"SOF segment length {len(payload) + 2} does not match 1 component.")
    if height == 0:
        raise CimcodecError("Image height 0 (defined by a DNL marker) is not supported.")
    if not (1 <= width <= MAX_DIMENSION and height <= MAX_DIMENSION) \
            or width * height > MAX_PIXELS:
        raise CimcodecError(
            f"Image dimensions {width}x{height} are out of range (each 1..{MAX_DIMENSION}, "
            f"at most 2**28 pixels)."
        )
    h, v, tq = payload[7] >> 4, payload[7] & 15, payload[8]
    if not (1 <= h <= 4 and 1 <= v <= 4) or tq > 3:
        raise CimcodecError(
            f"SOF component has sampling factors {h}x{v} and table {tq}; expected 1..4 and "
            "0..3."
        )
    state.frame = _Frame(height, width, payload[6], tq, marker)


class _BitReader:
    """Bits of one restart interval, MSB first, kept in an integer window."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0
        self.acc = 0
        self.nacc = 0

    def fill(self) -> None:
        if self.nacc < 32 and self.pos < len(self.data):
            chunk = self.data[self.pos:self.pos + 4]
            self.pos += len(chunk)
            self.acc = (self.acc << (8 * len(chunk))) | int.from_bytes(chunk, "big")
            self.nacc += 8 * len(chunk)

    def huffman(self, table, what: str) -> int:
        self.fill()
        nacc = self.nacc
        if nacc >= 16:
            window = self.acc >> (nacc - 16)
        else:  # past the end: pad with 1 bits, any code reaching them is rejected
            window = (self.acc << (16 - nacc)) | ((1 << (16 - nacc)) - 1)
        found = table.lookup(window)
        if found is None or found[1] > nacc:
            if nacc < 16:
                raise CimcodecError(f"Entropy-coded data ends inside {what}.")
            raise CimcodecError(f"A Huffman code in {what} is not in its table.")
        self.nacc = nacc - found[1]
        self.acc &= (1 << self.nacc) - 1
        return found[0]

    def receive_extend(self, size: int, what: str) -> int:
        self.fill()
        if size > self.nacc:
            raise CimcodecError(f"Entropy-coded data ends inside {what}.")
        self.nacc -= size
        value = self.acc >> self.nacc
        self.acc &= (1 << self.nacc) - 1
        return value if value >= 1 << (size - 1) else value - (1 << size) + 1


def _read_entropy(data: bytes, pos: int) -> tuple[list[bytes], list[int], int]:
    """Un-stuffed entropy-coded segments between RST markers, the RST numbers, and the
    offset of the marker that ends the scan."""
    segments, rsts, current = [], [], bytearray()
    n = len(data)
    while True:
        j = data.find(b"\xff", pos)
        if j < 0:
            raise CimcodecError("The file ends inside the entropy-coded data, before EOI.")
        current += data[pos:j]
        k = j + 1
        while k < n and data[k] == 0xFF:
            k += 1
        if k >= n:
            raise CimcodecError("The file ends inside the entropy-coded data, before EOI.")
        code = data[k]
        if code == 0:
            current.append(0xFF)
        elif RST0 <= code <= RST0 + 7:
            segments.append(bytes(current))
            rsts.append(code - RST0)
            current = bytearray()
        else:
            segments.append(bytes(current))
            return segments, rsts, j
        pos = k + 1


def _decode_scan(state: _State, payload: bytes, data: bytes, pos: int) -> int:
    frame = state.frame
    if frame is None:
        raise CimcodecError("SOS marker comes before any SOF marker.")
    if state.result is not None:
        raise CimcodecError("The file has a second scan; only one sequential scan is allowed.")
    if len(payload) < 1 or payload[0] != 1:
        count = payload[0] if payload else 0
        raise CimcodecError(f"The scan has {count} components; expected exactly 1.")
    if len(payload) != 6:
        raise CimcodecError(f"SOS segment length {len(payload) + 2} does not match 1 component.")
    cs, td, ta = payload[1], payload[2] >> 4, payload[2] & 15
    ss, se, ah, al = payload[3], payload[4], payload[5] >> 4, payload[5] & 15
    if cs != frame.component:
        raise CimcodecError(f"The scan's component {cs} is not the frame's {frame.component}.")
    if (ss, se, ah, al) != (0, 63, 0, 0):
        raise CimcodecError(
            f"Scan parameters Ss={ss} Se={se} Ah={ah} Al={al} are not those of a sequential "
            "scan (0, 63, 0, 0)."
        )
    if td not in state.dc:
        raise CimcodecError(f"The scan uses DC Huffman table {td}, which no DHT defined.")
    if ta not in state.ac:
        raise CimcodecError(f"The scan uses AC Huffman table {ta}, which no DHT defined.")
    if frame.tq not in state.qtables:
        raise CimcodecError(f"The frame uses quantization table {frame.tq}, which no DQT defined.")
    dc_table, ac_table = state.dc[td], state.ac[ta]
    qtable = state.qtables[frame.tq].copy()

    segments, rsts, end = _read_entropy(data, pos)
    by, bx = -(-frame.height // 8), -(-frame.width // 8)
    nblocks = by * bx
    step = state.restart or nblocks
    intervals = -(-nblocks // step)
    if len(segments) != intervals:
        raise CimcodecError(
            f"The scan has {len(segments) - 1} RST markers where {intervals - 1} were "
            "expected."
        )
    for i, m in enumerate(rsts):
        if m != i % 8:
            raise CimcodecError(f"RST{m} marker found where RST{i % 8} was expected.")
    shortest = min(dc_table.sizes() or [17]) + min(ac_table.sizes() or [17])
    for i, segment in enumerate(segments):
        count = min(step, nblocks - i * step)
        if 8 * len(segment) < count * shortest:
            raise CimcodecError(
                f"Restart interval {i} has {len(segment)} bytes of entropy-coded data, too "
                f"few for its {count} blocks."
            )

    dc, ac = dc_table.decoder(), ac_table.decoder()
    zz = np.zeros((nblocks, 64), dtype=np.int16)
    for i, segment in enumerate(segments):
        reader = _BitReader(segment)
        pred = 0
        for b in range(i * step, min((i + 1) * step, nblocks)):
            what = f"block {b}"
            t = reader.huffman(dc, what)
            if t > 11:
                raise CimcodecError(f"DC difference category {t} in {what} exceeds 11.")
            if t:
                pred += reader.receive_extend(t, what)
            row = zz[b]
            row[0] = ((pred + 0x8000) & 0xFFFF) - 0x8000
            k = 1
            while k < 64:
                rs = reader.huffman(ac, what)
                r, s = rs >> 4, rs & 15
                if s == 0:
                    if rs == 0x00:
                        break
                    if rs != 0xF0:
                        raise CimcodecError(f"AC symbol 0x{rs:02X} in {what} is undefined.")
                    if k + 16 > 64:
                        raise CimcodecError(f"A zero run in {what} goes past coefficient 63.")
                    k += 16
                    continue
                if s > 10:
                    raise CimcodecError(f"AC coefficient size {s} in {what} exceeds 10.")
                k += r
                if k > 63:
                    raise CimcodecError(f"A zero run in {what} goes past coefficient 63.")
                row[k] = reader.receive_extend(s, what)
                k += 1

    coefficients = from_zigzag(zz)
    samples = np.empty((nblocks, 8, 8), dtype=np.uint8)
    for start in range(0, nblocks, IDCT_BATCH):
        samples[start:start + IDCT_BATCH] = dct.idct_islow(
            coefficients[start:start + IDCT_BATCH], qtable)
    image = samples.reshape(by, bx, 8, 8).transpose(0, 2, 1, 3).reshape(8 * by, 8 * bx)
    state.result = Decoded(
        samples=np.ascontiguousarray(image[:frame.height, :frame.width]),
        coefficients=coefficients.reshape(by, bx, 64),
        qtable=qtable, dc_table=dc_table, ac_table=ac_table,
        restart_interval=state.restart, frame=frame.marker,
    )
    return end


def decode_full(data) -> Decoded:
    """Decode a baseline single-component JPEG file and return everything read from it.

    Raises
    ------
    CimcodecError
        Anything that is not such a file, or a corrupt one (module docstring).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CimcodecError(f"JPEG data must be bytes, not {type(data).__name__}.")
    data = bytes(data)
    if data[:2] != b"\xff\xd8":
        raise CimcodecError("The data is not a JPEG file: it does not start with SOI.")
    state = _State()
    pos = 2
    n = len(data)
    while True:
        if pos >= n:
            raise CimcodecError("The file ends before its EOI marker.")
        if data[pos] != 0xFF:
            raise CimcodecError(f"Expected a marker at byte {pos}, found 0x{data[pos]:02X}.")
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            raise CimcodecError("The file ends before its EOI marker.")
        marker = data[pos]
        pos += 1
        if marker == EOI:
            if state.result is None:
                raise CimcodecError("EOI marker comes before any scan.")
            break
        if marker == SOI or marker == 0x01 or RST0 <= marker <= RST0 + 7 or marker == 0x00:
            raise CimcodecError(
                f"Unexpected {_marker_name(marker)} marker at byte {pos - 2}."
            )
        if pos + 2 > n:
            raise CimcodecError(f"The file ends inside the {_marker_name(marker)} segment.")
        length = int.from_bytes(data[pos:pos + 2], "big")
        if length < 2:
            raise CimcodecError(
                f"The {_marker_name(marker)} segment has an impossible length {length}."
            )
        if pos + length > n:
            raise CimcodecError(f"The file ends inside the {_marker_name(marker)} segment.")
        payload = data[pos + 2:pos + length]
        pos += length
        if APP0 <= marker <= APP0 + 15:
            state.apps.append((marker - APP0, payload))
        elif marker == COM:
            state.comments.append(payload)
        elif marker == DQT:
            _parse_dqt(state, payload)
        elif marker == DHT:
            _parse_dht(state, payload)
        elif marker == DRI:
            if len(payload) != 2:
                raise CimcodecError(f"DRI segment length {length} is not 4.")
            state.restart = int.from_bytes(payload, "big")
        elif marker in (SOF0, SOF1):
            _parse_sof(state, marker, payload)
        elif marker in _PROGRESSIVE:
            raise CimcodecError("Progressive JPEG files are not supported.")
        elif marker in _OTHER_SOF or marker == DAC:
            raise CimcodecError(
                f"{_marker_name(marker)} (lossless, hierarchical or arithmetic coding) is "
                "not supported."
            )
        elif marker == SOS:
            pos = _decode_scan(state, payload, data, pos)
        else:
            raise CimcodecError(
                f"Unsupported marker {_marker_name(marker)} at byte {pos - length - 2}."
            )
    result = state.result
    return Decoded(
        samples=result.samples, coefficients=result.coefficients, qtable=result.qtable,
        dc_table=result.dc_table, ac_table=result.ac_table,
        restart_interval=result.restart_interval, frame=result.frame,
        app_segments=tuple(state.apps), comments=tuple(state.comments),
    )


def decode(data) -> np.ndarray:
    """Decode a baseline single-component JPEG file to a ``(height, width)`` uint8 array;
    see :func:`decode_full`."""
    return decode_full(data).samples
