# amaranth: UnusedElaboratable=no
"""A block's golden vectors as Python objects: its ports (read from its
``wiring.Signature``), its jobs, and :class:`Block`, the registration
:data:`cimcodec.sim.vector_cases.BLOCKS` holds. :mod:`cimcodec.sim.vectors` turns them
into files; the compare and stall modes are described there."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from amaranth.hdl import Shape
from amaranth.lib import data, wiring

from cimcodec.golden.errors import CimcodecError
from cimcodec.tb import Bench

#: Compare modes of an output stream in a job (``jobs.hex``).
EXACT, SKIP, LOOSE = 0, 1, 2
#: Stall modes of a job.
NO_STALL, STALL, BURSTY = 0, 1, 2
#: Clocks a job may take per transfer, on top of its block's base and its slack.
CLOCKS_PER_TRANSFER = 20
#: One input segment: which input stream (index among the block's input streams) and
#: how many transfers.
SEGMENT_LAYOUT = data.StructLayout({"port": 4, "count": 32})


@dataclass(frozen=True)
class Port:
    """A port of the block's top module.

    ``kind``: ``"in"`` (stream into the block), ``"out"`` (stream out of it), ``"setup"``
    (plain input, held through a job), ``"status"`` (plain output)."""

    name: str
    kind: str
    shape: object

    @property
    def width(self) -> int:
        return Shape.cast(self.shape).width

    @property
    def file(self) -> str | None:
        return f"{self.name}.{self.kind}.hex" if self.kind in ("in", "out") else None


def ports(component: wiring.Component) -> list[Port]:
    """The block's ports from its signature: streams (``amaranth.lib.stream``, with
    ``valid`` and ``ready``) and plain ports."""
    out = []
    for name, member in component.signature.members.items():
        inward = member.flow == wiring.In
        if member.is_signature:
            members = member.signature.members
            if set(members) != {"payload", "valid", "ready"}:
                raise CimcodecError(f"Port {name} is not a stream with valid and ready.")
            out.append(Port(name, "in" if inward else "out", members["payload"].shape))
        else:
            out.append(Port(name, "setup" if inward else "status", member.shape))
    return out


@dataclass
class Job:
    """One job of a block's vectors: reset, ``setup`` on the plain inputs, the
    ``inputs`` sent one run after the other, ``expected`` on every output stream.

    Attributes
    ----------
    inputs : list of (port, payloads)
    expected : dict
        ``{output port: payloads}``; ports left out expect nothing.
    setup, watch : dict
        Plain input values; plain output values the job must reach (see ``jobs.hex``).
    modes : dict
        ``{output port: EXACT | SKIP | LOOSE}`` (default ``EXACT``).
    partial : bool
        The job ends when its outputs are complete, input not taken is dropped.
    stall : int
        ``NO_STALL``, ``STALL`` or ``BURSTY``.
    slack : int
        Clocks added to the job's limit.
    label : str
        What the case is (kept in the manifest).
    """

    inputs: list
    expected: dict
    setup: dict = field(default_factory=dict)
    watch: dict = field(default_factory=dict)
    modes: dict = field(default_factory=dict)
    partial: bool = False
    stall: int = NO_STALL
    slack: int = 0
    label: str = ""


def from_tb(job: dict, label: str, **options) -> Job:
    """A :class:`Job` from a ``tb/<block>.py`` job dict (``setup``, ``inputs``,
    ``expected``, ``stall_seed``); ``options`` set the other fields."""
    options.setdefault("stall", NO_STALL if job.get("stall_seed") is None else STALL)
    return Job(inputs=[(port, payloads) for port, payloads in job["inputs"]],
               expected=dict(job["expected"]), setup=dict(job.get("setup") or {}),
               label=label, **options)


@dataclass(frozen=True)
class Block:
    """One block's golden vectors: the registration :data:`BLOCKS` holds.

    Attributes
    ----------
    bench : Bench
        The block's ``tb/<block>.py`` bench: the Verilog top module (``bench.name``) and
        the component factory.
    params : object
        The parameter object (a frozen dataclass) the block is built and modelled with.
    cases : callable
        ``cases(params, rng, count) -> list[Job]``: the corner cases (the same for every
        seed), then ``count`` random ones drawn from ``rng``.
    watch : tuple of str
        Plain outputs whose value each job checks (``Job.watch``).
    terminator : tuple or None
        ``(port, field, loose fields)`` for blocks whose output ends with an event of
        its own (compare modes ``SKIP`` and ``LOOSE``).
    base_clocks : int
        Clock limit of a job: ``base_clocks + CLOCKS_PER_TRANSFER * transfers + slack``.
    """

    bench: Bench
    params: object
    cases: Callable
    watch: tuple = ()
    terminator: tuple | None = None
    base_clocks: int = 1000

    @property
    def name(self) -> str:
        return self.bench.name

    @cached_property
    def ports(self) -> list[Port]:
        # Built for its signature only, never elaborated: the first line of this file
        # tells Amaranth not to warn about that.
        return ports(self.bench.factory(self.params))

    def by_kind(self, kind: str) -> list[Port]:
        return [p for p in self.ports if p.kind == kind]

    @property
    def streams(self) -> list[Port]:
        """Input streams, then output streams: the order of ``counts.hex``."""
        return self.by_kind("in") + self.by_kind("out")

    @property
    def watched(self) -> list[Port]:
        status = {p.name: p for p in self.by_kind("status")}
        return [status[name] for name in self.watch]

    @cached_property
    def job_layout(self) -> data.StructLayout:
        """The packing of a ``jobs.hex`` line."""
        fields = {"limit": 32, "segments": 32, "stall": 2, "partial": 1}
        for port in self.by_kind("out"):
            fields[f"count_{port.name}"] = 32
            fields[f"mode_{port.name}"] = 2
        for port in self.by_kind("setup"):
            fields[f"setup_{port.name}"] = port.width
        for port in self.watched:
            fields[f"watch_{port.name}"] = port.width
        return data.StructLayout(fields)

    def terminator_bits(self) -> tuple[int, int] | None:
        """``(bit of the terminator field, mask of the loose fields)`` in the payload of
        the terminator's port."""
        if self.terminator is None:
            return None
        port, name, loose = self.terminator
        layout = {p.name: p.shape for p in self.ports}[port]
        mask = 0
        for field_name in loose:
            f = layout[field_name]
            mask |= ((1 << f.width) - 1) << f.offset
        return layout[name].offset, mask
