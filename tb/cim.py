"""cocotb testbench of :class:`hw.cim.CimArray` against :class:`golden.blocks.cim.CimParams`
(jobs built by :func:`tb.cim.jobs`)."""

import json
import os

import cocotb
import numpy as np

from cimcodec.golden.blocks.cim import CimParams
from cimcodec.hw.cim import CimArray, act_layout, result_layout, weight_layout
from cimcodec.tb import Bench
from cimcodec.tb.stream import run_jobs

#: The block as the co-simulation runner builds it.
BENCH = Bench("cim", CimArray, __name__)


def weight_writes(weights, order=None, width=1) -> list:
    """``w`` payloads that load ``weights`` (shape ``(R, C)``), ``width`` adjacent cells
    of a row per write (``CimParams.writes_per_clock``), write by write in ``order``
    (flat row-major indices of the writes; default row-major)."""
    weights = np.asarray(weights)
    groups = weights.reshape(weights.shape[0], -1, width)
    count = groups.shape[1]
    out = []
    for k in (range(groups.shape[0] * count) if order is None else order):
        row, g = divmod(int(k), count)
        values = [int(v) for v in groups[row, g]]
        out.append({"row": row, "col": g * width,
                    "weight": values[0] if width == 1 else values})
    return out


def jobs(params: CimParams, cases, stall_seeds=(None,), rng=None):
    """A job per case and stall seed. A case is a list of phases ``(weights, acts)``:
    each loads its weights through ``w`` (in a shuffled order when ``rng`` is given),
    then streams its activation vectors through ``a``; expected on ``o`` are the
    golden results of every phase, in order."""
    out = []
    for phases in cases:
        inputs, expected = [], []
        for weights, acts in phases:
            width = params.writes_per_clock
            order = None if rng is None else rng.permutation(np.size(weights) // width)
            inputs.append(["w", weight_writes(weights, order, width)])
            inputs.append(["a", np.asarray(acts).tolist()])
            expected += params.compute(weights, acts).tolist()
        for seed in stall_seeds:
            out.append({"inputs": inputs, "expected": {"o": expected}, "stall_seed": seed})
    return out


@cocotb.test()
async def cim_array(dut):
    """Every vector's results equal the golden model's, in order."""
    with open(os.environ["CIMCODEC_VECTORS"]) as f:
        params = CimParams(**json.load(f)["shape"])
    await run_jobs(dut, {"w": weight_layout(params), "a": act_layout(params)},
                   {"o": result_layout(params)})
