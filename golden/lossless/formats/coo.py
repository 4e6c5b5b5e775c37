"""Coordinate list: the nonzero values in row-major order (``values``) with the row
(``rows``) and the column (``cols``) of each."""

from __future__ import annotations

import numpy as np

from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.lossless.base import Cost, Representation


class Coo(Representation):
    name = "coo"
    streams = ("values", "rows", "cols")
    cost = Cost(1, "1", "two index registers of log2(R) and log2(C) bits")

    def split(self, matrix: np.ndarray) -> tuple[bytes, dict]:
        rows, cols = np.nonzero(matrix)
        return b"", {"values": matrix[rows, cols], "rows": rows.astype(np.int64),
                     "cols": cols.astype(np.int64)}

    def join(self, header: bytes, streams: dict, shape: tuple) -> np.ndarray:
        values, rows, cols = streams["values"], streams["rows"], streams["cols"]
        if header or not values.size == rows.size == cols.size:
            raise CimcodecError(f"A coo frame holds {values.size} values with {rows.size} "
                                f"rows and {cols.size} columns.")
        for index, size in ((rows, shape[0]), (cols, shape[1])):
            if index.size and (int(index.min()) < 0 or int(index.max()) >= size):
                raise CimcodecError(f"A coo frame holds an index outside 0..{size - 1}.")
        out = np.zeros(shape, dtype=np.int64)
        out[rows, cols] = values
        return out


ALGORITHMS = (Coo(),)
