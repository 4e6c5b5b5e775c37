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
                               "expected": {port: [payload, ...] or null},
                               "stall_seed": int or null,
                               "bursty": bool (optional),
                               "together": bool (optional)}, ...]}

For every job the DUT is reset, ``setup`` values are put on plain ports, the input
lists are driven one after the other (all at once if the job is ``together``), and
each output stream is checked in order against ``expected``: as many payloads as
expected, or, for the outputs a bench reads ``until`` a flag, every payload up to the
one that raises it (``null``: collected, not compared). With a ``stall_seed`` the
sources idle and the sinks refuse on random clocks (:func:`random_pauses`), the sinks
in long runs when the job is ``bursty`` (:func:`bursty_pauses`). Whatever the DUT
produced, with the clock counts (from the end of reset) of the first and of the last
output transfer (``first_clock``, ``clocks``) and any fields the bench adds, goes to
``$CIMCODEC_RESULTS``; a mismatch or a timeout fails the cocotb test.
"""

import itertools
import json
import logging
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, with_timeout

from cimcodec.tb.payload import codec


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
    """The three signals of the DUT's stream port ``name``, its payload codec, the
    clock, a pause generator and a logger (``cocotb.tb.<role>.<name>``)."""

    def __init__(self, dut, name, layout, clk, pause, role):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.pack, self.unpack = codec(layout)
        self.clk = clk
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
            bits = self.pack(payload)
            if next(self.pause):
                self.valid.value = 0
                await self._edge()
                while next(self.pause):
                    await self._edge()
            self.valid.value = 1
            self.payload.value = bits
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

    async def receive(self, count, on_item, until=None):
        """Accept ``count`` transfers, or with ``until`` (a field name) every transfer
        up to and including the first whose field ``until`` is set; call
        ``on_item(payload, cycle)`` for each."""
        cycle, ready = 0, 0
        while until is not None or count:
            want = 0 if next(self.pause) else 1
            if want != ready:
                self.ready.value = ready = want
            await RisingEdge(self.clk)
            cycle += 1
            if ready and self.valid.value:
                item = self.unpack(int(self.payload.value))
                on_item(item, cycle)
                count -= 1
                if until is not None and item[until]:
                    break
        self.ready.value = 0


class Checker:
    """In-order comparison of one output stream against the golden model's list
    (``expected``; ``None``: collect only). ``got`` and ``cycles`` hold every payload
    and the clock it came on."""

    def __init__(self, name, expected):
        self.name, self.expected = name, expected
        self.got, self.cycles, self.errors = [], [], []
        self.log = logging.getLogger(f"cocotb.tb.check.{name}")

    def __call__(self, payload, cycle):
        index = len(self.got)
        self.got.append(payload)
        self.cycles.append(cycle)
        if self.expected is None:
            return
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


def _pauses(seed, offset, kind=random_pauses):
    """``kind(seed + offset)``, or no pauses without a seed."""
    return None if seed is None else kind(seed + offset)


async def run_jobs(dut, inputs, outputs, plain=None, *, until=None, slack=1000, extra=None,
                   make_checker=None):
    """Run the job file on ``dut`` (see the module docstring); returns after writing
    the results file, raises on a mismatch or a timeout.

    Parameters
    ----------
    inputs, outputs, plain : dict of port name -> layout
        The input streams, the output streams and the plain configuration ports.
    until : dict of output port name -> field name, optional
        Outputs read up to and including the first payload whose field is set, rather
        than as many as expected; a job's ``expected`` list of such an output may be
        ``null`` (collect only). A job with one ends when its outputs have ended: the
        inputs the DUT has not taken by then are not sent.
    slack : int
        Clocks a job may take beyond 20 per input and expected output.
    extra : callable, optional
        ``extra(sources, checkers) -> dict`` of more result fields per job, from the
        :class:`StreamSource` and :class:`Checker` objects by port name.
    make_checker : callable, optional
        ``make_checker(port, job) -> Checker`` for benches whose outputs are not compared in
        order (default: ``Checker(port, job["expected"][port])``).
    """
    log = logging.getLogger("cocotb.tb")
    until = until or {}
    with open(os.environ["CIMCODEC_VECTORS"]) as f:
        spec = json.load(f)
    Clock(dut.clk, 10, unit="ns").start()
    results, failures = [], []
    for number, job in enumerate(spec["jobs"]):
        seed = job.get("stall_seed")
        if seed is not None:
            log.info("job %d: random stalls, seed %d", number, seed)
        for port, value in (job.get("setup") or {}).items():
            getattr(dut, port).value = codec(plain[port])[0](value)
        sink_pauses = bursty_pauses if job.get("bursty") else random_pauses
        sources = {p: StreamSource(dut, p, inputs[p], dut.clk,
                                   _pauses(seed, i))
                   for i, p in enumerate(inputs)}
        checkers = {p: make_checker(p, job) if make_checker
                    else Checker(p, job["expected"][p]) for p in outputs}
        sinks = {p: StreamSink(dut, p, outputs[p], dut.clk,
                               _pauses(seed, 100 + i, sink_pauses))
                 for i, p in enumerate(outputs)}
        await reset(dut)

        async def drive(inputs, sources):
            for port, payloads in inputs:
                await sources[port].send(payloads)

        async def drive_together(inputs, sources):
            await cocotb.triggers.gather(*(cocotb.start_soon(sources[port].send(payloads))
                                           for port, payloads in inputs))

        driver = cocotb.start_soon((drive_together if job.get("together") else drive)(
            job["inputs"], sources))
        monitors = [cocotb.start_soon(sinks[p].receive(len(checkers[p].expected or ()),
                                                       checkers[p], until.get(p)))
                    for p in outputs]
        n_in = sum(len(payloads) for _, payloads in job["inputs"])
        n_out = sum(len(c.expected or ()) for c in checkers.values())
        limit = 20 * (n_in + n_out) + slack
        waited = monitors + ([] if until else [driver])
        try:
            await with_timeout(cocotb.triggers.gather(*waited), limit * 10, "ns")
        except cocotb.triggers.SimTimeoutError:
            failures.append(f"job {number}: timed out after {limit} cycles")
            for monitor in monitors:
                monitor.cancel()
        driver.cancel()
        for checker in checkers.values():
            failures += [f"job {number}: {e}" for e in checker.errors[:3]]
        result = {
            "outputs": {p: c.got for p, c in checkers.items()},
            "clocks": max((c.cycles[-1] for c in checkers.values() if c.cycles), default=0),
            "first_clock": min((c.cycles[0] for c in checkers.values() if c.cycles),
                               default=0),
        }
        if extra is not None:
            result.update(extra(sources, checkers))
        results.append(result)
    with open(os.environ["CIMCODEC_RESULTS"], "w") as f:
        f.write(json.dumps({"jobs": results}))
    assert not failures, "; ".join(failures[:5])
