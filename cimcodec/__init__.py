"""cimcodec: compressed-weight compute-in-memory toolkit.

The public Python API is this module; everything else is in the subpackages, by concern:

* :mod:`cimcodec.hw` -- the Amaranth hardware blocks;
* :mod:`cimcodec.golden` -- their bit-exact reference models (``golden.blocks``), the JPEG
  codec (``golden.jpeg.reference``), the weight codec (``golden.codec.pipeline``) and the ML side
  (``golden.ml``);
* :mod:`cimcodec.tb` -- the cocotb benches;
* :mod:`cimcodec.sim` -- Verilog, simulators, FPGA tools and the command line.

One tensor::

    import cimcodec
    data = cimcodec.compress(weights, quality=75, clusters=16)   # bytes: a baseline JPEG
    weights2 = cimcodec.decompress(data)                         # float32, same shape

A whole model (the model container, docs/model_container.md)::

    cimcodec.save(model.state_dict(), "model.cimz", codec="jpeg", quality=75)
    model.load_state_dict(cimcodec.load("model.cimz"), strict=True)

Generated files (Verilog, simulator builds, trained-model caches) go to
:func:`cimcodec.home`: ``$CIMCODEC_HOME`` if set, otherwise the platform cache directory
(``$XDG_CACHE_HOME/cimcodec``, by default ``~/.cache/cimcodec``); never into the
installed package.
"""

from __future__ import annotations

import os
from pathlib import Path

from cimcodec.golden.errors import CimcodecError

__version__ = "0.2.0"
__all__ = ["CimcodecError", "compress", "decompress", "home", "load", "save"]


def home() -> Path:
    """The directory for generated files and caches (module docstring)."""
    if os.environ.get("CIMCODEC_HOME"):
        return Path(os.environ["CIMCODEC_HOME"]).expanduser().resolve()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return (Path(cache) / "cimcodec").resolve()


def compress(tensor, **settings) -> bytes:
    """Compress one weight tensor into a container file (a baseline JPEG with the
    codec's metadata in APP11).

    Parameters
    ----------
    tensor : array-like or torch.Tensor
        Floating point (float16, bfloat16, float32, float64) weights, or an int8 tensor
        that is already quantized: stored with scale 1 and zero point 0, and refused
        (one sentence) unless the JPEG gives every weight back unchanged, which lossy
        JPEG rarely does. Any number of dimensions >= 1; an N-D tensor is coded as
        ``shape[0] x prod(shape[1:])``.
    **settings
        The fields of :class:`cimcodec.golden.codec.pipeline.Settings`: ``quality``
        (1..100, default 90), ``clusters`` (0 or 1..256), ``remap`` (``none``, ``full``,
        ``split``, ``progressive``, ``auto``), ``per_channel``, ``symmetric``, ``budget``.

    Raises
    ------
    CimcodecError
        A bad setting or a tensor the codec cannot store (one sentence): another dtype,
        NaN or infinite values, no elements, or an int8 tensor that would change.
    """
    from cimcodec.golden.codec import pipeline

    return pipeline.compress_matrix(pipeline.as_array(tensor),
                                    pipeline.Settings(**settings)).data


def decompress(data: bytes, *, integer: bool = False):
    """The tensor in a container file: float32 in its original shape (``integer``: the
    int8 weights before dequantization)."""
    from cimcodec.golden.codec import pipeline

    return pipeline.decompress_matrix(data, integer=integer)


def save(state_dict, file=None, *, codec: str = "jpeg", **settings) -> bytes:
    """Compress a whole torch ``state_dict`` into a model container; write it to
    ``file`` (a path, written atomically) when given. Returns the bytes.

    Weight matrices and conv kernels go through ``codec`` (``jpeg``, ``deep``, ``raw``
    or any registered one) with ``settings`` (for ``jpeg`` the fields of
    :func:`compress`; for ``deep`` ``weight_bits``, ``index_bits``, ``init``,
    ``sparsity``); every other tensor is stored losslessly. Every name, shape, dtype and
    the order come back from :func:`load`.
    """
    from cimcodec.golden.codec import model

    return model.save(state_dict, file, codec=codec, settings=settings)


def load(source) -> dict:
    """The state dict of a model container: a path, or the bytes :func:`save` gave."""
    from cimcodec.golden.codec import model

    return model.load(source)
