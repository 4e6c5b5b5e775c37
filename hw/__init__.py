"""Amaranth 0.5 hardware blocks; each ``hw/<block>.py`` has its reference model in
:mod:`cimcodec.golden.blocks` and its cocotb bench in :mod:`cimcodec.tb`."""

import types
from typing import NoReturn

from amaranth.lib import enum

from cimcodec.golden.errors import CimcodecError


def quiet_if_unused(elaboratable) -> None:
    """Keep Amaranth from warning that ``elaboratable`` was "created but never used"
    (its ``MustUse`` flag, the one place this package touches it): for an object that
    is refused, or that belongs to another which warns for it."""
    elaboratable._MustUse__silence = True


def refuse(component, message: str) -> NoReturn:
    """Raise :class:`CimcodecError` with ``message`` from ``component``'s constructor.
    The component will never be elaborated, so Amaranth's "created but never used"
    warning, which would follow the error when the object is collected, is silenced
    for it."""
    quiet_if_unused(component)
    raise CimcodecError(message)


def field_enum(name: str, golden, shape: int, module: str) -> type:
    """A golden model's codes as a hardware field of ``shape`` bits: an
    :class:`amaranth.lib.enum.IntEnum` named ``name`` (defined in ``module``) with the
    members and values of ``golden``, an ``IntEnum`` or a ``{name: value}`` mapping.
    Payloads read back as plain integers, and the codes are written out once, in the
    golden model."""
    members = golden if isinstance(golden, dict) else {m.name: m.value for m in golden}
    out = types.new_class(name, (enum.IntEnum,), {"shape": shape},
                          lambda ns: ns.update(members))
    source = golden if isinstance(golden, dict) else f"{golden.__module__}.{golden.__qualname__}"
    out.__doc__ = f"The codes of ``{source}`` as a {shape}-bit field."
    out.__module__ = module
    return out
