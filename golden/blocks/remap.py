"""Weight-matrix remapping (WMR) driven by LFSR control words: the bit-exact reference
for :mod:`hw.remap`.

The scheme
----------
A weight matrix of ``rows x cols`` is padded, as JPEG pads an image, to the 8x8 grid:
``Rp = 8*ceil(rows/8)`` rows and ``Cp = 8*ceil(cols/8)`` columns, the padding filled by
repeating the last row / column (libjpeg's edge expansion). The remap is a bijection of
that ``Rp x Cp`` grid built from the address scrambling of embedded memories: XORs of
address bits with control-word bits, made safe for any size by a conditional swap::

    swap(x, m, N) = x ^ m   if (x ^ m) < N
                    x       otherwise

For a fixed mask ``m`` this pairs ``x`` with ``x ^ m`` when both are in range and fixes
the rest: an involution, so a bijection of ``0..N-1`` for every ``N``.

An address ``x`` (row or column) is an in-block offset ``o = x & 7`` and a block
address ``x >> 3``. A control word ``w`` (masked to the address width) scrambles it in
two involutive steps (decoder direction, :func:`scramble`)::

    t = x ^ (w & 7)                        # offset XOR: stays in its 8-block
    g = mix(w >> 3, t & 7)
    scramble(x, w, N) = swap(t, g << 3, N)  # block XOR chosen by the offset

    mix(h, o) = (h if o & 1) ^ (h >> 1 if o & 2) ^ (h >> 2 if o & 4)

The second step moves the rows of one 8-block to *different* blocks depending on their
offset, so 8x8 blocks gather rows that were far apart (an XOR by one word per block
would only move whole blocks and could never change a block's contents). Each step
keeps what the other step reads (``t & 7``, resp. the block address is not read), so
:func:`unscramble` undoes it by running the steps in reverse.

Row addresses have ``rb = bitlen(Rp - 1)`` bits, column addresses ``cb = bitlen(Cp - 1)``
bits. A control-word sequence (:class:`golden.blocks.lfsr.ControlWords`, one of the schemes
full / split / progressive) of width ``W = max(rb, cb)`` supplies ``BC + BR`` words,
``BC = Cp/8`` block columns and ``BR = Rp/8`` block rows:

* ``a[k] = word[k] & (2**rb - 1)`` for ``k < BC``: the row word of block column ``k``;
* ``b[k] = word[BC + k] & (2**cb - 1)`` for ``k < BR``: the column word of block row ``k``.

Original position ``(r, c)`` goes to coded position ``(r2, c2)`` by::

    c2 = unscramble(c, b[r >> 3], Cp)      # columns, per 8-row strip
    r2 = unscramble(r, a[c2 >> 3], Rp)     # rows, per 8-column strip

and the decoder inverts it in the opposite order::

    r = scramble(r2, a[c2 >> 3], Rp)
    c = scramble(c2, b[r >> 3], Cp)

The decoder needs only the scheme, the LFSR polynomials and seeds, never a stored
permutation. In hardware the words sit in two small tables loaded once from the
control-word generator, and each coordinate costs two table reads and, per address,
a few XORs, three AND-masks and a compare.

The split scheme uses two fields: 3 bits of in-block offset and ``W - 3`` bits of block
address, each from its own LFSR (one field when ``W - 3 < 1``). The progressive scheme
ramps from 1 bit by one bit every ``ceil((BC + BR) / W)`` words unless told otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cimcodec.golden.blocks.lfsr import ControlWords, Kind, Scheme
from cimcodec.golden.errors import CimcodecError


def _positive_int(value, name) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise CimcodecError(f"{name} must be a positive integer, not {value!r}.")
    return int(value)


def swap(x, mask, n):
    """Conditional XOR swap: ``x ^ mask`` where that is below ``n``, else ``x``."""
    t = np.bitwise_xor(x, mask)
    return np.where(t < n, t, x)


def mix(high, offset):
    """Block-address mask chosen by the in-block offset (see the module docstring)."""
    high, offset = np.asarray(high), np.asarray(offset)
    return (np.where(offset & 1, high, 0) ^ np.where(offset & 2, high >> 1, 0)
            ^ np.where(offset & 4, high >> 2, 0))


def scramble(x, word, n):
    """Decoder direction: coded address to original address (``n`` a multiple of 8)."""
    t = np.bitwise_xor(x, np.asarray(word) & 7)
    return swap(t, mix(np.asarray(word) >> 3, t & 7) << 3, n)


def unscramble(x, word, n):
    """Encoder direction, the inverse of :func:`scramble`."""
    t = swap(x, mix(np.asarray(word) >> 3, np.asarray(x) & 7) << 3, n)
    return np.bitwise_xor(t, np.asarray(word) & 7)


@dataclass(frozen=True)
class RemapParams:
    """Remap of one ``rows x cols`` weight matrix.

    Parameters
    ----------
    rows, cols : int
        Shape of the weight matrix (not padded).
    scheme : Scheme or str
        ``none``, ``full``, ``split`` or ``progressive``.
    seeds : tuple of int
        One non-zero seed per LFSR (1 for full and progressive, 2 for split unless the
        word has only 3 bits); default all ones.
    kind : Kind or str
        LFSR form, ``fibonacci`` (default) or ``galois``.
    stage_len : int or None
        Progressive scheme only: words per stage (default ``ceil((BC + BR) / W)``).

    Raises
    ------
    CimcodecError
        Non-positive shape, unknown scheme, wrong number of seeds, a bad seed.
    """

    rows: int
    cols: int
    scheme: Scheme = Scheme.FULL
    seeds: tuple[int, ...] | None = None
    kind: Kind = Kind.FIBONACCI
    stage_len: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "rows", _positive_int(self.rows, "Row count"))
        object.__setattr__(self, "cols", _positive_int(self.cols, "Column count"))
        try:
            object.__setattr__(self, "scheme", Scheme(self.scheme))
        except ValueError:
            names = ", ".join(s.value for s in Scheme)
            raise CimcodecError(
                f"Remap scheme must be one of {names}, not {self.scheme!r}."
            ) from None
        if self.scheme is not Scheme.PROGRESSIVE and self.stage_len is not None:
            raise CimcodecError("A stage length applies only to the progressive scheme.")
        n_seeds = len(self.field_takes)
        seeds = (1,) * n_seeds if self.seeds is None else tuple(self.seeds)
        if len(seeds) != n_seeds:
            raise CimcodecError(
                f"The {self.scheme.value} scheme for a {self.rows}x{self.cols} matrix "
                f"needs {n_seeds} seed(s), not {len(seeds)}."
            )
        object.__setattr__(self, "seeds", seeds)
        self.control_words()  # validates seeds and kind

    # Geometry --------------------------------------------------------------------
    @property
    def padded_rows(self) -> int:
        return 8 * math.ceil(self.rows / 8)

    @property
    def padded_cols(self) -> int:
        return 8 * math.ceil(self.cols / 8)

    @property
    def block_rows(self) -> int:
        return self.padded_rows // 8

    @property
    def block_cols(self) -> int:
        return self.padded_cols // 8

    @property
    def row_bits(self) -> int:
        return (self.padded_rows - 1).bit_length()

    @property
    def col_bits(self) -> int:
        return (self.padded_cols - 1).bit_length()

    @property
    def word_width(self) -> int:
        return max(self.row_bits, self.col_bits)

    @property
    def n_words(self) -> int:
        return self.block_cols + self.block_rows

    @property
    def field_takes(self) -> tuple[int, ...]:
        """Bits of each control-word field (LSB first)."""
        if self.scheme is Scheme.NONE:
            return ()
        w = self.word_width
        if self.scheme is Scheme.SPLIT and w > 3:
            return (3, w - 3)
        return (w,)

    # Control words ---------------------------------------------------------------
    def control_words(self) -> ControlWords | None:
        """The control-word generator of this remap (``None`` for scheme ``none``)."""
        if self.scheme is Scheme.NONE:
            return None
        w = self.word_width
        if self.scheme is Scheme.FULL:
            return ControlWords.full(w, self.seeds[0], kind=self.kind)
        if self.scheme is Scheme.SPLIT:
            return ControlWords.split(self.field_takes, self.seeds, kind=self.kind)
        stage = self.stage_len or math.ceil(self.n_words / w)
        return ControlWords.progressive(w, self.seeds[0], stage_len=stage, kind=self.kind)

    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """``(a, b)``: the row word of each block column and the column word of each
        block row, as ``int64`` (all zero for scheme ``none``)."""
        if self.scheme is Scheme.NONE:
            return (np.zeros(self.block_cols, np.int64), np.zeros(self.block_rows, np.int64))
        words = self.control_words().words(self.n_words).astype(np.int64)
        a = words[:self.block_cols] & ((1 << self.row_bits) - 1)
        b = words[self.block_cols:] & ((1 << self.col_bits) - 1)
        return a, b

    # The map ---------------------------------------------------------------------
    def forward(self, r, c):
        """Coded position of original padded position ``(r, c)`` (arrays or ints)."""
        a, b = self.tables()
        r, c = np.asarray(r, np.int64), np.asarray(c, np.int64)
        self._check_range(r, c)
        c2 = unscramble(c, b[r >> 3], self.padded_cols)
        r2 = unscramble(r, a[c2 >> 3], self.padded_rows)
        return r2, c2

    def inverse(self, r2, c2):
        """Original padded position of coded position ``(r2, c2)``."""
        a, b = self.tables()
        r2, c2 = np.asarray(r2, np.int64), np.asarray(c2, np.int64)
        self._check_range(r2, c2)
        r = scramble(r2, a[c2 >> 3], self.padded_rows)
        c = scramble(c2, b[r >> 3], self.padded_cols)
        return r, c

    def _check_range(self, r, c):
        if r.size and (r.min() < 0 or r.max() >= self.padded_rows
                       or c.min() < 0 or c.max() >= self.padded_cols):
            raise CimcodecError(
                f"Coordinates must lie in the padded {self.padded_rows}x"
                f"{self.padded_cols} grid."
            )

    def pad(self, weights: np.ndarray) -> np.ndarray:
        """``weights`` padded to the 8x8 grid by repeating the last row and column."""
        w = check_matrix(weights, (self.rows, self.cols))
        return np.pad(w, ((0, self.padded_rows - self.rows), (0, self.padded_cols - self.cols)),
                      mode="edge")

    def remap(self, weights: np.ndarray) -> np.ndarray:
        """The padded, remapped ``Rp x Cp`` matrix: ``coded[r2, c2] = padded[r, c]``."""
        padded = self.pad(weights)
        r, c = np.indices(padded.shape)
        r2, c2 = self.forward(r, c)
        coded = np.empty_like(padded)
        coded[r2, c2] = padded
        return coded

    def unremap(self, coded: np.ndarray) -> np.ndarray:
        """The original ``rows x cols`` matrix from a coded ``Rp x Cp`` one."""
        coded = check_matrix(coded, (self.padded_rows, self.padded_cols))
        r2, c2 = np.indices(coded.shape)
        r, c = self.inverse(r2, c2)
        padded = np.empty_like(coded)
        padded[r, c] = coded
        return padded[:self.rows, :self.cols]

    def decode_order(self):
        """What :class:`hw.remap.RemapUnit` emits for coded positions fed in JPEG block
        order (8x8 blocks left to right, top to bottom, raster inside a block):
        ``(coded_r, coded_c, r, c)`` arrays, positions in the padding dropped."""
        r2, c2 = block_order(self.padded_rows, self.padded_cols)
        r, c = self.inverse(r2, c2)
        keep = (r < self.rows) & (c < self.cols)
        return r2[keep], c2[keep], r[keep], c[keep]


def block_order(padded_rows: int, padded_cols: int):
    """Row and column of every position of a padded grid in JPEG block order."""
    br, bc, y, x = np.meshgrid(np.arange(padded_rows // 8), np.arange(padded_cols // 8),
                               np.arange(8), np.arange(8), indexing="ij")
    return (8 * br + y).ravel(), (8 * bc + x).ravel()


def check_matrix(weights, shape=None) -> np.ndarray:
    """``weights`` as a 2-D array, or a :class:`CimcodecError` naming the wrong shape."""
    w = np.asarray(weights)
    if w.ndim != 2:
        raise CimcodecError(
            f"A weight matrix must be 2-D, not {w.ndim}-D with shape {tuple(w.shape)}."
        )
    if shape is not None and w.shape != tuple(shape):
        raise CimcodecError(
            f"Expected a {shape[0]}x{shape[1]} matrix, not {w.shape[0]}x{w.shape[1]}.")
    return w


@dataclass(frozen=True)
class RemapShape:
    """Elaboration-time size of :class:`hw.remap.RemapUnit` / :class:`hw.remap.RemapEngine`.

    Attributes
    ----------
    max_rows, max_cols : int
        Largest weight matrix the tables and coordinates can hold.
    data_width : int
        Bits of the payload carried alongside each coordinate (e.g. an 8-bit weight).
    """

    max_rows: int = 4096
    max_cols: int = 4096
    data_width: int = 8

    def __post_init__(self):
        for name in ("max_rows", "max_cols", "data_width"):
            _positive_int(getattr(self, name), name.replace("_", " ").capitalize())
        if self.max_rows > 1 << 20 or self.max_cols > 1 << 20:
            raise CimcodecError("Remap hardware holds at most 2**20 rows and columns.")

    @property
    def row_bits(self) -> int:
        return (8 * math.ceil(self.max_rows / 8) - 1).bit_length()

    @property
    def col_bits(self) -> int:
        return (8 * math.ceil(self.max_cols / 8) - 1).bit_length()

    @property
    def word_width(self) -> int:
        return max(self.row_bits, self.col_bits)

    @property
    def table_rows(self) -> int:
        """Depth of the column-word table (one word per block row)."""
        return math.ceil(self.max_rows / 8)

    @property
    def table_cols(self) -> int:
        """Depth of the row-word table (one word per block column)."""
        return math.ceil(self.max_cols / 8)

    def generator_shape(self):
        """Size of the control-word generator that feeds this unit."""
        from cimcodec.golden.blocks.lfsr import GeneratorShape
        return GeneratorShape(
            lfsr_width=max(2, self.word_width), fields=2, word_width=self.word_width,
            count_bits=(self.table_rows + self.table_cols).bit_length())

    def check(self, params: RemapParams) -> None:
        if params.rows > self.max_rows or params.cols > self.max_cols:
            raise CimcodecError(
                f"A {params.rows}x{params.cols} matrix does not fit remap hardware built "
                f"for {self.max_rows}x{self.max_cols}."
            )

    def config(self, params: RemapParams) -> dict:
        """The remap unit's ``cfg`` value for ``params``."""
        self.check(params)
        return {"rows": params.rows, "cols": params.cols,
                "enable": int(params.scheme is not Scheme.NONE)}

    def generator_config(self, params: RemapParams) -> dict | None:
        """The generator's ``cfg`` payload for ``params`` (``None`` for scheme none)."""
        self.check(params)
        words = params.control_words()
        if words is None:
            return None
        return words.config(self.generator_shape(), params.n_words)
