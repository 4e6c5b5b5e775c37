"""Fast path: run a component's streams in Amaranth's own simulator (no Verilog, no
external simulator), for unit tests and for quick checks while designing.

:func:`run_streams` feeds lists of payloads into input streams and collects payloads
from output streams, with optional random idle cycles and backpressure.
"""

import random

from amaranth.sim import Simulator

from cimcodec.tb.payload import to_python


def run_streams(component, inputs, outputs, *, setup=(), stall_seed=None,
                stall_probability=0.3, max_cycles=200_000):
    """Simulate ``component`` until every output stream has received its expected count.

    Parameters
    ----------
    component : wiring.Component
    inputs : list of (stream, list of payloads)
        Each list is driven in order; payloads are ints or dicts for struct layouts.
        The lists run one after the other in the order given (a configuration stream
        first, then data).
    outputs : dict of name -> (stream, count)
        Collect ``count`` payloads from each stream.
    setup : list of (signal, value)
        Plain signals set before the first clock.
    stall_seed : int or None
        When given, sources idle and sinks refuse with ``stall_probability`` each cycle,
        from a ``random.Random(stall_seed)``.

    Returns
    -------
    dict of name -> list of payloads (nested dicts / ints) and ``"cycles"``.
    """
    rng = random.Random(stall_seed)
    stall = (lambda: rng.random() < stall_probability) if stall_seed is not None else (
        lambda: False)
    results = {name: [] for name in outputs}
    cycles = [0]

    async def driver(ctx):
        for sig, value in setup:
            ctx.set(sig, value)
        for port, payloads in inputs:
            for payload in payloads:
                while stall():
                    await ctx.tick()
                ctx.set(port.valid, 1)
                ctx.set(port.payload, payload)
                await ctx.tick().until(port.ready)
                ctx.set(port.valid, 0)

    def make_sink(name, port, count):
        async def sink(ctx):
            while len(results[name]) < count:
                ready = not stall()
                ctx.set(port.ready, ready)
                _, _, valid, payload = await ctx.tick().sample(port.valid, port.payload)
                if ready and valid:
                    results[name].append(to_python(payload))
        return sink

    async def watchdog(ctx):
        while any(len(results[n]) < c for n, (_, c) in outputs.items()):
            await ctx.tick()
            cycles[0] += 1
            if cycles[0] > max_cycles:
                raise TimeoutError(f"Simulation did not finish in {max_cycles} cycles.")

    sim = Simulator(component)
    sim.add_clock(1e-8)
    sim.add_testbench(driver)
    for name, (port, count) in outputs.items():
        sim.add_testbench(make_sink(name, port, count))
    sim.add_testbench(watchdog)
    sim.run()
    results["cycles"] = cycles[0]
    return results
