"""cocotb testbench of :class:`hw.markers.MarkerParser` against
:func:`golden.blocks.markers.parse` (jobs built by :func:`tb.markers.job`)."""

import json
import os

import cocotb

from cimcodec.golden.blocks.markers import MarkerShape, parse, payload
from cimcodec.hw.markers import MarkerParser, byte_layout, event_layout
from cimcodec.tb import Bench
from cimcodec.tb.stream import run_jobs

#: The block as the co-simulation runner builds it.
BENCH = Bench("markers", MarkerParser, __name__)


def job(data: bytes, shape: MarkerShape = MarkerShape(), stall_seed=None):
    """The file's bytes up to the one that ends the parse (the parser consumes nothing
    after it), ``last`` on the file's final byte; expected: the golden events, the last
    one ``EOI`` or ``ERROR`` with its code."""
    parsed = parse(data, shape)
    inputs = [{"data": b, "last": int(k == len(data) - 1)}
              for k, b in enumerate(data[:parsed.consumed])]
    return {"inputs": [["i", inputs]],
            "expected": {"o": [payload(e) for e in parsed.events]},
            "stall_seed": stall_seed}


@cocotb.test()
async def markers(dut):
    """Every event equals the golden parser's, in order, ending with EOI or the error."""
    with open(os.environ["CIMCODEC_VECTORS"]) as f:
        MarkerShape(**json.load(f)["shape"])
    await run_jobs(dut, {"i": byte_layout()}, {"o": event_layout()})
