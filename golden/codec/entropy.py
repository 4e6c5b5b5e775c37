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

Both directions work a piece at a time: :class:`Writer` takes the symbol counts of the
whole stream (which fix the mode and the table) and then the symbols in pieces, packing
the whole bytes of each piece and carrying the rest; :func:`decode` builds the window
table for :data:`WINDOW_BITS` bit positions at a time. The bytes and symbols do not
depend on the pieces.
"""

from __future__ import annotations

import numpy as np

from cimcodec.golden.codec import chunks
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg.huffman import MAX_CODE_LENGTH, HuffmanTable

FIXED, HUFFMAN, EMPTY = 0, 1, 2
#: Bit positions per piece of the Huffman decoder's window tables (a multiple of 8).
WINDOW_BITS = 1 << 20


def _bits(codes, lengths) -> np.ndarray:
    """``codes[i]`` in ``lengths[i]`` bits (0..32 each), MSB first, back to back: one
    uint8 per bit."""
    codes = np.asarray(codes, dtype=np.uint64)
    lengths = np.asarray(lengths, dtype=np.int64)
    bits = np.ones(int(lengths.sum()), dtype=np.uint8)
    start = np.cumsum(lengths) - lengths
    for b in range(int(lengths.max(initial=0))):
        take = lengths > b
        shift = (lengths[take] - 1 - b).astype(np.uint64)
        bits[start[take] + b] = (codes[take] >> shift) & np.uint64(1)
    return bits


def pack_bits(codes, lengths) -> bytes:
    """``codes[i]`` in ``lengths[i]`` bits (0..32 each), MSB first, back to back; the
    last byte padded with 1 bits."""
    bits = _bits(codes, lengths)
    return np.packbits(np.concatenate([bits, np.ones(-bits.size % 8, dtype=np.uint8)])).tobytes()


def huffman_table(symbols) -> HuffmanTable:
    """The optimal table for the symbol counts of ``symbols`` (values 0..255)."""
    return HuffmanTable.from_frequencies(np.bincount(symbols, minlength=256).tolist())


def code_lengths(table: HuffmanTable) -> np.ndarray:
    """Code length of each of the 256 symbols under ``table`` (0: no code)."""
    out = np.zeros(256, dtype=np.int64)
    for symbol, (_, size) in table.encoder().items():
        out[symbol] = size
    return out


def _check_width(width) -> None:
    if not 1 <= width <= 8:
        raise CimcodecError(f"Symbol width must be 1..8 bits, not {width}.")


class Writer:
    """One stream written a piece at a time (module docstring): its mode and table are
    chosen from the symbol ``counts`` of the whole stream (Huffman, or ``width`` bits a
    symbol when ``huffman`` is false or that is shorter), then :meth:`add` codes the
    symbols in order, packing every whole byte at once and carrying the last few bits,
    and :meth:`finish` gives the stream's bytes."""

    def __init__(self, counts, *, huffman: bool = True, width: int = 8):
        _check_width(width)
        counts = np.asarray(counts, dtype=np.int64)
        if counts[1 << width:].any():
            raise CimcodecError(f"Symbols must be 0..{(1 << width) - 1}.")
        counts = np.pad(counts[:256], (0, 256 - min(256, counts.size)))
        self.carry = np.zeros(0, dtype=np.uint8)
        n = int(counts.sum())
        if not n:
            self.parts, self.codes = [bytes([EMPTY])], None
            return
        self.parts = [bytes([FIXED, width])]
        self.codes, self.lengths = np.arange(256), np.full(256, width)
        if not huffman:
            return
        table = HuffmanTable.from_frequencies(counts.tolist())
        codes, lengths = np.zeros(256, dtype=np.int64), code_lengths(table)
        for symbol, (code, _) in table.encoder().items():
            codes[symbol] = code
        head = bytes([HUFFMAN]) + table.to_bytes()
        coded_bytes = (int((counts * lengths).sum()) + 7) // 8
        if len(head) + coded_bytes < 2 + (n * width + 7) // 8:
            self.parts, self.codes, self.lengths = [head], codes, lengths

    def add(self, symbols) -> None:
        """Code the next symbols of the stream (counted in ``counts``)."""
        s = np.asarray(symbols).reshape(-1)
        if not s.size:
            return
        bits = np.concatenate([self.carry, _bits(self.codes[s], self.lengths[s])])
        whole = len(bits) - len(bits) % 8
        self.parts.append(np.packbits(bits[:whole]).tobytes())
        self.carry = bits[whole:]

    def finish(self) -> bytes:
        """The stream: its header and the symbols, the last byte padded with 1 bits."""
        tail = np.concatenate([self.carry, np.ones(-len(self.carry) % 8, np.uint8)])
        return b"".join(self.parts + [np.packbits(tail).tobytes()])


def encode(symbols, *, huffman: bool = True, width: int = 8) -> bytes:
    """``symbols`` (ints 0..2**width-1) as a stream (module docstring): Huffman-coded, or
    ``width`` bits each when ``huffman`` is false or when that is shorter."""
    s = np.asarray(symbols, dtype=np.int64).reshape(-1)
    _check_width(width)
    if s.size and (s.min() < 0 or s.max() >= 1 << width):
        raise CimcodecError(f"Symbols must be 0..{(1 << width) - 1}.")
    writer = Writer(np.bincount(s, minlength=256), huffman=huffman, width=width)
    writer.add(s)
    return writer.finish()


def _lookup(table: HuffmanTable) -> tuple[np.ndarray, np.ndarray]:
    """(symbol, length) of every 16-bit window; length 0 where no code matches."""
    sym = np.zeros(1 << MAX_CODE_LENGTH, dtype=np.uint8)
    size = np.zeros(1 << MAX_CODE_LENGTH, dtype=np.uint8)
    for symbol, code, length in zip(table.huffval, table.codes(), table.sizes()):
        lo = code << (MAX_CODE_LENGTH - length)
        hi = (code + 1) << (MAX_CODE_LENGTH - length)
        sym[lo:hi], size[lo:hi] = symbol, length
    return sym, size


def _windows(payload: np.ndarray, first: int, count: int) -> np.ndarray:
    """The 16-bit window starting at bits ``first .. first + count - 1`` of ``payload``
    (uint8; ``first`` and ``count`` multiples of 8), the bits past its end taken as 1."""
    byte = first // 8
    part = payload[byte:byte + count // 8 + 2]
    part = np.concatenate([part, np.full(count // 8 + 2 - len(part), 0xFF, np.uint8)])
    word = (part[:-2].astype(np.uint32) << 16) | (part[1:-1].astype(np.uint32) << 8) \
        | part[2:]
    shifts = np.arange(8, 0, -1, dtype=np.uint32)
    return ((word[:, None] >> shifts) & 0xFFFF).reshape(-1)


def decode(data: bytes, count: int, offset: int = 0) -> tuple[np.ndarray, int]:
    """``(symbols, end)``: ``count`` symbols (uint8) of the stream at ``data[offset:]``
    and the offset just past it.

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
        return np.zeros(0, dtype=np.uint8), offset + 1
    if mode == FIXED:
        if offset + 2 > len(data) or not 1 <= data[offset + 1] <= 8:
            raise CimcodecError("A fixed-width stream has a bad symbol width.")
        width = data[offset + 1]
        nbytes = (count * width + 7) // 8
        start = offset + 2
        if start + nbytes > len(data):
            raise CimcodecError("A fixed-width stream is truncated.")
        weights = 1 << np.arange(width - 1, -1, -1)
        out = np.empty(count, dtype=np.uint8)
        # Pieces of a multiple of 8 symbols start on a byte.
        for a, b in chunks.spans(count, 8 * max(1, chunks.ELEMENTS // 8)):
            bits = np.unpackbits(np.frombuffer(data, np.uint8, ((b - a) * width + 7) // 8,
                                               start + a * width // 8))[:(b - a) * width]
            out[a:b] = bits.reshape(b - a, width) @ weights
        return out, start + nbytes
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
    payload = np.frombuffer(data, np.uint8, min(len(data) - start,
                                                (count * MAX_CODE_LENGTH + 7) // 8), start)
    limit = 8 * len(payload)
    out = np.empty(count, dtype=np.uint8)
    pos = done = 0
    for first in range(0, limit, WINDOW_BITS):
        if done == count:
            break
        # (Only the piece's bit positions inside the payload: a short stream builds a
        # short table, not WINDOW_BITS windows.)
        windows = _windows(payload, first, min(WINDOW_BITS, limit - first))
        # Per bit position: the length and the symbol of the code that starts there.
        steps, found = size[windows].tobytes(), sym[windows].tobytes()
        got = bytearray()
        append, todo = got.append, count - done
        i, stop, room = pos - first, min(WINDOW_BITS, limit - first), limit - first
        while i < stop:
            length = steps[i]
            if not length or i + length > room:
                break
            append(found[i])
            i += length
            todo -= 1
            if not todo:
                break
        out[done:done + len(got)] = np.frombuffer(got, dtype=np.uint8)
        done, pos = done + len(got), first + i
        if todo and i < stop:
            break                   # a code not in the table, or one past the payload
    if done < count:
        raise CimcodecError("A Huffman stream is truncated or holds a code not in its "
                            "table.")
    return out, start + (pos + 7) // 8


def mean_code_length(symbols) -> float:
    """Bits per symbol of the Huffman code :func:`encode` would use (0 if empty)."""
    s = np.asarray(symbols, dtype=np.int64).reshape(-1)
    if not s.size:
        return 0.0
    return float(code_lengths(huffman_table(s))[s].mean())
