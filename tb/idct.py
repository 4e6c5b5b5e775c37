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
    return ports_job([(blocks, qtable)], stall_seed)


def port_names(ports):
    """The Verilog stream names of each port's input and output: ``i``/``o`` with one
    port, ``i__k``/``o__k`` with several."""
    if ports == 1:
        return [("i", "o")]
    return [(f"i__{k}", f"o__{k}") for k in range(ports)]


def ports_job(streams, stall_seed=None):
    """One ``(blocks, qtable)`` per port of an ``IdctShape(ports=len(streams))``, all
    ports driven at once (each with its own stalls); expected: each port's golden
    samples on its own output."""
    inputs, expected = [], {}
    for (blocks, qtable), (i, o) in zip(streams, port_names(len(streams)), strict=True):
        blocks = np.asarray(blocks, dtype=np.int64).reshape(-1, 64)
        qtable = np.asarray(qtable, dtype=np.int64)
        inputs.append([i, [{"coef": int(c), "q": int(q)}
                           for block in blocks for c, q in zip(block, qtable)]])
        samples = idct_islow(blocks, qtable).reshape(-1, 64)
        expected[o] = [{"sample": int(v), "last": int(k == 63)}
                       for block in samples for k, v in enumerate(block)]
    return {"inputs": inputs, "expected": expected, "stall_seed": stall_seed,
            "together": True}


@cocotb.test()
async def idct(dut):
    """Every sample equals the golden islow IDCT's, in raster order, on every port."""
    with open(os.environ["CIMCODEC_VECTORS"]) as f:
        shape = IdctShape(**json.load(f)["shape"])
    names = port_names(shape.ports)
    await run_jobs(dut, {i: coef_layout(shape) for i, _ in names},
                   {o: sample_layout() for _, o in names}, extra=_spans)


def _spans(sources, checkers):
    """Each output's clocks of its first and last transfer (``spans``)."""
    return {"spans": {p: [c.cycles[0], c.cycles[-1]] if c.cycles else None
                      for p, c in checkers.items()}}
