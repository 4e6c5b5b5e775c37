"""Payload values as plain Python: pack nested dicts into the integer a ``data.Layout``
puts on a port, and unpack integers back into nested dicts and lists.

:func:`codec` compiles a layout once into a pair of plain functions (shifts and masks);
the cocotb benches call them on every transfer, where building Amaranth constants
cost about 50 us a payload.
"""

import functools

from amaranth.hdl import Shape
from amaranth.lib import data


@functools.cache
def codec(layout):
    """``(pack, unpack)`` of ``layout`` (a ``data.Layout`` or anything ``Shape.cast``
    accepts, enums included).

    ``pack(value)`` gives the bits of ``value``: an int (or an int-like: enum member,
    bool, NumPy integer) for a plain shape, a dict for a struct (missing fields are 0),
    a list of the exact length for an array. A value that does not fit its field's
    width, an unknown field name or a list of the wrong length raises ``ValueError``.
    ``unpack(bits)`` gives nested dicts / lists of plain ints, signed fields as
    negative numbers.
    """
    if isinstance(layout, data.ArrayLayout):
        return _array(layout)
    if isinstance(layout, data.Layout):
        return _struct(layout)
    return _plain(Shape.cast(layout))


def _plain(shape):
    width, signed = shape.width, shape.signed
    mask = (1 << width) - 1
    low, high = (-(1 << width >> 1), (1 << width >> 1) - 1) if signed else (0, mask)

    def pack(value):
        value = int(value)
        if not low <= value <= high:
            raise ValueError(f"{value} does not fit a field of shape {shape}.")
        return value & mask

    def unpack(bits):
        return bits - (1 << width) if signed and bits >> (width - 1) else bits

    return pack, unpack


def _struct(layout):
    fields = [(name, field.offset, (1 << Shape.cast(field.shape).width) - 1,
               *codec(field.shape)) for name, field in layout]
    names = {name for name, *_ in fields}

    def pack(value):
        unknown = value.keys() - names
        if unknown:
            raise ValueError(f"No field {sorted(unknown)[0]!r} in {layout!r}.")
        bits = 0
        for name, offset, _, pack_field, _ in fields:
            if name in value:
                bits |= pack_field(value[name]) << offset
        return bits

    def unpack(bits):
        return {name: unpack_field((bits >> offset) & mask)
                for name, offset, mask, _, unpack_field in fields}

    return pack, unpack


def _array(layout):
    width = Shape.cast(layout.elem_shape).width
    mask, length = (1 << width) - 1, layout.length
    pack_elem, unpack_elem = codec(layout.elem_shape)

    def pack(value):
        if len(value) != length:
            raise ValueError(f"{len(value)} elements for {layout!r}.")
        bits = 0
        for k, v in enumerate(value):
            bits |= pack_elem(v) << (k * width)
        return bits

    def unpack(bits):
        return [unpack_elem((bits >> (k * width)) & mask) for k in range(length)]

    return pack, unpack


def pack(layout, value) -> int:
    """The bits of ``value`` on a port of ``layout`` (see :func:`codec`)."""
    return codec(layout)[0](value)


def unpack(layout, bits: int):
    """Nested dicts / lists / ints of the integer ``bits`` read from a port of ``layout``."""
    return codec(layout)[1](bits)


def to_python(value):
    """A ``data.Const`` (or int) as nested dicts / lists / ints."""
    if isinstance(value, int):
        return value
    layout = value.shape()
    if isinstance(layout, data.ArrayLayout):
        return [to_python(value[i]) for i in range(layout.length)]
    return {name: to_python(value[name]) for name, _ in layout}
