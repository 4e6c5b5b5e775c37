"""Golden models: bit-exact Python references that define what the hardware must output."""

from .errors import CimcodecError

__all__ = ["CimcodecError"]
