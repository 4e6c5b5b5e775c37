"""Reference of :class:`cimcodec.hw.idct.Idct`: dequantization, the 8x8 islow inverse
DCT and saturation, block by block.

The arithmetic is :func:`cimcodec.golden.jpeg.dct.idct_islow` (libjpeg's
``jpeg_idct_islow``; formulas in :mod:`cimcodec.golden.jpeg.dct`). :class:`IdctShape`
sizes the hardware's inputs; :meth:`IdctShape.compute` is what the block outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg.dct import idct_islow


@dataclass(frozen=True)
class IdctShape:
    """Input widths: ``coef_bits`` (signed quantized coefficient) and ``q_bits``
    (unsigned quantizer). The defaults, 16 and 15, cover every file the golden decoder
    accepts (16-bit ``JCOEF``, quantizers up to 32767).

    ``dsp``: the butterfly's 12 constant products on DSP multipliers (two each, 24 in
    all); ``False`` builds them as sums of the shifted input, one term per nonzero digit
    of the constant's canonical signed-digit form, in logic (carry chains), for a
    device whose multipliers run out (the 8-lane decompressor). The samples are the
    same either way; the dequantizer's one multiplier stays a DSP.

    ``ports``: independent block streams (1..4) sharing the one butterfly, each with its
    own stores (:class:`hw.idct.Idct`); every port's samples are :meth:`compute` of its
    own blocks."""

    coef_bits: int = 16
    q_bits: int = 15
    dsp: bool = True
    ports: int = 1

    def __post_init__(self):
        if not isinstance(self.dsp, bool):
            raise CimcodecError(f"IDCT dsp must be True or False, not {self.dsp!r}.")
        if isinstance(self.ports, bool) or not isinstance(self.ports, int) \
                or not 1 <= self.ports <= 4:
            raise CimcodecError(f"IDCT ports must be an integer 1..4, not {self.ports!r}.")
        for name, top in (("coef_bits", 16), ("q_bits", 15)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= top:
                raise CimcodecError(
                    f"IDCT {name.replace('_', ' ')} must be an integer 2..{top}, not {value!r}."
                )

    def compute(self, blocks, qtable) -> np.ndarray:
        """The samples ``[n, 64]`` (uint8, raster order within each block) of quantized
        coefficient blocks ``[n, 64]`` (natural order) and their quantizers."""
        blocks = np.asarray(blocks, dtype=np.int64).reshape(-1, 64)
        if blocks.size and (np.abs(blocks).max() >= 1 << (self.coef_bits - 1)):
            raise CimcodecError(
                f"A coefficient does not fit the IDCT's {self.coef_bits} signed bits.")
        return idct_islow(blocks, qtable).reshape(-1, 64)
