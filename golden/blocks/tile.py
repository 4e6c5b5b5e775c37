"""The accelerator tile: compressed weights stream from the decompressor into the CIM
array, partial sums add up across the row tiles of a layer, and an output stage
requantizes them. The bit-exact reference of :class:`hw.tile.Tile`.

Shapes
------
``R x C`` CIM array with a ``B``-bit ADC (:class:`golden.blocks.cim.CimParams`,
unsigned 8-bit activations), an accumulator of ``V`` vectors of ``C`` int32 partial sums,
and a decompressor in container mode that takes weight matrices of up to
``max_rows x max_cols`` (:class:`TileShape`). One *job* (:class:`TileParams` plus an
optional file and ``n <= V`` activation vectors) runs in three phases.

1. Load (``load = 1``): the file's bytes go through the decompressor
   (:func:`golden.blocks.decompressor.expected`, container mode). The window of the job,
   rows ``row0 .. row0 + R - 1`` and columns ``col0 .. col0 + C - 1`` of the weight
   matrix, becomes the array::

       W[row - row0, col - col0] = s - 128          for every sample (row, col, s)
                                                    inside the window

   samples outside the window are dropped, and a cell no sample reaches (the window
   runs past the matrix's edge) is 0. The array is written only once the file has
   decoded without error. A file the decompressor rejects leaves the array as it was:
   the job reports the decompressor's error code (:class:`golden.blocks.decompressor.
   Error`), writes no weight and ends; the tile then takes nothing until reset. With
   ``load = 0`` the array keeps its weights (all 0 after reset).
2. MAC: for vector ``k = 0 .. n-1`` (``a[k]``, ``R`` activations 0..255) the array gives
   ``p[k] = CimParams(R, C, B).compute(W, a[k])`` and the accumulator::

       acc[k, c] = wrap32(p[k, c] + (0 if first else acc[k, c]))

   ``wrap32(x) = ((x + 2**31) mod 2**32) - 2**31`` (int32 two's complement). ``acc``
   holds across jobs (reset: 0), so the jobs of the row tiles of one column tile,
   ``first`` on the first, ``last`` on the last, sum a dot product longer than ``R``.
3. Output (``last = 1``): per vector, ``C`` values::

       v = wrap32(acc[k, c] + bias[c])
       r = floor((v * M + h) / 2**S),     h = 2**(S - 1) if S > 0 else 0
       r = max(r, 0)                      if relu
       y[k, c] = min(max(r, lo), hi)

   ``M`` (``multiplier``, 0..65535) and ``S`` (``shift``, 0..63) are the requantization
   multiplier and shift, so ``r`` is ``v * M / 2**S`` rounded half up (towards plus
   infinity); ``(lo, hi)`` is the range of :class:`Clamp`: int32, uint8 (the next layer's
   unsigned 8-bit activations) or int8.

The job's status (:class:`TileOutcome`): the error code (0: none) and the number of
weights written into the array (``R * C`` after a good load, else 0).
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field

import numpy as np

from cimcodec.golden.blocks.cim import CimParams
from cimcodec.golden.blocks.decompressor import DecompressorShape, Error, expected
from cimcodec.golden.errors import CimcodecError

#: Requantization multiplier and shift widths.
MULTIPLIER_BITS = 16
SHIFT_BITS = 6
INT32 = (-(1 << 31), (1 << 31) - 1)


class Clamp(enum.IntEnum):
    """Output range of the output stage."""

    INT32 = 0
    UINT8 = 1
    INT8 = 2

    @property
    def bounds(self) -> tuple[int, int]:
        return {Clamp.INT32: INT32, Clamp.UINT8: (0, 255), Clamp.INT8: (-128, 127)}[self]


def wrap32(values) -> np.ndarray:
    """``((x + 2**31) mod 2**32) - 2**31`` of int64 values."""
    values = np.asarray(values, dtype=np.int64)
    return ((values + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _count(value, name, low, high) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or not low <= value <= high:
        raise CimcodecError(f"{name} must be an integer in {low}..{high}, not {value!r}.")
    return int(value)


@dataclass(frozen=True)
class TileShape:
    """Elaboration-time size of :class:`hw.tile.Tile`; the same object builds the golden
    model (:class:`TileModel`).

    Attributes
    ----------
    rows, cols : int
        The CIM array, ``R x C``.
    adc_bits : int
        Its ADC resolution ``B``.
    vectors : int
        Accumulator depth ``V``: the most activation vectors one job takes.
    max_rows, max_cols : int
        Largest (padded) weight matrix the decompressor takes, multiples of 8.
    planes_per_clock : int
        The array's weight planes per clock (:class:`golden.blocks.cim.CimParams`): by
        default all 8, one vector per 8 clocks; the tile's arrays are small, and fewer
        planes per clock save area at ``8 / P`` times the MAC clocks.
    lanes : int
        The decompressor's lanes (:class:`golden.blocks.decompressor.DecompressorShape`,
        1, 2, 4 or 8): the staging memory takes one sample per lane per clock.
    writes_per_clock : int
        The array's weight writes per clock (``W`` adjacent cells of a row,
        :class:`golden.blocks.cim.CimParams`): the copy into the array takes ``R * C / W``
        clocks. A power of two that divides ``cols``.
    """

    rows: int = 16
    cols: int = 4
    adc_bits: int = 4
    vectors: int = 128
    max_rows: int = 256
    max_cols: int = 256
    planes_per_clock: int = 8
    lanes: int = 1
    writes_per_clock: int = 1

    def __post_init__(self):
        _ = self.cim                # checks the array
        _ = self.decompressor       # checks the matrix limit and the lanes
        _count(self.vectors, "The accumulator depth", 1, 1 << 16)
        if self.rows > self.max_rows or self.cols > self.max_cols:
            raise CimcodecError(
                f"A {self.rows} x {self.cols} array does not fit in the largest matrix, "
                f"{self.max_rows} x {self.max_cols}.")

    @property
    def cim(self) -> CimParams:
        return CimParams(self.rows, self.cols, self.adc_bits,
                         planes_per_clock=self.planes_per_clock,
                         writes_per_clock=self.writes_per_clock)

    @property
    def decompressor(self) -> DecompressorShape:
        return DecompressorShape(self.max_rows, self.max_cols, lanes=self.lanes)


@dataclass(frozen=True)
class TileParams:
    """Run-time configuration of one job (see the module docstring).

    Attributes
    ----------
    load : bool
        Decode a file into the array first.
    row0, col0 : int
        Window origin in the weight matrix.
    first, last : bool
        Start the partial sums afresh; send them through the output stage.
    relu : bool
    clamp : Clamp
    multiplier, shift : int
        ``M`` (0..65535) and ``S`` (0..63).
    bias : tuple of int
        Up to ``C`` int32 values, for columns ``0, 1, ...``; missing ones are 0.
    """

    load: bool = True
    row0: int = 0
    col0: int = 0
    first: bool = True
    last: bool = True
    relu: bool = False
    clamp: Clamp = Clamp.INT32
    multiplier: int = 1
    shift: int = 0
    bias: tuple = field(default=())

    def __post_init__(self):
        for name in ("load", "first", "last", "relu"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise CimcodecError(f"Tile {name} must be True or False, not "
                                    f"{getattr(self, name)!r}.")
            object.__setattr__(self, name, bool(getattr(self, name)))
        object.__setattr__(self, "clamp", Clamp(self.clamp))
        _count(self.multiplier, "The requantization multiplier", 0, (1 << MULTIPLIER_BITS) - 1)
        _count(self.shift, "The requantization shift", 0, (1 << SHIFT_BITS) - 1)
        bias = tuple(_count(b, "A bias", *INT32) for b in self.bias)
        object.__setattr__(self, "bias", bias)

    def check(self, shape: TileShape) -> None:
        """Raise :class:`CimcodecError` unless the job fits ``shape``."""
        _count(self.row0, "The window's row origin", 0, shape.max_rows - 1)
        _count(self.col0, "The window's column origin", 0, shape.max_cols - 1)
        if len(self.bias) > shape.cols:
            raise CimcodecError(f"A job has {len(self.bias)} biases for {shape.cols} columns.")

    def biases(self, shape: TileShape) -> np.ndarray:
        """The ``C`` biases, zeros after the given ones."""
        out = np.zeros(shape.cols, np.int64)
        out[:len(self.bias)] = self.bias
        return out

    def config(self, shape: TileShape, count: int) -> dict:
        """The ``cfg`` payload of :class:`hw.tile.Tile` for this job and ``count`` vectors."""
        self.check(shape)
        _count(count, "The vector count of a job", 0, shape.vectors)
        return {"load": int(self.load), "row0": self.row0, "col0": self.col0,
                "count": count, "first": int(self.first), "last": int(self.last),
                "relu": int(self.relu), "clamp": int(self.clamp),
                "multiplier": self.multiplier, "shift": self.shift,
                "bias": [int(b) for b in self.biases(shape)]}


def output_stage(acc, params: TileParams, bias) -> np.ndarray:
    """``y`` of the module docstring's step 3 for int32 sums ``acc`` (any shape whose
    last axis is the columns) and the ``bias`` per column."""
    v = wrap32(np.asarray(acc, np.int64) + np.asarray(bias, np.int64))
    s = params.shift
    r = (v * params.multiplier + ((1 << s) >> 1)) >> s
    if params.relu:
        r = np.maximum(r, 0)
    lo, hi = params.clamp.bounds
    return np.clip(r, lo, hi)


@dataclass(frozen=True)
class TileJob:
    """One job: its configuration, the file to load (``None``: no load) and the
    activation vectors (``(n, R)`` integers)."""

    params: TileParams
    file: bytes | None
    acts: np.ndarray

    def __post_init__(self):
        if (self.file is None) == self.params.load:
            raise CimcodecError("A tile job has a file exactly when it loads one.")
        acts = np.asarray(self.acts)
        if acts.ndim != 2 or not np.issubdtype(acts.dtype, np.integer):
            raise CimcodecError(f"A tile job's activations must be a 2-D integer array, not "
                                f"{acts.dtype} of shape {acts.shape}.")
        object.__setattr__(self, "acts", acts.astype(np.int64))


@dataclass(frozen=True)
class TileOutcome:
    """What a job gives: the status (error code, weights written) and, for a ``last``
    job, the outputs ``(n, C)`` (``None`` otherwise)."""

    error: int
    written: int
    outputs: np.ndarray | None


@functools.lru_cache(maxsize=64)
def _decode(data: bytes, shape: DecompressorShape):
    """``(error, rows, cols, weights)`` of a file through the decompressor's golden model
    (cached: a layer's file is loaded once per tile)."""
    want = expected(data, shape)
    if want.error:
        return int(want.error), None, None, None
    samples = np.asarray(want.samples, dtype=np.int64).reshape(-1, 3)
    return 0, samples[:, 0], samples[:, 1], samples[:, 2] - 128


class TileModel:
    """The tile's state (array weights, accumulator, stopped after an error) and its jobs,
    bit for bit as :class:`hw.tile.Tile` (module docstring)."""

    def __init__(self, shape: TileShape):
        if not isinstance(shape, TileShape):
            raise CimcodecError(f"Tile shape must be a TileShape, not {shape!r}.")
        self.shape = shape
        self.reset()

    def reset(self) -> None:
        s = self.shape
        self.weights = np.zeros((s.rows, s.cols), np.int64)
        self.acc = np.zeros((s.vectors, s.cols), np.int64)
        self.stopped = False

    def window(self, data: bytes, row0: int, col0: int) -> tuple[int, np.ndarray | None]:
        """``(error, W)``: the array a load of ``data`` with this window gives (step 1)."""
        s = self.shape
        error, rows, cols, values = _decode(bytes(data), s.decompressor)
        if error:
            return error, None
        r, c = rows - row0, cols - col0
        keep = (r >= 0) & (r < s.rows) & (c >= 0) & (c < s.cols)
        w = np.zeros((s.rows, s.cols), np.int64)
        w[r[keep], c[keep]] = values[keep]
        return 0, w

    def run(self, job: TileJob) -> TileOutcome:
        """Run one job; the state changes as the hardware's does."""
        s, p = self.shape, job.params
        if self.stopped:
            raise CimcodecError("The tile stopped after an error; reset it first.")
        p.check(s)
        acts = job.acts
        if acts.shape[1] != s.rows or len(acts) > s.vectors:
            raise CimcodecError(f"A job takes up to {s.vectors} vectors of {s.rows} "
                                f"activations, not {acts.shape[0]} of {acts.shape[1]}.")
        written = 0
        if p.load:
            error, w = self.window(job.file, p.row0, p.col0)
            if error:
                self.stopped = True
                return TileOutcome(error, 0, None)
            self.weights, written = w, w.size
        n = len(acts)
        partial = s.cim.compute(self.weights, acts) if n else np.zeros((0, s.cols), np.int64)
        previous = 0 if p.first else self.acc[:n]
        self.acc[:n] = wrap32(partial + previous)
        outputs = output_stage(self.acc[:n], p, p.biases(s)) if p.last else None
        return TileOutcome(int(Error.NONE), written, outputs)
