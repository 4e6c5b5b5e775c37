"""Bitmap + values: one 0/1 flag per element (row-major, 1 for a nonzero) in stream
``bitmap``, and the nonzero values in row-major order in stream ``values``.

With the fixed coder, an ``R x C`` matrix (``n = RC``) with ``z`` nonzero values of
frame width ``w_v`` takes, per stream (:mod:`..coders.fixed`)::

    bitmap: len(varint(n)) + 1 + 1 + ceil(n * [0 < z < n] / 8)     (w = 1, or 0 when
            the flags are all equal; base 0 or 1 is one varint byte)
    values: len(varint(z)) + [z > 0] * (1 + len(svarint(m_v)) + ceil(z * w_v / 8))
"""

from __future__ import annotations

import numpy as np

from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.lossless.base import Cost, Representation


class Bitmap(Representation):
    name = "bitmap"
    streams = ("bitmap", "values")
    cost = Cost(1, "1 (a popcount gives the value address of any element)",
                "a value pointer; one flag a weight")

    def split(self, matrix: np.ndarray) -> tuple[bytes, dict]:
        flat = matrix.reshape(-1)
        mask = flat != 0
        return b"", {"bitmap": mask.astype(np.int64), "values": flat[mask]}

    def join(self, header: bytes, streams: dict, shape: tuple) -> np.ndarray:
        bitmap, values = streams["bitmap"], streams["values"]
        n = shape[0] * shape[1]
        if header or bitmap.size != n or (bitmap.size and (
                int(bitmap.min()) < 0 or int(bitmap.max()) > 1)):
            raise CimcodecError(f"A bitmap frame does not hold one 0/1 flag for each of "
                                f"its {n} elements.")
        mask = bitmap.astype(bool)
        if int(mask.sum()) != values.size:
            raise CimcodecError(f"A bitmap frame flags {int(mask.sum())} nonzero values "
                                f"and holds {values.size}.")
        out = np.zeros(n, dtype=np.int64)
        out[mask] = values
        return out.reshape(shape)


ALGORITHMS = (Bitmap(),)
