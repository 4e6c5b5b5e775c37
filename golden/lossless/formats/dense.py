"""Dense: every element in row-major order, one stream ``values``; the sparsity is left
to the coder."""

from __future__ import annotations

import numpy as np

from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.lossless.base import Cost, Representation


class Dense(Representation):
    name = "dense"
    streams = ("values",)
    cost = Cost(0, "1", "none: values arrive in matrix order")

    def split(self, matrix: np.ndarray) -> tuple[bytes, dict]:
        return b"", {"values": matrix.reshape(-1)}

    def join(self, header: bytes, streams: dict, shape: tuple) -> np.ndarray:
        values = streams["values"]
        if header or values.size != shape[0] * shape[1]:
            raise CimcodecError(f"A dense frame holds {values.size} values for a "
                                f"{shape[0]}x{shape[1]} matrix.")
        return values.reshape(shape)


ALGORITHMS = (Dense(),)
