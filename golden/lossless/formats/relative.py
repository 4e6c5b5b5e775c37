"""Deep Compression's relative-index form (Han et al., ICLR 2016, Fig. 2;
:func:`cimcodec.golden.codec.deep.sparse_indices`): the nonzero values of the row-major
flattened matrix (``values``), each with the gap of zeros before it in ``r`` bits
(``gaps``); a gap above ``2**r - 1`` gets filler entries (value 0, gap ``2**r - 1``).

Header: ``<B r>``, the width in 1..16 that minimises ``entries(r) * (r + w_v)`` (the
fixed-width size; ``w_v`` the bit width of the values' range), so the form does not
depend on the coder after it.
"""

from __future__ import annotations

import numpy as np

from cimcodec.golden.codec import deep
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.lossless.base import Cost, Representation, bit_width

WIDTHS = range(1, 17)


class Relative(Representation):
    name = "rel"
    streams = ("values", "gaps")
    cost = Cost(1, "1", "an r-bit gap adder (position accumulator); no index memory")

    def split(self, matrix: np.ndarray) -> tuple[bytes, dict]:
        flat = matrix.reshape(-1)
        positions = np.flatnonzero(flat)
        gaps = np.diff(positions, prepend=-1) - 1
        nonzero = flat[positions]
        w = bit_width(int(max(nonzero.max(initial=0), 0)) - int(min(nonzero.min(initial=0), 0)))
        r = min(WIDTHS, key=lambda r: (positions.size + int((gaps >> r).sum())) * (r + w))
        values, gaps = deep.sparse_indices(flat, r)
        return bytes([r]), {"values": values, "gaps": gaps}

    def join(self, header: bytes, streams: dict, shape: tuple) -> np.ndarray:
        values, gaps = streams["values"], streams["gaps"]
        n = shape[0] * shape[1]
        if len(header) != 1 or header[0] not in WIDTHS:
            raise CimcodecError("A rel frame has a bad index width.")
        r = header[0]
        if values.size != gaps.size or (gaps.size and (
                int(gaps.min()) < 0 or int(gaps.max()) >= 1 << r)):
            raise CimcodecError(f"A rel frame holds {values.size} values and {gaps.size} "
                                f"gaps of {r} bits.")
        positions = deep.positions_of(gaps)
        if positions.size and int(positions[-1]) >= n:
            raise CimcodecError(f"A rel frame points past its {n} elements.")
        out = np.zeros(n, dtype=np.int64)
        out[positions] = values
        return out.reshape(shape)


ALGORITHMS = (Relative(),)
