"""cocotb testbench of :class:`hw.huffman.HuffmanDecoder` against
:func:`golden.blocks.huffman.scan_symbols` (jobs built by :func:`tb.huffman.job`)."""

import dataclasses
import json
import os

import cocotb

from cimcodec.golden.blocks.huffman import HuffmanShape, scan_symbols
from cimcodec.hw.huffman import HuffmanDecoder, bits_layout, symbol_layout, table_layout
from cimcodec.tb import Bench
from cimcodec.tb.stream import run_jobs

#: The block as the co-simulation runner builds it.
BENCH = Bench("huffman", HuffmanDecoder, __name__)


def table_bytes(table, slot):
    """The ``table`` stream payloads that load ``table`` into ``slot``."""
    body = table.to_bytes()
    return [{"data": b, "last": int(i == len(body) - 1), "slot": slot}
            for i, b in enumerate(body)]


def chunks(intervals, shape: HuffmanShape, rng=None):
    """The ``bits`` stream payloads of the restart intervals: full chunks, or chunks of
    random sizes 1..``chunk_bits`` drawn from ``rng``; ``first`` on each interval's first."""
    out = []
    for segment in intervals:
        value, nbits, pos = int.from_bytes(bytes(segment), "big"), 8 * len(segment), 0
        if not nbits:
            out.append({"data": 0, "count": 0, "first": 1})
        while pos < nbits:
            width = shape.chunk_bits if rng is None else int(rng.integers(1, shape.chunk_bits + 1))
            width = min(width, nbits - pos)
            bits = (value >> (nbits - pos - width)) & ((1 << width) - 1)
            out.append({"data": bits << (shape.chunk_bits - width), "count": width,
                        "first": int(pos == 0)})
            pos += width
    return out


def expected_symbols(intervals, dc_table, ac_table):
    """The golden ``sym`` payloads (symbols up to an error, if any)."""
    symbols, _ = scan_symbols(intervals, dc_table, ac_table)
    return [{k: int(v) for k, v in dataclasses.asdict(s).items()} for s in symbols]


def job(dc_table, ac_table, intervals, shape: HuffmanShape, *, slots=(0, 1), rng=None,
        stall_seed=None):
    """Load both tables into ``slots`` (DC, AC), then send the intervals' bits."""
    return {
        "setup": {"dc_slot": slots[0], "ac_slot": slots[1]},
        "inputs": [["table", table_bytes(dc_table, slots[0]) + table_bytes(ac_table, slots[1])],
                   ["bits", chunks(intervals, shape, rng)]],
        "expected": {"sym": expected_symbols(intervals, dc_table, ac_table)},
        "stall_seed": stall_seed,
    }


def random_interval(dc_table, ac_table, rng, blocks):
    """Entropy-coded bits of ``blocks`` random blocks that follow the block grammar with
    any symbols of the two tables (and random extra bits), padded with ones to a byte."""
    codes = [dc_table.encoder(), ac_table.encoder()]
    values = [list(codes[0]), list(codes[1])]
    parts = []

    def put(table):
        symbol = values[table][int(rng.integers(len(values[table])))]
        code, length = codes[table][symbol]
        size = symbol & 15
        parts.append(format(code, f"0{length}b"))
        if size:
            parts.append(format(int(rng.integers(1 << size)), f"0{size}b"))
        return symbol

    for _ in range(blocks):
        put(0)
        index = 1
        while index < 64:
            symbol = put(1)
            index += (symbol >> 4) + 1
            if symbol == 0:
                break
    bits = "".join(parts)
    bits += "1" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


@cocotb.test()
async def huffman(dut):
    """Every symbol, with its extra bits and block flags, equals the golden model's."""
    with open(os.environ["CIMCODEC_VECTORS"]) as f:
        shape = HuffmanShape(**json.load(f)["shape"])
    slot = range(shape.tables)
    await run_jobs(dut, {"table": table_layout(shape), "bits": bits_layout(shape)},
                   {"sym": symbol_layout()}, plain={"dc_slot": slot, "ac_slot": slot})
