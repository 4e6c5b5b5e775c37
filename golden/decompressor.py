"""The RTL weight decompressor's output stream, from the golden models: the reference of
:class:`hw.decompressor.Decompressor`.

Modes (the hardware's plain ``cfg`` input, :func:`raw_config` / :func:`container_config`)
----------------------------------------------------------------------------------------
* RAW (``matrix = 0``): any baseline grayscale JPEG. The samples of the frame leave in
  JPEG block order (8x8 blocks left to right, top to bottom, raster inside a block),
  samples outside the ``height x width`` frame (the block padding) dropped, each as
  ``(row, col, sample)`` with ``sample == golden.jpeg.decode(file)[row, col]``.
* Matrix (``matrix = 1``): a :mod:`golden.container` file. ``rows x cols`` is the
  weight matrix; the frame must be its padded ``Rp x Cp``. With ``remap`` the coded
  positions go through the inverse remap (:meth:`golden.remap.RemapParams.decode_order`,
  the order :class:`hw.remap.RemapUnit` emits them), positions in the padding dropped;
  ``sample`` is the decoded 8-bit sample (``q + 128`` before dequantization), or with
  ``snap`` its snap-table entry (the codebook index). In this first version the remap
  configuration, the control-word generator job and the snap table come from the test
  through plain inputs and streams (:func:`container_config`, computed with the golden
  container parser); the hardware does not parse the ``APP11`` payload yet.

The stream ends with one status event (``end = 1``, ``error``, ``code``). A file the
golden decoder rejects, or that breaks a hardware limit, ends with ``error = 1``
(:class:`Error`); the samples before it are not specified, only that their coordinates
are inside the declared matrix.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from . import container, jpeg, markers
from .coef import decode_blocks
from .errors import CimcodecError
from .huffman_stream import jpeg_scan, scan_symbols
from .lfsr import Scheme
from .remap import RemapShape, block_order
from .zigzag import to_zigzag


class Error(enum.IntEnum):
    """Status codes: the marker parser's (:class:`golden.markers.Error`, same values),
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
    #: A coefficient decoder error (:class:`golden.coef.Error`).
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


#: Clocks without a sample after ``EOI`` (and without output backpressure) that raise
#: :data:`Error.STARVED`.
WATCHDOG = 1024


@dataclass(frozen=True)
class DecompressorShape:
    """Elaboration-time size of :class:`hw.decompressor.Decompressor`.

    Attributes
    ----------
    max_rows, max_cols : int
        Largest frame (RAW) and largest padded weight matrix, multiples of 8 in
        8..65528.
    """

    max_rows: int = 4096
    max_cols: int = 4096

    def __post_init__(self):
        for name in ("max_rows", "max_cols"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) \
                    or not 8 <= value <= 65528 or value % 8:
                raise CimcodecError(
                    f"Decompressor {name.replace('_', ' ')} must be a multiple of 8 in "
                    f"8..65528, not {value!r}.")

    @property
    def remap(self) -> RemapShape:
        return RemapShape(self.max_rows, self.max_cols, 8)

    @property
    def markers(self) -> markers.MarkerShape:
        return markers.MarkerShape(max_dimension=max(self.max_rows, self.max_cols),
                                   max_pixels=self.max_rows * self.max_cols)


def raw_config() -> dict:
    """``{"cfg", "gen_cfg", "snap"}`` of RAW mode: no generator job, no snap table."""
    return {"cfg": {"rows": 0, "cols": 0, "matrix": 0, "remap": 0, "snap": 0},
            "gen_cfg": None, "snap": None}


def container_config(data, shape: DecompressorShape) -> dict:
    """The configuration of matrix mode for the container ``data``, from its header
    (:func:`golden.container.read_header`): ``cfg`` (plain), ``gen_cfg`` (the generator
    job, ``None`` for scheme none) and ``snap`` (256 entries or ``None``)."""
    header = container.read_header(data)
    params = header.remap
    shape.remap.check(params)
    remap = params.scheme is not Scheme.NONE
    snap = None if header.snap is None else [int(v) for v in header.snap]
    return {"cfg": {"rows": params.rows, "cols": params.cols, "matrix": 1,
                    "remap": int(remap), "snap": int(snap is not None)},
            "gen_cfg": shape.remap.generator_config(params) if remap else None,
            "snap": snap}


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


def _check(data: bytes, shape: DecompressorShape, cfg: dict):
    """The error code of ``data`` (``NONE``) and the golden decode."""
    parsed = markers.parse(data, shape.markers)
    if parsed.error:
        return Error(parsed.error), None
    try:
        decoded = jpeg.decode_full(data)
    except CimcodecError:
        return Error.HUFFMAN_CODE, None
    height, width = decoded.samples.shape
    if cfg["matrix"]:
        padded = (-(-cfg["rows"] // 8) * 8, -(-cfg["cols"] // 8) * 8)
        bad = (height, width) != padded
    else:
        bad = height > shape.max_rows or width > shape.max_cols
    if bad:
        return Error.FRAME, None
    if _slot_error(parsed.events):
        return Error.TABLE_SLOT, None
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


def expected(data, shape: DecompressorShape, config: dict | None = None) -> Expected:
    """The output of the decompressor for the file ``data`` in the mode ``config``
    (default :func:`raw_config`); see the module docstring."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CimcodecError(f"JPEG data must be bytes, not {type(data).__name__}.")
    if not isinstance(shape, DecompressorShape):
        raise CimcodecError(f"Decompressor shape must be a DecompressorShape, not {shape!r}.")
    config = config or raw_config()
    cfg = config["cfg"]
    error, image = _check(bytes(data), shape, cfg)
    if error:
        return Expected(None, error)
    height, width = image.shape
    if not cfg["matrix"]:
        r2, c2 = block_order(-(-height // 8) * 8, -(-width // 8) * 8)
        keep = (r2 < height) & (c2 < width)
        rows, cols = r2[keep], c2[keep]
        values = image[rows, cols]
    else:
        params = container.read_header(data).remap
        r2, c2, rows, cols = params.decode_order()
        values = image[r2, c2]
        if config["snap"] is not None:
            values = np.asarray(config["snap"])[values]
    samples = [(int(r), int(c), int(v)) for r, c, v in zip(rows, cols, values)]
    return Expected(samples, Error.NONE)
