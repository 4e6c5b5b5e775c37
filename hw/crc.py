"""CRC-32 of the entropy-coded data, computed as the file's bytes stream by.

The reference model is :mod:`golden.blocks.crc` (its docstring says which bytes count);
:func:`golden.blocks.crc.update` is the per-byte step that :func:`update_bytes` builds in
gates, for one byte or several.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from cimcodec.golden.blocks.crc import XOR
from cimcodec.golden.blocks.crc import update as golden_update


def update_bytes(crc, data, count):
    """The register after the ``count`` bytes of ``data`` (the first in its low byte):
    the steps of :func:`golden.blocks.crc.update` are linear over GF(2), so each
    register bit is the XOR of the register and data bits found by running the golden
    step on single-bit inputs. Unrolling the step instead (shift, then XOR the
    polynomial under a multiplexer, 8 times a byte) nests a multiplexer per bit, an
    expression tree exponential in the bits for several bytes; for one byte it is a
    chain of 16 32-bit operations that Icarus re-evaluates on every input change, and
    the one-byte CRC in this form made the 1-lane decompressor's Icarus bench about
    40 % faster (a 15-file Pillow sweep, 11,740 clocks: 17-19 s to 11-12 s)."""

    def run(state, value):
        for k in range(count):
            state = golden_update(state, (value >> (8 * k)) & 0xFF)
        return state

    crc_cols = [run(1 << j, 0) for j in range(32)]
    data_cols = [run(0, 1 << j) for j in range(8 * count)]
    bits = []
    for i in range(32):
        terms = [crc[j] for j in range(32) if crc_cols[j] >> i & 1]
        terms += [data[j] for j in range(8 * count) if data_cols[j] >> i & 1]
        bits.append(Cat(*terms).xor() if terms else Const(0))
    return Cat(*bits)


class ScanCrc(wiring.Component):
    """Follows the raw file bytes of the scan and computes their CRC-32.

    Attributes
    ----------
    byte : In(8)
        The file byte being transferred.
    take : In(1)
        ``byte`` is transferred this clock.
    scan : In(1)
        The SOS segment's last byte was transferred before this clock: every byte
        taken from now on is entropy-coded data until the scan ends.
    crc : Out(32)
        CRC-32 (final XOR applied) of the entropy-coded data, valid with ``end`` and
        ``ended``.
    end : Out(1)
        Combinational: the byte taken this clock is the code of the marker that ends
        the scan (a check on ``crc`` can then be registered with the byte's transfer).
    ended : Out(1)
        ``end`` was seen (from the next clock). Held.
    wide : In(8 * in_bytes)
        (``in_bytes > 1``) ``in_bytes`` file bytes of the scan, the first in the low
        byte, none of them ``0xFF`` and the byte before them not ``0xFF`` either.
    wide_take : In(1)
        ``wide`` is transferred this clock (never with ``take``).

    A fill byte (``0xFF``) is counted only when the next non-fill byte is a stuffed
    zero or an ``RSTn`` code, so two registers run: ``committed`` (the bytes known to
    be data) and ``pending`` (``committed`` and the fill bytes since).
    """

    def __init__(self, in_bytes: int = 1):
        self._in_bytes = in_bytes
        wide = {"wide": In(8 * in_bytes), "wide_take": In(1)} if in_bytes > 1 else {}
        super().__init__({
            "byte": In(8), "take": In(1), "scan": In(1),
            "crc": Out(32), "end": Out(1), "ended": Out(1), **wide,
        })

    def elaborate(self, platform):
        m = Module()
        committed = Signal(32, init=XOR)
        pending = Signal(32, init=XOR)
        after_ff = Signal()
        b = self.byte
        m.d.comb += self.crc.eq(committed ^ XOR)
        with m.If(self.take & self.scan & ~self.ended):
            with m.If(b == 0xFF):
                m.d.sync += [pending.eq(update_bytes(pending, b, 1)), after_ff.eq(1)]
            with m.Elif(~after_ff | (b == 0x00) | ((b >= 0xD0) & (b <= 0xD7))):
                nxt = update_bytes(pending, b, 1)
                m.d.sync += [committed.eq(nxt), pending.eq(nxt), after_ff.eq(0)]
            with m.Else():
                m.d.comb += self.end.eq(1)
                m.d.sync += self.ended.eq(1)
        if self._in_bytes > 1:
            with m.If(self.wide_take & self.scan & ~self.ended):
                nxt = update_bytes(pending, self.wide, self._in_bytes)
                m.d.sync += [committed.eq(nxt), pending.eq(nxt)]
        return m
