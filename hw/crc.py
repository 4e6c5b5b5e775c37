"""CRC-32 of the entropy-coded data, computed as the file's bytes stream by.

The reference model is :mod:`golden.blocks.crc` (its docstring says which bytes count);
:func:`golden.blocks.crc.update` is the per-byte step that :func:`update` builds in gates.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from cimcodec.golden.blocks.crc import POLYNOMIAL, XOR


def update(crc, byte):
    """The register after one byte (reflected, 8 unrolled steps): an XOR network."""
    value = crc ^ byte
    for _ in range(8):
        value = (value >> 1) ^ Mux(value[0], POLYNOMIAL, 0)
    return value[:32]


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

    A fill byte (``0xFF``) is counted only when the next non-fill byte is a stuffed
    zero or an ``RSTn`` code, so two registers run: ``committed`` (the bytes known to
    be data) and ``pending`` (``committed`` and the fill bytes since).
    """

    byte: In(8)
    take: In(1)
    scan: In(1)
    crc: Out(32)
    end: Out(1)
    ended: Out(1)

    def elaborate(self, platform):
        m = Module()
        committed = Signal(32, init=XOR)
        pending = Signal(32, init=XOR)
        after_ff = Signal()
        b = self.byte
        m.d.comb += self.crc.eq(committed ^ XOR)
        with m.If(self.take & self.scan & ~self.ended):
            with m.If(b == 0xFF):
                m.d.sync += [pending.eq(update(pending, b)), after_ff.eq(1)]
            with m.Elif(~after_ff | (b == 0x00) | ((b >= 0xD0) & (b <= 0xD7))):
                nxt = update(pending, b)
                m.d.sync += [committed.eq(nxt), pending.eq(nxt), after_ff.eq(0)]
            with m.Else():
                m.d.comb += self.end.eq(1)
                m.d.sync += self.ended.eq(1)
        return m
