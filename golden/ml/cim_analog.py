"""Analog non-ideal model of the charge-redistribution CIM macro of :mod:`golden.blocks.cim`,
in torch and vectorized over activation vectors, for accuracy studies.

This is *not* the bit-exact reference (that is :class:`golden.blocks.cim.CimParams`); it
follows the same decomposition step by step and perturbs the analog part of it, so
that with no perturbation it gives the same integers bit for bit.

The decomposition
-----------------
For activation bit ``i``, weight plane ``j`` and column ``c`` the cells whose activation
bit and weight bit are both one put their charge on the column line; charge sharing
over all ``R`` capacitors of the column settles it to the fraction::

    v[i, j, c] = sum_r C[r, j, c] * bit_i(a[r]) * bit_j(w[r, c]) / sum_r C[r, j, c]

of full scale. ``C[r, j, c] = 1 + (sigma / 100) * z``, ``z ~ N(0, 1)`` is the capacitance of
the cell holding weight bit ``j`` of ``w[r, c]`` in units of the nominal unit capacitor,
drawn once per chip (``AnalogParams.chip_seed``; capacitance is clipped at 1 % of a unit
so that it stays positive). With no mismatch ``R * v`` is the count ``n[i, j, c]`` of the
module docstring of :mod:`golden.blocks.cim` and is used as that integer.

The ADC sees ``x = R v * M / R`` in code units (LSB; ``M = 2**B - 1``) plus the
non-idealities, all in LSB::

    x' = x * (1 + gain / 100) + q_inj + offset + INL * sin(pi * x / M) + noise
    code = clamp(floor(x' + 1/2), 0, M)

``q_inj`` is the charge-injection offset of the column switches, ``offset`` the ADC
offset (both fixed), ``INL * sin(pi x / M)`` a smooth bow that is zero at both ends of
the range, and ``noise ~ N(0, thermal^2)`` thermal noise drawn afresh for every
conversion from a seeded generator: for activation bit ``i = 0..7`` in turn, one
``torch.randn((N, 8 * C), dtype=float64)`` whose entry ``[v, j * C + c]`` is the
conversion ``(v, i, j, c)``. With every non-ideality zero,
``floor(n M / R + 1/2)`` in float64 equals the integer
``floor((2 n M + R) / (2 R))`` of :meth:`golden.blocks.cim.CimParams.adc_code` (``n M / R`` is
at least ``1 / (2R)`` away from any half-integer unless it is one, and then exact).

The digital side is untouched: ``n_hat = CimParams.adc_reconstruct(code)`` and the
shift-add ``y[c] = sum_ij s_i s_j 2**(i + j) n_hat[i, j, c]`` with the sign planes, so
the result is always an integer (``int64``).

Memory: the loop runs over the 8 activation bits; each step is one
``(N, R) @ (R, 8 C)`` product, never an ``8 x 8 x N x R x C`` tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch

from cimcodec.golden.blocks.cim import ACT_BITS, WEIGHT_BITS, CimParams
from cimcodec.golden.errors import CimcodecError

#: Smallest capacitance a mismatched cell may have, in units of the unit capacitor.
MIN_CAPACITANCE = 0.01


def _real(value, name) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise CimcodecError(f"{name} must be a real number, not {value!r}.")
    if not math.isfinite(value):
        raise CimcodecError(f"{name} must be finite, not {value!r}.")
    return float(value)


def _non_negative(value, name) -> float:
    value = _real(value, name)
    if value < 0:
        raise CimcodecError(f"{name} must not be negative, not {value!r}.")
    return value


def _seed(value, name) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise CimcodecError(f"{name} must be a non-negative integer, not {value!r}.")
    return int(value)


@dataclass(frozen=True)
class AnalogParams:
    """Non-idealities of one chip, in physical terms (formulas in the module docstring).

    Parameters
    ----------
    mismatch_pct : float
        Standard deviation of each cell capacitor, in % of the unit capacitance
        (Gaussian, drawn once per chip). Not negative.
    charge_injection_lsb : float
        Offset that the column switches inject, in ADC LSB (either sign).
    thermal_noise_lsb : float
        RMS thermal noise at the ADC input, in LSB, fresh for every conversion. Not
        negative.
    adc_offset_lsb : float
        ADC offset in LSB (either sign).
    gain_error_pct : float
        ADC gain error in % (either sign, above -100).
    inl_lsb : float
        Peak of the integral non-linearity bow ``INL * sin(pi x / M)``, in LSB.
    chip_seed : int
        Seed of the capacitor mismatch (one chip).
    noise_seed : int
        Seed of the thermal-noise generator when the caller passes none.

    Raises
    ------
    CimcodecError
        A value that is not a finite real number, a negative standard deviation, a gain
        error of -100 % or less, or a seed that is not a non-negative integer.
    """

    mismatch_pct: float = 0.0
    charge_injection_lsb: float = 0.0
    thermal_noise_lsb: float = 0.0
    adc_offset_lsb: float = 0.0
    gain_error_pct: float = 0.0
    inl_lsb: float = 0.0
    chip_seed: int = 0
    noise_seed: int = 0

    def __post_init__(self):
        names = {
            "mismatch_pct": ("Capacitor mismatch", _non_negative),
            "charge_injection_lsb": ("Charge-injection offset", _real),
            "thermal_noise_lsb": ("Thermal noise", _non_negative),
            "adc_offset_lsb": ("ADC offset", _real),
            "gain_error_pct": ("Gain error", _real),
            "inl_lsb": ("INL", _real),
            "chip_seed": ("Chip seed", _seed),
            "noise_seed": ("Noise seed", _seed),
        }
        for field in fields(self):
            label, check = names[field.name]
            object.__setattr__(self, field.name, check(getattr(self, field.name), label))
        if self.gain_error_pct <= -100:
            raise CimcodecError(
                f"Gain error must be above -100 %, not {self.gain_error_pct!r}.")

    @property
    def ideal(self) -> bool:
        """True when every non-ideality is zero (the result is then bit-exact)."""
        return not any((self.mismatch_pct, self.charge_injection_lsb, self.thermal_noise_lsb,
                        self.adc_offset_lsb, self.gain_error_pct, self.inl_lsb))

    def capacitances(self, rows: int, cols: int, *, tile: int = 0) -> torch.Tensor:
        """Cell capacitances ``C[j, r, c]`` (float64, unit capacitor = 1) of macro ``tile``.

        The same ``(chip_seed, tile, rows, cols)`` always gives the same array: mismatch
        is fixed per chip. Different tiles of one layer are different macros.
        """
        if self.mismatch_pct == 0:
            return torch.ones(WEIGHT_BITS, rows, cols, dtype=torch.float64)
        seed = int(np.random.SeedSequence([self.chip_seed, tile]).generate_state(1)[0])
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(WEIGHT_BITS, rows, cols, generator=gen, dtype=torch.float64)
        return (1 + self.mismatch_pct / 100 * z).clamp_min(MIN_CAPACITANCE)

    def generator(self) -> torch.Generator:
        """A fresh thermal-noise generator seeded with ``noise_seed``."""
        return torch.Generator().manual_seed(self.noise_seed)


def _int_tensor(values, name) -> torch.Tensor:
    t = torch.as_tensor(values)
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise CimcodecError(f"{name} must be an integer tensor, not {t.dtype}.")
    if t.ndim != 2:
        raise CimcodecError(f"{name} must be 2-D, not {t.ndim}-D with shape {tuple(t.shape)}.")
    return t.to(torch.int64)


def check_operands(weights, acts, params: CimParams) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weights, acts)`` as int64 tensors after the checks of :class:`CimParams`."""
    w, a = _int_tensor(weights, "Weights"), _int_tensor(acts, "Activations")
    if tuple(w.shape) != (params.rows, params.cols):
        raise CimcodecError(
            f"Weights must have shape ({params.rows}, {params.cols}) (rows, columns), "
            f"not {tuple(w.shape)}.")
    if w.numel() and (w.min() < -128 or w.max() > 127):
        raise CimcodecError(
            f"Weights must be 8-bit signed (-128..127), not {int(w.min())}..{int(w.max())}.")
    if a.shape[1] != params.rows:
        raise CimcodecError(
            f"Activation vectors must have {params.rows} entries (one per row), "
            f"not {a.shape[1]}.")
    low, high = params.act_range
    if a.numel() and (a.min() < low or a.max() > high):
        kind = "signed" if params.signed_acts else "unsigned"
        raise CimcodecError(f"Activations must be 8-bit {kind} ({low}..{high}), "
                            f"not {int(a.min())}..{int(a.max())}.")
    return w, a


def cim_matmul(acts, weights, params: CimParams, analog: AnalogParams | None = None, *,
               tile: int = 0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Results ``y[v, c]`` (int64, shape ``(N, C)``) of the macro ``params`` for activation
    vectors ``acts`` (``(N, R)``) on ``weights`` (``(R, C)``, -128..127).

    Parameters
    ----------
    acts, weights : integer tensors or arrays
        As for :meth:`golden.blocks.cim.CimParams.compute` (note the argument order: activations
        first, like ``acts @ weights``).
    params : CimParams
        Array size, ADC bits, activation signedness.
    analog : AnalogParams or None
        Non-idealities; ``None`` takes the integer path (the ADC table of
        :class:`CimParams`), all-zero ones take the float path, and both give exactly
        ``params.compute``.
    tile : int
        Which macro of the chip (selects the capacitor mismatch).
    generator : torch.Generator or None
        Thermal-noise source; ``None`` starts a fresh one at ``analog.noise_seed``, so a
        call is reproducible. Pass one generator to successive calls for fresh noise.

    Raises
    ------
    CimcodecError
        Operands that are not 2-D integer tensors, of the wrong shape or out of range.
    """
    w, a = check_operands(weights, acts, params)
    rows, cols, levels = params.rows, params.cols, params.adc_levels
    table = torch.tensor(params.adc_table, dtype=torch.int64)
    bit_weights = torch.from_numpy(params.bit_weights)                   # [i, j]
    shifts = torch.arange(WEIGHT_BITS, dtype=torch.int64)
    w_bits = (w[None] >> shifts[:, None, None]) & 1                      # [j, r, c]
    nonideal = analog is not None
    if nonideal:
        cap = analog.capacitances(rows, cols, tile=tile)                 # [j, r, c]
        w_plane = (cap * w_bits).permute(1, 0, 2).reshape(rows, WEIGHT_BITS * cols)
        total = cap.sum(1).reshape(1, WEIGHT_BITS * cols)                 # [1, j*c]
        gen = generator if generator is not None else analog.generator()
        gain = 1 + analog.gain_error_pct / 100
        fixed = analog.charge_injection_lsb + analog.adc_offset_lsb
    else:
        w_plane = w_bits.permute(1, 0, 2).reshape(rows, WEIGHT_BITS * cols).to(torch.float64)
    y = torch.zeros(a.shape[0], cols, dtype=torch.int64)
    for i in range(ACT_BITS):
        a_bit = ((a >> i) & 1).to(torch.float64)                         # [v, r]
        charge = a_bit @ w_plane                                         # [v, j*c]
        if not nonideal:
            n_hat = table[charge.round().to(torch.int64)]
        else:
            x = charge * levels / total                                  # code units
            x = (x * gain + fixed + analog.inl_lsb * torch.sin(math.pi / levels * x))
            if analog.thermal_noise_lsb:
                x = x + analog.thermal_noise_lsb * torch.randn(
                    x.shape, generator=gen, dtype=torch.float64)
            code = torch.floor(x + 0.5).clamp(0, levels).to(torch.int64)
            n_hat = (2 * code * rows + levels) // (2 * levels)
        y += n_hat.reshape(-1, WEIGHT_BITS, cols).mul(bit_weights[i][None, :, None]).sum(1)
    return y
