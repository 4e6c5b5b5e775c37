"""Vectorized twins of :func:`golden.jpeg.reference.encode` and
:func:`golden.jpeg.reference.decode`: same
bytes out of the encoder, same samples (or the same error) out of the decoder, but with
numpy doing the per-symbol work, so a 4096x4096 weight matrix takes seconds.

Encoder
-------
The symbols of every block are built at once: the DC category and EXTEND bits of each
DC difference (the predictor reset at every restart interval), and, from the non-zero
AC coefficients of each block, their zero runs ``run = k - k_prev - 1``, ``run // 16``
ZRL symbols ``0xF0`` followed by the symbol ``((run % 16) << 4) | size``, and an EOB
``0x00`` when the last non-zero coefficient is before 63. Each symbol becomes one
*event*: ``value = (code << nbits) | bits`` of ``length = codelen + nbits <= 27`` bits.
Event bit offsets are a cumulative sum (each restart interval starts byte aligned, padded
with 1 bits); an event covers at most two 32-bit words, so the words are sums (ORs of
disjoint bits) of the events' high and low halves (``numpy.bincount``, exact in
float64 below 2**53). Bytes are big-endian words; ``0xFF`` is stuffed with ``0x00``.

Restart intervals are independent, so the image is coded a *piece* at a time: whole
intervals of at most ``chunk_blocks`` blocks (:data:`ENCODE_BLOCKS`; one interval when
an interval is longer, the whole image without restart intervals) are transformed,
turned into events and packed, and only that piece's int64 arrays exist at once. With
optimized tables a first pass over the pieces counts the symbols and a second pass codes
them (the DCT runs twice rather than keeping every coefficient). The bytes do not depend
on the piece size.

Decoder
-------
Header segments are parsed by :mod:`golden.jpeg.reference`'s own parsers. When the file has
restart intervals, every interval is an independent *lane* (DC predictor reset, byte
aligned) and one numpy step decodes the next symbol of every lane: a 16-bit window at
each lane's bit position is looked up in 65536-entry tables (symbol and code length,
0 for no code), then the EXTEND bits are read from the same 32-bit window. Steps
repeat until every lane has decoded its blocks, i.e. ``max symbols per interval``
steps. The samples are then :func:`golden.jpeg.dct.idct_islow`, exactly as in
:func:`golden.jpeg.reference.decode`. The lanes run in groups of whole intervals of at
most :data:`DECODE_BLOCKS` blocks, so the coefficients of one group exist at a time and
the scan is unstuffed group by group.

Anything the fast path does not handle -- no or few restart intervals, fill bytes, an
unusual marker order, or any error while decoding -- is handed to
:func:`golden.jpeg.reference.decode_full`, which decodes it or raises its one-sentence
:class:`CimcodecError`. So the output (or the error) is always the golden decoder's.
"""

from __future__ import annotations

import re

import numpy as np

from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg import dct
from cimcodec.golden.jpeg import reference as jpeg
from cimcodec.golden.jpeg.huffman import STD_AC_LUMINANCE, STD_DC_LUMINANCE, HuffmanTable
from cimcodec.golden.jpeg.zigzag import ZIGZAG, from_zigzag, to_zigzag

#: Blocks per forward-DCT batch (bounds the int64 temporaries).
DCT_BATCH = 16384
#: Blocks per piece of the encoder (module docstring).
ENCODE_BLOCKS = 1024
#: Blocks per group of lanes of the decoder (module docstring): the more lanes a numpy
#: step drives, the fewer steps; a group's coefficients take 128 bytes a block, less
#: than the float32 weights decoded from them.
DECODE_BLOCKS = 1 << 18
#: The fast decoder needs at least this many restart intervals to be worth it.
MIN_LANES = 16
_RST = re.compile(rb"\xff[\xd0-\xd7]")
_CATEGORY = np.array([v.bit_length() for v in range(1 << 16)] + [17], dtype=np.int64)


# --------------------------------------------------------------------------- encoder


def _category(values: np.ndarray) -> np.ndarray:
    """``abs(v).bit_length()`` of every element (|v| < 2**16)."""
    return _CATEGORY[np.abs(values.astype(np.int64))]


def _events(zz: np.ndarray, step: int):
    """Per event, in stream order: table (0 DC / 1 AC), symbol, extra bit count, extra
    bits; and the block of each event."""
    n = len(zz)
    dc = zz[:, 0].astype(np.int64)
    prev = np.concatenate([[0], dc[:-1]])
    prev[::step] = 0
    diff = dc - prev
    t_dc = _category(diff)
    bits_dc = np.where(diff >= 0, diff, diff + (1 << t_dc) - 1)

    blk, pos = np.nonzero(zz[:, 1:])
    pos = pos + 1
    vals = zz[blk, pos].astype(np.int64)
    first = np.ones(len(blk), dtype=bool)
    first[1:] = blk[1:] != blk[:-1]
    prevpos = np.concatenate([[0], pos[:-1]])
    prevpos[first] = 0
    run = pos - prevpos - 1
    nzrl = run >> 4
    size = _category(vals)
    bits_ac = np.where(vals >= 0, vals, vals + (1 << size) - 1)
    last = np.zeros(n, dtype=np.int64)
    if len(blk):
        ends = np.flatnonzero(np.r_[blk[1:] != blk[:-1], True])
        last[blk[ends]] = pos[ends]
    eob = last != 63

    per_nz = nzrl + 1
    per_block = 1 + np.bincount(blk, weights=per_nz, minlength=n).astype(np.int64) + eob
    start = np.concatenate([[0], np.cumsum(per_block)[:-1]])
    total = int(per_block.sum())
    table = np.ones(total, dtype=np.int64)
    symbol = np.zeros(total, dtype=np.int64)
    nbits = np.zeros(total, dtype=np.int64)
    bits = np.zeros(total, dtype=np.int64)
    block_of = np.repeat(np.arange(n), per_block)

    table[start] = 0
    symbol[start] = t_dc
    nbits[start] = t_dc
    bits[start] = bits_dc
    # offset of each non-zero's first event inside its block
    csum = np.cumsum(per_nz)
    before = csum - per_nz  # events of earlier non-zeros, over all blocks
    block_first = np.zeros(n, dtype=np.int64)
    if len(blk):
        fidx = np.flatnonzero(first)
        block_first[blk[fidx]] = before[fidx]
    offset = start[blk] + 1 + before - block_first[blk]
    ac_at = offset + nzrl
    symbol[ac_at] = ((run & 15) << 4) | size
    nbits[ac_at] = size
    bits[ac_at] = bits_ac
    zrl_count = int(nzrl.sum())
    if zrl_count:
        owner = np.repeat(np.arange(len(blk)), nzrl)
        within = np.arange(zrl_count) - np.repeat(np.cumsum(nzrl) - nzrl, nzrl)
        symbol[offset[owner] + within] = 0xF0
    eob_at = (start + per_block - 1)[eob]
    symbol[eob_at] = 0x00
    return table, symbol, nbits, bits, block_of


def _code_tables(tables) -> tuple[np.ndarray, np.ndarray]:
    """Code and code length of every (table, symbol): ``(2, 256)`` arrays (length 0: no
    code)."""
    codes = np.zeros((2, 256), dtype=np.int64)
    sizes = np.zeros((2, 256), dtype=np.int64)
    for t, huff in enumerate(tables):
        for s, (code, size) in huff.encoder().items():
            codes[t, s], sizes[t, s] = code, size
    return codes, sizes


def _pack(table, symbol, nbits, bits, block_of, step, nblocks, code_tables) -> list[bytes]:
    """Entropy-coded bytes of each restart interval (stuffed)."""
    codes, sizes = code_tables
    clen = sizes[table, symbol]
    if np.any(clen == 0):
        bad = int(np.flatnonzero(clen == 0)[0])
        raise CimcodecError(
            f"The {'AC' if table[bad] else 'DC'} Huffman table has no code for symbol "
            f"0x{int(symbol[bad]):02X}.")
    length = clen + nbits
    value = (codes[table, symbol] << nbits) | bits

    interval = block_of // step
    nint = -(-nblocks // step)
    ibits = np.bincount(interval, weights=length, minlength=nint).astype(np.int64)
    pad = -ibits % 8
    ibytes = (ibits + pad) // 8
    istart = np.concatenate([[0], np.cumsum(ibytes)[:-1]]) * 8
    # padding events (1 bits) at each interval's end
    pidx = np.flatnonzero(pad)
    length = np.concatenate([length, pad[pidx]])
    value = np.concatenate([value, (1 << pad[pidx]) - 1])
    interval = np.concatenate([interval, pidx])
    order = np.argsort(interval, kind="stable")
    length, value, interval = length[order], value[order], interval[order]
    csum = np.cumsum(length)
    first_in = np.searchsorted(interval, np.arange(nint))
    base = np.concatenate([[0], csum])[first_in]  # global bits before each interval
    pos = istart[interval] + (csum - length) - base[interval]

    total_bytes = int(ibytes.sum())
    nwords = total_bytes // 4 + 2
    word = pos >> 5
    shift = 64 - length - (pos & 31)
    wide = value.astype(np.uint64) << shift.astype(np.uint64)
    hi = (wide >> np.uint64(32)).astype(np.float64)
    lo = (wide & np.uint64(0xFFFFFFFF)).astype(np.float64)
    words = np.bincount(word, weights=hi, minlength=nwords)
    words += np.bincount(word + 1, weights=lo, minlength=nwords)
    raw = words.astype(">u4").tobytes()
    bounds = np.concatenate([[0], np.cumsum(ibytes)]).tolist()
    return [raw[a:b].replace(b"\xff", b"\xff\x00") for a, b in zip(bounds, bounds[1:])]


def block_grid(image: np.ndarray) -> np.ndarray:
    """The 8x8 blocks of an image padded to whole blocks, as a ``(by, bx, 8, 8)`` view."""
    height, width = image.shape
    return image.reshape(height // 8, 8, width // 8, 8).swapaxes(1, 2)


def blocks_of(grid: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Blocks ``start..stop-1`` (raster order) of a :func:`block_grid`, as an
    ``(n, 8, 8)`` array."""
    bx = grid.shape[1]
    (r0, c0), (r1, c1) = divmod(start, bx), divmod(stop, bx)
    if r0 == r1:
        return grid[r0, c0:c1].copy()
    return np.concatenate([grid[r0, c0:], grid[r0 + 1:r1].reshape(-1, 8, 8), grid[r1, :c1]]
                          if c1 else [grid[r0, c0:], grid[r0 + 1:r1].reshape(-1, 8, 8)])


def _put_blocks(grid: np.ndarray, start: int, blocks: np.ndarray) -> None:
    """Write ``(n, 8, 8)`` blocks at raster positions ``start..start+n-1`` of a grid."""
    bx = grid.shape[1]
    (r0, c0), (r1, c1) = divmod(start, bx), divmod(start + len(blocks), bx)
    if r0 == r1:
        grid[r0, c0:c1] = blocks
        return
    head, full = bx - c0, (r1 - r0 - 1) * bx
    grid[r0, c0:] = blocks[:head]
    grid[r0 + 1:r1] = blocks[head:head + full].reshape(r1 - r0 - 1, bx, 8, 8)
    if c1:
        grid[r1, :c1] = blocks[head + full:]


def _pieces(nblocks: int, step: int, chunk_blocks: int) -> list[tuple[int, int]]:
    """Block ranges of whole restart intervals, at most ``chunk_blocks`` blocks each
    (at least one interval)."""
    size = max(1, int(chunk_blocks) // step) * step
    return [(s, min(s + size, nblocks)) for s in range(0, nblocks, size)]


def encode(samples, *, quality: int | None = None, qtable=None, optimize: bool = True,
           restart_interval: int = 0, app_segments=(), chunk_blocks: int | None = None) -> bytes:
    """Byte for byte :func:`golden.jpeg.reference.encode` (same parameters, same errors).
    ``chunk_blocks`` (default :data:`ENCODE_BLOCKS`) bounds the blocks coded at once
    (module docstring); it does not change the bytes."""
    image = np.asarray(samples)
    if image.ndim != 2 or image.dtype != np.uint8 or image.size == 0 \
            or max(image.shape) > jpeg.MAX_DIMENSION:
        return jpeg.encode(samples, quality=quality, qtable=qtable, optimize=optimize,
                           restart_interval=restart_interval, app_segments=app_segments)
    # Parameter checks (and their messages) are the golden encoder's: run it on a tiny
    # image with the same options and keep its header layout.
    probe = jpeg.encode(np.zeros((8, 8), np.uint8), quality=quality, qtable=qtable,
                        optimize=False, restart_interval=restart_interval,
                        app_segments=app_segments)
    q = jpeg.decode_full(probe).qtable
    apps = list(jpeg._check_app_segments(app_segments))

    height, width = image.shape
    by, bx = -(-height // 8), -(-width // 8)
    if (8 * by, 8 * bx) != image.shape:
        image = np.pad(image, ((0, 8 * by - height), (0, 8 * bx - width)), mode="edge")
    grid = block_grid(image)
    nblocks = by * bx
    step = int(restart_interval) or nblocks
    pieces = _pieces(nblocks, step, chunk_blocks or ENCODE_BLOCKS)

    def events(start, stop):
        blocks = blocks_of(grid, start, stop)
        zz = np.empty((stop - start, 64), dtype=np.int64)
        for s in range(0, len(zz), DCT_BATCH):
            zz[s:s + DCT_BATCH] = to_zigzag(dct.forward(blocks[s:s + DCT_BATCH], q))
        return _events(zz, step)

    kept = events(*pieces[0]) if len(pieces) == 1 else None   # one piece: transform once
    if optimize:
        counts = np.zeros((2, 256), dtype=np.int64)
        for start, stop in pieces:
            table, symbol = (kept or events(start, stop))[:2]
            for t in (0, 1):
                counts[t] += np.bincount(symbol[table == t], minlength=256)
        tables = [HuffmanTable.from_frequencies(c) for c in counts]
    else:
        tables = [STD_DC_LUMINANCE, STD_AC_LUMINANCE]
    code_tables = _code_tables(tables)
    intervals = []
    for start, stop in pieces:
        intervals += _pack(*(kept or events(start, stop)), step, stop - start, code_tables)
    del kept

    seg = jpeg._segment
    wide = bool(q.max() > 255)
    out = [bytes((0xFF, jpeg.SOI)),
           seg(jpeg.APP0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")]
    out += [seg(jpeg.APP0 + n, payload) for n, payload in apps]
    values = q[ZIGZAG].tolist()
    body = b"".join(v.to_bytes(2, "big") for v in values) if wide else bytes(values)
    out.append(seg(jpeg.DQT, bytes((0x10 if wide else 0x00,)) + body))
    out.append(seg(jpeg.SOF1 if wide else jpeg.SOF0, bytes((8,)) + height.to_bytes(2, "big")
                   + width.to_bytes(2, "big") + bytes((1, 1, 0x11, 0))))
    out.append(seg(jpeg.DHT, b"\x00" + tables[0].to_bytes()))
    out.append(seg(jpeg.DHT, b"\x10" + tables[1].to_bytes()))
    if restart_interval:
        out.append(seg(jpeg.DRI, int(restart_interval).to_bytes(2, "big")))
    out.append(seg(jpeg.SOS, bytes((1, 1, 0x00, 0, 63, 0))))
    for i, chunk in enumerate(intervals):
        if i:
            out.append(bytes((0xFF, jpeg.RST0 + (i - 1) % 8)))
        out.append(chunk)
    out.append(bytes((0xFF, jpeg.EOI)))
    return b"".join(out)


# --------------------------------------------------------------------------- decoder


class _Fallback(Exception):
    """The fast path does not handle this file: use the golden decoder."""


def _lut(table: HuffmanTable) -> tuple[np.ndarray, np.ndarray]:
    """Symbol and code length for every 16-bit window (length 0: no code)."""
    sym = np.zeros(65536, dtype=np.int64)
    size = np.zeros(65536, dtype=np.int64)
    for s, code, n in zip(table.huffval, table.codes(), table.sizes()):
        lo = code << (16 - n)
        hi = lo + (1 << (16 - n))
        sym[lo:hi] = s
        size[lo:hi] = n
    return sym, size


def _header(data: bytes):
    """Parse the segments before the scan with the golden parsers."""
    state = jpeg._State()
    pos, n = 2, len(data)
    while True:
        if pos + 4 > n or data[pos] != 0xFF or data[pos + 1] == 0xFF:
            raise _Fallback
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if length < 2 or pos + 2 + length > n:
            raise _Fallback
        payload = data[pos + 4:pos + 2 + length]
        pos += 2 + length
        if jpeg.APP0 <= marker <= jpeg.APP0 + 15:
            state.apps.append((marker - jpeg.APP0, payload))
        elif marker == jpeg.COM:
            state.comments.append(payload)
        elif marker == jpeg.DQT:
            jpeg._parse_dqt(state, payload)
        elif marker == jpeg.DHT:
            jpeg._parse_dht(state, payload)
        elif marker == jpeg.DRI and len(payload) == 2:
            state.restart = int.from_bytes(payload, "big")
        elif marker in (jpeg.SOF0, jpeg.SOF1):
            jpeg._parse_sof(state, marker, payload)
        elif marker == jpeg.SOS:
            return state, payload, pos
        else:
            raise _Fallback


def _fast(data: bytes, coefficients: bool = True) -> jpeg.Decoded:
    """The fast path (module docstring); without ``coefficients`` the result holds
    ``None`` for them (only :func:`decode` asks for that)."""
    state, sos, pos = _header(data)
    frame = state.frame
    if frame is None or len(sos) != 6 or sos[0] != 1 or sos[1] != frame.component \
            or tuple(sos[3:6]) != (0, 63, 0):
        raise _Fallback
    td, ta = sos[2] >> 4, sos[2] & 15
    if td not in state.dc or ta not in state.ac or frame.tq not in state.qtables:
        raise _Fallback
    by, bx = -(-frame.height // 8), -(-frame.width // 8)
    nblocks = by * bx
    step = state.restart
    if not step:
        raise _Fallback
    nint = -(-nblocks // step)
    if nint < MIN_LANES:
        raise _Fallback
    end = data.find(b"\xff\xd9", pos)
    if end < 0 or end + 2 > len(data) or data.find(b"\xff\xff", pos, end) >= 0:
        raise _Fallback
    marks = [m.start() for m in _RST.finditer(data, pos, end)]
    if len(marks) + 1 != nint or [data[m + 1] - jpeg.RST0 for m in marks] \
            != [i % 8 for i in range(nint - 1)]:
        raise _Fallback
    bounds = list(zip([pos] + [m + 2 for m in marks], marks + [end]))

    luts = _lut(state.dc[td]) + _lut(state.ac[ta])
    qtable = state.qtables[frame.tq].copy()
    image = np.empty((8 * by, 8 * bx), dtype=np.uint8)
    grid = block_grid(image)
    coef = np.empty((nblocks, 64), dtype=np.int16) if coefficients else None
    for first, last in _pieces(nblocks, step, DECODE_BLOCKS):
        zz = _lanes(data, bounds[first // step:-(-last // step)], step, last - first, luts)
        if coef is not None:
            coef[first:last] = from_zigzag(zz)
        for s in range(0, len(zz), jpeg.IDCT_BATCH):
            natural = from_zigzag(zz[s:s + jpeg.IDCT_BATCH])
            _put_blocks(grid, first + s, dct.idct_islow(natural, qtable))
        del zz
    return jpeg.Decoded(
        samples=np.ascontiguousarray(image[:frame.height, :frame.width]),
        coefficients=None if coef is None else coef.reshape(by, bx, 64), qtable=qtable,
        dc_table=state.dc[td], ac_table=state.ac[ta], restart_interval=step,
        frame=frame.marker, app_segments=tuple(state.apps), comments=tuple(state.comments))


def _lanes(data: bytes, bounds, step: int, nblocks: int, luts) -> np.ndarray:
    """Zigzag coefficients (int16) of the ``nblocks`` blocks of the restart intervals
    whose entropy-coded segments are ``data[a:b]`` for ``(a, b)`` in ``bounds``, one
    lane per interval."""
    pieces = [data[a:b] for a, b in bounds]
    if any(b"\xff" in p.replace(b"\xff\x00", b"") for p in pieces):
        raise _Fallback  # a marker other than RSTn inside the scan
    segments = [p.replace(b"\xff\x00", b"\xff") for p in pieces]
    del pieces
    nint = len(segments)
    lens = np.array([len(s) for s in segments], dtype=np.int64)
    gap = 8  # bytes of 1 bits after each segment: windows never leave the buffer
    buf = np.frombuffer(b"".join(s + b"\xff" * gap for s in segments) + b"\xff" * 8,
                        dtype=np.uint8)
    del segments
    seg_start = np.concatenate([[0], np.cumsum(lens + gap)[:-1]]) * 8
    seg_end = seg_start + lens * 8

    dc_sym, dc_len, ac_sym, ac_len = luts
    zz = np.zeros((nblocks, 64), dtype=np.int16)
    lane = np.arange(nint)
    p = seg_start.copy()
    blk = lane * step
    last = np.minimum((lane + 1) * step, nblocks)
    k = np.zeros(nint, dtype=np.int64)
    pred = np.zeros(nint, dtype=np.int64)
    active = np.arange(nint)
    while active.size:
        pa, ka = p[active], k[active]
        idx = (pa >> 3).astype(np.int64)
        w = np.zeros(len(idx), dtype=np.uint64)
        for j in range(5):
            w |= buf[idx + j].astype(np.uint64) << np.uint64(32 - 8 * j)
        w = ((w >> (np.uint64(8) - (pa & 7).astype(np.uint64))) & np.uint64(0xFFFFFFFF))
        w = w.astype(np.int64)
        top = w >> 16
        isdc = ka == 0
        s = np.where(isdc, dc_sym[top], ac_sym[top])
        n = np.where(isdc, dc_len[top], ac_len[top])
        if np.any(n == 0):
            raise _Fallback
        r, size = s >> 4, s & 15
        extra = np.where(isdc, s, size)
        if np.any(isdc & (s > 11)) or np.any(~isdc & (size > 10)):
            raise _Fallback
        nxt = pa + n + extra
        if np.any(nxt > seg_end[active]):
            raise _Fallback
        v = (w >> (32 - n - extra)) & ((1 << extra) - 1)
        v = np.where(v >= (1 << np.maximum(extra - 1, 0)), v, v - (1 << extra) + 1)
        v = np.where(extra == 0, 0, v)
        b = blk[active]
        # DC
        pred_a = pred[active] + np.where(isdc, v, 0)
        pred[active] = pred_a
        dci = np.flatnonzero(isdc)
        zz[b[dci], 0] = ((pred_a[dci] + 0x8000) & 0xFFFF) - 0x8000
        # AC
        eob = ~isdc & (s == 0x00)
        zrl = ~isdc & (s == 0xF0)
        coef = ~isdc & (size > 0)
        if np.any(~isdc & (size == 0) & ~eob & ~zrl):
            raise _Fallback
        kn = np.where(isdc, 1, ka)
        if np.any(zrl & (ka + 16 > 64)):
            raise _Fallback
        kn = np.where(zrl, ka + 16, kn)
        kpos = ka + r
        if np.any(coef & (kpos > 63)):
            raise _Fallback
        ci = np.flatnonzero(coef)
        zz[b[ci], kpos[ci]] = v[ci]
        kn = np.where(coef, kpos + 1, kn)
        done_block = eob | (~isdc & (kn >= 64))
        kn = np.where(done_block, 0, kn)
        b = b + done_block
        k[active] = kn
        blk[active] = b
        p[active] = nxt
        active = active[b < last[active]]

    return zz


def _decode(data, coefficients: bool) -> jpeg.Decoded:
    if not isinstance(data, (bytes, bytearray, memoryview)) or bytes(data[:2]) != b"\xff\xd8":
        return jpeg.decode_full(data)
    data = bytes(data)
    try:
        return _fast(data, coefficients)
    except (_Fallback, CimcodecError):
        return jpeg.decode_full(data)


def decode_full(data) -> jpeg.Decoded:
    """Same result (or error) as :func:`golden.jpeg.reference.decode_full`."""
    return _decode(data, True)


def decode(data) -> np.ndarray:
    """Same samples (or error) as :func:`golden.jpeg.reference.decode` (the
    coefficients are not kept)."""
    return _decode(data, False).samples
