"""Zigzag order of the 64 coefficients of an 8x8 DCT block (ITU T.81 Figure A.6).

A block in *natural order* is the row-major 8x8 array ``F[v, u]`` flattened to
``F[8*v + u]`` (``v``: vertical frequency, row; ``u``: horizontal frequency, column).
The entropy coder and the DQT segment send the coefficients in *zigzag order*, which
walks the anti-diagonals ``s = u + v = 0, 1, ..., 14`` alternately::

    s even: from (v=s, u=0) up-right to (v=0, u=s)   (clipped to the 8x8 square)
    s odd:  from (v=0, u=s) down-left to (v=s, u=0)

:data:`ZIGZAG` maps zigzag position ``k`` to natural index ``n = ZIGZAG[k]``, and
:data:`NATURAL` is its inverse (``NATURAL[ZIGZAG[k]] == k``), so for any batch of blocks
``z = to_zigzag(b)`` means ``z[..., k] == b[..., ZIGZAG[k]]``.
"""

from __future__ import annotations

import numpy as np

from cimcodec.golden.errors import CimcodecError

#: Zigzag position k -> natural (row-major) index 8*v + u, T.81 Figure A.6.
ZIGZAG = np.array([
    0, 1, 8, 16, 9, 2, 3, 10,
    17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34,
    27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36,
    29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46,
    53, 60, 61, 54, 47, 55, 62, 63,
], dtype=np.intp)
ZIGZAG.setflags(write=False)

#: Natural index 8*v + u -> zigzag position k (the inverse permutation of ZIGZAG).
NATURAL = np.argsort(ZIGZAG)
NATURAL.setflags(write=False)


def zigzag_walk() -> np.ndarray:
    """The zigzag order computed from its definition (anti-diagonal walk), for checking
    :data:`ZIGZAG`; returns natural indices in zigzag order."""
    order = []
    for s in range(15):
        cells = [(v, s - v) for v in range(8) if 0 <= s - v < 8]  # v ascending
        if s % 2 == 0:
            cells.reverse()  # even diagonals run from the bottom-left up
        order += [8 * v + u for v, u in cells]
    return np.array(order, dtype=np.intp)


def _check_blocks(blocks) -> np.ndarray:
    blocks = np.asarray(blocks)
    if blocks.ndim < 1 or blocks.shape[-1] != 64:
        raise CimcodecError(
            f"Blocks must have 64 coefficients on their last axis, not shape {blocks.shape}."
        )
    return blocks


def to_zigzag(blocks) -> np.ndarray:
    """Reorder natural-order blocks (last axis 64) to zigzag order:
    ``out[..., k] = blocks[..., ZIGZAG[k]]``."""
    return _check_blocks(blocks)[..., ZIGZAG]


def from_zigzag(blocks) -> np.ndarray:
    """Reorder zigzag-order blocks (last axis 64) to natural order:
    ``out[..., n] = blocks[..., NATURAL[n]]``."""
    return _check_blocks(blocks)[..., NATURAL]
