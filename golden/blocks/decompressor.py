"""The RTL weight decompressor's output stream, from the golden models: the reference of
:class:`hw.decompressor.Decompressor`.

Modes (the hardware's ``raw`` input and the file itself)
--------------------------------------------------------
* RAW (``raw = 1``, a file without a ``CIMCODEC`` ``APP11`` segment, or a decompressor
  built without the container hardware, ``DecompressorShape(container=False)``): any baseline
  grayscale JPEG. The samples of the frame leave in JPEG block order (8x8 blocks left
  to right, top to bottom, raster inside a block), samples outside the
  ``height x width`` frame (the block padding) dropped, each as ``(row, col, sample)``
  with ``sample == golden.jpeg.reference.decode(file)[row, col]``.
* Container (``raw = 0`` and a ``CIMCODEC`` segment): a :mod:`golden.codec.container` file,
  its metadata read by the hardware (:mod:`golden.blocks.appmeta`: nothing but the file's bytes
  is needed). ``rows x cols`` is the weight matrix; the frame must be its padded
  ``Rp x Cp``. The coded positions go through the inverse remap
  (:meth:`golden.blocks.remap.RemapParams.decode_order`, the order :class:`hw.remap.RemapUnit`
  emits them), positions in the padding dropped; ``sample`` is the decoded 8-bit sample
  (``q + 128`` before dequantization), or with a snap table its entry (the codebook
  index). Metadata the hardware finds bad (:mod:`golden.blocks.appmeta`'s checks) is
  :data:`Error.METADATA`; a matrix larger than the shape's is :data:`Error.FRAME`.

The stream ends with one status event (``end = 1``, ``error``, ``code``). A file the
golden decoder rejects, or that breaks a hardware limit, ends with ``error = 1``
(:class:`Error`); the samples before it are not specified, only that their coordinates
are inside the declared matrix (the frame in RAW mode).

CRC: every container (not in RAW mode) has the CRC-32 of its entropy-coded data
checked in hardware against the stored one (:mod:`golden.blocks.crc`) at the marker that
ends the scan; a mismatch is :data:`Error.CRC`. As that check comes
at the end of the scan, a file whose entropy-coded data is damaged may instead end with
an error the decoding stages find earlier (``HUFFMAN_CODE``, ``COEFFICIENT``,
``EXCESS``, ``INTERVAL``): :func:`expected` says ``CRC`` for such a file, and only
``error = 1`` is certain. The same holds for damaged entropy-coded data in RAW mode:
the hardware's stages run concurrently and the first to meet the damage sets the code
(a scan cut short is ``STARVED`` in hardware, ``HUFFMAN_CODE`` here, as the golden
decoder reads on past the cut). Damage before the scan (the parser's, the metadata,
table and frame checks) gives exactly the code :func:`expected` gives.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from cimcodec.golden.blocks import appmeta, crc, markers
from cimcodec.golden.blocks.coef import decode_blocks
from cimcodec.golden.blocks.huffman import HuffmanShape, jpeg_scan, scan_symbols
from cimcodec.golden.blocks.remap import RemapShape, block_order
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg import reference as jpeg
from cimcodec.golden.jpeg.zigzag import to_zigzag


class Error(enum.IntEnum):
    """Status codes: the marker parser's (:class:`golden.blocks.markers.Error`, same values),
    then the later stages'."""

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
    #: A code of 16 bits in none of its table's lengths.
    HUFFMAN_CODE = 16
    #: A DHT table body the Huffman decoder rejects.
    HUFFMAN_TABLE = 17
    #: A coefficient decoder error (:class:`golden.blocks.coef.Error`).
    COEFFICIENT = 18
    #: The scan's DC or AC table shares its slot with a later table (slot = class and
    #: the low bit of the id; ids 0 and 2, 1 and 3 alias).
    TABLE_SLOT = 19
    #: The frame exceeds the hardware's matrix, or (matrix mode) is not ``Rp x Cp``.
    FRAME = 20
    #: More blocks in the scan than the frame declares.
    EXCESS = 21
    #: A restart interval other than the last without exactly ``Ri`` blocks.
    INTERVAL = 22
    #: The entropy-coded data ended before the last block (or a stalled pipeline):
    #: no progress for :data:`WATCHDOG` clocks after ``EOI``.
    STARVED = 23
    #: The CRC-32 of the entropy-coded data differs from the one stored in the
    #: ``CIMCODEC`` segment (:mod:`golden.blocks.crc`), found at the marker ending the scan.
    CRC = 24
    #: The ``CIMCODEC`` metadata breaks one of :mod:`golden.blocks.appmeta`'s checks.
    METADATA = 25


#: Clocks without a sample after ``EOI`` (and without output backpressure) that raise
#: :data:`Error.STARVED`.
WATCHDOG = 1024

#: The lane counts a decompressor can be built with.
LANES = (1, 2, 4, 8)
#: File bytes per input beat a decompressor can take (:class:`DecompressorShape`).
IN_BYTES = (1, 2, 4, 8)

#: The decompressor's Huffman decoder: four table slots (``slot = Cat(id[0], class)``),
#: one entropy byte per chunk, a 48-bit buffer, a fast table of K = 6 bits (docs/decoder.md,
#: "Why K = 6").
HUFFMAN_SHAPE = HuffmanShape(tables=4, chunk_bits=8, reserve_bits=32, fast_bits=6)


@dataclass(frozen=True)
class DecompressorShape:
    """Elaboration-time size of :class:`hw.decompressor.Decompressor`.

    Attributes
    ----------
    max_rows, max_cols : int
        Largest frame (RAW) and largest padded weight matrix, multiples of 8 in
        8..65528.
    container : bool
        Build the container hardware (metadata reader, CRC-32 check, remap engine,
        snap table). Without it the decompressor is a plain baseline JPEG decoder:
        every file is decoded as in RAW mode, whatever its ``raw`` input.
    lanes : int
        Decoder lanes, 1, 2, 4 or 8 (:func:`expected_lanes`): restart interval ``j``
        of the scan is decoded by lane ``j mod lanes``, and the output carries one
        sample per lane per beat. A file without restart intervals decodes on lane 0.
    in_bytes : int
        File bytes per input beat, 1, 2, 4 or 8. With more than one, a beat of
        entropy-coded data without a ``0xFF`` byte goes to its lane whole, past the
        marker parser's one byte per clock (:class:`hw.decompressor.Decompressor`); the
        output does not depend on it.
    dsp_lanes : int or None
        How many lanes (the first ones) have their IDCT's constant products on DSP
        multipliers (``IdctShape(dsp=True)``, 24 per lane); the others build them in
        logic. ``None`` (the default): every lane. An ECP5-85k has 156 18x18
        multipliers, so 8 lanes' multipliers fit with at most 5 of them on DSPs. The
        output does not depend on it. With ``idct_share``, a multiple of it.
    idct_share : int
        Lanes per IDCT, 1, 2 or 4, a divisor of ``lanes``: lanes ``g*share`` up to
        ``(g+1)*share - 1`` are the ports of one :class:`hw.idct.Idct` sharing its
        butterfly (``IdctShape(ports=share)``), which saves the butterfly's flip-flops
        and multipliers; at 2 a lane never waits for it. The output does not depend on
        it.
    """

    max_rows: int = 4096
    max_cols: int = 4096
    container: bool = True
    lanes: int = 1
    in_bytes: int = 1
    dsp_lanes: int | None = None
    idct_share: int = 1

    def __post_init__(self):
        for name in ("max_rows", "max_cols"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) \
                    or not 8 <= value <= 65528 or value % 8:
                raise CimcodecError(
                    f"Decompressor {name.replace('_', ' ')} must be a multiple of 8 in "
                    f"8..65528, not {value!r}.")
        if not isinstance(self.container, bool):
            raise CimcodecError(
                f"Decompressor container must be True or False, not {self.container!r}.")
        if isinstance(self.lanes, bool) or self.lanes not in LANES:
            raise CimcodecError(
                f"Decompressor lanes must be one of 1, 2, 4 or 8, not {self.lanes!r}.")
        if isinstance(self.in_bytes, bool) or self.in_bytes not in IN_BYTES:
            raise CimcodecError(
                "Decompressor input bytes per beat must be one of 1, 2, 4 or 8, not "
                f"{self.in_bytes!r}.")
        if self.dsp_lanes is not None and (
                isinstance(self.dsp_lanes, bool) or not isinstance(self.dsp_lanes, int)
                or not 0 <= self.dsp_lanes <= self.lanes):
            raise CimcodecError(
                f"Decompressor DSP lanes must be an integer 0..{self.lanes} (its lanes) or "
                f"None, not {self.dsp_lanes!r}.")
        if type(self.idct_share) is not int or self.idct_share not in (1, 2, 4) \
                or self.lanes % self.idct_share:
            raise CimcodecError(
                f"Decompressor IDCT share must be 1, 2 or 4 and divide its {self.lanes} "
                f"lanes, not {self.idct_share!r}.")
        if self.dsp_lanes is not None and self.dsp_lanes % self.idct_share:
            raise CimcodecError(
                f"Decompressor DSP lanes must be a multiple of its IDCT share "
                f"{self.idct_share}, not {self.dsp_lanes!r}.")

    @property
    def remap(self) -> RemapShape:
        return RemapShape(self.max_rows, self.max_cols, 8)

    @property
    def markers(self) -> markers.MarkerShape:
        return markers.MarkerShape(max_dimension=max(self.max_rows, self.max_cols),
                                   max_pixels=self.max_rows * self.max_cols)


@dataclass(frozen=True)
class Expected:
    """What the decompressor must do with one file: its samples ``(row, col, sample)``
    in output order (``None`` on an error) and the status code."""

    samples: list | None
    error: Error


def _slot_error(events) -> bool:
    owner = {}
    for event in events:
        if event[0] == markers.Kind.DHT_BITS and event[3] == 0:
            owner[(event[1], event[2] & 1)] = event[2]
        elif event[0] == markers.Kind.SCAN:
            td, ta = event[1], event[2]
            return owner.get((0, td & 1)) != td or owner.get((1, ta & 1)) != ta
    return False


def _check(data: bytes, shape: DecompressorShape, raw: bool):
    """The error code of ``data`` (``NONE``), the metadata (``None``: RAW) and the
    golden decode."""
    parsed = markers.parse(data, shape.markers)
    meta = appmeta.parse([] if raw else parsed.events)
    if meta.error_event is not None and meta.error_event < len(parsed.events) \
            and parsed.events[meta.error_event][0] != markers.Kind.ERROR:
        return Error.METADATA, None, None
    if raw or not meta.present:
        check = crc.ScanCheck(None, None, -1)
    else:
        check = crc.scan_check(data, parsed.events)
    result = _check_scan(data, shape, parsed, check, meta.meta)
    return result[0], meta.meta, result[1]


def _check_scan(data, shape, parsed, check, meta):
    if parsed.error:
        # The CRC is checked at the byte ending the scan: first if the parser's error
        # comes at a later byte.
        if check.mismatch and parsed.consumed - 1 > check.end:
            return Error.CRC, None
        return Error(parsed.error), None
    try:
        decoded = jpeg.decode_full(data)
    except CimcodecError:
        return (Error.CRC if check.mismatch else Error.HUFFMAN_CODE), None
    height, width = decoded.samples.shape
    if meta is not None:
        padded = (-(-meta.rows // 8) * 8, -(-meta.cols // 8) * 8)
        bad = (height, width) != padded or meta.rows > shape.max_rows \
            or meta.cols > shape.max_cols
    else:
        bad = height > shape.max_rows or width > shape.max_cols
    if bad:
        return Error.FRAME, None
    if _slot_error(parsed.events):
        return Error.TABLE_SLOT, None
    if check.mismatch:
        return Error.CRC, None
    dc, ac, intervals = jpeg_scan(data)
    blocks = -(-height // 8) * -(-width // 8)
    ri = decoded.restart_interval
    symbols, started = [], 0
    for index, interval in enumerate(intervals):
        part, failed = scan_symbols([interval], dc, ac)
        if failed:
            return Error.HUFFMAN_CODE, None
        count = sum(s.dc for s in part)
        if started + count > blocks:
            return Error.EXCESS, None
        if ri and index < len(intervals) - 1 and count != ri:
            return Error.INTERVAL, None
        started += count
        symbols += part
    if started < blocks:
        return Error.STARVED, None
    if decode_blocks(symbols, to_zigzag(decoded.qtable), restart_interval=ri).error:
        return Error.COEFFICIENT, None
    return Error.NONE, decoded.samples


def expected(data, shape: DecompressorShape, *, raw: bool = False) -> Expected:
    """The output of the decompressor for the file ``data`` (``raw``: the hardware's
    ``raw`` input); see the module docstring."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CimcodecError(f"JPEG data must be bytes, not {type(data).__name__}.")
    if not isinstance(shape, DecompressorShape):
        raise CimcodecError(f"Decompressor shape must be a DecompressorShape, not {shape!r}.")
    error, meta, image = _check(bytes(data), shape, bool(raw) or not shape.container)
    if error:
        return Expected(None, error)
    height, width = image.shape
    if meta is None:
        r2, c2 = block_order(-(-height // 8) * 8, -(-width // 8) * 8)
        keep = (r2 < height) & (c2 < width)
        rows, cols = r2[keep], c2[keep]
        values = image[rows, cols]
    else:
        r2, c2, rows, cols = meta.params().decode_order()
        values = image[r2, c2]
        if meta.snap is not None:
            values = np.asarray(meta.snap)[values]
    samples = [(int(r), int(c), int(v)) for r, c, v in zip(rows, cols, values)]
    return Expected(samples, Error.NONE)


def expected_lanes(data, shape: DecompressorShape, *, raw: bool = False) -> Expected:
    """:func:`expected`, its samples split by lane: ``samples[k]`` is what lane ``k`` of
    a ``shape.lanes``-lane decompressor emits, in order (the samples of restart
    intervals ``k, k + lanes, k + 2 lanes, ...``, each in :func:`expected`'s order).
    Sample ``(row, col)`` belongs to the 8x8 block of the coded frame it was decoded
    from, block ``b`` in JPEG order, so to interval ``b // Ri`` (``Ri`` the file's
    restart interval; without one, every block to interval 0 and lane 0).

    How the lanes' beats interleave is the hardware's timing, not specified: each
    lane's order is."""
    want = expected(data, shape, raw=raw)
    if want.samples is None:
        return want
    bytes_ = bytes(data)
    ri = jpeg.decode_full(bytes_).restart_interval
    block_cols = coded_block_cols(bytes_)
    lanes = [[] for _ in range(shape.lanes)]
    for (r2, c2), sample in zip(coded_positions(bytes_, shape, raw=raw), want.samples,
                                strict=True):
        block = (r2 // 8) * block_cols + c2 // 8
        lanes[(block // ri if ri else 0) % shape.lanes].append(sample)
    return Expected(lanes, Error.NONE)


def coded_block_cols(data: bytes) -> int:
    """8x8 blocks per block row of the file's frame."""
    return -(-jpeg.decode_full(data).samples.shape[1] // 8)


def coded_positions(data: bytes, shape: DecompressorShape, *, raw: bool = False) -> list:
    """The frame position ``(r2, c2)`` each of :func:`expected`'s samples was decoded
    from (a file :func:`expected` accepts)."""
    meta = None if raw or not shape.container else appmeta.parse(
        markers.parse(data, shape.markers).events).meta
    if meta is None:
        height, width = jpeg.decode_full(data).samples.shape
        r2, c2 = block_order(-(-height // 8) * 8, -(-width // 8) * 8)
        keep = (r2 < height) & (c2 < width)
        return list(zip(r2[keep].tolist(), c2[keep].tolist()))
    r2, c2, _, _ = meta.params().decode_order()
    return list(zip(np.asarray(r2).tolist(), np.asarray(c2).tolist()))
