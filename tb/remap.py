"""cocotb testbench of :class:`hw.remap.RemapEngine` (control-word generator feeding the
remap unit) against :class:`golden.blocks.remap.RemapParams`."""

import json
import os

import cocotb
import numpy as np

from cimcodec.golden.blocks.remap import RemapShape, block_order
from cimcodec.hw.lfsr import config_layout
from cimcodec.hw.remap import RemapEngine, coord_layout, remap_config_layout
from cimcodec.tb import Bench
from cimcodec.tb.stream import run_jobs

#: The block as the co-simulation runner builds it.
BENCH = Bench("remap", RemapEngine, __name__)


def job(shape: RemapShape, params, data=None, stall_seed=None):
    """Coded positions of ``params``'s padded grid in JPEG block order, each carrying
    ``data`` (default: a position hash); expected: the golden inverse remap."""
    r2, c2 = block_order(params.padded_rows, params.padded_cols)
    if data is None:
        data = (r2 * 31 + c2 * 7) % (1 << shape.data_width)
    r, c = params.inverse(r2, c2)
    keep = (r < params.rows) & (c < params.cols)
    inputs = [{"row": int(a), "col": int(b), "data": int(d)} for a, b, d in zip(r2, c2, data)]
    expected = [{"row": int(a), "col": int(b), "data": int(d)}
                for a, b, d in zip(r[keep], c[keep], np.asarray(data)[keep])]
    generator = shape.generator_config(params)
    return {
        "setup": {"cfg": shape.config(params)},
        "inputs": ([["gen_cfg", [generator]]] if generator else []) + [["i", inputs]],
        "expected": {"o": expected},
        "stall_seed": stall_seed,
    }


@cocotb.test()
async def remap(dut):
    """Original-order coordinates equal the golden inverse remap, padding dropped."""
    with open(os.environ["CIMCODEC_VECTORS"]) as f:
        shape = RemapShape(**json.load(f)["shape"])
    await run_jobs(dut,
                   {"gen_cfg": config_layout(shape.generator_shape()), "i": coord_layout(shape)},
                   {"o": coord_layout(shape)},
                   plain={"cfg": remap_config_layout(shape)})
