"""The container metadata as the RTL decompressor reads it: the reference of
:class:`hw.appmeta.AppMeta`.

The hardware sees the ``CIMCODEC`` ``APP11`` payload as the marker parser's ``APP``
events (:func:`golden.blocks.markers.parse`: ``index`` 0 the chunk index, 1 the chunk count,
then the metadata block ``M`` of :mod:`golden.codec.container`, one byte per event) and keeps
only what the decoded samples depend on: the matrix size, the remap (scheme, LFSR form,
stage length, seeds) and the snap table. From them it builds the remap unit's
configuration and the control-word generator's job exactly as
:meth:`golden.blocks.remap.RemapShape.config` /
:meth:`~golden.blocks.remap.RemapShape.generator_config` do. The quantization
parameters, tensor shape and codebook values are walked over (their lengths followed),
not checked: dequantization is software's.

Checks, each a metadata error at the event where it is found (:func:`parse`):

* one chunk only: chunk index 0, count 1, no second ``CIMCODEC`` segment, no ``APP``
  event after the frame header (``FRAME``);
* version 1; flags: only bits 0 (codebook) and 1 (snap, needs bit 0);
* rows and cols in 1..65500; ``ndim`` in 1..8 and ``shape[0] == rows``;
* quantization scheme 0..3 and ``nq`` = ``rows`` (per channel) or 1;
* codebook size ``k`` <= 256, non-zero exactly with flag bit 0; each snap entry < ``k``;
* remap scheme 0..3, LFSR kind 0..1, a stage length only for progressive; the number
  of seeds that of :attr:`golden.blocks.remap.RemapParams.field_takes`, each seed in
  ``1 .. 2**width - 1`` of its LFSR;
* nothing after the CRC-32, and the segment not ending before it (checked at the
  first non-``APP`` event).

A stage length the generator's counter cannot hold is clamped to its largest value,
which changes no word (every word of the job is then in the first stage).
"""

from __future__ import annotations

from dataclasses import dataclass

from cimcodec.golden.blocks.lfsr import Kind, Scheme
from cimcodec.golden.blocks.markers import Kind as EventKind
from cimcodec.golden.blocks.remap import RemapParams
from cimcodec.golden.codec.container import FLAG_CODEBOOK, FLAG_SNAP, MAX_NDIM, VERSION
from cimcodec.golden.jpeg.reference import MAX_DIMENSION

SCHEMES = (Scheme.NONE, Scheme.FULL, Scheme.SPLIT, Scheme.PROGRESSIVE)
KINDS = (Kind.FIBONACCI, Kind.GALOIS)


@dataclass(frozen=True)
class Meta:
    """What the hardware keeps of the metadata."""

    rows: int
    cols: int
    scheme: Scheme
    kind: Kind
    stage_len: int
    seeds: tuple
    snap: tuple | None

    def params(self) -> RemapParams:
        return RemapParams(self.rows, self.cols, self.scheme, self.seeds, self.kind,
                           self.stage_len or None)


def word_width(rows: int, cols: int) -> int:
    """``W`` of a ``rows x cols`` matrix (:attr:`golden.blocks.remap.RemapParams.word_width`)."""
    return max((8 * -(-rows // 8) - 1).bit_length(), (8 * -(-cols // 8) - 1).bit_length())


def lfsr_widths(scheme: Scheme, w: int) -> tuple:
    """Width of each LFSR (one seed each) of the scheme for words of ``w`` bits."""
    if scheme is Scheme.NONE:
        return ()
    if scheme is Scheme.SPLIT and w > 3:
        return (3, max(2, w - 3))
    return (w,)


class _Fail(Exception):
    pass


def _walk(data: bytes):
    """``Meta`` of the metadata block ``data``, or ``(_Fail, offset)`` at the first
    offending byte (``len(data)`` when it ends too soon)."""
    pos = 0

    def take(n):
        nonlocal pos
        if pos + n > len(data):
            raise _Fail(len(data))
        value = int.from_bytes(data[pos:pos + n], "little")
        pos += n
        return value

    def skip(n):
        nonlocal pos
        if pos + n > len(data):
            raise _Fail(len(data))
        pos += n

    def need(ok):
        if not ok:
            raise _Fail(pos - 1)

    need(take(2) == VERSION)
    flags = take(2)
    need(not flags & ~(FLAG_CODEBOOK | FLAG_SNAP)
         and not (flags & FLAG_SNAP and not flags & FLAG_CODEBOOK))
    rows = take(4)
    need(1 <= rows <= MAX_DIMENSION)
    cols = take(4)
    need(1 <= cols <= MAX_DIMENSION)
    ndim = take(1)
    need(1 <= ndim <= MAX_NDIM)
    need(take(4) == rows)
    skip(4 * (ndim - 1))
    qscheme = take(1)
    need(qscheme <= 3)
    take(2)
    nq = take(4)
    need(nq == (rows if qscheme & 2 else 1))
    skip(6 * nq)
    k = take(2)
    need(k <= 256 and (k > 0) == bool(flags & FLAG_CODEBOOK))
    skip(5 * k)
    snap = None
    if flags & FLAG_SNAP:
        snap = []
        for _ in range(256):
            snap.append(take(1))
            need(snap[-1] < k)
        snap = tuple(snap)
    scheme = take(1)
    need(scheme < len(SCHEMES))
    kind = take(1)
    need(kind < len(KINDS))
    stage_len = take(4)
    need(stage_len == 0 or SCHEMES[scheme] is Scheme.PROGRESSIVE)
    widths = lfsr_widths(SCHEMES[scheme], word_width(rows, cols))
    need(take(1) == len(widths))
    seeds = []
    for width in widths:
        seeds.append(take(4))
        need(1 <= seeds[-1] < 1 << width)
    take(4)
    if pos != len(data):
        raise _Fail(pos)
    return Meta(rows, cols, SCHEMES[scheme], KINDS[kind], stage_len, tuple(seeds), snap)


@dataclass(frozen=True)
class Parsed:
    """Result of :func:`parse`.

    Attributes
    ----------
    meta : Meta or None
        ``None`` without ``APP`` events (a plain JPEG) or on an error.
    error_event : int or None
        Index in the events of the one at which the hardware finds the metadata bad.
    """

    meta: Meta | None
    error_event: int | None

    @property
    def present(self) -> bool:
        return self.meta is not None or self.error_event is not None


def parse(events) -> Parsed:
    """The metadata of a file from its :func:`golden.blocks.markers.parse` events."""
    n_events = len(events)
    first = next((n for n, e in enumerate(events) if e[0] == EventKind.APP), None)
    if first is None:
        return Parsed(None, None)
    if any(e[0] == EventKind.FRAME for e in events[:first]):
        return Parsed(None, first)
    # The segment: APP events from the first up to a non-APP event or a new chunk.
    end = first
    while end < n_events and events[end][0] == EventKind.APP \
            and (end == first or events[end][1] != 0):
        end += 1
    data = []
    for n in range(first, end):
        index, value = events[n][1], events[n][2]
        if (index == 0 and value != 0) or (index == 1 and value != 1):
            return Parsed(None, n)
        if index >= 2:
            data.append((n, value))
    try:
        meta = _walk(bytes(v for _, v in data))
    except _Fail as fail:
        offset = fail.args[0]
        return Parsed(None, data[offset][0] if offset < len(data) else end)
    later = next((n for n in range(end, n_events) if events[n][0] == EventKind.APP), None)
    if later is not None:
        return Parsed(None, later)
    return Parsed(meta, None)
