"""cocotb testbench of :class:`hw.crc.ScanCrc` against :func:`golden.blocks.crc.scan_check`:
the file's bytes from the scan on, one per clock or with random gaps, and the CRC-32
and end position the block reports."""

import json
import os
import random
from dataclasses import dataclass

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from cimcodec.hw.crc import ScanCrc
from cimcodec.tb import Bench
from cimcodec.tb.stream import reset


@dataclass(frozen=True)
class CrcShape:
    """``ScanCrc`` has no elaboration parameters; this names its one build."""


#: The block as the co-simulation runner builds it.
BENCH = Bench("scan_crc", lambda shape: ScanCrc(), __name__)


def job(data: bytes, scan_start: int, stall_seed=None) -> dict:
    """Bytes from ``scan_start`` (the first entropy-coded byte) to the file's end."""
    return {"bytes": list(data[scan_start:]), "stall_seed": stall_seed}


@cocotb.test()
async def scan_crc(dut):
    """Reports, per job, the CRC and the index of the byte that raised ``end``."""
    with open(os.environ["CIMCODEC_VECTORS"]) as f:
        spec = json.load(f)
    Clock(dut.clk, 10, unit="ns").start()
    results = []
    for job_spec in spec["jobs"]:
        rng = random.Random(job_spec["stall_seed"])
        stall = job_spec["stall_seed"] is not None
        dut.take.value = 0
        dut.scan.value = 0
        await reset(dut)
        dut.scan.value = 1
        end_index, crc = -1, None
        for index, byte in enumerate(job_spec["bytes"]):
            while stall and rng.random() < 0.3:
                dut.take.value = 0
                await RisingEdge(dut.clk)
            dut.take.value = 1
            dut.byte.value = byte
            await RisingEdge(dut.clk)
            if dut.end.value and end_index < 0:
                end_index = index
                crc = int(dut.crc.value)
        dut.take.value = 0
        await RisingEdge(dut.clk)
        results.append({"outputs": {"end": end_index, "crc": crc,
                                    "ended": int(dut.ended.value)}, "clocks": 0})
    with open(os.environ["CIMCODEC_RESULTS"], "w") as f:
        json.dump({"jobs": results}, f)
