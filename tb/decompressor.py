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

from cimcodec.golden.blocks.decompressor import DecompressorShape, expected, expected_lanes
from cimcodec.hw.decompressor import Decompressor, input_layout, output_layout
from cimcodec.tb import Bench
from cimcodec.tb.stream import Checker, run_jobs

#: The block as the co-simulation runner builds it.
BENCH = Bench("decompressor", Decompressor, __name__)


def byte_payloads(data: bytes, in_bytes: int = 1) -> list:
    """The ``i`` payloads of a file, ``last`` on its final byte; with ``in_bytes > 1``
    beats of that many bytes (:func:`hw.decompressor.input_layout`)."""
    if in_bytes == 1:
        return [{"data": b, "last": int(k == len(data) - 1)} for k, b in enumerate(data)]
    beats = []
    for start in range(0, len(data), in_bytes):
        part = data[start:start + in_bytes]
        beats.append({"data": int.from_bytes(part, "little"), "more": len(part) - 1,
                      "last": int(start + in_bytes >= len(data))})
    return beats


def job_file(job: dict) -> bytes:
    """The file a job sends (the inverse of :func:`byte_payloads`)."""
    out = bytearray()
    for beat in job["inputs"][0][1]:
        n = beat.get("more", 0) + 1
        out += beat["data"].to_bytes(n, "little") if "more" in beat else bytes((beat["data"],))
    return bytes(out)


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
    runs (:func:`tb.stream.bursty_pauses`) when ``bursty``.

    With ``shape.lanes > 1`` the beats are not compared in order (how the lanes
    interleave is timing): ``lanes`` holds each lane's golden samples
    (:func:`golden.blocks.decompressor.expected_lanes`) and :class:`LaneChecker`
    compares every lane's slots with its list, in order."""
    beats = byte_payloads(data, shape.in_bytes)
    if shape.lanes > 1:
        want = expected_lanes(data, shape, raw=raw)
        lanes = want.samples if check else None
        return {"setup": {"raw": int(bool(raw))}, "inputs": [["i", beats]],
                "expected": {"o": None}, "lanes": lanes, "error": int(want.error),
                "stall_seed": stall_seed, "bursty": bool(bursty)}
    want = expected(data, shape, raw=raw)
    out = None
    if check and want.samples is not None:
        out = [sample(*s) for s in want.samples] + [status()]
    return {"setup": {"raw": int(bool(raw))}, "inputs": [["i", beats]],
            "expected": {"o": out}, "error": int(want.error), "stall_seed": stall_seed,
            "bursty": bool(bursty)}


def lane_samples(beats: list, lanes: int) -> list:
    """The samples ``(row, col, sample)`` of each lane, in order, from a multi-lane
    decompressor's output beats (the status event left out)."""
    out = [[] for _ in range(lanes)]
    for beat in beats:
        if not beat["end"]:
            for k, slot in enumerate(beat["lane"]):
                if slot["valid"]:
                    out[k].append((slot["row"], slot["col"], slot["sample"]))
    return out


class LaneChecker(Checker):
    """A multi-lane output checked lane by lane: every valid slot of lane ``k`` equals
    the next of ``lanes[k]``, and the status event (no error) comes after all of them
    (``lanes`` ``None``: collect only)."""

    def __init__(self, name, lanes):
        super().__init__(name, None)
        self.lanes = lanes
        self.next = [0] * len(lanes or ())

    def _fail(self, message):
        if len(self.errors) < 5:
            self.log.error(message)
        self.errors.append(message)

    def __call__(self, payload, cycle):
        super().__call__(payload, cycle)
        if self.lanes is None:
            return
        if payload["end"]:
            left = [len(w) - n for w, n in zip(self.lanes, self.next)]
            if payload["error"] or any(left):
                self._fail(f"{self.name}: status {payload} with {left} samples per lane "
                           "still to come")
            return
        for k, slot in enumerate(payload["lane"]):
            if not slot["valid"]:
                continue
            got = (slot["row"], slot["col"], slot["sample"])
            n = self.next[k]
            want = tuple(self.lanes[k][n]) if n < len(self.lanes[k]) else "nothing"
            if got != want:
                self._fail(f"{self.name} lane {k}[{n}]: DUT gave {got}, golden model {want}")
            self.next[k] += 1


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
    checker = (lambda port, job: LaneChecker(port, job["lanes"])) if shape.lanes > 1 \
        else None
    await run_jobs(dut, {"i": input_layout(shape)}, {"o": output_layout(shape)}, {"raw": 1},
                   until={"o": "end"}, slack=8000, extra=_clocks, make_checker=checker)
