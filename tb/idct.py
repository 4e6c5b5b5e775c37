"""cocotb testbench of :class:`hw.idct.Idct` against :func:`golden.jpeg.dct.idct_islow`."""

import json
import os

import cocotb
import numpy as np

from cimcodec.golden.blocks.idct import IdctShape
from cimcodec.golden.jpeg.dct import idct_islow
from cimcodec.hw.idct import Idct, coef_layout, sample_layout
from cimcodec.tb import Bench
from cimcodec.tb.stream import run_jobs

#: The block as the co-simulation runner builds it.
BENCH = Bench("idct", Idct, __name__)


def job(blocks, qtable, stall_seed=None):
    """Blocks of quantized coefficients (``[n, 64]``, natural order) sent back to back
    with ``qtable``; expected: the golden samples, raster order, ``last`` per block."""
    blocks = np.asarray(blocks, dtype=np.int64).reshape(-1, 64)
    qtable = np.asarray(qtable, dtype=np.int64)
    inputs = [{"coef": int(c), "q": int(q)} for block in blocks for c, q in zip(block, qtable)]
    samples = idct_islow(blocks, qtable).reshape(-1, 64)
    expected = [{"sample": int(v), "last": int(k == 63)}
                for block in samples for k, v in enumerate(block)]
    return {"inputs": [["i", inputs]], "expected": {"o": expected}, "stall_seed": stall_seed}


@cocotb.test()
async def idct(dut):
    """Every sample equals the golden islow IDCT's, in raster order."""
    with open(os.environ["CIMCODEC_VECTORS"]) as f:
        shape = IdctShape(**json.load(f)["shape"])
    await run_jobs(dut, {"i": coef_layout(shape)}, {"o": sample_layout()})
