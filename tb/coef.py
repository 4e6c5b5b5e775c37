"""cocotb testbench of :class:`hw.coef.CoefDecoder` against
:func:`golden.blocks.coef.decode_blocks` (jobs built by :func:`tb.coef.job`)."""

import dataclasses
import json
import os

import cocotb

from cimcodec.golden.blocks.coef import RESTART_BITS, CoefShape, decode_blocks
from cimcodec.hw.coef import CoefDecoder, qtable_layout
from cimcodec.hw.huffman import symbol_layout
from cimcodec.hw.idct import coef_layout
from cimcodec.tb import Bench
from cimcodec.tb.stream import run_jobs

#: The block as the co-simulation runner builds it.
BENCH = Bench("coef", CoefDecoder, __name__)


def qtable_payloads(qtable):
    """The ``qtable`` stream payloads of the zigzag-order quantizers, ``last`` on the
    final one."""
    return [{"q": int(q), "last": int(i == len(qtable) - 1)} for i, q in enumerate(qtable)]


def symbol_payloads(symbols):
    """The ``sym`` stream payloads of :class:`golden.blocks.huffman.ScanSymbol` items."""
    return [{k: int(v) for k, v in dataclasses.asdict(s).items()} for s in symbols]


def expected_coefs(symbols, qtable, restart_interval, shape: CoefShape):
    """The golden result and its ``o`` payloads, natural order block after block."""
    result = decode_blocks(symbols, qtable, restart_interval=restart_interval,
                           coef_bits=shape.coef_bits, q_bits=shape.q_bits)
    return result, [{"coef": c, "q": q} for block in result.pairs() for c, q in block]


def job(symbols, qtable, shape: CoefShape, *, restart_interval=0, stall_seed=None):
    """Load ``qtable`` (zigzag order), then send ``symbols``. Symbols after one that
    raises an error are left out: the decoder stops taking them."""
    result, expected = expected_coefs(symbols, qtable, restart_interval, shape)
    return {
        "setup": {"restart_interval": restart_interval},
        "inputs": [["qtable", qtable_payloads(qtable)],
                   ["sym", symbol_payloads(symbols[:result.consumed])]],
        "expected": {"o": expected},
        "stall_seed": stall_seed,
    }


@cocotb.test()
async def coef(dut):
    """Every coefficient and quantizer equals the golden model's, in natural order."""
    with open(os.environ["CIMCODEC_VECTORS"]) as f:
        shape = CoefShape(**json.load(f)["shape"])
    await run_jobs(dut, {"qtable": qtable_layout(shape), "sym": symbol_layout()},
                   {"o": coef_layout(shape.idct)}, plain={"restart_interval": RESTART_BITS})
