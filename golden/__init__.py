"""Golden models: bit-exact Python references that define what the hardware must output."""

from cimcodec.golden.errors import CimcodecError

__all__ = ["CimcodecError"]
