"""The weight codec: quantize, share, remap and JPEG-code weight matrices into
:mod:`golden.codec.container` files, and back.

Compression of one matrix (:func:`compress_matrix`)
---------------------------------------------------
1. Flatten an N-D tensor to ``shape[0] x prod(shape[1:])`` (a conv kernel
   ``(out, in, kh, kw)`` becomes ``out x in*kh*kw``).
2. Quantize to int8 (:mod:`golden.codec.quant`; an int8 input is taken as already quantized,
   scale 1, zero point 0, and must come back bit for bit: see step 6).
3. With ``clusters = k > 0``: share weights with the exact 1-D K-means
   (:func:`golden.codec.kmeans.optimal`, or Lloyd); every weight becomes its cluster's rounded
   level; the codebook keeps the real centroids (optionally fine-tuned) and, with
   ``snap``, the 256-entry snap table.
4. Level shift to samples ``q + 128``, remap (:mod:`golden.blocks.remap`; ``auto`` searches the
   seeds and schemes with :func:`golden.codec.search.search`).
5. JPEG-code the padded remapped matrix (:func:`golden.jpeg.fast.encode`, byte-identical
   to :func:`golden.jpeg.reference.encode`) and add the metadata
   (:func:`golden.codec.container.write`).
   Matrices of :data:`RESTART_BLOCKS` blocks or more get restart intervals (about 2048
   of them) so the fast decoder can run the intervals side by side.
6. An int8 input is decoded again (:func:`decompress_matrix` with ``integer``) and
   refused with one sentence unless every weight comes back unchanged: the codec never
   changes weights that are already quantized behind the caller's back. JPEG is lossy,
   so most int8 matrices are refused at every quality (the sentence says how many
   weights would change); floating-point weights are the input for lossy coding.
   ``Settings(exact_int8=False)`` accepts the loss instead.

Ratios count every byte of every file against the fp32 tensor (4 bytes per weight).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cimcodec.golden.blocks.lfsr import Scheme
from cimcodec.golden.blocks.remap import RemapParams
from cimcodec.golden.codec import chunks, container, kmeans, quant, search
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg import fast as jpeg_fast

RESTART_BLOCKS = 16384
REMAPS = ("none", "full", "split", "progressive", "auto")


#: Restart intervals per decoder lane in a file coded for lanes: the lanes are fed one
#: after the other from the one byte stream, so a lane's first interval arrives only
#: after the lanes before it had theirs; more, shorter intervals start them sooner, at
#: 2 marker bytes and up to 7 padding bits each (``python -m bench.decoder_clocks
#: --lanes``).
INTERVALS_PER_LANE = 4


def restart_interval(rows: int, cols: int, lanes: int = 1) -> int:
    """Blocks per restart interval for a ``rows x cols`` matrix (0: none). Matrices of
    :data:`RESTART_BLOCKS` blocks or more get about 2048 intervals; with ``lanes > 1``
    a smaller one gets ``lanes * INTERVALS_PER_LANE`` (or as many as it has blocks),
    of equal length but the last, so the decompressor's lanes share it evenly."""
    blocks = math.ceil(rows / 8) * math.ceil(cols / 8)
    if blocks >= RESTART_BLOCKS:
        return math.ceil(blocks / 2048)
    if lanes > 1:
        return math.ceil(blocks / (lanes * INTERVALS_PER_LANE))
    return 0


#: The floating-point dtypes the codec quantizes (bfloat16 arrives from torch as float32,
#: an exact widening).
FLOAT_DTYPES = (np.float16, np.float32, np.float64)


def as_array(tensor) -> np.ndarray:
    """A weight tensor (numpy array, torch tensor or nested lists) as a numpy array the
    codec takes, or one sentence saying why not: floating point (float16, bfloat16,
    float32, float64) or int8 (already quantized, stored exactly: see
    :func:`compress_matrix`). Other integer, bool, complex, float8 and non-numeric dtypes
    are refused, never cast; so are torch tensors that hold no dense data on the CPU
    (sparse layouts, the ``meta`` device).

    Raises
    ------
    CimcodecError
        One of the above.
    """
    if hasattr(tensor, "detach"):
        import torch

        if tensor.is_meta:
            raise CimcodecError("The weights are a torch tensor on the meta device, which "
                                "holds no values; load the real weights first.")
        if tensor.layout != torch.strided:
            raise CimcodecError(f"The weights are a torch tensor of layout {tensor.layout}; "
                                f"pass a dense one (tensor.to_dense()).")
        if tensor.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64,
                                torch.int8):
            raise CimcodecError(_dtype_message(str(tensor.dtype).removeprefix("torch.")))
        t = tensor.detach().cpu()
        return (t.float() if t.dtype == torch.bfloat16 else t).numpy()
    try:
        a = np.asarray(tensor)
    except (ValueError, TypeError):
        raise CimcodecError("The weights are not a rectangular numeric array.") from None
    if a.dtype != np.int8 and a.dtype.type not in FLOAT_DTYPES:
        kind = _KINDS.get(a.dtype.kind)
        raise CimcodecError(_dtype_message(f"{a.dtype} ({kind})" if kind else str(a.dtype)))
    return a


_KINDS = {"U": "strings", "S": "bytes", "O": "Python objects", "V": "records",
          "M": "dates", "m": "time spans"}


def _dtype_message(dtype: str) -> str:
    return (f"Weights must be floating point (float16, bfloat16, float32, float64) or "
            f"int8 (already quantized), not {dtype}; convert them first.")


def as_matrix(tensor) -> tuple[np.ndarray, tuple]:
    """An N-D array as ``(shape[0], prod(shape[1:]))`` and its original shape."""
    a = as_array(tensor)
    if a.ndim == 0 or a.size == 0:
        raise CimcodecError(f"A weight tensor must have at least one dimension and one "
                            f"element, not shape {tuple(a.shape)}.")
    shape = tuple(int(s) for s in a.shape)
    return a.reshape(shape[0], -1) if a.ndim != 2 else a, shape


@dataclass(frozen=True)
class Settings:
    """Options of :func:`compress_matrix`; see the module docstring."""

    quality: int = 90
    clusters: int = 0
    remap: str = "none"
    per_channel: bool = False
    symmetric: bool = True
    snap: bool = True
    kmeans: str = "optimal"
    budget: int = 16
    seeds: tuple | None = None
    #: Decoder lanes to code restart intervals for (:func:`restart_interval`): 1 (none
    #: below RESTART_BLOCKS blocks), 2, 4 or 8.
    lanes: int = 1
    #: Refuse an int8 matrix that the codec would change (step 6); ``False`` accepts the
    #: loss, for callers that use the decoded integer weights themselves (the tile's
    #: integer network, whose golden model runs on what the decompressor gives).
    exact_int8: bool = True

    def __post_init__(self):
        if self.remap not in REMAPS:
            raise CimcodecError(
                f"Remap must be one of {', '.join(REMAPS)}, not {self.remap!r}.")
        if self.kmeans not in ("optimal", "lloyd"):
            raise CimcodecError(f"K-means must be 'optimal' or 'lloyd', not {self.kmeans!r}.")
        if isinstance(self.clusters, bool) or not isinstance(self.clusters, (int, np.integer)) \
                or not 0 <= self.clusters <= 256:
            raise CimcodecError(
                f"The cluster count must be 0 (no sharing) or 1..256, not {self.clusters!r}.")
        if isinstance(self.budget, bool) or not isinstance(self.budget, (int, np.integer)) \
                or self.budget < 1:
            raise CimcodecError(
                f"The seed budget must be a positive integer, not {self.budget!r}.")
        if isinstance(self.lanes, bool) or self.lanes not in (1, 2, 4, 8):
            raise CimcodecError(f"Lanes must be one of 1, 2, 4 or 8, not {self.lanes!r}.")
        jpeg_fast.jpeg.quality_table(self.quality)  # validates the quality


@dataclass(frozen=True)
class Compressed:
    """One compressed matrix: the file and what went into it."""

    data: bytes
    header: container.Header
    entropy_before: float
    entropy_after: float
    sse: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return 4 * math.prod(self.header.shape) / len(self.data)


def prepare(weights, settings: Settings, *, centroids=None):
    """Steps 1-3: ``(q int8 matrix of shared levels, shape, QuantParams, codebook or
    None, sse dict)``."""
    matrix, shape = as_matrix(weights)
    if matrix.dtype == np.int8:
        q = matrix.copy()
        params = quant.QuantParams(quant.QScheme.PER_TENSOR_SYMMETRIC, [1.0], [0])
    else:
        q, params = quant.quantize(matrix, per_channel=settings.per_channel,
                                   symmetric=settings.symmetric)
    book, sse = None, {}
    if settings.clusters:
        both = kmeans.compare(q, settings.clusters)
        sse = {name: cb.sse for name, cb in both.items()}
        book = both[settings.kmeans]
        q = book.share(q)
    return q, shape, params, book, sse


def compress_matrix(weights, settings: Settings | None = None, *, centroids=None,
                    **options) -> Compressed:
    """Compress one weight tensor into a container file (module docstring).

    ``centroids`` replaces the codebook's real centroids (e.g. after
    :func:`golden.codec.kmeans.finetune_centroids`, in integer-weight units).
    """
    settings = settings or Settings(**options)
    weights = as_array(weights)
    q, shape, params, book, sse = prepare(weights, settings)
    samples = quant.to_samples(q, in_place=True)   # q is prepare's own array
    del q
    rows, cols = samples.shape
    none = RemapParams(rows, cols, Scheme.NONE)
    padded = samples if samples.shape == (none.padded_rows, none.padded_cols) \
        else none.pad(samples)
    before = search.block_entropy(padded)
    if settings.remap == "auto" or (settings.remap != "none" and settings.seeds is None):
        found = search.search(samples, settings.remap, budget=settings.budget,
                              quality=settings.quality if settings.remap == "auto" else None)
        remap = found.params
    else:
        remap = RemapParams(rows, cols, settings.remap, settings.seeds)
    del samples
    coded = search.remap_padded(remap, padded)
    del padded
    levels = cvals = snap = None
    if book is not None:
        levels = book.shared_levels
        cvals = book.centroids if centroids is None else np.asarray(centroids)
        snap = kmeans.snap_table(levels) if settings.snap else None
    header = container.Header(shape, params, remap, levels, cvals, snap)
    data = container.write(coded, header, quality=settings.quality,
                           restart_interval=restart_interval(rows, cols, settings.lanes))
    if weights.dtype == np.int8 and settings.exact_int8:
        _check_exact(weights.reshape(rows, cols), data, settings)
    return Compressed(data, container.read_header(data), before,
                      search.block_entropy(coded), sse)


def _check_exact(q: np.ndarray, data: bytes, settings: Settings) -> None:
    """Step 6 of the module docstring: an int8 matrix ``q`` must decode bit for bit."""
    back = decompress_matrix(data, integer=True)
    changed = back != q
    if changed.any():
        worst = int(np.abs(back.astype(np.int16) - q).max())
        sharing = f" with {settings.clusters} clusters" if settings.clusters else ""
        raise CimcodecError(
            f"int8 weights are taken as already quantized and must come back bit for bit, "
            f"but {int(changed.sum())} of the {q.size} would change (by up to {worst}) at "
            f"quality {settings.quality}{sharing}; pass floating-point weights to have the "
            f"codec quantize them lossily.")


def decode_samples(data) -> np.ndarray:
    """The 8-bit samples of any baseline grayscale JPEG (ours or not)."""
    return jpeg_fast.decode(data)


def decompress_matrix(data, *, integer: bool = False) -> np.ndarray:
    """The weights of a container file, float32 in the original shape (or, with
    ``integer``, the int8 matrix before dequantization, snapped to the codebook's
    levels when the file has a snap table).

    Raises
    ------
    CimcodecError
        Not a container, corrupt metadata or data, CRC mismatch.
    """
    header = container.read_header(data)
    samples = decode_samples(data)
    remap = header.remap
    if samples.shape != (remap.padded_rows, remap.padded_cols):
        raise CimcodecError("The decoded image does not have the metadata's padded shape.")
    return weights_from_samples(header, search.fast_unremap(remap, samples),
                                integer=integer)


def weights_from_samples(header: container.Header, u: np.ndarray, *, integer: bool = False,
                         snapped: bool = False) -> np.ndarray:
    """The weights of the unremapped ``rows x cols`` sample matrix ``u`` of a file with
    ``header`` (see :func:`decompress_matrix`): samples, or with a snap table codebook
    indices (``snap[u]``, or ``u`` itself when ``snapped``: the hardware applies the
    table), to int8 levels, then dequantized to float32 in the original shape; a few rows
    at a time into the one output array."""
    out = np.empty((header.rows, header.cols), dtype=np.int8 if integer else np.float32)
    for a, b in chunks.row_spans(header.rows, header.cols):
        part = u[a:b]
        if header.snap is not None:
            idx = part if snapped else header.snap[part]
            if integer:
                out[a:b] = header.levels[idx]
                continue
            v = header.centroids[idx]
        else:
            if integer:
                out[a:b] = quant.from_samples(part)
                continue
            v = quant.from_samples(part).astype(np.float32)
        out[a:b] = header.quant.rows(a, b).dequantize(v)
    return out if integer else out.reshape(header.shape)
