"""Linear-feedback shift registers and the control-word generator of seed 000.

Everything here is exact integer arithmetic and is the specification the RTL in
:mod:`hw.lfsr` must match bit for bit.

Polynomial convention
---------------------
An LFSR of width ``w`` (2 <= w <= 32) is described by a *tap mask* ``taps``: bit ``k-1``
of ``taps`` is set for every term ``x**k`` (1 <= k <= w) of the feedback polynomial
``P(x) = 1 + sum(x**k for k in taps)``. The top bit ``w-1`` is therefore always set. The
table :data:`MAXIMAL_TAPS` lists one primitive polynomial per width (Xilinx XAPP052's
tap positions) as such a mask.

Two register forms, both with ``mask = 2**w - 1`` and state never zero:

* Fibonacci (shift left, XOR feedback into bit 0)::

      fb    = parity(state & taps)
      state = ((state << 1) | fb) & mask

* Galois (shift right, XOR the taps in when the bit shifted out is one)::

      out   = state & 1
      state = (state >> 1) ^ (taps if out else 0)

For a primitive ``P`` both forms visit all ``2**w - 1`` non-zero states before repeating.

Control words
-------------
A :class:`ControlWords` object turns one or more LFSRs into a sequence of *control
words* (word ``j`` is built from the states after ``j`` steps, word 0 from the seeds):

* ``fields``: a list of ``(lfsr, take)``; field ``i`` contributes the low ``take_i`` bits
  of its LFSR's state, placed at bit ``shift_i = take_0 + ... + take_{i-1}``::

      word_j = OR_i ((state_i[j] & (2**t_i(j) - 1)) << shift_i)

* ``ramp_len`` (progressive-length scheme): when non-zero, field 0's width grows stage by
  stage, ``t_0(j) = min(take_0, ramp_start + j // ramp_len)``; otherwise
  ``t_i(j) = take_i``. Fields other than 0 never ramp.

The three schemes of seed 000 are three ways of filling these parameters
(:meth:`ControlWords.full`, :meth:`ControlWords.split`, :meth:`ControlWords.progressive`):

* **full-length**: one LFSR of width ``W``, each step gives one ``W``-bit word.
* **split-length**: the word is split into fields, each from its own LFSR, stepped
  together (e.g. 3 bits of in-block offset and ``W - 3`` bits of block address).
* **progressive-length**: one LFSR of width ``W`` whose word is masked to
  ``start`` bits for the first ``stage_len`` words, ``start + 1`` bits for the next
  ``stage_len``, and so on up to ``W`` bits.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from cimcodec.golden.errors import CimcodecError

MIN_WIDTH = 2
MAX_WIDTH = 32
#: Most states or words the golden model computes in one call: it keeps every one
#: (8 bytes) and takes one vectorized step per word. The remap of the largest matrix
#: (65528 x 65528) needs 16382 words.
MAX_COUNT = 1 << 24


def _check_count(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n <= MAX_COUNT:
        raise CimcodecError(f"The number of LFSR states or control words must be an integer "
                            f"0..{MAX_COUNT}, not {n!r}.")
    return int(n)

#: Tap positions (exponents) of one primitive polynomial per width, from Xilinx XAPP052.
_XAPP052 = {
    2: (2, 1), 3: (3, 2), 4: (4, 3), 5: (5, 3), 6: (6, 5), 7: (7, 6), 8: (8, 6, 5, 4),
    9: (9, 5), 10: (10, 7), 11: (11, 9), 12: (12, 6, 4, 1), 13: (13, 4, 3, 1),
    14: (14, 5, 3, 1), 15: (15, 14), 16: (16, 15, 13, 4), 17: (17, 14), 18: (18, 11),
    19: (19, 6, 2, 1), 20: (20, 17), 21: (21, 19), 22: (22, 21), 23: (23, 18),
    24: (24, 23, 22, 17), 25: (25, 22), 26: (26, 6, 2, 1), 27: (27, 5, 2, 1),
    28: (28, 25), 29: (29, 27), 30: (30, 6, 4, 1), 31: (31, 28), 32: (32, 22, 2, 1),
}


def taps_from_exponents(exponents) -> int:
    """Tap mask with bit ``k-1`` set for each exponent ``k``."""
    mask = 0
    for k in exponents:
        mask |= 1 << (k - 1)
    return mask


#: Width -> tap mask of a primitive (maximal-length) polynomial.
MAXIMAL_TAPS: dict[int, int] = {w: taps_from_exponents(e) for w, e in _XAPP052.items()}


class Kind(enum.Enum):
    """Register form of an LFSR."""

    FIBONACCI = "fibonacci"
    GALOIS = "galois"


def _check_width(width, name="LFSR width") -> int:
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)):
        raise CimcodecError(f"{name} must be an integer, not {width!r}.")
    if not MIN_WIDTH <= width <= MAX_WIDTH:
        raise CimcodecError(
            f"{name} must be between {MIN_WIDTH} and {MAX_WIDTH} bits, not {width}."
        )
    return int(width)


def _prime_factors(n: int) -> list[int]:
    factors, p = [], 2
    while p * p <= n:
        if n % p == 0:
            factors.append(p)
            while n % p == 0:
                n //= p
        p += 1
    if n > 1:
        factors.append(n)
    return factors


def _polymulmod(a: int, b: int, poly: int, degree: int) -> int:
    """a * b mod poly over GF(2), polynomials as integers (bit k = coefficient of x**k)."""
    result = 0
    while b:
        if b & 1:
            result ^= a
        b >>= 1
        a <<= 1
        if (a >> degree) & 1:
            a ^= poly
    return result


def _polypowmod(exponent: int, poly: int, degree: int) -> int:
    result, base = 1, 0b10  # 1 and x
    while exponent:
        if exponent & 1:
            result = _polymulmod(result, base, poly, degree)
        base = _polymulmod(base, base, poly, degree)
        exponent >>= 1
    return result


def is_maximal(width: int, taps: int) -> bool:
    """True when ``1 + sum x**k`` (taps) is primitive, i.e. the LFSR has period 2**w - 1.

    The polynomial is primitive exactly when ``x`` has multiplicative order ``2**w - 1``
    modulo it: ``x**(2**w-1) == 1`` and ``x**((2**w-1)/p) != 1`` for every prime ``p``.
    """
    width = _check_width(width)
    if taps >> (width - 1) != 1:
        return False
    poly = 1 | (taps << 1)
    period = (1 << width) - 1
    if _polypowmod(period, poly, width) != 1:
        return False
    return all(_polypowmod(period // p, poly, width) != 1 for p in _prime_factors(period))


def _parity(values: np.ndarray) -> np.ndarray:
    return np.bitwise_count(values) & np.uint64(1)


@dataclass(frozen=True)
class Lfsr:
    """One LFSR: ``width`` bits, tap mask ``taps`` (default: :data:`MAXIMAL_TAPS`),
    register form ``kind`` and a non-zero ``seed`` (the state before the first step).

    Raises
    ------
    CimcodecError
        Width outside 2..32, a seed of 0 or wider than the register, a tap mask whose
        top bit is not ``width - 1``, or (with ``require_maximal``) a polynomial that is
        not primitive.
    """

    width: int
    seed: int = 1
    taps: int | None = None
    kind: Kind = Kind.FIBONACCI
    require_maximal: bool = True

    def __post_init__(self):
        width = _check_width(self.width)
        object.__setattr__(self, "width", width)
        taps = MAXIMAL_TAPS[width] if self.taps is None else self.taps
        if isinstance(taps, bool) or not isinstance(taps, (int, np.integer)):
            raise CimcodecError(f"LFSR taps must be an integer mask, not {taps!r}.")
        taps = int(taps)
        if taps <= 0 or taps.bit_length() != width:
            raise CimcodecError(
                f"LFSR taps 0x{taps:x} must have bit {width - 1} as their top bit for a "
                f"{width}-bit register."
            )
        if self.require_maximal and not is_maximal(width, taps):
            raise CimcodecError(
                f"LFSR taps 0x{taps:x} do not give a maximal-length {width}-bit sequence."
            )
        object.__setattr__(self, "taps", taps)
        seed = self.seed
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise CimcodecError(f"LFSR seed must be an integer, not {seed!r}.")
        if not 1 <= seed < (1 << width):
            raise CimcodecError(
                f"LFSR seed must be between 1 and {(1 << width) - 1} for a {width}-bit "
                f"register, not {seed}."
            )
        object.__setattr__(self, "seed", int(seed))
        try:
            object.__setattr__(self, "kind", Kind(self.kind))
        except ValueError:
            raise CimcodecError(
                f"LFSR kind must be 'fibonacci' or 'galois', not {self.kind!r}."
            ) from None

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1

    @property
    def period(self) -> int:
        return (1 << self.width) - 1

    def step(self, state: int) -> int:
        """The state after one step from ``state``."""
        if self.kind is Kind.FIBONACCI:
            feedback = (state & self.taps).bit_count() & 1
            return ((state << 1) | feedback) & self.mask
        return (state >> 1) ^ (self.taps if state & 1 else 0)

    def states(self, n: int, seeds=None) -> np.ndarray:
        """States after 0, 1, ..., n-1 steps (``n`` in 0..:data:`MAX_COUNT`), as ``uint64``.

        With ``seeds`` (an array) the registers run side by side, vectorized over the
        seeds, and the result has shape ``seeds.shape + (n,)``; otherwise it starts from
        ``self.seed`` and has shape ``(n,)``.
        """
        n = _check_count(n)
        scalar = seeds is None
        state = np.atleast_1d(np.asarray(self.seed if scalar else seeds, dtype=np.uint64))
        if np.any(state == 0) or np.any(state > self.mask):
            raise CimcodecError(
                f"LFSR seeds must be between 1 and {self.mask} for a {self.width}-bit "
                "register."
            )
        out = np.empty(state.shape + (n,), dtype=np.uint64)
        taps, mask, one = np.uint64(self.taps), np.uint64(self.mask), np.uint64(1)
        for j in range(n):
            out[..., j] = state
            if self.kind is Kind.FIBONACCI:
                state = ((state << one) | _parity(state & taps)) & mask
            else:
                state = (state >> one) ^ (taps * (state & one))
        return out[0] if scalar else out


class Scheme(enum.Enum):
    """Control-word generation scheme of seed 000 (``NONE``: no remapping)."""

    NONE = "none"
    FULL = "full"
    SPLIT = "split"
    PROGRESSIVE = "progressive"


@dataclass(frozen=True)
class Field:
    """Field of a control word: the low ``take`` bits of ``lfsr``'s state."""

    lfsr: Lfsr
    take: int

    def __post_init__(self):
        if not 0 <= self.take <= self.lfsr.width:
            raise CimcodecError(
                f"A control-word field takes 0..{self.lfsr.width} bits of its "
                f"{self.lfsr.width}-bit LFSR, not {self.take}."
            )


@dataclass(frozen=True)
class ControlWords:
    """A control-word sequence; see the module docstring for the exact formula."""

    fields: tuple[Field, ...]
    ramp_start: int = 0
    ramp_len: int = 0

    def __post_init__(self):
        object.__setattr__(self, "fields", tuple(self.fields))
        if not self.fields:
            raise CimcodecError("A control-word generator needs at least one field.")
        if self.ramp_len < 0 or not 0 <= self.ramp_start <= MAX_WIDTH:
            raise CimcodecError(
                f"Progressive ramp must have start 0..{MAX_WIDTH} and a non-negative "
                f"stage length, not start {self.ramp_start} and length {self.ramp_len}."
            )

    @property
    def width(self) -> int:
        """Bits in one control word."""
        return sum(f.take for f in self.fields)

    @classmethod
    def full(cls, width, seed=1, *, taps=None, kind=Kind.FIBONACCI):
        """Full-length words: one ``width``-bit LFSR, one whole state per word."""
        return cls((Field(Lfsr(width, seed, taps, kind), _check_width(width, "Word width")),))

    @classmethod
    def split(cls, takes, seeds, *, taps=None, kind=Kind.FIBONACCI):
        """Split-length words: field ``i`` (LSB first) is ``takes[i]`` bits from its own
        LFSR of width ``max(2, takes[i])`` seeded with ``seeds[i]``."""
        takes, seeds = tuple(takes), tuple(seeds)
        taps = (None,) * len(takes) if taps is None else tuple(taps)
        if not len(takes) == len(seeds) == len(taps):
            raise CimcodecError(
                f"Split-length words need one seed per field: {len(takes)} fields, "
                f"{len(seeds)} seeds."
            )
        return cls(tuple(
            Field(Lfsr(max(MIN_WIDTH, t), s, p, kind), t)
            for t, s, p in zip(takes, seeds, taps)
        ))

    @classmethod
    def progressive(cls, width, seed=1, *, stage_len=1, start=1, taps=None,
                    kind=Kind.FIBONACCI):
        """Progressive-length words: one ``width``-bit LFSR, masked to ``start`` bits
        for the first ``stage_len`` words and one bit wider every ``stage_len`` words."""
        if stage_len < 1:
            raise CimcodecError(f"Progressive stage length must be at least 1, not {stage_len}.")
        if not 1 <= start <= width:
            raise CimcodecError(
                f"Progressive start width must be between 1 and {width}, not {start}."
            )
        return cls((Field(Lfsr(width, seed, taps, kind), width),), start, stage_len)

    def takes(self, n: int) -> np.ndarray:
        """Bits taken from each field for words 0..n-1: shape ``(fields, n)``."""
        n = _check_count(n)
        takes = np.array([[f.take] * n for f in self.fields], dtype=np.int64).reshape(-1, n)
        if self.ramp_len:
            ramp = self.ramp_start + np.arange(n) // self.ramp_len
            takes[0] = np.minimum(takes[0], ramp)
        return takes

    def words(self, n: int) -> np.ndarray:
        """The first ``n`` (0..:data:`MAX_COUNT`) control words as ``uint64``."""
        n = _check_count(n)
        words = np.zeros(n, dtype=np.uint64)
        shift = 0
        for field, take in zip(self.fields, self.takes(n)):
            masks = (np.uint64(1) << take.astype(np.uint64)) - np.uint64(1)
            words |= (field.lfsr.states(n) & masks) << np.uint64(shift)
            shift += field.take
        return words

    def config(self, shape: GeneratorShape, count: int) -> dict:
        """Run-time configuration of :class:`hw.lfsr.ControlWordGenerator` (built for
        ``shape``) that makes it emit ``self.words(count)``; a dict for its ``cfg``
        payload. Unused fields get ``take = 0``."""
        shape.check(self, count)
        fields = [
            {"taps": f.lfsr.taps, "seed": f.lfsr.seed,
             "galois": int(f.lfsr.kind is Kind.GALOIS), "take": f.take}
            for f in self.fields
        ]
        fields += [{"taps": 0, "seed": 0, "galois": 0, "take": 0}] * (shape.fields - len(fields))
        return {"fields": fields, "count": count,
                "ramp_start": self.ramp_start, "ramp_len": self.ramp_len}


@dataclass(frozen=True)
class GeneratorShape:
    """Elaboration-time size of :class:`hw.lfsr.ControlWordGenerator`.

    Attributes
    ----------
    lfsr_width : int
        Widest LFSR the generator runs (2..32).
    fields : int
        Number of LFSRs (fields of a control word).
    word_width : int
        Bits of the emitted control word.
    count_bits : int
        Bits of the word counter and of the progressive stage length.
    """

    lfsr_width: int = MAX_WIDTH
    fields: int = 2
    word_width: int = MAX_WIDTH
    count_bits: int = 16

    def __post_init__(self):
        _check_width(self.lfsr_width, "Generator LFSR width")
        for name in ("fields", "word_width", "count_bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
                raise CimcodecError(
                    f"Generator {name.replace('_', ' ')} must be an integer 1..64, not {value!r}."
                )

    def check(self, words: ControlWords, count: int) -> None:
        """Raise :class:`CimcodecError` unless this generator can produce ``words``."""
        if len(words.fields) > self.fields:
            raise CimcodecError(
                f"The generator has {self.fields} LFSR fields, the scheme needs "
                f"{len(words.fields)}."
            )
        widest = max(f.lfsr.width for f in words.fields)
        if widest > self.lfsr_width:
            raise CimcodecError(
                f"The generator's LFSRs are at most {self.lfsr_width} bits, the scheme "
                f"needs {widest}."
            )
        if words.width > self.word_width:
            raise CimcodecError(
                f"The generator's words are {self.word_width} bits, the scheme needs "
                f"{words.width}."
            )
        limit = (1 << self.count_bits) - 1
        if not 0 <= count <= limit or words.ramp_len > limit:
            raise CimcodecError(
                f"Word count and stage length must be at most {limit} for a "
                f"{self.count_bits}-bit counter, not {count} and {words.ramp_len}."
            )
