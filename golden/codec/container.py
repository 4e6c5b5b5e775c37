"""The compressed-weight container: one baseline JPEG file with the codec's metadata in
``APP11`` segments.

The image is the padded, remapped ``Rp x Cp`` matrix of 8-bit samples
(:meth:`golden.blocks.remap.RemapParams.remap` of the level-shifted weights ``q + 128``), coded
by :func:`golden.jpeg.reference.encode` (SOF0, one 8-bit component). Any JPEG decoder opens it;
the metadata says how to turn its samples back into weights.

Segments
--------
The metadata block ``M`` (below) is cut into chunks of at most 65522 bytes, each sent
as one ``APP11`` segment (marker ``0xFFEB``) placed right after the JFIF ``APP0``::

    payload = b"CIMCODEC\\0" + u8 index + u8 count + chunk      (index 0..count-1)

A reader joins the chunks of every ``APP11`` segment starting with the signature, in
file order; indices must run 0, 1, ..., count - 1 with one ``count``.

Metadata block ``M`` (format version 1, little-endian, ``struct`` codes in brackets)
-------------------------------------------------------------------------------------
====================  =========================================================
``<H`` version        1
``<H`` flags          bit 0: codebook present; bit 1: snap table present (needs
                      bit 0); other bits 0
``<I`` rows           weight-matrix rows ``R`` (1..65500)
``<I`` cols           weight-matrix columns ``C`` (1..65500); the frame must be
                      ``Rp = 8*ceil(R/8)`` high and ``Cp = 8*ceil(C/8)`` wide
``<B`` ndim           1..8, then ``ndim`` x ``<I``: the original tensor shape
                      (``shape[0] == R``, ``prod(shape) == R*C``; e.g. a conv layer
                      ``(out, in, kh, kw)`` coded as ``out x in*kh*kw``)
``<B`` qscheme        0 per-tensor symmetric, 1 per-tensor affine, 2 per-channel
                      symmetric, 3 per-channel affine (:class:`golden.codec.quant.QScheme`)
``<bb`` qmin, qmax    integer range, -128 <= qmin < qmax <= 127
``<I`` nq             1 (per tensor) or ``R`` (per channel), then ``nq`` x ``<f``
                      scales and ``nq`` x ``<h`` zero points
``<H`` k              codebook entries (0 when flag bit 0 is clear), then
                      ``k`` x ``<b`` shared levels (strictly increasing, in
                      qmin..qmax; sample = level + 128) and ``k`` x ``<f``
                      centroids (real integer-weight units, finite)
``256B`` snap         only with flag bit 1: ``snap[s]`` < k is the codebook entry
                      of decoded sample ``s``
``<B`` scheme         remap: 0 none, 1 full, 2 split, 3 progressive
``<B`` kind           LFSR form: 0 Fibonacci, 1 Galois (taps: :data:`golden.blocks.lfsr.
                      MAXIMAL_TAPS` of each LFSR's width)
``<I`` stage_len      progressive words per stage, 0 for the default
``<B`` nseeds         then ``nseeds`` x ``<I`` seeds, as :class:`RemapParams` needs
``<I`` crc            ``zlib.crc32`` of the entropy-coded data: every byte after the
                      SOS segment up to the marker that ends the scan (stuffing and
                      RSTn markers included)
====================  =========================================================

Nothing may follow. Decoded weights (:func:`golden.codec.pipeline.decompress_matrix`):
``u = unremap(samples)``; with a snap table ``v = centroid[snap[u]]``, else
``v = u - 128``; then ``w = (v - zero_point[r]) * scale[r]`` (float32), reshaped to the
original shape.
"""

from __future__ import annotations

import math
import re
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from cimcodec.golden.blocks.lfsr import Kind, Scheme
from cimcodec.golden.blocks.remap import RemapParams
from cimcodec.golden.codec.quant import QScheme, QuantParams
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg.reference import MAX_DIMENSION, MAX_PIXELS

SIGNATURE = b"CIMCODEC\x00"
APP_NUMBER = 11
VERSION = 1
MAX_PAYLOAD = 65533
CHUNK = MAX_PAYLOAD - len(SIGNATURE) - 2
MAX_NDIM = 8

FLAG_CODEBOOK = 1
FLAG_SNAP = 2

_SCHEMES = (Scheme.NONE, Scheme.FULL, Scheme.SPLIT, Scheme.PROGRESSIVE)
_KINDS = (Kind.FIBONACCI, Kind.GALOIS)
_SCAN_END = re.compile(rb"\xff+[^\x00\xd0-\xd7\xff]")


@dataclass(frozen=True, eq=False)
class Header:
    """Everything the container says about one weight matrix (module docstring).

    Attributes
    ----------
    shape : tuple of int
        Original tensor shape; the matrix is ``shape[0] x prod(shape[1:])``.
    quant : QuantParams
    levels, centroids : numpy.ndarray or None
        Codebook: shared integer levels (int64) and real centroids (float32).
    snap : numpy.ndarray of uint8, shape ``(256,)``, or None
    remap : RemapParams
    crc : int
        CRC-32 of the entropy-coded data (0 until :func:`write` fills it in).
    """

    shape: tuple
    quant: QuantParams
    remap: RemapParams
    levels: np.ndarray | None = None
    centroids: np.ndarray | None = None
    snap: np.ndarray | None = None
    crc: int = 0

    def __post_init__(self):
        shape = tuple(int(s) for s in self.shape)
        object.__setattr__(self, "shape", shape)
        if not 1 <= len(shape) <= MAX_NDIM or any(s < 1 for s in shape):
            raise CimcodecError(
                f"A tensor shape needs 1..{MAX_NDIM} positive sizes, not {shape}.")
        rows, cols = self.rows, self.cols
        if not (1 <= rows <= MAX_DIMENSION and 1 <= cols <= MAX_DIMENSION):
            raise CimcodecError(
                f"A coded matrix has 1..{MAX_DIMENSION} rows and columns, not {rows}x{cols}.")
        if (self.remap.rows, self.remap.cols) != (rows, cols):
            raise CimcodecError(
                f"The remap is for {self.remap.rows}x{self.remap.cols}, the matrix is "
                f"{rows}x{cols}.")
        if self.quant.scheme.per_channel and self.quant.scale.size != rows:
            raise CimcodecError(
                f"Per-channel quantization lists {self.quant.scale.size} channels for "
                f"{rows} rows.")
        if (self.levels is None) != (self.centroids is None):
            raise CimcodecError("A codebook needs both its levels and its centroids.")
        if self.levels is not None:
            levels = np.asarray(self.levels, dtype=np.int64).reshape(-1)
            centroids = np.asarray(self.centroids, dtype=np.float32).reshape(-1)
            if not 1 <= levels.size <= 256 or levels.size != centroids.size:
                raise CimcodecError(
                    f"A codebook has 1..256 levels and as many centroids, not "
                    f"{levels.size} and {centroids.size}.")
            if np.any(np.diff(levels) <= 0) or levels[0] < self.quant.qmin \
                    or levels[-1] > self.quant.qmax:
                raise CimcodecError(
                    "Codebook levels must increase strictly within the integer range.")
            if not np.all(np.isfinite(centroids)):
                raise CimcodecError("Codebook centroids must be finite.")
            object.__setattr__(self, "levels", levels)
            object.__setattr__(self, "centroids", centroids)
        if self.snap is not None:
            if self.levels is None:
                raise CimcodecError("A snap table needs a codebook.")
            snap = np.asarray(self.snap)
            if snap.shape != (256,) or snap.min() < 0 or snap.max() >= self.levels.size:
                raise CimcodecError(
                    f"A snap table has 256 entries below the codebook size {self.levels.size}.")
            object.__setattr__(self, "snap", snap.astype(np.uint8))

    @property
    def rows(self) -> int:
        return self.shape[0]

    @property
    def cols(self) -> int:
        return math.prod(self.shape[1:])

    @property
    def flags(self) -> int:
        return (FLAG_CODEBOOK if self.levels is not None else 0) \
            | (FLAG_SNAP if self.snap is not None else 0)

    def with_crc(self, crc: int) -> Header:
        return Header(self.shape, self.quant, self.remap, self.levels, self.centroids,
                      self.snap, crc)

    def describe(self) -> dict:
        """Plain values for printing (``cimcodec inspect``)."""
        q = self.quant
        out = {
            "version": VERSION, "shape": list(self.shape),
            "matrix": f"{self.rows}x{self.cols}",
            "padded": f"{self.remap.padded_rows}x{self.remap.padded_cols}",
            "quantization": q.scheme.name.lower(), "qrange": [q.qmin, q.qmax],
            "scale": _short(q.scale), "zero_point": _short(q.zero_point),
            "clusters": 0 if self.levels is None else int(self.levels.size),
            "remap": self.remap.scheme.value, "lfsr": self.remap.kind.value,
            "seeds": list(self.remap.seeds), "crc32": f"0x{self.crc:08x}",
            "snap": self.snap is not None,
        }
        if self.levels is not None:
            out["levels"] = _short(self.levels)
            out["centroids"] = _short(self.centroids)
        if self.remap.stage_len:
            out["stage_len"] = self.remap.stage_len
        return out


def _short(values, n=8):
    values = np.asarray(values).tolist()
    values = [round(v, 6) if isinstance(v, float) else v for v in values]
    return values if len(values) <= n else values[:n] + [f"... ({len(values)} in all)"]


def pack(header: Header) -> bytes:
    """The metadata block ``M`` of ``header``."""
    q, r = header.quant, header.remap
    out = [struct.pack("<HHII", VERSION, header.flags, header.rows, header.cols),
           struct.pack(f"<B{len(header.shape)}I", len(header.shape), *header.shape),
           struct.pack("<BbbI", q.scheme.value, q.qmin, q.qmax, q.scale.size),
           q.scale.astype("<f4").tobytes(), q.zero_point.astype("<i2").tobytes()]
    k = 0 if header.levels is None else header.levels.size
    out.append(struct.pack("<H", k))
    if k:
        out += [header.levels.astype("<i1").tobytes(), header.centroids.astype("<f4").tobytes()]
    if header.snap is not None:
        out.append(header.snap.tobytes())
    out.append(struct.pack("<BBIB", _SCHEMES.index(r.scheme), _KINDS.index(r.kind),
                           r.stage_len or 0, len(r.seeds)))
    out.append(struct.pack(f"<{len(r.seeds)}I", *r.seeds))
    out.append(struct.pack("<I", header.crc & 0xFFFFFFFF))
    return b"".join(out)


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, fmt: str, what: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise CimcodecError(f"The cimcodec metadata ends inside its {what}.")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def array(self, dtype: str, n: int, what: str) -> np.ndarray:
        size = np.dtype(dtype).itemsize * n
        if self.pos + size > len(self.data):
            raise CimcodecError(f"The cimcodec metadata ends inside its {what}.")
        out = np.frombuffer(self.data, dtype=dtype, count=n, offset=self.pos)
        self.pos += size
        return out


def unpack(block: bytes) -> Header:
    """Parse and validate a metadata block ``M``.

    Raises
    ------
    CimcodecError
        Wrong version or flags, truncation, trailing bytes, and every value out of
        range (one sentence naming it).
    """
    rd = _Reader(bytes(block))
    version, flags, rows, cols = rd.take("<HHII", "header")
    if version != VERSION:
        raise CimcodecError(
            f"cimcodec container version {version} is not supported (this reader "
            f"knows version {VERSION}).")
    if flags & ~(FLAG_CODEBOOK | FLAG_SNAP) or (flags & FLAG_SNAP and not flags & FLAG_CODEBOOK):
        raise CimcodecError(f"cimcodec metadata flags 0x{flags:04x} are not valid.")
    if not (1 <= rows <= MAX_DIMENSION and 1 <= cols <= MAX_DIMENSION):
        raise CimcodecError(
            f"The metadata's matrix size {rows}x{cols} is out of range (1..{MAX_DIMENSION}).")
    (ndim,) = rd.take("<B", "tensor shape")
    if not 1 <= ndim <= MAX_NDIM:
        raise CimcodecError(f"The metadata's tensor has {ndim} dimensions, not 1..{MAX_NDIM}.")
    shape = rd.take(f"<{ndim}I", "tensor shape")
    if shape[0] != rows or math.prod(shape) != rows * cols:
        raise CimcodecError(
            f"The metadata's tensor shape {tuple(shape)} does not flatten to {rows}x{cols}.")
    scheme, qmin, qmax, nq = rd.take("<BbbI", "quantization parameters")
    if scheme > 3:
        raise CimcodecError(f"Quantization scheme {scheme} is not one of 0..3.")
    qscheme = QScheme(scheme)
    if nq != (rows if qscheme.per_channel else 1):
        raise CimcodecError(
            f"The metadata lists {nq} quantization scales for a {qscheme.name.lower()} "
            f"matrix of {rows} rows.")
    scale = rd.array("<f4", nq, "quantization scales")
    zp = rd.array("<i2", nq, "zero points")
    quant = QuantParams(qscheme, scale.astype(np.float32), zp.astype(np.int32), qmin, qmax)
    (k,) = rd.take("<H", "codebook size")
    has_book = bool(flags & FLAG_CODEBOOK)
    if (k > 0) != has_book or k > 256:
        raise CimcodecError(f"The metadata's codebook size {k} disagrees with its flags.")
    levels = centroids = snap = None
    if k:
        levels = rd.array("<i1", k, "codebook levels").astype(np.int64)
        centroids = rd.array("<f4", k, "codebook centroids").astype(np.float32)
    if flags & FLAG_SNAP:
        snap = rd.array("<u1", 256, "snap table").copy()
    remap_scheme, kind, stage_len, nseeds = rd.take("<BBIB", "remap parameters")
    if remap_scheme >= len(_SCHEMES) or kind >= len(_KINDS):
        raise CimcodecError(
            f"Remap scheme {remap_scheme} or LFSR kind {kind} is out of range.")
    seeds = rd.take(f"<{nseeds}I", "LFSR seeds")
    (crc,) = rd.take("<I", "CRC-32")
    if rd.pos != len(rd.data):
        raise CimcodecError(
            f"The cimcodec metadata has {len(rd.data) - rd.pos} bytes after its CRC-32.")
    if stage_len and _SCHEMES[remap_scheme] is not Scheme.PROGRESSIVE:
        raise CimcodecError("A stage length applies only to the progressive scheme.")
    remap = RemapParams(rows, cols, _SCHEMES[remap_scheme], seeds, _KINDS[kind],
                        stage_len or None)
    return Header(tuple(shape), quant, remap, levels, centroids, snap, crc)


def app_segments(block: bytes) -> list[tuple[int, bytes]]:
    """The ``APP11`` segments carrying ``block``."""
    chunks = [block[i:i + CHUNK] for i in range(0, len(block), CHUNK)] or [b""]
    if len(chunks) > 255:
        raise CimcodecError("The cimcodec metadata is too large for 255 APP11 segments.")
    return [(APP_NUMBER, SIGNATURE + bytes((i, len(chunks))) + c) for i, c in enumerate(chunks)]


@dataclass(frozen=True)
class Layout:
    """Where the parts of a JPEG file are, from a walk over its markers.

    Attributes
    ----------
    height, width : int
        Frame size (0 when there is no SOF0/SOF1 before the scan).
    app : list of (int, bytes)
        ``APPn`` segments before the scan.
    scan_start, scan_end : int
        The entropy-coded data is ``data[scan_start:scan_end]``.
    """

    height: int
    width: int
    app: list
    scan_start: int
    scan_end: int


def walk(data: bytes) -> Layout:
    """Walk the markers of a JPEG file up to the end of its first scan (no decoding).

    Raises
    ------
    CimcodecError
        Not a JPEG file, truncation, or a missing end of scan.
    """
    if data[:2] != b"\xff\xd8":
        raise CimcodecError("The data is not a JPEG file: it does not start with SOI.")
    pos, n, app, height, width = 2, len(data), [], 0, 0
    while True:
        if pos + 4 > n:
            raise CimcodecError("The file ends before its scan.")
        if data[pos] != 0xFF:
            raise CimcodecError(f"Expected a marker at byte {pos}, found 0x{data[pos]:02X}.")
        while pos < n - 1 and data[pos + 1] == 0xFF:
            pos += 1
        marker = data[pos + 1]
        if marker in (0xD8, 0xD9, 0x00, 0x01) or 0xD0 <= marker <= 0xD7:
            raise CimcodecError(f"Unexpected marker 0xFF{marker:02X} at byte {pos}.")
        if pos + 4 > n:
            raise CimcodecError("The file ends inside a marker segment.")
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if length < 2 or pos + 2 + length > n:
            raise CimcodecError(f"The segment at byte {pos} has a bad length {length}.")
        payload = data[pos + 4:pos + 2 + length]
        pos += 2 + length
        if 0xE0 <= marker <= 0xEF:
            app.append((marker - 0xE0, payload))
        elif marker in (0xC0, 0xC1) and len(payload) >= 5:
            height = int.from_bytes(payload[1:3], "big")
            width = int.from_bytes(payload[3:5], "big")
        elif marker == 0xDA:
            end = _SCAN_END.search(data, pos)
            if end is None:
                raise CimcodecError("The file ends inside the entropy-coded data, before EOI.")
            return Layout(height, width, app, pos, end.start())


def metadata_block(app) -> bytes | None:
    """The joined chunks of the ``CIMCODEC`` ``APP11`` segments, or ``None`` if none."""
    chunks = [p[len(SIGNATURE):] for n, p in app if n == APP_NUMBER and p.startswith(SIGNATURE)]
    if not chunks:
        return None
    if any(len(c) < 2 for c in chunks):
        raise CimcodecError("A CIMCODEC APP11 segment is too short for its chunk index.")
    count = chunks[0][1]
    if len(chunks) != count or [c[0] for c in chunks] != list(range(count)) \
            or any(c[1] != count for c in chunks):
        raise CimcodecError(
            "The CIMCODEC APP11 segments are not numbered 0..count-1 in order.")
    return b"".join(c[2:] for c in chunks)


def write(samples: np.ndarray, header: Header, *, quality: int = 90, qtable=None,
          restart_interval: int = 0, encoder=None) -> bytes:
    """The container file: ``samples`` (the remapped ``Rp x Cp`` uint8 matrix) coded as
    JPEG, with ``header`` (its CRC filled in) in ``APP11`` segments.

    ``encoder`` is a function with :func:`golden.jpeg.reference.encode`'s signature (default:
    :func:`golden.jpeg.fast.encode`, byte-identical and faster).
    """
    from cimcodec.golden.jpeg import fast as jpeg_fast

    shape = (header.remap.padded_rows, header.remap.padded_cols)
    if samples.shape != shape:
        raise CimcodecError(
            f"The coded image must be {shape[0]}x{shape[1]}, not "
            f"{samples.shape[0]}x{samples.shape[1]}.")
    encode = encoder or jpeg_fast.encode
    kwargs = {"qtable": qtable} if qtable is not None else {"quality": quality}
    plain = encode(samples, restart_interval=restart_interval, **kwargs)
    layout = walk(plain)
    view = memoryview(plain)
    crc = zlib.crc32(view[layout.scan_start:layout.scan_end])
    segments = app_segments(pack(header.with_crc(crc)))
    apps = b"".join(bytes((0xFF, 0xE0 + n)) + (len(p) + 2).to_bytes(2, "big") + p
                    for n, p in segments)
    jfif_end = 2 + 18  # SOI + the 18-byte JFIF APP0 that encode() always writes first
    return b"".join((view[:jfif_end], apps, view[jfif_end:]))


def read_header(data) -> Header:
    """The validated header of a container, its CRC checked; the image is not decoded.

    Raises
    ------
    CimcodecError
        Not a JPEG, no CIMCODEC segment, bad metadata, a frame size that disagrees with
        the metadata, or a CRC mismatch.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CimcodecError(f"Container data must be bytes, not {type(data).__name__}.")
    data = bytes(data)
    layout = walk(data)
    block = metadata_block(layout.app)
    if block is None:
        raise CimcodecError(
            "The JPEG file is not a cimcodec container: it has no CIMCODEC APP11 segment.")
    header = unpack(block)
    r = header.remap
    if (layout.height, layout.width) != (r.padded_rows, r.padded_cols):
        raise CimcodecError(
            f"The JPEG frame is {layout.width}x{layout.height} but the metadata's "
            f"{header.rows}x{header.cols} matrix needs {r.padded_cols}x{r.padded_rows}.")
    if r.padded_rows * r.padded_cols > MAX_PIXELS:
        raise CimcodecError("The coded matrix exceeds 2**28 samples.")
    crc = zlib.crc32(memoryview(data)[layout.scan_start:layout.scan_end])
    if crc != header.crc:
        raise CimcodecError(
            f"CRC-32 mismatch: the entropy-coded data gives 0x{crc:08x}, the metadata "
            f"says 0x{header.crc:08x}.")
    return header
