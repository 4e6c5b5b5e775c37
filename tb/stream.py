"""cocotb drivers for ``amaranth.lib.stream`` ports, and the job runner every testbench
uses: Driver -> Monitor -> in-order Checker, each with its own logger.

Amaranth names a stream port ``x`` as ``x__valid``, ``x__ready`` and ``x__payload``
(the payload flattened by its ``data.Layout``), plus ``clk`` and ``rst``.

Stalls: a *pause generator* yields ``True`` on cycles a source idles (``valid`` low)
or a sink refuses (``ready`` low). :func:`random_pauses` draws them from a seeded
``random.Random``, :func:`bursty_pauses` long runs of them; the seed is logged so a
failing run can be replayed.

Jobs
----
A testbench reads a JSON file named by ``$CIMCODEC_VECTORS``::

    {"shape": {...}, "jobs": [{"setup": {port: value},
                               "inputs": [[port, [payload, ...]], ...],
                               "expected": {port: [payload, ...]},
                               "stall_seed": int or null}, ...]}

For every job the DUT is reset, ``setup`` values are put on plain ports, the input
lists are driven one after the other, and each output stream is checked in order
against ``expected``. Whatever the DUT produced, with the clock counts (from the end of
reset) of the first and of the last output transfer (``first_clock``, ``clocks``), goes
to ``$CIMCODEC_RESULTS``; a mismatch or a timeout fails the cocotb test.
"""

import itertools
import json
import logging
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, with_timeout

from cimcodec.tb.payload import pack, unpack


def never_pause():
    return itertools.repeat(False)


def random_pauses(seed, probability=0.3):
    """Pause on a random ``probability`` of cycles, from ``random.Random(seed)``."""
    rng = random.Random(seed)
    while True:
        yield rng.random() < probability


def bursty_pauses(seed, longest=300):
    """Runs of pauses and of go, each 1..``longest`` cycles long (uniform), from
    ``random.Random(seed)``: long enough to fill every queue behind a stalled sink."""
    rng = random.Random(seed)
    while True:
        yield from itertools.repeat(True, rng.randint(1, longest))
        yield from itertools.repeat(False, rng.randint(1, longest))


class _StreamPort:
    """The three signals of the DUT's stream port ``name``, its payload layout, the
    clock, a pause generator and a logger (``cocotb.tb.<role>.<name>``)."""

    def __init__(self, dut, name, layout, clk, pause, role):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.layout, self.clk = layout, clk
        self.pause = pause or never_pause()
        self.log = logging.getLogger(f"cocotb.tb.{role}.{name}")


class StreamSource(_StreamPort):
    """Drives payloads into the DUT's input stream ``name``.

    ``last_cycle`` is the clock of the latest transfer, counted like a sink's (clock
    edges since the first ``send``), so a source and a sink started together agree on
    the numbers."""

    def __init__(self, dut, name, layout, clk, pause=None):
        super().__init__(dut, name, layout, clk, pause, "source")
        self.valid.value = 0
        self.cycle, self.last_cycle = 0, None

    async def _edge(self):
        await RisingEdge(self.clk)
        self.cycle += 1

    async def send(self, payloads):
        """Send every payload; returns after the last transfer."""
        for payload in payloads:
            while next(self.pause):
                self.valid.value = 0
                await self._edge()
            self.valid.value = 1
            self.payload.value = pack(self.layout, payload)
            await self._edge()
            while not self.ready.value:
                await self._edge()
            self.last_cycle = self.cycle
        self.valid.value = 0


class StreamSink(_StreamPort):
    """Collects payloads from the DUT's output stream ``name``, with backpressure."""

    def __init__(self, dut, name, layout, clk, pause=None):
        super().__init__(dut, name, layout, clk, pause, "sink")
        self.ready.value = 0

    async def receive(self, count, on_item):
        """Accept ``count`` transfers, calling ``on_item(payload, cycle)`` for each."""
        cycle = 0
        while count:
            self.ready.value = 0 if next(self.pause) else 1
            await RisingEdge(self.clk)
            cycle += 1
            if self.ready.value and self.valid.value:
                on_item(unpack(self.layout, int(self.payload.value)), cycle)
                count -= 1
        self.ready.value = 0


class Checker:
    """In-order comparison of one output stream against the golden model's list."""

    def __init__(self, name, expected):
        self.name, self.expected = name, expected
        self.got, self.first_cycle, self.last_cycle, self.errors = [], None, 0, []
        self.log = logging.getLogger(f"cocotb.tb.check.{name}")

    def __call__(self, payload, cycle):
        index = len(self.got)
        self.got.append(payload)
        if self.first_cycle is None:
            self.first_cycle = cycle
        self.last_cycle = cycle
        if index >= len(self.expected) or payload != self.expected[index]:
            want = self.expected[index] if index < len(self.expected) else "nothing"
            message = f"{self.name}[{index}]: DUT gave {payload}, golden model {want}"
            if len(self.errors) < 5:
                self.log.error(message)
            self.errors.append(message)


async def reset(dut, cycles=2):
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


async def run_jobs(dut, inputs, outputs, plain=None, timeout_cycles=None):
    """Run the job file on ``dut``; layouts by port name for inputs, outputs and plain
    configuration ports. Returns after writing the results file; raises on mismatch."""
    log = logging.getLogger("cocotb.tb")
    with open(os.environ["CIMCODEC_VECTORS"]) as f:
        spec = json.load(f)
    Clock(dut.clk, 10, unit="ns").start()
    results, failures = [], []
    for number, job in enumerate(spec["jobs"]):
        seed = job.get("stall_seed")
        if seed is not None:
            log.info("job %d: random stalls, seed %d", number, seed)
        for port, value in (job.get("setup") or {}).items():
            getattr(dut, port).value = pack(plain[port], value)
        sources = {p: StreamSource(dut, p, inputs[p], dut.clk,
                                   random_pauses(seed + i) if seed is not None else None)
                   for i, p in enumerate(inputs)}
        checkers = {p: Checker(p, job["expected"][p]) for p in outputs}
        sinks = [StreamSink(dut, p, outputs[p], dut.clk,
                            random_pauses(seed + 100 + i) if seed is not None else None)
                 for i, p in enumerate(outputs)]
        await reset(dut)

        async def drive(inputs, sources):
            for port, payloads in inputs:
                await sources[port].send(payloads)

        driver = cocotb.start_soon(drive(job["inputs"], sources))
        monitors = [cocotb.start_soon(sink.receive(len(job["expected"][p]), checkers[p]))
                    for sink, p in zip(sinks, outputs)]
        n_in = sum(len(payloads) for _, payloads in job["inputs"])
        n_out = sum(len(v) for v in job["expected"].values())
        limit = timeout_cycles or 20 * (n_in + n_out) + 1000
        try:
            await with_timeout(cocotb.triggers.gather(driver, *monitors), limit * 10, "ns")
        except cocotb.triggers.SimTimeoutError:
            failures.append(f"job {number}: timed out after {limit} cycles")
            driver.cancel()
            for monitor in monitors:
                monitor.cancel()
        for checker in checkers.values():
            failures += [f"job {number}: {e}" for e in checker.errors[:3]]
        results.append({
            "outputs": {p: c.got for p, c in checkers.items()},
            "clocks": max(c.last_cycle for c in checkers.values()),
            "first_clock": min((c.first_cycle for c in checkers.values()
                                if c.first_cycle is not None), default=0),
        })
    with open(os.environ["CIMCODEC_RESULTS"], "w") as f:
        json.dump({"jobs": results}, f)
    assert not failures, "; ".join(failures[:5])
