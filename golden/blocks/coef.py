"""Coefficient decoder of the RTL decompressor: Huffman symbols in, quantized 8x8 blocks
in natural order with their quantizers out; the stream-level behaviour that
:class:`hw.coef.CoefDecoder` reproduces exactly.

Inputs
------
* The quantization table: the 64 quantizers in zigzag order, as ``DQT`` stores them
  (the hardware takes them as a stream with ``last`` on the final one; a table of any
  other length is a :data:`Error.QTABLE` error and nothing is decoded).
* The symbols of the scan, :func:`golden.blocks.huffman.scan_symbols` symbol for symbol
  (all restart intervals one after the other).
* The restart interval ``Ri`` (``DRI``; 0: none). The symbol stream does not mark
  restart boundaries, so, as libjpeg does, the decoder counts blocks: the DC predictor
  is 0 before the first block and before every ``Ri``-th block after it. An interval
  cut short inside a block shows up here as an :data:`Error.BLOCK` (a DC category in
  the middle of a block); one cut short at a block boundary only shifts the restarts,
  so the decompressor must check that every interval but the last holds exactly ``Ri``
  blocks (it knows where intervals start: it sends their first chunk to the Huffman
  decoder with ``first`` set).

Decoding (T.81 F.2.2, the rules of :func:`golden.jpeg.reference.decode_full`)
-------------------------------------------------------------------
``EXTEND(v, t) = v if v >= 2**(t-1) else v - 2**t + 1`` (0 when ``t = 0``), applied to
each symbol's ``extra`` bits and ``size``.

* DC symbol (``dc``): the category ``t = symbol`` must be 0..11. ``pred`` (0 at a
  restart) ``+= EXTEND(extra, size)``, wrapped to ``coef_bits`` signed bits; zigzag
  coefficient 0 is ``pred``, the next coefficient index is ``k = 1``.
* AC symbol ``RS``, ``R = RS >> 4``, ``S = RS & 15``: ``0x00`` (EOB) ends the block;
  ``0xF0`` (ZRL) skips 16 zeros (``k + 16`` above 64 is a :data:`Error.RUN`); another
  ``S = 0`` symbol is :data:`Error.AC_SYMBOL`; ``S`` above 10 is :data:`Error.AC_SIZE`;
  otherwise ``k += R`` (above 63: :data:`Error.RUN`), zigzag coefficient ``k`` is
  ``EXTEND(extra, size)`` and ``k += 1``. The block ends when ``k`` reaches 64.
* A DC symbol inside a block, or an AC symbol outside one, is :data:`Error.BLOCK`.

Unwritten coefficients are 0. A finished block leaves in natural order
(:data:`golden.jpeg.zigzag.ZIGZAG`), each coefficient with the quantizer of its position.
The block's own end is computed as above; the symbols' ``last`` flags (equal to it on
every stream the Huffman decoder emits) are not used.

Errors: the first error stops decoding for good; the symbol that raised it is consumed,
the block it was in is dropped, the blocks finished before it stand.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from cimcodec.golden.blocks.huffman import BLOCK_SIZE, ScanSymbol
from cimcodec.golden.blocks.idct import IdctShape
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg.zigzag import from_zigzag

#: Largest DC difference category and AC coefficient size of baseline JPEG.
MAX_DC_CATEGORY = 11
MAX_AC_SIZE = 10
#: End of block and zero run length symbols.
EOB, ZRL = 0x00, 0xF0
#: Width of the restart interval (``DRI``) and of the decoder's block counter.
RESTART_BITS = 16


class Error(enum.IntEnum):
    """Error codes (module docstring); ``NONE`` while decoding."""

    NONE = 0
    DC_CATEGORY = 1
    AC_SIZE = 2
    AC_SYMBOL = 3
    RUN = 4
    BLOCK = 5
    QTABLE = 6


@dataclass(frozen=True)
class CoefBlocks:
    """What :func:`decode_blocks` produced.

    Attributes
    ----------
    coefficients : numpy.ndarray of int64, shape ``(blocks, 64)``
        The finished blocks, natural order.
    qtable : numpy.ndarray of int64, shape ``(64,)``
        The quantizers, natural order (zeros after a :data:`Error.QTABLE` error).
    error : Error
    consumed : int
        Symbols taken, the one that raised the error included.
    """

    coefficients: np.ndarray
    qtable: np.ndarray
    error: Error
    consumed: int

    def pairs(self) -> list[list[tuple[int, int]]]:
        """Each block as its 64 ``(coef, q)`` pairs, natural order: the hardware's output."""
        return [[(int(c), int(q)) for c, q in zip(block, self.qtable)]
                for block in self.coefficients]


def extend(value: int, size: int) -> int:
    """``EXTEND(value, size)`` of T.81 F.2.2.1 (0 when ``size`` is 0)."""
    if size == 0 or value >= 1 << (size - 1):
        return value
    return value - (1 << size) + 1


def _wrap(value: int, bits: int) -> int:
    half = 1 << (bits - 1)
    return ((value + half) & ((1 << bits) - 1)) - half


def _check_int(name: str, value, low: int, top: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or not low <= value <= top:
        raise CimcodecError(f"The {name} must be an integer {low}..{top}, not {value!r}.")
    return int(value)


def decode_blocks(symbols, qtable, *, restart_interval: int = 0, coef_bits: int = 16,
                  q_bits: int = 15) -> CoefBlocks:
    """Blocks of the scan's ``symbols`` (:class:`golden.blocks.huffman.ScanSymbol`) with
    the zigzag-order ``qtable``, restart interval ``restart_interval`` (module
    docstring); coefficients wrap to ``coef_bits``, quantizers have ``q_bits``.

    Raises
    ------
    CimcodecError
        A bad parameter, a symbol that is not a ``ScanSymbol`` or a quantizer that does
        not fit in ``q_bits``.
    """
    restart_interval = _check_int("restart interval", restart_interval, 0,
                                  (1 << RESTART_BITS) - 1)
    coef_bits = _check_int("coefficient width", coef_bits, 12, 16)
    q_bits = _check_int("quantizer width", q_bits, 2, 15)
    symbols = list(symbols)
    for s in symbols:
        if not isinstance(s, ScanSymbol):
            raise CimcodecError(f"A symbol must be a ScanSymbol, not {s!r}.")
    qtable = [_check_int("quantizer", q, 0, (1 << q_bits) - 1) for q in qtable]
    none = np.zeros((0, BLOCK_SIZE), dtype=np.int64)
    if len(qtable) != BLOCK_SIZE:
        return CoefBlocks(none, np.zeros(BLOCK_SIZE, np.int64), Error.QTABLE, 0)

    blocks, block, k, pred, left, fresh = [], None, 0, 0, 0, True
    error, consumed = Error.NONE, 0
    for s in symbols:
        consumed += 1
        value = extend(s.extra, s.size)
        done = False
        if s.dc:
            if block is not None:
                error = Error.BLOCK
            elif s.symbol > MAX_DC_CATEGORY:
                error = Error.DC_CATEGORY
            else:
                restart = fresh or (restart_interval and left == 0)
                pred = _wrap((0 if restart else pred) + value, coef_bits)
                left = ((restart_interval if restart else left) - 1) % (1 << RESTART_BITS)
                fresh = False
                block, k = [pred] + [0] * (BLOCK_SIZE - 1), 1
        elif block is None:
            error = Error.BLOCK
        else:
            run, size = s.symbol >> 4, s.symbol & 15
            if size == 0:
                if s.symbol == EOB:
                    done = True
                elif s.symbol != ZRL:
                    error = Error.AC_SYMBOL
                elif k + 16 > BLOCK_SIZE:
                    error = Error.RUN
                else:
                    k += 16
                    done = k == BLOCK_SIZE
            elif size > MAX_AC_SIZE:
                error = Error.AC_SIZE
            elif k + run >= BLOCK_SIZE:
                error = Error.RUN
            else:
                k += run
                block[k] = _wrap(value, coef_bits)
                k += 1
                done = k == BLOCK_SIZE
        if error:
            break
        if done:
            blocks.append(block)
            block = None
    coefficients = from_zigzag(np.array(blocks, dtype=np.int64).reshape(-1, BLOCK_SIZE))
    return CoefBlocks(coefficients, from_zigzag(np.array(qtable, dtype=np.int64)), error,
                      consumed)


@dataclass(frozen=True)
class CoefShape:
    """Output widths: ``coef_bits`` (signed coefficient, 12..16: a DC difference needs
    12) and ``q_bits`` (unsigned quantizer, 2..15). The defaults, 16 and 15, are those
    of :class:`hw.idct.IdctShape` and cover every file the golden decoder accepts."""

    coef_bits: int = 16
    q_bits: int = 15

    def __post_init__(self):
        for name, low, top in (("coef_bits", 12, 16), ("q_bits", 2, 15)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= top:
                raise CimcodecError(
                    f"Coefficient decoder {name.replace('_', ' ')} must be an integer "
                    f"{low}..{top}, not {value!r}."
                )

    @property
    def idct(self) -> IdctShape:
        """The shape of the :class:`hw.idct.Idct` this decoder feeds."""
        return IdctShape(coef_bits=self.coef_bits, q_bits=self.q_bits)
