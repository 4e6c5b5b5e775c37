"""Delta coding of adjacent values: the row-major flattened matrix ``x`` becomes
``d[0] = x[0]``, ``d[i] = x[i] - x[i-1]`` (modulo ``2**32`` into the signed 32-bit
range, as a 32-bit adder wraps), in the matrix's shape; the inverse is the running sum,
wrapped the same way. Applied before any representation (``delta-<representation>``)."""

from __future__ import annotations

import numpy as np

from cimcodec.golden.lossless.base import Cost, Transform, wrap32


class Delta(Transform):
    name = "delta"
    cost = Cost(0, "1", "one accumulator of the value width")

    def forward(self, matrix: np.ndarray) -> np.ndarray:
        flat = matrix.reshape(-1)
        return wrap32(np.diff(flat, prepend=0)).reshape(matrix.shape)

    def inverse(self, matrix: np.ndarray) -> np.ndarray:
        return wrap32(np.cumsum(matrix.reshape(-1))).reshape(matrix.shape)


ALGORITHMS = (Delta(),)
