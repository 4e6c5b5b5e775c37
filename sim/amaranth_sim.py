"""Fast path: run a component's streams in Amaranth's own simulator (no Verilog, no
external simulator), for unit tests and for quick checks while designing.

:func:`run_streams` feeds lists of payloads into input streams and collects payloads
from output streams, with optional random idle cycles and backpressure; it is the one
driver of the Amaranth-simulator tests, and its cycle cap the one loop cap.
:func:`run_testbench` runs a hand-written testbench, for the tests that pulse plain
signals between streams or check clock by clock.
"""

import random

from amaranth.sim import Simulator

from cimcodec.tb.payload import to_python


def run_testbench(component, bench, period=1e-6) -> None:
    """Simulate ``component`` with one clock (``period`` seconds) and the async
    testbench ``bench(ctx)`` until it returns."""
    sim = Simulator(component)
    sim.add_clock(period)
    sim.add_testbench(bench)
    sim.run()


def run_streams(component, inputs, outputs, *, setup=(), stall_seed=None,
                stall_probability=0.3, max_cycles=200_000, cycles=None, patience=None,
                probes=None, together=False):
    """Simulate ``component`` until every output stream has received its expected
    count, or for a fixed number of ``cycles``.

    Parameters
    ----------
    component : wiring.Component
    inputs : list of (stream, list of payloads)
        Each list is driven in order; payloads are ints or dicts for struct layouts.
        The lists run one after the other in the order given (a configuration stream
        first, then data).
    outputs : dict of name -> (stream, count)
        Collect ``count`` payloads from each stream; ``None``: every payload until the
        run ends (needs ``cycles``).
    setup : list of (signal, value)
        Plain signals set before the first clock.
    stall_seed : int or None
        When given, sources idle and sinks refuse with ``stall_probability`` each cycle,
        from a ``random.Random(stall_seed)``.
    max_cycles : int
        Without ``cycles``: a run that has not received every count by then raises
        ``TimeoutError``.
    cycles : int or None
        Run exactly this many clocks, whatever has come out by then.
    patience : int or None
        A payload the component has not taken within this many clocks is dropped and
        the next one offered (a component that stops taking input for good, after an
        error, must not hang the run); ``None``: wait for each.
    probes : dict of name -> signal, optional
        Plain signals read after the last clock.
    together : bool
        Drive the input lists at the same time, each from the first clock, rather than
        one after the other.

    Returns
    -------
    dict of name -> list of payloads (nested dicts / ints), ``"cycles"`` (the clocks
    until the last expected payload, or ``cycles``) and each probe's value by name.
    """
    if cycles is None and any(count is None for _, count in outputs.values()):
        raise ValueError("An output without a count needs a fixed number of cycles.")
    rng = random.Random(stall_seed)
    stall = (lambda: rng.random() < stall_probability) if stall_seed is not None else (
        lambda: False)
    results = {name: [] for name in outputs}
    clock = [0]

    def make_driver(streams, first):
        async def driver(ctx):
            if first:
                for sig, value in setup:
                    ctx.set(sig, value)
            for port, payloads in streams:
                await drive(ctx, port, payloads)
        return driver

    async def drive(ctx, port, payloads):
        for payload in payloads:
            while stall():
                await ctx.tick()
            ctx.set(port.valid, 1)
            ctx.set(port.payload, payload)
            waited = 0
            while True:
                _, _, ready = await ctx.tick().sample(port.ready)
                waited += 1
                if ready or waited == patience:
                    break
            ctx.set(port.valid, 0)

    def make_sink(name, port, count):
        async def sink(ctx):
            ticks = 0
            while ticks < cycles if cycles is not None else len(results[name]) < count:
                ready = not stall()
                ctx.set(port.ready, ready)
                _, _, valid, payload = await ctx.tick().sample(port.valid, port.payload)
                ticks += 1
                if ready and valid:
                    results[name].append(to_python(payload))
        return sink

    async def watchdog(ctx):
        while (clock[0] < cycles if cycles is not None
               else any(len(results[n]) < c for n, (_, c) in outputs.items())):
            await ctx.tick()
            clock[0] += 1
            if cycles is None and clock[0] > max_cycles:
                raise TimeoutError(f"Simulation did not finish in {max_cycles} cycles.")
        for name, signal in (probes or {}).items():
            results[name] = ctx.get(signal)

    sim = Simulator(component)
    sim.add_clock(1e-8)
    groups = [[pair] for pair in inputs] if together else [list(inputs)]
    for k, streams in enumerate(groups):
        sim.add_testbench(make_driver(streams, k == 0), background=True)
    for name, (port, count) in outputs.items():
        sim.add_testbench(make_sink(name, port, count))
    sim.add_testbench(watchdog)
    sim.run()
    results["cycles"] = clock[0]
    return results
