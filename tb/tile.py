"""cocotb testbench of :class:`hw.tile.Tile` against :class:`golden.blocks.tile.TileModel`.

A job file (see :mod:`tb.stream`) holds *programs*, each run from a reset:

* ``{"steps": [step, ...], "stall_seed": s}``: each step a tile job
  (:func:`job_json`) or ``{"reset": true}``;
* ``{"container": hex, "acts": [[...], ...], "stall_seed": None}``: a whole integer network
  (:mod:`golden.ml.tile_net`), its jobs planned by :class:`golden.ml.tile_net.Host`
  from what the RTL gave for the layer before.

Every job's status (``error``, ``written``) and outputs are compared with the golden
model run beside it, job by job (the code of a failed load is returned, not compared:
the decompressor's code is exact only for damage before the scan). With a stall seed,
every input stream idles and every output stream refuses on random clocks. The
results file gets, per program, every job's status and outputs, the network's logits,
and the clocks: from the first ``cfg`` transfer to the last output (``clocks``), the
part spent loading (``load_clocks``: each job's ``cfg`` transfer to its status) and
that of each load (``reloads``, in order).
"""

import json
import logging
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import SimTimeoutError, with_timeout
from cocotb.utils import get_sim_time

from cimcodec.golden.blocks.tile import TileJob, TileModel, TileOutcome, TileParams, TileShape
from cimcodec.golden.ml import tile_net
from cimcodec.hw.cim import act_layout
from cimcodec.hw.markers import byte_layout
from cimcodec.hw.tile import Tile, config_layout, output_layout, status_layout
from cimcodec.tb import Bench
from cimcodec.tb.stream import StreamSink, StreamSource, random_pauses, reset

#: The block as the co-simulation runner builds it.
BENCH = Bench("tile", Tile, __name__)
#: Clocks without progress before a program fails.
PATIENCE = 20_000


def job_json(job: TileJob) -> dict:
    """A job as JSON."""
    p = job.params
    return {"params": {"load": p.load, "row0": p.row0, "col0": p.col0, "first": p.first,
                       "last": p.last, "relu": p.relu, "clamp": int(p.clamp),
                       "multiplier": p.multiplier, "shift": p.shift, "bias": list(p.bias)},
            "file": None if job.file is None else job.file.hex(),
            "acts": job.acts.tolist()}


def job_from_json(spec: dict, shape: TileShape) -> TileJob:
    params = TileParams(**{**spec["params"], "bias": tuple(spec["params"]["bias"])})
    acts = np.asarray(spec["acts"], dtype=np.int64).reshape(-1, shape.rows)
    return TileJob(params, None if spec["file"] is None else bytes.fromhex(spec["file"]), acts)


def program(steps, stall_seed=None) -> dict:
    """A program of jobs (:class:`golden.blocks.tile.TileJob`) and resets (``None``)."""
    return {"steps": [{"reset": True} if s is None else job_json(s) for s in steps],
            "stall_seed": stall_seed}


def network(container: bytes, acts) -> dict:
    """A program running the integer network of ``container`` on the activations
    ``acts`` (the first layer's, ``(n, inputs)``)."""
    return {"container": container.hex(), "acts": np.asarray(acts).tolist(),
            "stall_seed": None}


def _byte_payloads(data: bytes) -> list:
    return [{"data": b, "last": int(k == len(data) - 1)} for k, b in enumerate(data)]


class RtlTile:
    """The DUT behind plain job lists: sources and sinks on every stream, the golden
    model beside it, the clock counts. The sinks run only while a transfer is due, so
    the simulator calls Python as seldom as the streams allow."""

    def __init__(self, dut, shape: TileShape, seed):
        self.dut, self.shape = dut, shape
        self.log = logging.getLogger("cocotb.tb")

        def pause(k):
            return None if seed is None else random_pauses(seed + k)

        clk = dut.clk
        self.cfg = StreamSource(dut, "cfg", config_layout(shape), clk, pause(0))
        self.i = StreamSource(dut, "i", byte_layout(), clk, pause(1))
        self.a = StreamSource(dut, "a", act_layout(shape.cim), clk, pause(2))
        self.s = StreamSink(dut, "s", status_layout(shape), clk, pause(3))
        self.o = StreamSink(dut, "o", output_layout(shape), clk, pause(4))
        self.golden = TileModel(shape)
        self.mismatches = []
        self.load_clocks = 0
        self.reloads = []
        self.first = self.last = None

    @staticmethod
    def clock() -> int:
        """Clocks (10 ns) since the simulation started."""
        return int(get_sim_time("ns")) // 10

    async def start(self):
        await reset(self.dut)
        self.golden.reset()

    async def _receive(self, sink, count) -> list:
        items = []
        await with_timeout(sink.receive(count, lambda item, _: items.append(item)),
                           PATIENCE * 10, "ns")
        return items

    async def _outputs(self, count) -> list:
        items = await self._receive(self.o, count)
        self.last = self.clock()
        return items

    async def run(self, jobs) -> list:
        """Run ``jobs`` in order; returns their outcomes (the RTL's), stopping after a
        failed load. Differences from the golden model go to ``mismatches``."""
        done = []                        # (status, output task or None, golden outcome)
        for job in jobs:
            if self.golden.stopped:
                self._mismatch(f"job {len(done)}: the RTL went on after a load the golden "
                               f"model rejected")
                break
            await self.cfg.send([job.params.config(self.shape, len(job.acts))])
            accepted = self.clock()
            if self.first is None:
                self.first = accepted
            loader = cocotb.start_soon(self.i.send(_byte_payloads(job.file))) \
                if job.file is not None else None
            status = (await self._receive(self.s, 1))[0]
            self.load_clocks += self.clock() - accepted
            if job.file is not None:
                self.reloads.append(self.clock() - accepted)
            want = self.golden.run(job)
            if status["error"]:
                if loader is not None:
                    loader.cancel()
                    self.i.valid.value = 0
                done.append((status, None, want))
                break
            if loader is not None:
                await loader
            # The previous job's outputs have left before this one's can come.
            if done and done[-1][1] is not None:
                await done[-1][1]
            sender = cocotb.start_soon(self.a.send(job.acts.tolist()))
            outputs = cocotb.start_soon(self._outputs(len(job.acts))) \
                if job.params.last else None
            await sender
            done.append((status, outputs, want))
        results = []
        for k, (status, outputs, want) in enumerate(done):
            if outputs is not None:
                outputs = np.asarray(await outputs, np.int64).reshape(-1, self.shape.cols)
            got = TileOutcome(int(status["code"]) if status["error"] else 0,
                              status["written"], outputs)
            self._compare(k, got, want)
            results.append(got)
        return results

    def _compare(self, k, got, want):
        same = (bool(got.error) == bool(want.error) and got.written == want.written
                and (got.outputs is None) == (want.outputs is None)
                and (got.outputs is None or np.array_equal(got.outputs, want.outputs)))
        if not same:
            self._mismatch(
                f"job {k}: RTL error {got.error} written {got.written} outputs "
                f"{None if got.outputs is None else got.outputs.tolist()[:2]}, golden error "
                f"{want.error} written {want.written} outputs "
                f"{None if want.outputs is None else want.outputs.tolist()[:2]}")

    def _mismatch(self, message):
        if len(self.mismatches) < 5:
            self.log.error(message)
        self.mismatches.append(message)


def _outcome_json(outcome: TileOutcome) -> dict:
    return {"error": outcome.error, "written": outcome.written,
            "outputs": None if outcome.outputs is None else outcome.outputs.tolist()}


async def _program(rtl: RtlTile, spec: dict) -> dict:
    await rtl.start()
    rtl.first, rtl.last, rtl.load_clocks, rtl.reloads = None, None, 0, []
    out = {"outcomes": []}
    if "container" in spec:
        host = tile_net.Host(tile_net.load(bytes.fromhex(spec["container"])), rtl.shape)
        steps = host.steps(np.asarray(spec["acts"], dtype=np.int64))
        jobs = next(steps)
        while True:
            outcomes = await rtl.run(jobs)
            out["outcomes"] += [_outcome_json(o) for o in outcomes]
            try:
                jobs = steps.send(outcomes)
            except StopIteration as stop:
                out["logits"] = stop.value.tolist()
                break
    else:
        segments = [[]]
        for step in spec["steps"]:
            if step.get("reset"):
                segments.append([])
            else:
                segments[-1].append(job_from_json(step, rtl.shape))
        for number, jobs in enumerate(segments):
            if number:
                await rtl.start()
            out["outcomes"] += [_outcome_json(o) for o in await rtl.run(jobs)]
    out["clocks"] = (rtl.last or rtl.clock()) - (rtl.first or 0)
    out["load_clocks"] = rtl.load_clocks
    out["reloads"] = rtl.reloads
    return out


@cocotb.test()
async def tile(dut):
    """Every job's status and outputs equal the golden model's."""
    with open(os.environ["CIMCODEC_VECTORS"]) as f:
        spec = json.load(f)
    shape = TileShape(**spec["shape"])
    Clock(dut.clk, 10, unit="ns").start()
    results, failures = [], []
    for number, prog in enumerate(spec["jobs"]):
        rtl = RtlTile(dut, shape, prog.get("stall_seed"))
        if prog.get("stall_seed") is not None:
            rtl.log.info("program %d: random stalls, seed %d", number, prog["stall_seed"])
        try:
            results.append(await _program(rtl, prog))
        except SimTimeoutError:
            failures.append(f"program {number}: no progress for {PATIENCE} clocks")
            results.append({})
        failures += [f"program {number}: {m}" for m in rtl.mismatches[:3]]
    with open(os.environ["CIMCODEC_RESULTS"], "w") as f:
        json.dump({"jobs": results}, f)
    assert not failures, "; ".join(failures[:5])
