"""cocotb testbench of :class:`hw.decompressor.Decompressor` against
:func:`golden.blocks.decompressor.expected` (jobs built by :func:`tb.decompressor.job`).

Unlike :func:`tb.stream.run_jobs`, the output of a job is read up to its status event
(``end = 1``), so corrupt files, whose sample count is not known, end too. A job with
``expected`` set is checked in order, status event included; the results file gets
every output, the clock counts as in :mod:`tb.stream`, the clock of the last sample
(``last_sample_clock``, 0 if none) and that of the last byte the decoder took
(``last_byte_clock``).
"""

import json
import logging
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, with_timeout

from cimcodec.golden.blocks.decompressor import DecompressorShape, expected
from cimcodec.hw.decompressor import Decompressor, output_layout
from cimcodec.hw.markers import byte_layout
from cimcodec.tb import Bench
from cimcodec.tb.payload import unpack
from cimcodec.tb.stream import (
    Checker,
    StreamSource,
    bursty_pauses,
    never_pause,
    random_pauses,
    reset,
)

#: The block as the co-simulation runner builds it.
BENCH = Bench("decompressor", Decompressor, __name__)


def byte_payloads(data: bytes) -> list:
    """The ``i`` payloads of a file, ``last`` on its final byte."""
    return [{"data": b, "last": int(k == len(data) - 1)} for k, b in enumerate(data)]


def status(error=0) -> dict:
    """The final status event (``code`` is checked by the tests, not here)."""
    return {"row": 0, "col": 0, "sample": 0, "end": 1, "error": int(bool(error))}


def job(data: bytes, shape: DecompressorShape, *, raw: bool = False, stall_seed=None,
        check=True, bursty=False) -> dict:
    """Set ``raw``, then send the file: nothing else (a container's metadata is read by
    the hardware). ``check``: compare with the golden stream (files the golden model
    accepts); otherwise only collect. ``stall_seed``: random input stalls and output
    backpressure, the latter in long runs (:func:`tb.stream.bursty_pauses`) when
    ``bursty``."""
    want = expected(data, shape, raw=raw)
    inputs = [["i", byte_payloads(data)]]
    out = None
    if check and want.samples is not None:
        out = [{"row": r, "col": c, "sample": s, "end": 0, "error": 0}
               for r, c, s in want.samples] + [status()]
    return {"setup": {"raw": int(bool(raw))}, "inputs": inputs, "expected": out,
            "error": int(want.error), "stall_seed": stall_seed, "bursty": bool(bursty)}


async def _receive(dut, layout, pause, on_item):
    """Accept ``o`` transfers up to and including the status event."""
    cycle = 0
    while True:
        dut.o__ready.value = 0 if next(pause) else 1
        await RisingEdge(dut.clk)
        cycle += 1
        if dut.o__ready.value and dut.o__valid.value:
            item = unpack(layout, int(dut.o__payload.value))
            item["code"] = int(item["code"])
            on_item(item, cycle)
            if item["end"]:
                break
    dut.o__ready.value = 0


@cocotb.test()
async def decompressor(dut):
    """Every output equals the golden stream, the status event ends every job."""
    log = logging.getLogger("cocotb.tb")
    with open(os.environ["CIMCODEC_VECTORS"]) as f:
        spec = json.load(f)
    shape = DecompressorShape(**spec["shape"])
    layouts = {"i": byte_layout()}
    out_layout = output_layout(shape)
    Clock(dut.clk, 10, unit="ns").start()
    results, failures = [], []
    for number, spec_job in enumerate(spec["jobs"]):
        seed = spec_job.get("stall_seed")
        if seed is not None:
            log.info("job %d: random stalls, seed %d", number, seed)
        dut.raw.value = spec_job["setup"]["raw"]
        sources = {p: StreamSource(dut, p, layouts[p], dut.clk,
                                   random_pauses(seed + k) if seed is not None else None)
                   for k, p in enumerate(layouts)}
        dut.o__ready.value = 0
        await reset(dut)
        want = spec_job["expected"]
        checker = Checker("o", want if want is not None else [])
        got = []
        last_sample = [0]

        def on_item(item, cycle, checker=checker, got=got, check=want is not None,
                    last_sample=last_sample):
            got.append(item)
            if not item["end"]:
                last_sample[0] = cycle
            if check:
                compared = {k: v for k, v in item.items() if k != "code"}
                checker(compared, cycle)
            elif checker.first_cycle is None:
                checker.first_cycle = cycle
            checker.last_cycle = cycle

        async def drive(inputs=spec_job["inputs"], sources=sources):
            for port, payloads in inputs:
                await sources[port].send(payloads)

        pause = (never_pause() if seed is None else bursty_pauses(seed + 100)
                 if spec_job.get("bursty") else random_pauses(seed + 100))
        driver = cocotb.start_soon(drive())
        monitor = cocotb.start_soon(_receive(dut, out_layout, pause, on_item))
        n_in = sum(len(payloads) for _, payloads in spec_job["inputs"])
        limit = 20 * (n_in + len(want or [])) + 8000
        try:
            await with_timeout(monitor, limit * 10, "ns")
        except cocotb.triggers.SimTimeoutError:
            failures.append(f"job {number}: no status event after {limit} cycles")
            monitor.cancel()
        driver.cancel()
        failures += [f"job {number}: {e}" for e in checker.errors[:3]]
        results.append({"outputs": {"o": got}, "clocks": checker.last_cycle,
                        "first_clock": checker.first_cycle or 0,
                        "last_sample_clock": last_sample[0],
                        "last_byte_clock": sources["i"].last_cycle or 0})
    with open(os.environ["CIMCODEC_RESULTS"], "w") as f:
        json.dump({"jobs": results}, f)
    assert not failures, "; ".join(failures[:5])
