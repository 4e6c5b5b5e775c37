"""Entropy-aware search of the remap's LFSR seeds (seed 000's weight-matrix remapping).

Objective
---------
The *block entropy* of a padded ``Rp x Cp`` sample matrix is the zeroth-order entropy of
each 8x8 block, summed over blocks, in bits::

    H = sum over blocks of  sum_v  c_v * log2(64 / c_v)      (c_v: count of value v)

It is what an ideal coder that knew each block's histogram would spend, and the quantity
seed 000's remapping lowers. The coded size (bytes of :func:`golden.jpeg.reference.encode` at a
given quality) is the real target; :func:`search` ranks seeds by ``H`` and, when given
a quality, re-ranks the best few by coded size.

Seeds
-----
For one scheme (``full``, ``split``, ``progressive``) the candidates are seed 1 (all
fields) and ``budget - 1`` further seed tuples drawn from a generator seeded with
``rng_seed`` (reproducible). The control-word tables of all candidates are computed at
once (the LFSRs run vectorized over the seeds, :meth:`golden.blocks.lfsr.Lfsr.states`); each
remap is then a gather. ``auto`` searches every scheme and ``none`` and keeps the best.

Stored-permutation baseline
---------------------------
:func:`sorted_baseline` sorts the rows by their mean and the columns by their mean, an
explicit permutation the decoder must be sent: ``ceil(R * bitlen(R-1) / 8) +
ceil(C * bitlen(C-1) / 8)`` bytes of side information, against the 7 to 11 bytes the
LFSR schemes store (scheme, kind, stage length, seeds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cimcodec.golden.blocks.lfsr import Kind, Scheme
from cimcodec.golden.blocks.remap import RemapParams, check_matrix, scramble, unscramble
from cimcodec.golden.codec import chunks
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg import fast as jpeg_fast

#: Blocks per piece of :func:`block_entropy`.
ENTROPY_BATCH = 8192
#: Rows per piece of the remap (its int32 index temporaries are 8 bytes per sample).
REMAP_ROWS = 256


def block_entropy(coded) -> float:
    """Summed zeroth-order entropy of the 8x8 blocks of a padded uint8 matrix, in bits."""
    m = check_matrix(coded)
    if m.dtype != np.uint8 or m.shape[0] % 8 or m.shape[1] % 8:
        raise CimcodecError("Block entropy needs a uint8 matrix padded to whole 8x8 blocks.")
    grid = jpeg_fast.block_grid(m)
    nblocks = grid.shape[0] * grid.shape[1]
    total = 0.0
    for s, e in chunks.spans(nblocks, ENTROPY_BATCH):
        # Each block's values sorted: its runs are the counts c_v, block by block in
        # increasing v.
        part = np.sort(jpeg_fast.blocks_of(grid, s, e).reshape(-1, 64), axis=1)
        new = np.ones(part.shape, dtype=bool)
        new[:, 1:] = part[:, 1:] != part[:, :-1]
        counts = np.diff(np.append(np.flatnonzero(new), part.size)).astype(np.float64)
        total += 64 * 6 * len(part) - float(np.sum(counts * np.log2(counts)))
    return total


def remap_with_tables(padded: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:meth:`RemapParams.remap` of an already padded matrix with given word tables
    (``a``: row word per block column, ``b``: column word per block row).

    The map is separable: ``c2`` depends only on ``(r >> 3, c)`` and ``r2`` only on
    ``(r, c2 >> 3)``, so both are computed on those small grids and gathered, for
    :data:`REMAP_ROWS` source rows at a time."""
    rp, cp = padded.shape
    coded = np.empty_like(padded)
    cols = np.arange(cp, dtype=np.int32)[None, :]
    for s0, s1 in chunks.spans(rp // 8, max(1, REMAP_ROWS // 8)):
        c2_of = unscramble(cols, b[s0:s1, None], cp).astype(np.int32)      # (strips, Cp)
        rows = np.arange(8 * s0, 8 * s1, dtype=np.int32)[:, None]
        r2_of = unscramble(rows, a[None, :], rp).astype(np.int32)          # (rows, BC)
        c2 = c2_of[(rows >> 3) - s0, cols]
        r2 = r2_of[rows - 8 * s0, c2 >> 3]
        coded[r2, c2] = padded[8 * s0:8 * s1]
    return coded


def unremap_with_tables(coded: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Inverse of :func:`remap_with_tables` (padded shape), separable the same way:
    ``r`` depends on ``(r2, c2 >> 3)``, ``c`` on ``(r >> 3, c2)``; for
    :data:`REMAP_ROWS` coded rows at a time."""
    rp, cp = coded.shape
    cols = np.arange(cp, dtype=np.int32)[None, :]
    c_of = scramble(cols, b[:, None], cp).astype(np.int32)                 # (BR, Cp)
    padded = np.empty_like(coded)
    for r0, r1 in chunks.spans(rp, REMAP_ROWS):
        rows = np.arange(r0, r1, dtype=np.int32)[:, None]
        r_of = scramble(rows, a[None, :], rp).astype(np.int32)             # (rows, BC)
        r = r_of[rows - r0, cols >> 3]
        c = c_of[r >> 3, cols]
        padded[r, c] = coded[r0:r1]
    return padded


def remap_padded(params: RemapParams, padded: np.ndarray) -> np.ndarray:
    """``params.remap`` of an already padded matrix (scheme ``none``: ``padded`` itself)."""
    if params.scheme is Scheme.NONE:
        return padded
    return remap_with_tables(padded, *params.tables())


def fast_remap(params: RemapParams, samples: np.ndarray) -> np.ndarray:
    """``params.remap(samples)``, computed separably (same result)."""
    return remap_padded(params, params.pad(samples))


def fast_unremap(params: RemapParams, coded: np.ndarray) -> np.ndarray:
    """``params.unremap(coded)``, computed separably (same result; scheme ``none``: a
    view of ``coded``)."""
    coded = check_matrix(coded, (params.padded_rows, params.padded_cols))
    if params.scheme is not Scheme.NONE:
        coded = unremap_with_tables(coded, *params.tables())
    return coded[:params.rows, :params.cols]


def seed_ranges(template: RemapParams) -> list[int]:
    """Largest seed of each LFSR of ``template``'s scheme."""
    words = template.control_words()
    return [] if words is None else [f.lfsr.mask for f in words.fields]


def candidate_seeds(template: RemapParams, budget: int, rng_seed: int = 0) -> np.ndarray:
    """``(n, fields)`` seed tuples: all ones first, then distinct random ones."""
    tops = seed_ranges(template)
    if not tops:
        return np.zeros((1, 0), dtype=np.int64)
    space = math.prod(tops)
    n = max(1, min(int(budget), space))
    rng = np.random.default_rng(rng_seed)
    out = {tuple([1] * len(tops))}
    tries = 0
    while len(out) < n and tries < 50 * n:
        out.add(tuple(int(rng.integers(1, t + 1)) for t in tops))
        tries += 1
    first = tuple([1] * len(tops))
    return np.array([first] + sorted(out - {first}), dtype=np.int64)


def batch_tables(template: RemapParams, seeds: np.ndarray):
    """Word tables ``(a, b)`` of shape ``(n, BC)`` and ``(n, BR)`` for ``n`` seed tuples,
    the LFSRs stepped vectorized over the seeds (same values as
    :meth:`RemapParams.tables` of each)."""
    words_gen = template.control_words()
    n_words = template.n_words
    seeds = np.asarray(seeds, dtype=np.uint64).reshape(len(seeds), -1)
    words = np.zeros((len(seeds), n_words), dtype=np.uint64)
    shift = 0
    for i, (field, take) in enumerate(zip(words_gen.fields, words_gen.takes(n_words))):
        masks = (np.uint64(1) << take.astype(np.uint64)) - np.uint64(1)
        states = field.lfsr.states(n_words, seeds=seeds[:, i])
        words |= (states & masks[None, :]) << np.uint64(shift)
        shift += field.take
    words = words.astype(np.int64)
    a = words[:, :template.block_cols] & ((1 << template.row_bits) - 1)
    b = words[:, template.block_cols:] & ((1 << template.col_bits) - 1)
    return a, b


@dataclass(frozen=True)
class SearchResult:
    """Best remap found: its parameters, block entropy (bits) and coded size (bytes, or
    ``None`` without a quality); ``tried``: candidates evaluated."""

    params: RemapParams
    entropy: float
    size: int | None
    tried: int


def _coded_size(coded: np.ndarray, quality: int) -> int:
    return len(jpeg_fast.encode(coded, quality=quality))


def search(samples, scheme="auto", *, budget: int = 32, quality: int | None = None,
           finalists: int = 4, kind=Kind.FIBONACCI, rng_seed: int = 0) -> SearchResult:
    """The remap of ``samples`` (uint8, unpadded) with the least block entropy, or with
    ``quality`` the least coded size among the ``finalists`` of least entropy.

    Parameters
    ----------
    scheme : str or Scheme
        ``none``, ``full``, ``split``, ``progressive`` or ``auto`` (all of them).
    budget : int
        Seed tuples tried per scheme.
    """
    m = check_matrix(samples)
    if m.dtype != np.uint8:
        raise CimcodecError(f"The remap search takes uint8 samples, not {m.dtype}.")
    if scheme == "auto":
        results = [search(m, s, budget=budget, quality=quality, finalists=finalists,
                          kind=kind, rng_seed=rng_seed) for s in Scheme]
        key = (lambda r: r.size) if quality is not None else (lambda r: r.entropy)
        best = min(results, key=key)
        return SearchResult(best.params, best.entropy, best.size, sum(r.tried for r in results))
    template = RemapParams(*m.shape, scheme, kind=kind)
    padded = template.pad(m)
    if template.scheme is Scheme.NONE:
        size = _coded_size(padded, quality) if quality is not None else None
        return SearchResult(template, block_entropy(padded), size, 1)
    seeds = candidate_seeds(template, budget, rng_seed)
    a, b = batch_tables(template, seeds)
    entropies = np.array([block_entropy(remap_with_tables(padded, a[i], b[i]))
                          for i in range(len(seeds))])
    order = np.argsort(entropies, kind="stable")
    if quality is None:
        i = int(order[0])
        params = RemapParams(*m.shape, template.scheme, tuple(int(s) for s in seeds[i]), kind)
        return SearchResult(params, float(entropies[i]), None, len(seeds))
    sizes = {int(i): _coded_size(remap_with_tables(padded, a[i], b[i]), quality)
             for i in order[:finalists]}
    i = min(sizes, key=lambda j: (sizes[j], j))
    params = RemapParams(*m.shape, template.scheme, tuple(int(s) for s in seeds[i]), kind)
    return SearchResult(params, float(entropies[i]), sizes[i], len(seeds))


@dataclass(frozen=True)
class Baseline:
    """Rows and columns sorted by their means: the permutations, the padded coded
    matrix, its block entropy and the side information in bytes."""

    row_order: np.ndarray
    col_order: np.ndarray
    coded: np.ndarray
    entropy: float
    side_bytes: int


def sorted_baseline(samples) -> Baseline:
    """The stored-permutation baseline of the module docstring."""
    m = check_matrix(samples)
    rows, cols = m.shape
    ro = np.argsort(m.mean(axis=1), kind="stable")
    co = np.argsort(m.mean(axis=0), kind="stable")
    template = RemapParams(rows, cols, Scheme.NONE)
    coded = template.pad(m[ro][:, co])
    side = math.ceil(rows * max(1, (rows - 1).bit_length()) / 8) \
        + math.ceil(cols * max(1, (cols - 1).bit_length()) / 8)
    return Baseline(ro, co, coded, block_entropy(coded), side)


def lfsr_side_bytes(params: RemapParams) -> int:
    """Bytes the container spends on a remap: scheme, kind, stage length, seed count
    and 4 per seed."""
    return 7 + 4 * len(params.seeds)
