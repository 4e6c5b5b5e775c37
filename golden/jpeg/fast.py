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

Decoder
-------
Header segments are parsed by :mod:`golden.jpeg.reference`'s own parsers. When the file has
restart intervals, every interval is an independent *lane* (DC predictor reset, byte
aligned) and one numpy step decodes the next symbol of every lane: a 16-bit window at
each lane's bit position is looked up in 65536-entry tables (symbol and code length,
0 for no code), then the EXTEND bits are read from the same 32-bit window. Steps
repeat until every lane has decoded its blocks, i.e. ``max symbols per interval``
steps. The samples are then :func:`golden.jpeg.dct.idct_islow`, exactly as in
:func:`golden.jpeg.reference.decode`.

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


def _pack(table, symbol, nbits, bits, block_of, step, nblocks, tables) -> list[bytes]:
    """Entropy-coded bytes of each restart interval (stuffed)."""
    codes = np.zeros((2, 256), dtype=np.int64)
    sizes = np.zeros((2, 256), dtype=np.int64)
    for t, huff in enumerate(tables):
        for s, (code, size) in huff.encoder().items():
            codes[t, s], sizes[t, s] = code, size
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


def encode(samples, *, quality: int | None = None, qtable=None, optimize: bool = True,
           restart_interval: int = 0, app_segments=()) -> bytes:
    """Byte for byte :func:`golden.jpeg.reference.encode` (same parameters, same errors)."""
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
    padded = np.pad(image, ((0, 8 * by - height), (0, 8 * bx - width)), mode="edge")
    blocks = padded.reshape(by, 8, bx, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)
    nblocks = len(blocks)
    zz = np.empty((nblocks, 64), dtype=np.int64)
    for s in range(0, nblocks, DCT_BATCH):
        zz[s:s + DCT_BATCH] = to_zigzag(dct.forward(blocks[s:s + DCT_BATCH], q))
    step = int(restart_interval) or nblocks
    table, symbol, nbits, bits, block_of = _events(zz, step)
    if optimize:
        tables = [HuffmanTable.from_frequencies(
            np.bincount(symbol[table == t], minlength=256)) for t in (0, 1)]
    else:
        tables = [STD_DC_LUMINANCE, STD_AC_LUMINANCE]
    intervals = _pack(table, symbol, nbits, bits, block_of, step, nblocks, tables)

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


def _fast(data: bytes) -> jpeg.Decoded:
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
    if end < 0 or end + 2 > len(data):
        raise _Fallback
    scan = data[pos:end]
    if b"\xff\xff" in scan:
        raise _Fallback
    pieces = _RST.split(scan)
    numbers = [m[1] - jpeg.RST0 for m in _RST.findall(scan)]
    if len(pieces) != nint or numbers != [i % 8 for i in range(nint - 1)]:
        raise _Fallback
    segments = [p.replace(b"\xff\x00", b"\xff") for p in pieces]
    if any(b"\xff" in p.replace(b"\xff\x00", b"") for p in pieces):
        raise _Fallback  # a marker other than RSTn inside the scan

    lens = np.array([len(s) for s in segments], dtype=np.int64)
    gap = 8  # bytes of 1 bits after each segment: windows never leave the buffer
    buf = np.frombuffer(b"".join(s + b"\xff" * gap for s in segments), dtype=np.uint8)
    buf = np.concatenate([buf, np.full(8, 0xFF, np.uint8)]).astype(np.uint64)
    seg_start = np.concatenate([[0], np.cumsum(lens + gap)[:-1]]) * 8
    seg_end = seg_start + lens * 8

    dc_sym, dc_len = _lut(state.dc[td])
    ac_sym, ac_len = _lut(state.ac[ta])
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
        w = (buf[idx] << np.uint64(32)) | (buf[idx + 1] << np.uint64(24)) \
            | (buf[idx + 2] << np.uint64(16)) | (buf[idx + 3] << np.uint64(8)) | buf[idx + 4]
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

    coefficients = from_zigzag(zz)
    qtable = state.qtables[frame.tq].copy()
    samples = np.empty((nblocks, 8, 8), dtype=np.uint8)
    for start in range(0, nblocks, jpeg.IDCT_BATCH):
        samples[start:start + jpeg.IDCT_BATCH] = dct.idct_islow(
            coefficients[start:start + jpeg.IDCT_BATCH], qtable)
    image = samples.reshape(by, bx, 8, 8).transpose(0, 2, 1, 3).reshape(8 * by, 8 * bx)
    return jpeg.Decoded(
        samples=np.ascontiguousarray(image[:frame.height, :frame.width]),
        coefficients=coefficients.reshape(by, bx, 64), qtable=qtable,
        dc_table=state.dc[td], ac_table=state.ac[ta], restart_interval=step,
        frame=frame.marker, app_segments=tuple(state.apps), comments=tuple(state.comments))


def decode_full(data) -> jpeg.Decoded:
    """Same result (or error) as :func:`golden.jpeg.reference.decode_full`."""
    if not isinstance(data, (bytes, bytearray, memoryview)) or bytes(data[:2]) != b"\xff\xd8":
        return jpeg.decode_full(data)
    data = bytes(data)
    try:
        return _fast(data)
    except (_Fallback, CimcodecError):
        return jpeg.decode_full(data)


def decode(data) -> np.ndarray:
    """Same samples (or error) as :func:`golden.jpeg.reference.decode`."""
    return decode_full(data).samples
