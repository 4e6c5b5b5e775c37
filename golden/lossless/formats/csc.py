"""Compressed sparse columns with absolute indices, the format of many accelerators
(EIE's weight memory is CSC): the nonzero values column by column (``values``), the row
of each (``rows``), and the column pointers (``colptr``: ``C + 1`` entries from 0).
CSR (:mod:`.csr`) of the transpose.

With the fixed coder an ``R x C`` matrix with ``z`` nonzero values takes, per stream
(:mod:`..coders.fixed`; ``w(x) = bit_length(x)``)::

    values: len(varint(z)) + [z > 0] * (1 + len(svarint(m_v)) + ceil(z * w_v / 8))
    rows:   len(varint(z)) + [z > 0] * (1 + len(svarint(r_min))
                                        + ceil(z * w(r_max - r_min) / 8))
    colptr: len(varint(C + 1)) + 1 + 1 + ceil((C + 1) * w(z) / 8)      (base 0)
"""

from __future__ import annotations

import numpy as np

from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.lossless.base import Cost, Representation
from cimcodec.golden.lossless.formats.csr import compress_rows, expand_rows


class Csc(Representation):
    name = "csc"
    streams = ("values", "rows", "colptr")
    cost = Cost(1, "1", "a column counter and a pointer register; log2(R)-bit indices")

    def split(self, matrix: np.ndarray) -> tuple[bytes, dict]:
        values, rows, colptr = compress_rows(matrix.T)
        return b"", {"values": values, "rows": rows, "colptr": colptr}

    def join(self, header: bytes, streams: dict, shape: tuple) -> np.ndarray:
        if header:
            raise CimcodecError("A csc frame has an unexpected header.")
        return expand_rows(streams["values"], streams["rows"], streams["colptr"],
                           shape[::-1], "csc").T

    def limits(self, shape: tuple) -> dict:
        return {"values": shape[0] * shape[1], "rows": shape[0] * shape[1],
                "colptr": shape[1] + 1}


ALGORITHMS = (Csc(),)
