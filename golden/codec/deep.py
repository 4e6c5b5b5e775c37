"""Deep Compression's storage of one weight tensor (Han, Mao, Dally, ICLR 2016; seed
003): magnitude pruning, weight sharing by 1-D k-means, sparse storage with relative
indices, and Huffman coding. Each step is a function of its own; :func:`encode` chains
them, :func:`decode` undoes them. The retraining that makes the steps lossless for
accuracy (iterative pruning with masks, centroid fine-tuning) is
:mod:`cimcodec.golden.ml.deep_compression`.

Steps
-----
1. :func:`prune`: zero the ``sparsity`` fraction of the weights smallest in magnitude.
2. :func:`share`: a codebook of ``k = 2**b - 1`` shared values for the nonzero weights,
   by Lloyd's 1-D k-means from one of three initialisations (:func:`init_centroids`):
   ``linear`` (evenly spaced over ``[min, max]``, the paper's choice: it keeps the rare
   large weights), ``forgy`` (``k`` weights drawn at random, seeded) or ``density``
   (evenly spaced in the cumulative distribution). A tensor with at most ``k`` distinct
   nonzero values (one that trained quantization left) keeps exactly those values:
   then storage is lossless. Index 0 of the stored codebook is the value 0 (the filler).
3. :func:`sparse_indices`: the nonzeros in row-major order of the flattened tensor, each
   with the gap to the previous one: ``gap_i = p_i - p_{i-1} - 1`` (``p_{-1} = -1``),
   stored in ``r`` bits. A gap above ``2**r - 1`` gets a *filler*: an entry of value 0
   (codebook index 0) ``2**r`` positions after the previous entry, as often as needed.
   This is the paper's CSR with relative indices over the flattened matrix (its Fig. 2);
   rows need no pointers because positions accumulate. ``b`` and ``r`` default to 5 for
   fully-connected layers (2-D tensors) and 8 for convolutions, as in the paper.
4. Huffman coding (:mod:`cimcodec.golden.codec.entropy`) of the codebook indices and of
   the gaps, each stream with its own optimal table (or fixed ``b`` / ``r`` bits when
   that is shorter or ``huffman`` is off).

Member layout (little-endian)
-----------------------------
``<B b``, ``<B r``, ``<B k`` (nonzero centroids), ``k x <f`` centroids (increasing),
``<I n`` (entries: nonzeros and fillers), the index stream, the gap stream. Decoding:
``p_i = p_{i-1} + gap_i + 1``, ``w[p_i] = codebook[index_i]`` (``codebook[0] = 0``),
every other weight 0; float32, in the manifest's shape.

Size of a layer of ``n`` weights stored as ``m`` entries (paper, Sec. 3.1):
``m * (b + r)`` bits before Huffman plus ``32 k`` for the codebook.

Memory
------
:func:`encode` and :func:`decode` walk the flattened tensor a piece at a time
(:mod:`cimcodec.golden.codec.chunks`): k-means, labels and entries are computed per
piece and the streams written piece by piece (:class:`entropy.Writer`), so besides the
float32 tensor only piece-sized arrays exist (decoding also holds one byte per entry and
stream). The bytes are those of the whole-tensor computation.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from cimcodec.golden.codec import chunks, entropy
from cimcodec.golden.codec.quant import check_finite
from cimcodec.golden.errors import CimcodecError

INITS = ("linear", "forgy", "density")


@dataclass(frozen=True)
class Settings:
    """Options of :func:`encode` (module docstring).

    Attributes
    ----------
    weight_bits, index_bits : int or None
        ``b`` (1..8) and ``r`` (1..8); ``None``: 5 for 2-D tensors, 8 for others.
    init : str
        k-means initialisation: ``linear``, ``forgy`` or ``density``.
    sparsity : float
        Fraction pruned by magnitude before storing (0: store the tensor's own zeros).
    huffman : bool
        Huffman-code the two streams.
    seed : int
        For ``forgy``.
    """

    weight_bits: int | None = None
    index_bits: int | None = None
    init: str = "linear"
    sparsity: float = 0.0
    huffman: bool = True
    seed: int = 0

    def __post_init__(self):
        for name in ("weight_bits", "index_bits"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or not 1 <= value <= 8):
                raise CimcodecError(
                    f"Deep codec {name.replace('_', ' ')} must be an integer 1..8, not "
                    f"{value!r}.")
        if self.init not in INITS:
            raise CimcodecError(
                f"k-means initialisation must be one of {', '.join(INITS)}, not "
                f"{self.init!r}.")
        if not isinstance(self.sparsity, (int, float)) or not 0 <= self.sparsity < 1:
            raise CimcodecError(f"Sparsity must be in [0, 1), not {self.sparsity!r}.")

    def bits(self, ndim: int) -> tuple[int, int]:
        """``(b, r)`` for a tensor of ``ndim`` dimensions."""
        default = 5 if ndim <= 2 else 8
        return self.weight_bits or default, self.index_bits or default


def _floats(weights) -> np.ndarray:
    from cimcodec.golden.codec.pipeline import as_array

    w = np.asarray(as_array(weights), dtype=np.float32)
    check_finite(w)
    return w


def prune(weights, sparsity: float) -> np.ndarray:
    """A copy of ``weights`` with the ``sparsity`` fraction smallest in magnitude set to
    0 (ties at the threshold pruned too)."""
    w = _floats(weights).copy()
    if not 0 <= sparsity < 1:
        raise CimcodecError(f"Sparsity must be in [0, 1), not {sparsity!r}.")
    count = int(round(sparsity * w.size))
    if count:
        flat = w.reshape(-1)
        threshold = np.partition(np.abs(flat), count - 1)[count - 1]
        for a, b in chunks.spans(flat.size):
            part = flat[a:b]
            part[np.abs(part) <= threshold] = 0
    return w


def init_centroids(values, k: int, init: str = "linear", seed: int = 0) -> np.ndarray:
    """``k`` starting centroids for 1-D k-means of ``values`` (module docstring)."""
    v = np.sort(np.asarray(values, dtype=np.float64).reshape(-1))
    if init == "linear":
        return np.linspace(v[0], v[-1], k)
    if init == "forgy":
        return np.sort(np.random.default_rng(seed).choice(v, size=k, replace=False))
    if init == "density":
        return np.quantile(v, np.linspace(0, 1, k))
    raise CimcodecError(f"k-means initialisation must be one of {', '.join(INITS)}, not "
                        f"{init!r}.")


def _nonzero(flat: np.ndarray):
    """The nonzero weights of ``flat`` as float64, a piece at a time, in order."""
    for a, b in chunks.spans(flat.size):
        part = flat[a:b]
        yield part[part != 0].astype(np.float64)


def codebook(weights, k: int, *, init: str = "linear", seed: int = 0,
             iterations: int = 100) -> np.ndarray:
    """At most ``k`` increasing shared values (float32) for the nonzero weights: Lloyd's
    iterations from :func:`init_centroids`, or the weights' own values when there are at
    most ``k`` of them.

    Lloyd's iterations run over the weights a piece at a time; each cluster's sum is
    accumulated in the weights' order (``numpy.add.at``), the very additions of one
    ``numpy.bincount`` over all of them, so the result does not depend on the pieces.
    ``linear`` needs only the extreme weights; ``forgy`` and ``density`` sort all nonzero
    weights (8 bytes each)."""
    flat = _floats(weights).reshape(-1)
    distinct = np.zeros(0)
    for values in _nonzero(flat):
        distinct = np.union1d(distinct, values)
        if distinct.size > k:
            break
    if distinct.size <= k:
        return distinct.astype(np.float32)
    if init == "linear":
        ends = [(v.min(), v.max()) for v in _nonzero(flat) if v.size]
        extremes = np.array([min(e[0] for e in ends), max(e[1] for e in ends)])
    else:
        extremes = np.concatenate(list(_nonzero(flat)))
    centroids = init_centroids(extremes, k, init, seed)
    del extremes
    for _ in range(iterations):
        mid = (centroids[1:] + centroids[:-1]) / 2
        mass = np.zeros(len(centroids), dtype=np.int64)
        total = np.zeros(len(centroids))
        for values in _nonzero(flat):
            cut = np.searchsorted(mid, values)
            mass += np.bincount(cut, minlength=len(centroids))
            np.add.at(total, cut, values)
        new = np.where(mass > 0, total / np.maximum(mass, 1), centroids)
        if np.array_equal(new, centroids):
            break
        centroids = np.sort(new)
    return np.unique(centroids.astype(np.float32))


def labels_of(weights, centroids) -> np.ndarray:
    """Codebook index of every weight (uint8): 0 for a zero weight, ``j + 1`` for the
    nearest of the increasing ``centroids`` (ties to the lower one)."""
    w = np.asarray(weights)
    flat = w.reshape(-1)
    mid = (centroids[1:].astype(np.float64) + centroids[:-1]) / 2
    labels = np.zeros(flat.size, dtype=np.uint8)
    nonzero = flat != 0
    labels[nonzero] = np.searchsorted(mid, flat[nonzero].astype(np.float64)) + 1
    return labels.reshape(w.shape)


def share(weights, k: int, *, init: str = "linear", seed: int = 0,
          iterations: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """``(centroids, labels)``: :func:`codebook` and :func:`labels_of` of the weights, at
    most ``k`` increasing shared values for the nonzero weights and, for every weight, its
    codebook index (0 for a zero weight, ``j + 1`` for ``centroids[j]``). Weights with at
    most ``k`` distinct nonzero values keep them."""
    w = _floats(weights)
    centroids = codebook(w, k, init=init, seed=seed, iterations=iterations)
    return centroids, labels_of(w, centroids)


def _entries(labels: np.ndarray, offset: int, last: int, index_bits: int):
    """The entries of one piece of the flattened labels starting at position
    ``offset``, the previous nonzero being at ``last``: ``(indices, gaps, last)``, the
    indices of the labels' dtype, the gaps uint8 (int64 past 8 bits, as the lossless
    ``rel`` format uses) (:func:`sparse_indices`)."""
    found = np.flatnonzero(labels)
    gap_type = np.uint8 if index_bits <= 8 else np.int64
    if not found.size:
        return np.zeros(0, labels.dtype), np.zeros(0, gap_type), last
    gaps = np.diff(found + offset, prepend=last) - 1
    span = 1 << index_bits
    fillers = gaps // span
    total = len(found) + int(fillers.sum())
    indices = np.zeros(total, dtype=labels.dtype)
    out_gaps = np.full(total, span - 1, dtype=gap_type)
    slot = np.arange(len(found)) + np.cumsum(fillers)
    indices[slot] = labels[found]
    out_gaps[slot] = gaps % span
    return indices, out_gaps, offset + int(found[-1])


def sparse_indices(labels, index_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, gaps)`` (the labels' dtype, uint8) of the nonzero values of ``labels`` in
    row-major order, fillers (index 0, gap ``2**r - 1``) inserted where a gap exceeds
    ``r`` bits."""
    flat, last, out = np.asarray(labels).reshape(-1), -1, []
    for a, b in chunks.spans(flat.size):
        indices, gaps, last = _entries(flat[a:b], a, last, index_bits)
        out.append((indices, gaps))
    return (np.concatenate([i for i, _ in out] + [np.zeros(0, flat.dtype)]),
            np.concatenate([g for _, g in out] + [np.zeros(0, np.uint8 if index_bits <= 8
                                                            else np.int64)]))


def positions_of(gaps) -> np.ndarray:
    """The flattened position of every entry: ``p_i = p_{i-1} + gap_i + 1``."""
    return np.cumsum(np.asarray(gaps, dtype=np.int64) + 1) - 1


def _pruned(weights, settings: Settings):
    """Step 1 of the module docstring and the widths: ``(w, b, r)``."""
    w = _floats(weights)
    if settings.sparsity:
        w = prune(w, settings.sparsity)
    return (w, *settings.bits(w.ndim))


def _streams(weights, settings: Settings):
    """Steps 1-3 of the module docstring, whole: ``(b, r, centroids, labels, indices,
    gaps)`` (:func:`analyze`; :func:`encode` builds them a piece at a time)."""
    w, b, r = _pruned(weights, settings)
    centroids, labels = share(w, (1 << b) - 1, init=settings.init, seed=settings.seed)
    indices, gaps = sparse_indices(labels, r)
    return b, r, centroids, labels, indices, gaps


def encode(weights, settings: Settings | None = None) -> bytes:
    """The member of one tensor (module docstring), built a piece of the tensor at a
    time: a first pass counts the symbols of both streams, a second codes them."""
    settings = settings or Settings()
    w, b, r = _pruned(weights, settings)
    centroids = codebook(w, (1 << b) - 1, init=settings.init, seed=settings.seed)
    flat = w.reshape(-1)

    def entries():
        last = -1
        for a, e in chunks.spans(flat.size):
            indices, gaps, last = _entries(labels_of(flat[a:e], centroids), a, last, r)
            yield indices, gaps

    counts = np.zeros((2, 256), dtype=np.int64)
    for indices, gaps in entries():
        counts[0] += np.bincount(indices, minlength=256)
        counts[1] += np.bincount(gaps, minlength=256)
    streams = [entropy.Writer(counts[0], huffman=settings.huffman, width=b),
               entropy.Writer(counts[1], huffman=settings.huffman, width=r)]
    for pair in entries():
        for stream, symbols in zip(streams, pair):
            stream.add(symbols)
    return b"".join([struct.pack("<BBB", b, r, len(centroids)),
                     centroids.astype("<f4").tobytes(),
                     struct.pack("<I", int(counts[0].sum())),
                     *(stream.finish() for stream in streams)])


def decode(data: bytes, shape) -> np.ndarray:
    """The float32 tensor of shape ``shape`` stored in a member.

    Raises
    ------
    CimcodecError
        A truncated or corrupt member.
    """
    try:
        b, r, k = struct.unpack_from("<BBB", data)
        centroids = np.frombuffer(data, "<f4", k, 3).astype(np.float32)
        (n,) = struct.unpack_from("<I", data, 3 + 4 * k)
    except (struct.error, ValueError):
        raise CimcodecError("A deep member is truncated in its header.") from None
    if not (1 <= b <= 8 and 1 <= r <= 8) or k >= 1 << b:
        raise CimcodecError("A deep member has a bad header.")
    size = math.prod(shape)
    if n > size:
        raise CimcodecError(f"A deep member lists {n} entries for {size} weights.")
    indices, end = entropy.decode(data, n, 7 + 4 * k)
    gaps, end = entropy.decode(data, n, end)
    if end != len(data):
        raise CimcodecError("A deep member has bytes after its streams.")
    outside = CimcodecError("A deep member points outside its tensor or its codebook.")
    if n and indices.max() > k:
        raise outside
    book = np.concatenate([np.zeros(1, dtype=np.float32), centroids])
    out = np.zeros(size, dtype=np.float32)
    last = -1
    for a, e in chunks.spans(n):
        positions = last + 1 + positions_of(gaps[a:e])
        if positions[-1] >= size:
            raise outside
        out[positions] = book[indices[a:e]]
        last = int(positions[-1])
    return out.reshape(shape)


def analyze(weights, settings: Settings | None = None) -> dict:
    """The figures of Deep Compression's tables for one tensor stored by :func:`encode`:
    weights, nonzeros, fillers, kept fraction, weight and index bits before and after
    Huffman, member bytes."""
    settings = settings or Settings()
    b, r, centroids, labels, indices, gaps = _streams(weights, settings)
    nonzero = int(np.count_nonzero(labels))
    return {"weights": int(labels.size), "nonzero": nonzero,
            "fillers": len(indices) - nonzero, "kept": nonzero / labels.size,
            "clusters": len(centroids),
            "weight_bits": b, "weight_bits_huffman": entropy.mean_code_length(indices),
            "index_bits": r, "index_bits_huffman": entropy.mean_code_length(gaps),
            "bytes": len(encode(weights, settings))}
