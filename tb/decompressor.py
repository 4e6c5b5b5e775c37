"""cocotb testbench of :class:`hw.decompressor.Decompressor` against
:func:`golden.blocks.decompressor.expected` (jobs built by :func:`tb.decompressor.job`),
through :func:`tb.stream.run_jobs`.

The output of a job is read up to its status event (``end = 1``), so corrupt files,
whose sample count is not known, end too; the bytes the decoder has not taken by then
are not sent. A job whose ``expected`` output is set is checked in order, status event
included; the results file gets every output, the clock counts of
:mod:`tb.stream`, the clock of the last sample (``last_sample_clock``, 0 if none) and
that of the last byte the decoder took (``last_byte_clock``).
"""

import json
import os

import cocotb

from cimcodec.golden.blocks.decompressor import DecompressorShape, expected
from cimcodec.hw.decompressor import Decompressor, output_layout
from cimcodec.hw.markers import byte_layout
from cimcodec.tb import Bench
from cimcodec.tb.stream import run_jobs

#: The block as the co-simulation runner builds it.
BENCH = Bench("decompressor", Decompressor, __name__)


def byte_payloads(data: bytes) -> list:
    """The ``i`` payloads of a file, ``last`` on its final byte."""
    return [{"data": b, "last": int(k == len(data) - 1)} for k, b in enumerate(data)]


def sample(row, col, value) -> dict:
    """An ``o`` payload carrying a sample."""
    return {"row": row, "col": col, "sample": value, "end": 0, "error": 0, "code": 0}


def status() -> dict:
    """The final status event of a file decoded without error."""
    return {"row": 0, "col": 0, "sample": 0, "end": 1, "error": 0, "code": 0}


def job(data: bytes, shape: DecompressorShape, *, raw: bool = False, stall_seed=None,
        check=True, bursty=False) -> dict:
    """Set ``raw``, then send the file: nothing else (a container's metadata is read by
    the hardware). ``check``: compare with the golden stream (files the golden model
    accepts); otherwise only collect. ``error``: the golden model's code.
    ``stall_seed``: random input stalls and output backpressure, the latter in long
    runs (:func:`tb.stream.bursty_pauses`) when ``bursty``."""
    want = expected(data, shape, raw=raw)
    out = None
    if check and want.samples is not None:
        out = [sample(*s) for s in want.samples] + [status()]
    return {"setup": {"raw": int(bool(raw))}, "inputs": [["i", byte_payloads(data)]],
            "expected": {"o": out}, "error": int(want.error), "stall_seed": stall_seed,
            "bursty": bool(bursty)}


def _clocks(sources, checkers) -> dict:
    out = checkers["o"]
    return {"last_sample_clock": max((c for item, c in zip(out.got, out.cycles)
                                      if not item["end"]), default=0),
            "last_byte_clock": sources["i"].last_cycle or 0}


@cocotb.test()
async def decompressor(dut):
    """Every output equals the golden stream, the status event ends every job."""
    with open(os.environ["CIMCODEC_VECTORS"]) as f:
        shape = DecompressorShape(**json.load(f)["shape"])
    await run_jobs(dut, {"i": byte_layout()}, {"o": output_layout(shape)}, {"raw": 1},
                   until={"o": "end"}, slack=8000, extra=_clocks)
