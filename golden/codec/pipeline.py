"""The weight codec: quantize, share, remap and JPEG-code weight matrices into
:mod:`golden.codec.container` files, and back.

Compression of one matrix (:func:`compress_matrix`)
---------------------------------------------------
1. Flatten an N-D tensor to ``shape[0] x prod(shape[1:])`` (a conv kernel
   ``(out, in, kh, kw)`` becomes ``out x in*kh*kw``).
2. Quantize to int8 (:mod:`golden.codec.quant`; an int8 input is taken as already quantized,
   scale 1, zero point 0).
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


def restart_interval(rows: int, cols: int) -> int:
    """Blocks per restart interval for a ``rows x cols`` matrix (0: none)."""
    blocks = math.ceil(rows / 8) * math.ceil(cols / 8)
    return 0 if blocks < RESTART_BLOCKS else math.ceil(blocks / 2048)


#: The floating-point dtypes the codec quantizes (bfloat16 arrives from torch as float32,
#: an exact widening).
FLOAT_DTYPES = (np.float16, np.float32, np.float64)


def as_array(tensor) -> np.ndarray:
    """A weight tensor (numpy array, torch tensor or nested lists) as a numpy array the
    codec takes, or one sentence saying why not: floating point (float16, bfloat16,
    float32, float64) or int8 (already quantized, stored exactly). Other integer, bool,
    complex and non-numeric dtypes are refused, never cast."""
    if hasattr(tensor, "detach"):
        import torch

        t = tensor.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()
        if t.is_complex() or t.dtype == torch.bool or (
                not t.is_floating_point() and t.dtype != torch.int8):
            raise CimcodecError(_dtype_message(str(t.dtype).removeprefix("torch.")))
        return t.numpy()
    try:
        a = np.asarray(tensor)
    except (ValueError, TypeError):
        raise CimcodecError("The weights are not a rectangular numeric array.") from None
    if a.dtype != np.int8 and a.dtype.type not in FLOAT_DTYPES:
        raise CimcodecError(_dtype_message(str(a.dtype)))
    return a


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
                           restart_interval=restart_interval(rows, cols))
    return Compressed(data, container.read_header(data), before,
                      search.block_entropy(coded), sse)


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


# ------------------------------------------------------------------ state dicts


def select_layers(state_dict, *, conv: bool = False, names=None) -> list[str]:
    """Weight tensors to compress: every 2-D ``*.weight`` (FC layers), plus 4-D ones
    with ``conv``; or exactly ``names``."""
    if names is not None:
        missing = [n for n in names if n not in state_dict]
        if missing:
            raise CimcodecError(
                f"The state dict has no tensor named {missing[0]!r}; it has "
                f"{', '.join(sorted(state_dict))}.")
        return list(names)
    dims = (2, 4) if conv else (2,)
    return [n for n, t in state_dict.items()
            if n.endswith("weight") and np.asarray(t).ndim in dims]


def compress_state_dict(state_dict, settings: Settings | None = None, *, conv=False,
                        names=None, **options) -> dict:
    """``{name: Compressed}`` for the selected layers of a torch state dict."""
    settings = settings or Settings(**options)
    out = {}
    for name in select_layers(state_dict, conv=conv, names=names):
        t = state_dict[name]
        a = t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)
        out[name] = compress_matrix(a.astype(np.float32), settings)
    return out


def decompress_state_dict(files: dict, base: dict) -> dict:
    """``base`` with every tensor named in ``files`` replaced by its decoded weights."""
    import torch

    out = dict(base)
    for name, data in files.items():
        raw = data.data if isinstance(data, Compressed) else data
        w = decompress_matrix(raw)
        if name in base and tuple(base[name].shape) != w.shape:
            raise CimcodecError(
                f"The file for {name} holds shape {w.shape}, the model has "
                f"{tuple(base[name].shape)}.")
        out[name] = torch.from_numpy(np.ascontiguousarray(w))
    return out


def ratio_report(state_dict, compressed: dict) -> dict:
    """Per-layer and total ratio against fp32: compressed layers count their file bytes,
    every other tensor its fp32 bytes (4 per element)."""
    per_layer = {n: c.ratio for n, c in compressed.items()}
    total_fp32 = sum(4 * int(np.prod(tuple(t.shape))) for t in state_dict.values())
    stored = sum(len(c.data) for c in compressed.values()) + sum(
        4 * int(np.prod(tuple(t.shape))) for n, t in state_dict.items() if n not in compressed)
    fc_fp32 = sum(4 * int(np.prod(c.header.shape)) for c in compressed.values())
    fc_bytes = sum(len(c.data) for c in compressed.values())
    return {"layers": per_layer, "total": total_fp32 / stored,
            "compressed_layers": fc_fp32 / max(fc_bytes, 1),
            "bytes": stored, "fp32_bytes": total_fp32}
