"""cocotb benches, one per hardware block (``tb/<block>.py``), and their stream drivers
(:mod:`cimcodec.tb.stream`). Nothing here imports :mod:`cimcodec.sim`: the simulator
side (:mod:`cimcodec.sim.cocotb_run`) runs these modules, not the other way round."""

import dataclasses
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Bench:
    """A hardware block and its cocotb testbench.

    Attributes
    ----------
    name : str
        Top module name (and Verilog file stem).
    factory : callable
        ``factory(shape) -> wiring.Component``.
    test_module : str
        The cocotb module, e.g. ``"cimcodec.tb.lfsr"``.
    """

    name: str
    factory: Callable
    test_module: str


