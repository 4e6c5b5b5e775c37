"""cocotb testbench of :class:`hw.lfsr.ControlWordGenerator` against
:class:`golden.blocks.lfsr.ControlWords` (jobs built by :func:`tb.lfsr.jobs`)."""

import json
import os

import cocotb

from cimcodec.golden.blocks.lfsr import GeneratorShape
from cimcodec.hw.lfsr import ControlWordGenerator, config_layout, word_layout
from cimcodec.tb import Bench
from cimcodec.tb.stream import run_jobs

#: The block as the co-simulation runner builds it.
BENCH = Bench("lfsr", ControlWordGenerator, __name__)


def jobs(shape: GeneratorShape, cases, stall_seeds=(None,)):
    """A job per (ControlWords, count) case and stall seed, with the golden words."""
    out = []
    for words, count in cases:
        golden = words.words(count).tolist()
        expected = [{"word": w, "last": int(i == count - 1)} for i, w in enumerate(golden)]
        for seed in stall_seeds:
            out.append({"inputs": [["cfg", [words.config(shape, count)]]],
                        "expected": {"o": expected}, "stall_seed": seed})
    return out


@cocotb.test()
async def control_words(dut):
    """Every job's words equal the golden model's, in order, with ``last`` on the end."""
    with open(os.environ["CIMCODEC_VECTORS"]) as f:
        shape = GeneratorShape(**json.load(f)["shape"])
    await run_jobs(dut, {"cfg": config_layout(shape)}, {"o": word_layout(shape)})
