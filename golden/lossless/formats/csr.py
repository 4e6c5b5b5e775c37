"""Compressed sparse rows with absolute indices: the nonzero values row by row
(``values``), the column of each (``cols``, ``0..C-1``), and the row pointers
(``rowptr``: ``R + 1`` entries, ``rowptr[0] = 0``, row ``i`` holds entries
``rowptr[i] .. rowptr[i+1] - 1``).

With the fixed coder an ``R x C`` matrix with ``z`` nonzero values takes, per stream
(:mod:`..coders.fixed`; ``w(x) = bit_length(x)``)::

    values: len(varint(z)) + [z > 0] * (1 + len(svarint(m_v)) + ceil(z * w_v / 8))
    cols:   len(varint(z)) + [z > 0] * (1 + len(svarint(c_min))
                                        + ceil(z * w(c_max - c_min) / 8))
    rowptr: len(varint(R + 1)) + 1 + 1 + ceil((R + 1) * w(z) / 8)      (base 0)
"""

from __future__ import annotations

import numpy as np

from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.lossless.base import Cost, Representation


def compress_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(values, columns, pointers)`` of ``matrix`` in CSR (module docstring)."""
    rows, cols = np.nonzero(matrix)
    counts = np.bincount(rows, minlength=matrix.shape[0])
    return matrix[rows, cols], cols.astype(np.int64), np.concatenate(
        [[0], np.cumsum(counts)]).astype(np.int64)


def expand_rows(values, columns, pointers, shape: tuple, what: str) -> np.ndarray:
    """The ``shape`` matrix of CSR streams; raises a sentence naming ``what`` when they
    do not describe one."""
    rows, cols = shape
    z = values.size
    if (pointers.size != rows + 1 or columns.size != z or int(pointers[0]) != 0
            or int(pointers[-1]) != z or np.any(np.diff(pointers) < 0)):
        raise CimcodecError(f"A {what} frame's pointers do not describe its {z} values in "
                            f"{rows} lines.")
    if z and (int(columns.min()) < 0 or int(columns.max()) >= cols):
        raise CimcodecError(f"A {what} frame holds an index outside 0..{cols - 1}.")
    out = np.zeros(shape, dtype=np.int64)
    out[np.repeat(np.arange(rows), np.diff(pointers)), columns] = values
    return out


class Csr(Representation):
    name = "csr"
    streams = ("values", "cols", "rowptr")
    cost = Cost(1, "1", "a row counter and a pointer register; log2(C)-bit indices")

    def split(self, matrix: np.ndarray) -> tuple[bytes, dict]:
        values, cols, rowptr = compress_rows(matrix)
        return b"", {"values": values, "cols": cols, "rowptr": rowptr}

    def join(self, header: bytes, streams: dict, shape: tuple) -> np.ndarray:
        if header:
            raise CimcodecError("A csr frame has an unexpected header.")
        return expand_rows(streams["values"], streams["cols"], streams["rowptr"], shape,
                           "csr")

    def limits(self, shape: tuple) -> dict:
        return {"values": shape[0] * shape[1], "cols": shape[0] * shape[1],
                "rowptr": shape[0] + 1}


ALGORITHMS = (Csr(),)
