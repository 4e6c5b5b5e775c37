"""cocotb testbench of :class:`hw.appmeta.AppMeta` against :mod:`golden.blocks.appmeta` and
:meth:`golden.blocks.remap.RemapShape.generator_config`: the parser's events of a file in, one
per clock; out the generator job, the snap entries and the event that raised
``error``. A job with a ``stall_seed`` has random idle clocks between the events
(``take`` low) and random backpressure on ``gen_cfg`` from the first clock."""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from cimcodec.golden.blocks import markers
from cimcodec.golden.blocks.decompressor import DecompressorShape
from cimcodec.hw.appmeta import AppMeta, snap_layout
from cimcodec.hw.lfsr import config_layout
from cimcodec.hw.markers import event_layout
from cimcodec.tb import Bench
from cimcodec.tb.payload import pack, unpack
from cimcodec.tb.stream import StreamSink, never_pause, random_pauses, reset

#: The block as the co-simulation runner builds it.
BENCH = Bench("appmeta", AppMeta, __name__)


def job(data: bytes, stall_seed=None, through=None) -> dict:
    """The parser's events of ``data`` as ``event`` payloads; with ``through``, only the
    events up to that index (a file whose metadata is rejected at event ``k`` need not
    be fed past ``k`` and a few clocks: the error is sticky, and one raised later, or
    none, still fails the comparison)."""
    events = markers.parse(data).events
    if through is not None:
        events = events[:through + 1]
    return {"events": [markers.payload(e) for e in events], "stall_seed": stall_seed}


@cocotb.test()
async def appmeta(dut):
    """Reports, per job, the generator job, the snap entries and the error event."""
    with open(os.environ["CIMCODEC_VECTORS"]) as f:
        spec = json.load(f)
    shape = DecompressorShape(**spec["shape"])
    job_layout = config_layout(shape.remap.generator_shape())
    events = event_layout()
    Clock(dut.clk, 10, unit="ns").start()
    results = []
    for job_spec in spec["jobs"]:
        dut.take.value = 0
        dut.gen_cfg__ready.value = 0
        await reset(dut)
        snap, error, gen = [], None, []
        seed = job_spec.get("stall_seed")
        idle = random_pauses(seed) if seed is not None else never_pause()
        sink = StreamSink(dut, "gen_cfg", job_layout, dut.clk,
                          random_pauses(seed + 1) if seed is not None else None)
        taking = cocotb.start_soon(sink.receive(1, lambda item, cycle, gen=gen: gen.append(item)))
        # ``error`` is registered: it rises in the clock after the event that broke a
        # check, so a clock that sees it first blames the last event taken before it.
        last = None

        async def tick(last):
            nonlocal error
            await RisingEdge(dut.clk)
            if dut.error.value and error is None:
                error = last

        for n, event in enumerate(job_spec["events"]):
            while next(idle):
                dut.take.value = 0
                await tick(last)
            dut.event.value = pack(events, event)
            dut.take.value = 1
            await tick(last)
            if dut.snap__valid.value:
                snap.append(unpack(snap_layout(), int(dut.snap__payload.value))["value"])
            last = n
        dut.take.value = 0
        await tick(last)
        # The generator job follows a good file's last event within 300 clocks; a file
        # that raised ``error`` has none to wait for.
        for _ in range(300):
            if gen or error is not None:
                break
            await RisingEdge(dut.clk)
        taking.cancel()
        results.append({"outputs": {"job": gen[0] if gen else None, "snap": snap,
                                    "error": error}, "clocks": 0})
    with open(os.environ["CIMCODEC_RESULTS"], "w") as f:
        json.dump({"jobs": results}, f)

