"""Charge-redistribution compute-in-memory (CIM) MAC array of seed 001: the bit-exact
integer reference for :mod:`hw.cim`.

The macro
---------
An array of ``R`` rows by ``C`` columns holds one 8-bit two's-complement weight
``w[r, c]`` per cell, stored bit by bit: weight bit ``j`` (0..7) of every cell forms
*weight plane* ``j``. An 8-bit activation vector ``a[0..R-1]`` (unsigned 0..255, or
signed -128..127 with ``signed_acts``) is applied bit-serially, one activation bit ``i``
(0..7) per step, on the row lines. For every column ``c`` and weight plane ``j`` the
cells whose activation bit and weight bit are both one share their charge, so the
column line settles to a voltage proportional to the count::

    n[i, j, c] = sum_r  bit_i(a[r]) * bit_j(w[r, c])          (0 <= n <= R)

where ``bit_k(x) = (x >> k) & 1`` of the 8-bit two's-complement pattern of ``x``.

The ADC
-------
A ``B``-bit ADC (``M = 2**B - 1`` levels above zero, full scale ``R``) converts it, and
the digital side reconstructs the count it stands for; both round half up, exactly in
integers::

    code  = floor((2 * n * M + R) / (2 * R))          # round(n * M / R),     0..M
    n_hat = floor((2 * code * R + M) / (2 * M))       # round(code * R / M),  0..R

``n_hat`` is a function of ``n`` alone, so the whole ADC is the table
:attr:`CimParams.adc_table` of ``R + 1`` entries (``n -> n_hat``); the hardware holds it
as a small ROM next to each column, no divider. When ``M >= R``, i.e.
``B >= ceil(log2(R + 1))`` (:attr:`CimParams.exact_adc_bits`), the conversion is
lossless: ``|code - n*M/R| <= 1/2`` puts ``code*R/M`` within ``R/(2M) <= 1/2`` of ``n``,
and the half-way case ``M == R`` has ``code == n``; so ``n_hat == n``.

The result
----------
Digital shift-add over all bit pairs, with the weight sign bit (and, for signed
activations, the activation sign bit) counting negatively::

    y[c] = sum_{i=0..7} sum_{j=0..7}  s_i * s_j * 2**(i + j) * n_hat[i, j, c]

    s_j = -1 if j == 7 else +1                      (weights)
    s_i = -1 if i == 7 and signed_acts else +1      (activations)

With a lossless ADC ``y = a @ w`` exactly. With a coarser ADC the counts are no longer
consistent with each other, so ``y`` may leave the range of the exact product; it stays
within :attr:`CimParams.result_range`, ``[-R * neg, R * pos]`` where ``pos`` (``neg``)
is the sum of ``2**(i + j)`` over the bit pairs of sign ``+1`` (``-1``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from cimcodec.golden.errors import CimcodecError

#: Bits of a weight and of an activation.
WEIGHT_BITS = 8
ACT_BITS = 8

MAX_ADC_BITS = 16

#: The weight planes per clock the hardware can convert (divisors of 8).
PLANES_PER_CLOCK = (1, 2, 4, 8)


def _positive_int(value, name) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise CimcodecError(f"{name} must be a positive integer, not {value!r}.")
    return int(value)


def _int_matrix(array, name) -> np.ndarray:
    """``array`` as a 2-D ``int64`` array, or one sentence saying why it is not one."""
    array = np.asarray(array)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise CimcodecError(f"{name} must be an integer array, not {array.dtype}.")
    if array.ndim != 2:
        raise CimcodecError(
            f"{name} must be 2-D, not {array.ndim}-D with shape {array.shape}."
        )
    return array.astype(np.int64)


def _bits(values: np.ndarray) -> np.ndarray:
    """Bits 0..7 of the 8-bit two's-complement pattern of each value, as a last axis."""
    return (values[..., None] >> np.arange(8, dtype=np.int64)) & 1


@dataclass(frozen=True)
class CimParams:
    """One CIM macro: array size, ADC resolution and activation signedness.

    The same object sizes :class:`hw.cim.CimArray` and computes what it must produce;
    the exact formulas are in the module docstring.

    Parameters
    ----------
    rows : int
        Rows ``R`` of the array (length of an activation vector), at least 1.
    cols : int
        Columns ``C`` (results per activation vector), at least 1.
    adc_bits : int
        ADC resolution ``B``, 1..16 bits. Lossless from :attr:`exact_adc_bits` up.
    signed_acts : bool
        Activations are signed -128..127 (two's complement) instead of 0..255.
    planes_per_clock : int
        Weight planes the hardware converts per clock: 1, 2, 4 or 8. A vector then takes
        :attr:`clocks_per_vector` clocks; the results do not depend on it.
    writes_per_clock : int
        Weights one write of the hardware's weight port carries: ``W`` adjacent cells of
        one row, columns ``g W .. g W + W - 1`` (a power of two that divides ``C``). The
        array then loads in :attr:`load_clocks` clocks; the results do not depend on it.

    Raises
    ------
    CimcodecError
        A count that is not a positive integer, an ADC resolution outside 1..16 bits,
        a signedness that is not a bool, planes per clock other than 1, 2, 4 or 8, or
        writes per clock that are not a power of two dividing the column count.
    """

    rows: int
    cols: int
    adc_bits: int
    signed_acts: bool = False
    planes_per_clock: int = 2
    writes_per_clock: int = 1

    def __post_init__(self):
        object.__setattr__(self, "rows", _positive_int(self.rows, "Row count"))
        object.__setattr__(self, "cols", _positive_int(self.cols, "Column count"))
        bits = self.adc_bits
        if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
            raise CimcodecError(f"ADC resolution must be an integer, not {bits!r}.")
        if not 1 <= bits <= MAX_ADC_BITS:
            raise CimcodecError(
                f"ADC resolution must be between 1 and {MAX_ADC_BITS} bits, not {bits}."
            )
        object.__setattr__(self, "adc_bits", int(bits))
        if not isinstance(self.signed_acts, (bool, np.bool_)):
            raise CimcodecError(
                f"Signed activations must be True or False, not {self.signed_acts!r}."
            )
        object.__setattr__(self, "signed_acts", bool(self.signed_acts))
        planes = self.planes_per_clock
        if (isinstance(planes, bool) or not isinstance(planes, (int, np.integer))
                or planes not in PLANES_PER_CLOCK):
            raise CimcodecError(
                f"Planes per clock must be 1, 2, 4 or 8, not {planes!r}."
            )
        object.__setattr__(self, "planes_per_clock", int(planes))
        writes = _positive_int(self.writes_per_clock, "Writes per clock")
        if writes & (writes - 1) or self.cols % writes:
            raise CimcodecError(
                f"Writes per clock must be a power of two that divides the {self.cols} "
                f"columns, not {writes}.")
        object.__setattr__(self, "writes_per_clock", writes)

    @property
    def clocks_per_vector(self) -> int:
        """Clocks the hardware spends on one activation vector: ``8 * 8 / planes_per_clock``
        (8 activation bits, each over the weight planes ``planes_per_clock`` at a time)."""
        return ACT_BITS * (WEIGHT_BITS // self.planes_per_clock)

    @property
    def load_clocks(self) -> int:
        """Clocks the hardware's weight port needs for the whole array at one write per
        clock: ``R * C / writes_per_clock``."""
        return self.rows * self.cols // self.writes_per_clock

    @property
    def adc_levels(self) -> int:
        """``M = 2**B - 1``, the largest ADC code."""
        return (1 << self.adc_bits) - 1

    @property
    def exact_adc_bits(self) -> int:
        """``ceil(log2(R + 1))``: the fewest ADC bits that lose nothing."""
        return self.rows.bit_length()

    @property
    def exact(self) -> bool:
        """True when the ADC is lossless (``n_hat == n`` for every count)."""
        return self.adc_levels >= self.rows

    @property
    def act_range(self) -> tuple[int, int]:
        """Smallest and largest activation."""
        return (-128, 127) if self.signed_acts else (0, 255)

    def adc_code(self, n):
        """ADC code of column count(s) ``n``: ``floor((2 n M + R) / (2 R))``."""
        n = np.asarray(n, dtype=np.int64)
        return (2 * n * self.adc_levels + self.rows) // (2 * self.rows)

    def adc_reconstruct(self, code):
        """Count that ADC code(s) ``code`` stand for: ``floor((2 code R + M) / (2 M))``."""
        code = np.asarray(code, dtype=np.int64)
        return (2 * code * self.rows + self.adc_levels) // (2 * self.adc_levels)

    @cached_property
    def adc_table(self) -> tuple[int, ...]:
        """``n_hat`` for ``n = 0..R``: the whole ADC as a lookup table (the hardware ROM)."""
        n = np.arange(self.rows + 1, dtype=np.int64)
        return tuple(int(v) for v in self.adc_reconstruct(self.adc_code(n)))

    @property
    def bit_signs(self) -> np.ndarray:
        """``s_i * s_j`` as an 8 x 8 array indexed ``[i, j]``."""
        s_act = np.ones(ACT_BITS, dtype=np.int64)
        if self.signed_acts:
            s_act[ACT_BITS - 1] = -1
        s_w = np.ones(WEIGHT_BITS, dtype=np.int64)
        s_w[WEIGHT_BITS - 1] = -1
        return np.outer(s_act, s_w)

    @property
    def bit_weights(self) -> np.ndarray:
        """``s_i * s_j * 2**(i + j)`` as an 8 x 8 array indexed ``[i, j]``."""
        i, j = np.indices((ACT_BITS, WEIGHT_BITS), dtype=np.int64)
        return self.bit_signs << (i + j)

    @property
    def result_range(self) -> tuple[int, int]:
        """Smallest and largest result any ADC setting can give (see module docstring)."""
        i, j = np.indices((ACT_BITS, WEIGHT_BITS), dtype=np.int64)
        magnitude, signs = np.int64(1) << (i + j), self.bit_signs
        pos = int(magnitude[signs > 0].sum())
        neg = int(magnitude[signs < 0].sum())
        return -self.rows * neg, self.rows * pos

    def check_weights(self, weights) -> np.ndarray:
        """``weights`` as ``int64`` after checking shape ``(R, C)`` and range -128..127."""
        w = _int_matrix(weights, "Weights")
        if w.shape != (self.rows, self.cols):
            raise CimcodecError(
                f"Weights must have shape ({self.rows}, {self.cols}) (rows, columns), "
                f"not {w.shape}."
            )
        if w.size and (w.min() < -128 or w.max() > 127):
            raise CimcodecError(
                f"Weights must be 8-bit signed (-128..127), not {w.min()}..{w.max()}."
            )
        return w

    def check_acts(self, acts) -> np.ndarray:
        """``acts`` as ``int64`` after checking shape ``(N, R)`` and the 8-bit range."""
        a = _int_matrix(acts, "Activations")
        if a.shape[1] != self.rows:
            raise CimcodecError(
                f"Activation vectors must have {self.rows} entries (one per row), "
                f"not {a.shape[1]}."
            )
        low, high = self.act_range
        if a.size and (a.min() < low or a.max() > high):
            kind = "signed" if self.signed_acts else "unsigned"
            raise CimcodecError(
                f"Activations must be 8-bit {kind} ({low}..{high}), not {a.min()}..{a.max()}."
            )
        return a

    def counts(self, weights, acts) -> np.ndarray:
        """Column counts ``n[v, i, j, c]`` (vector, activation bit, weight bit, column)."""
        w, a = self.check_weights(weights), self.check_acts(acts)
        n_vec = a.shape[0]
        a_bits = _bits(a).transpose(0, 2, 1).reshape(n_vec * ACT_BITS, self.rows)
        w_bits = _bits(w).transpose(0, 2, 1).reshape(self.rows, WEIGHT_BITS * self.cols)
        return (a_bits @ w_bits).reshape(n_vec, ACT_BITS, WEIGHT_BITS, self.cols)

    def compute(self, weights, acts) -> np.ndarray:
        """Results ``y[v, c]`` (``int64``, shape ``(N, C)``) of activation vectors
        ``acts`` (shape ``(N, R)``) on ``weights`` (shape ``(R, C)``, -128..127).

        Raises
        ------
        CimcodecError
            Arrays that are not 2-D integer arrays, weights of the wrong shape or outside
            8-bit signed, activations of the wrong length or outside their 8-bit range.
        """
        n_hat = np.asarray(self.adc_table, dtype=np.int64)[self.counts(weights, acts)]
        return np.einsum("vijc,ij->vc", n_hat, self.bit_weights)
