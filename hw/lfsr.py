"""Control-word generator: run-time programmable LFSRs that emit seed 000's control words.

The reference model is :class:`golden.blocks.lfsr.ControlWords`; its ``config()`` gives the
``cfg`` payload that makes this block emit exactly ``ControlWords.words(count)``.
"""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from cimcodec.golden.blocks.lfsr import GeneratorShape
from cimcodec.hw import refuse


def field_layout(shape: GeneratorShape) -> data.StructLayout:
    """One LFSR field of the configuration: tap mask, seed, form, bits taken."""
    return data.StructLayout({
        "taps": shape.lfsr_width,
        "seed": shape.lfsr_width,
        "galois": 1,
        "take": range(shape.lfsr_width + 1),
    })


def config_layout(shape: GeneratorShape) -> data.StructLayout:
    """The ``cfg`` payload: one job of ``count`` words."""
    return data.StructLayout({
        "fields": data.ArrayLayout(field_layout(shape), shape.fields),
        "count": shape.count_bits,
        "ramp_start": range(shape.lfsr_width + 1),
        "ramp_len": shape.count_bits,
    })


def word_layout(shape: GeneratorShape) -> data.StructLayout:
    """The ``o`` payload: a control word, ``last`` on the job's final word."""
    return data.StructLayout({"word": shape.word_width, "last": 1})


class ControlWordGenerator(wiring.Component):
    """Emits ``count`` control words per configuration transfer.

    Parameters
    ----------
    shape : GeneratorShape
        Elaboration-time sizes (widest LFSR, number of fields, word and counter width).

    Attributes
    ----------
    cfg : In(stream.Signature(config_layout(shape)))
        One transfer starts a job; accepted only while idle. A job of ``count = 0``
        emits nothing.
    o : Out(stream.Signature(word_layout(shape)))
        The words, ``last`` set on the final one.

    Stream rules: ``o.valid`` rises without waiting for ``o.ready``; ``o.payload`` is
    a function of registers that change only on a transfer, so it holds while ``valid``.
    Throughput one word per clock, first word one clock after the ``cfg`` transfer.
    """

    def __init__(self, shape: GeneratorShape = GeneratorShape()):
        if not isinstance(shape, GeneratorShape):
            refuse(self, f"Generator shape must be a GeneratorShape, not {shape!r}.")
        self._shape = shape
        super().__init__({
            "cfg": In(stream.Signature(config_layout(shape))),
            "o": Out(stream.Signature(word_layout(shape))),
        })

    @property
    def shape(self) -> GeneratorShape:
        return self._shape

    def elaborate(self, platform):
        m = Module()
        shape = self._shape
        width = shape.lfsr_width

        cfg = Signal(config_layout(shape))
        states = [Signal(width, name=f"state{i}") for i in range(shape.fields)]
        remaining = Signal(shape.count_bits)
        stage = Signal(shape.count_bits)
        ramp = Signal(range(width + 1))
        busy = Signal()

        # Field i sits at the sum of the takes of the fields below it; field 0's take
        # is clipped to the progressive ramp when a stage length is configured.
        word = 0
        shift = Const(0, range(shape.fields * width + 1))
        for i, state in enumerate(states):
            take = cfg.fields[i].take
            if i == 0:
                take = Mux((cfg.ramp_len != 0) & (ramp < take), ramp, take)
            mask = (Const(1, width + 1) << take) - 1
            word = word | ((state & mask) << shift)
            shift = shift + cfg.fields[i].take

        m.d.comb += [
            self.cfg.ready.eq(~busy),
            self.o.valid.eq(busy),
            self.o.payload.word.eq(word),
            self.o.payload.last.eq(remaining == 1),
        ]

        with m.If(self.cfg.valid & self.cfg.ready):
            m.d.sync += [
                cfg.eq(self.cfg.payload),
                remaining.eq(self.cfg.payload.count),
                busy.eq(self.cfg.payload.count != 0),
                stage.eq(0),
                ramp.eq(self.cfg.payload.ramp_start),
            ]
            m.d.sync += [state.eq(self.cfg.payload.fields[i].seed)
                         for i, state in enumerate(states)]

        with m.If(self.o.valid & self.o.ready):
            m.d.sync += remaining.eq(remaining - 1)
            with m.If(remaining == 1):
                m.d.sync += busy.eq(0)
            with m.If(stage + 1 == cfg.ramp_len):
                m.d.sync += [stage.eq(0), ramp.eq(Mux(ramp == width, ramp, ramp + 1))]
            with m.Else():
                m.d.sync += stage.eq(stage + 1)
            for i, state in enumerate(states):
                f = cfg.fields[i]
                # The width mask of a runtime LFSR is all ones up to the taps' top bit.
                smear = f.taps
                for k in (1, 2, 4, 8, 16, 32):
                    if k < width:
                        smear = smear | (smear >> k)
                fib = ((state << 1) | (state & f.taps).xor()) & smear
                gal = (state >> 1) ^ Mux(state[0], f.taps, 0)
                m.d.sync += state.eq(Mux(f.galois, gal, fib))
        return m
