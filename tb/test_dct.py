"""cocotb testbench of :class:`hw.dct.Idct` against :func:`golden.dct.idct_islow`."""

import json
import os

import cocotb
import numpy as np

from golden.dct import idct_islow
from hw.dct import Idct, IdctShape, coef_layout, sample_layout
from sim.cocotb_run import Bench

from .stream import run_jobs

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
