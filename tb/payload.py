"""Payload values as plain Python: pack nested dicts into the integer a ``data.Layout``
puts on a port, and unpack integers back into nested dicts and lists."""

from amaranth.hdl import Shape
from amaranth.lib import data


def pack(layout, value) -> int:
    """The bits of ``value`` (int, or nested dicts / lists for struct and array layouts)."""
    if isinstance(layout, data.Layout):
        return layout.const(value).as_value().value
    return Shape.cast(layout).const(value).value if not isinstance(value, int) else (
        value & ((1 << Shape.cast(layout).width) - 1))


def to_python(value):
    """A ``data.Const`` (or int) as nested dicts / lists / ints."""
    if isinstance(value, int):
        return value
    layout = value.shape()
    if isinstance(layout, data.ArrayLayout):
        return [to_python(value[i]) for i in range(layout.length)]
    return {name: to_python(value[name]) for name, _ in layout}


def unpack(layout, bits: int):
    """Nested dicts / ints of the integer ``bits`` read from a port of ``layout``."""
    if isinstance(layout, data.Layout):
        return to_python(layout.from_bits(bits))
    return bits
