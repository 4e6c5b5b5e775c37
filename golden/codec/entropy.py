"""Canonical Huffman coding of streams of 8-bit symbols, with the JPEG tables of
:mod:`cimcodec.golden.jpeg.huffman` (libjpeg's optimal length-limited code, at most 16
bits, the all-ones code word unused).

Stream format (:func:`encode`)
------------------------------
``<B mode`` then:

* mode 0, fixed width: ``<B w`` (bits per symbol, 1..8), then the symbols, ``w`` bits
  each, MSB first, the last byte padded with 1 bits;
* mode 1, Huffman: the table as in a DHT segment (16 ``BITS`` bytes, then ``HUFFVAL``),
  then the codes, MSB first, padded with 1 bits;
* mode 2: no symbols (``count`` is 0).

The symbol count is not stored: the caller knows it (:func:`decode` takes it). Bits are
packed with numpy, 16 bit planes at a time; decoding looks every 16-bit window up in a
65536-entry table of (symbol, length), so a bad code or a stream that ends early is
found at once and reported, never a hang.
"""

from __future__ import annotations

import numpy as np

from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg.huffman import MAX_CODE_LENGTH, HuffmanTable

FIXED, HUFFMAN, EMPTY = 0, 1, 2


def pack_bits(codes, lengths) -> bytes:
    """``codes[i]`` in ``lengths[i]`` bits (0..32 each), MSB first, back to back; the
    last byte padded with 1 bits."""
    codes = np.asarray(codes, dtype=np.uint64)
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    bits = np.ones(total + (-total % 8), dtype=np.uint8)
    start = np.cumsum(lengths) - lengths
    for b in range(int(lengths.max(initial=0))):
        take = lengths > b
        shift = (lengths[take] - 1 - b).astype(np.uint64)
        bits[start[take] + b] = (codes[take] >> shift) & np.uint64(1)
    return np.packbits(bits).tobytes()


def huffman_table(symbols) -> HuffmanTable:
    """The optimal table for the symbol counts of ``symbols`` (values 0..255)."""
    return HuffmanTable.from_frequencies(np.bincount(symbols, minlength=256).tolist())


def code_lengths(table: HuffmanTable) -> np.ndarray:
    """Code length of each of the 256 symbols under ``table`` (0: no code)."""
    out = np.zeros(256, dtype=np.int64)
    for symbol, (_, size) in table.encoder().items():
        out[symbol] = size
    return out


def encode(symbols, *, huffman: bool = True, width: int = 8) -> bytes:
    """``symbols`` (ints 0..2**width-1) as a stream (module docstring): Huffman-coded, or
    ``width`` bits each when ``huffman`` is false or when that is shorter."""
    s = np.asarray(symbols, dtype=np.int64).reshape(-1)
    if not 1 <= width <= 8:
        raise CimcodecError(f"Symbol width must be 1..8 bits, not {width}.")
    if s.size and (s.min() < 0 or s.max() >= 1 << width):
        raise CimcodecError(f"Symbols must be 0..{(1 << width) - 1}.")
    if not s.size:
        return bytes([EMPTY])
    fixed = bytes([FIXED, width]) + pack_bits(s, np.full(s.size, width))
    if not huffman:
        return fixed
    table = huffman_table(s)
    enc = np.zeros((256, 2), dtype=np.int64)
    for symbol, (code, size) in table.encoder().items():
        enc[symbol] = code, size
    coded = bytes([HUFFMAN]) + table.to_bytes() + pack_bits(enc[s, 0], enc[s, 1])
    return coded if len(coded) < len(fixed) else fixed


def _lookup(table: HuffmanTable) -> tuple[np.ndarray, np.ndarray]:
    """(symbol, length) of every 16-bit window; length 0 where no code matches."""
    sym = np.zeros(1 << MAX_CODE_LENGTH, dtype=np.uint8)
    size = np.zeros(1 << MAX_CODE_LENGTH, dtype=np.uint8)
    for symbol, code, length in zip(table.huffval, table.codes(), table.sizes()):
        lo = code << (MAX_CODE_LENGTH - length)
        hi = (code + 1) << (MAX_CODE_LENGTH - length)
        sym[lo:hi], size[lo:hi] = symbol, length
    return sym, size


def _windows(payload: bytes, width: int) -> np.ndarray:
    """The ``width``-bit window starting at every bit of ``payload`` (padded with 1s)."""
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8)).astype(np.uint32)
    bits = np.concatenate([bits, np.ones(width, dtype=np.uint32)])
    out = np.zeros(len(bits) - width + 1, dtype=np.uint32)
    for b in range(width):
        out = (out << 1) | bits[b:len(bits) - width + 1 + b]
    return out


def decode(data: bytes, count: int, offset: int = 0) -> tuple[np.ndarray, int]:
    """``(symbols, end)``: ``count`` symbols of the stream at ``data[offset:]`` and the
    offset just past it.

    Raises
    ------
    CimcodecError
        A truncated stream, an unknown mode, a bad table or a code not in it.
    """
    try:
        mode = data[offset]
    except IndexError:
        raise CimcodecError("An entropy-coded stream is missing.") from None
    if mode == EMPTY:
        if count:
            raise CimcodecError(f"An empty entropy-coded stream was to hold {count} symbols.")
        return np.zeros(0, dtype=np.int64), offset + 1
    if mode == FIXED:
        if offset + 2 > len(data) or not 1 <= data[offset + 1] <= 8:
            raise CimcodecError("A fixed-width stream has a bad symbol width.")
        width = data[offset + 1]
        nbytes = (count * width + 7) // 8
        start = offset + 2
        if start + nbytes > len(data):
            raise CimcodecError("A fixed-width stream is truncated.")
        bits = np.unpackbits(np.frombuffer(data, np.uint8, nbytes, start))[:count * width]
        weights = 1 << np.arange(width - 1, -1, -1)
        return bits.reshape(count, width).astype(np.int64) @ weights, start + nbytes
    if mode != HUFFMAN:
        raise CimcodecError(f"An entropy-coded stream has the unknown mode {mode}.")
    head = data[offset + 1:offset + 17]
    if len(head) < 16:
        raise CimcodecError("A Huffman stream is truncated in its table.")
    n = sum(head)
    huffval = data[offset + 17:offset + 17 + n]
    if len(huffval) < n:
        raise CimcodecError("A Huffman stream is truncated in its table.")
    table = HuffmanTable(tuple(head), tuple(huffval))   # validates the table
    sym, size = _lookup(table)
    start = offset + 17 + n
    # At most 16 bits a symbol: only that much of the payload can belong to the stream.
    payload = data[start:start + (count * MAX_CODE_LENGTH + 7) // 8]
    windows = _windows(payload, MAX_CODE_LENGTH)
    # Per bit position: the symbol and the length of the code that starts there.
    step, found = size[windows], sym[windows]
    limit = 8 * len(payload)
    where = np.zeros(count, dtype=np.int64)
    pos = 0
    for i in range(count):
        length = int(step[pos]) if pos < limit else 0
        if length == 0 or pos + length > limit:
            raise CimcodecError("A Huffman stream is truncated or holds a code not in its "
                                "table.")
        where[i] = pos
        pos += length
    return found[where].astype(np.int64), start + (pos + 7) // 8


def mean_code_length(symbols) -> float:
    """Bits per symbol of the Huffman code :func:`encode` would use (0 if empty)."""
    s = np.asarray(symbols, dtype=np.int64).reshape(-1)
    if not s.size:
        return 0.0
    return float(code_lengths(huffman_table(s))[s].mean())
