"""Weight-matrix remap unit: coded (block-order) coordinates in, original coordinates out.

The reference model is :class:`golden.blocks.remap.RemapParams` (the formulas are in the
docstring of :mod:`golden.blocks.remap`); :class:`golden.blocks.remap.RemapShape` sizes the hardware
and gives its run-time configuration.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from cimcodec.golden.blocks.remap import RemapShape
from cimcodec.hw import refuse
from cimcodec.hw.lfsr import ControlWordGenerator, config_layout, word_layout


def remap_config_layout(shape: RemapShape) -> data.StructLayout:
    """Matrix shape (not padded) and whether remapping is on (scheme ``none``: off)."""
    return data.StructLayout({
        "rows": range(shape.max_rows + 1),
        "cols": range(shape.max_cols + 1),
        "enable": 1,
    })


def coord_layout(shape: RemapShape) -> data.StructLayout:
    """A matrix position with the payload that travels with it."""
    return data.StructLayout({
        "row": shape.row_bits,
        "col": shape.col_bits,
        "data": shape.data_width,
    })


def _smear(value, width):
    """All ones from bit 0 up to the highest set bit of ``value``."""
    k = 1
    while k < width:
        value = value | (value >> k)
        k *= 2
    return value


def _scramble(m, x, word, last, width, name):
    """Decoder-direction scramble of address ``x`` by control word ``word`` (already
    masked to the address width) in a grid whose last index is ``last``:
    ``t = x ^ (w & 7)``, ``g = mix(w >> 3, t & 7)``, then the conditional swap of the
    block address by ``g`` (see :mod:`golden.blocks.remap`)."""
    t = Signal(width, name=f"{name}_t")
    m.d.comb += t.eq(x ^ word[:3])
    high = word[3:]
    g = (Mux(t[0], high, 0) ^ Mux(t[1], high >> 1, 0) ^ Mux(t[2], high >> 2, 0))
    u = Signal(width, name=f"{name}_u")
    m.d.comb += u.eq(t ^ (g << 3))
    out = Signal(width, name=name)
    m.d.comb += out.eq(Mux(u <= last, u, t))
    return out


class _RemapComponent(wiring.Component):
    """The constructor :class:`RemapUnit` and :class:`RemapEngine` share: the shape
    check, the ``shape`` property and the ports ``cfg``, ``i`` and ``o``, beside the
    control-word input the subclass names (``_feed``)."""

    def __init__(self, shape: RemapShape = RemapShape()):
        if not isinstance(shape, RemapShape):
            refuse(self, f"Remap shape must be a RemapShape, not {shape!r}.")
        self._shape = shape
        super().__init__({
            **self._feed(shape),
            "cfg": In(remap_config_layout(shape)),
            "i": In(stream.Signature(coord_layout(shape))),
            "o": Out(stream.Signature(coord_layout(shape))),
        })

    @staticmethod
    def _feed(shape: RemapShape) -> dict:
        raise NotImplementedError

    @property
    def shape(self) -> RemapShape:
        return self._shape


class RemapUnit(_RemapComponent):
    """Inverse weight-matrix remap.

    Parameters
    ----------
    shape : RemapShape
        Largest matrix and payload width.

    Attributes
    ----------
    cfg : In(remap_config_layout(shape))
        Plain configuration signals, held stable while coordinates flow and control
        words load (the geometry derived from them is registered: a change is seen a
        clock later, and neither ``i`` nor ``cw`` is ready in the clock after a reset).
    cw : In(stream.Signature(word_layout(...)))
        Control words from :class:`hw.lfsr.ControlWordGenerator`: the first ``BC`` fill
        the row-word table, the next ``BR`` the column-word table, ``last`` ends the
        load. Needed only when ``cfg.enable``.
    i : In(stream.Signature(coord_layout(shape)))
        Coded positions in the padded grid, any order.
    o : Out(stream.Signature(coord_layout(shape)))
        Original positions with the same payload. Positions in the padding (original row
        or column past the matrix) and inputs outside the padded grid are dropped.

    ``i`` is accepted only once a control-word load has ended (or when remapping is off).
    Stream rules: ``o`` is the last of six register stages: ``o.valid`` never waits
    for ``o.ready`` and ``o.payload`` changes only when ``o`` is empty or transferring.
    Latency six clocks, throughput one position per clock. Each position costs two
    synchronous table reads (block RAM) and, per address, a few XORs and masks and one
    compare.
    """

    @staticmethod
    def _feed(shape):
        return {"cw": In(stream.Signature(word_layout(shape.generator_shape())))}

    def elaborate(self, platform):
        m = Module()
        shape = self._shape
        wa = shape.word_width

        m.submodules.a_table = a_table = Memory(shape=wa, depth=shape.table_cols, init=[])
        m.submodules.b_table = b_table = Memory(shape=wa, depth=shape.table_rows, init=[])
        a_read = a_table.read_port()
        b_read = b_table.read_port()
        a_write = a_table.write_port()
        b_write = b_table.write_port()

        # Geometry of the padded grid, derived from the configured shape exactly as the
        # golden model does: last padded index and the address-width masks. Registered
        # (the configuration is static while coordinates flow), so no path runs from
        # ``cfg`` through a subtraction into the scrambles.
        last_row = Signal(shape.row_bits)
        last_col = Signal(shape.col_bits)
        block_cols = Signal(range(shape.table_cols + 1))
        row_mask = Signal(shape.row_bits)
        col_mask = Signal(shape.col_bits)
        next_row = Signal(shape.row_bits)
        next_col = Signal(shape.col_bits)
        m.d.comb += [
            next_row.eq((self.cfg.rows - 1) | 7),
            next_col.eq((self.cfg.cols - 1) | 7),
        ]
        # ``settled``: the geometry registers hold the configuration's values, which
        # they do not in the clock after a reset (they reset to 0); until then no
        # position or control word is taken.
        settled = Signal()
        m.d.sync += [
            settled.eq(1),
            last_row.eq(next_row),
            last_col.eq(next_col),
            block_cols.eq((next_col >> 3) + 1),
            row_mask.eq(_smear(next_row, shape.row_bits)),
            col_mask.eq(_smear(next_col, shape.col_bits)),
        ]

        # Control-word load: word k goes to a[k] for k < BC, else to b[k - BC].
        index = Signal(range(shape.table_rows + shape.table_cols + 1))
        loaded = Signal()
        m.d.comb += [
            self.cw.ready.eq(settled),
            a_write.addr.eq(index),
            b_write.addr.eq(index - block_cols),
            a_write.data.eq(self.cw.payload.word),
            b_write.data.eq(self.cw.payload.word),
        ]
        with m.If(self.cw.valid & settled):
            m.d.comb += [
                a_write.en.eq(index < block_cols),
                b_write.en.eq((index >= block_cols) & (index - block_cols < shape.table_rows)),
            ]
            with m.If(self.cw.payload.last):
                m.d.sync += [index.eq(0), loaded.eq(1)]
            with m.Else():
                m.d.sync += [index.eq(index + 1), loaded.eq(0)]

        # Inverse remap, rows first, then columns with the row just found:
        #   r = scramble(r2, a[c2 >> 3], Rp);  c = scramble(c2, b[r >> 3], Cp)
        # Remapping off: words of zero make both scrambles the identity.
        #
        # Six register stages that move together (``advance``), so the tables are
        # synchronous block RAM and every stage holds at most one scramble:
        #   s1: a[c2 >> 3] is read         s2: the row word is registered
        #   s3: the row r is registered    s4: b[r >> 3] is read, r checked
        #   s5: the column word is registered              o: the column c
        # A read port's data holds while its ``en`` is low, so a stall freezes it all.
        on = self.cfg.enable
        advance = Signal()
        m.d.comb += [
            advance.eq(self.o.ready | ~self.o.valid),
            self.i.ready.eq(advance & (loaded | ~on) & settled),
            a_read.en.eq(advance),
            b_read.en.eq(advance),
        ]
        layout = coord_layout(shape)
        s = [None] + [Signal(layout, name=f"s{k}") for k in range(1, 6)]
        valid = [None] + [Signal(name=f"s{k}_valid") for k in range(1, 6)]
        a_word = Signal(shape.row_bits)
        b_word = Signal(shape.col_bits)

        m.d.comb += a_read.addr.eq(self.i.payload.col >> 3)
        r = _scramble(m, s[2].row, a_word, last_row, shape.row_bits, "r")
        m.d.comb += b_read.addr.eq(s[3].row >> 3)
        c = _scramble(m, s[5].col, b_word, last_col, shape.col_bits, "c")

        with m.If(advance):
            m.d.sync += [
                s[1].eq(self.i.payload),
                valid[1].eq(self.i.valid & self.i.ready
                            & (self.i.payload.row <= last_row)
                            & (self.i.payload.col <= last_col)),
                s[2].eq(s[1]), valid[2].eq(valid[1]),
                a_word.eq(Mux(on, a_read.data & row_mask, 0)),
                s[3].eq(s[2]), s[3].row.eq(r), valid[3].eq(valid[2]),
                s[4].eq(s[3]), valid[4].eq(valid[3] & (s[3].row < self.cfg.rows)),
                s[5].eq(s[4]), valid[5].eq(valid[4]),
                b_word.eq(Mux(on, b_read.data & col_mask, 0)),
                self.o.payload.eq(s[5]),
                self.o.payload.col.eq(c),
                self.o.valid.eq(valid[5] & (c < self.cfg.cols)),
            ]
        return m


class RemapEngine(_RemapComponent):
    """Control-word generator feeding a remap unit: the remap datapath as the
    decompressor uses it, configured from :class:`golden.blocks.remap.RemapParams`.

    Attributes
    ----------
    gen_cfg : In(stream.Signature(config_layout(shape.generator_shape())))
        One transfer loads the control-word tables (not needed for scheme ``none``).
    cfg, i, o :
        As :class:`RemapUnit`.
    """

    @staticmethod
    def _feed(shape):
        return {"gen_cfg": In(stream.Signature(config_layout(shape.generator_shape())))}

    def elaborate(self, platform):
        m = Module()
        m.submodules.gen = gen = ControlWordGenerator(self._shape.generator_shape())
        m.submodules.unit = unit = RemapUnit(self._shape)
        wiring.connect(m, wiring.flipped(self.gen_cfg), gen.cfg)
        wiring.connect(m, gen.o, unit.cw)
        wiring.connect(m, wiring.flipped(self.i), unit.i)
        wiring.connect(m, unit.o, wiring.flipped(self.o))
        m.d.comb += unit.cfg.eq(self.cfg)
        return m
