"""Shared pytest fixtures: every hardware testbench runs on both simulators; the
codec's round-trip check (golden and CLI tests)."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from cimcodec.golden.codec import container, kmeans, quant
from cimcodec.golden.codec import pipeline as codec
from cimcodec.golden.jpeg import reference as jpeg
from cimcodec.sim.tools import SIMULATORS


@pytest.fixture(params=SIMULATORS)
def simulator(request):
    """Each test that takes ``simulator`` runs once on Icarus and once on Verilator."""
    return request.param


def jpeg_rms_bound(quality: int) -> float:
    """The largest RMS sample error that baseline JPEG at ``quality`` can give one 8x8
    block, libjpeg's islow transforms included.

    The encoder's coefficient is its ``fdct_islow`` output over 8, within 1/4 of the
    orthonormal DCT coefficient (``test_jpeg``: within 2 of 8 times the float DCT), and
    is rounded to a multiple of its quantizer ``Q[k]``: an error of at most
    ``Q[k] / 2 + 1/4``. The orthonormal IDCT keeps the block's error energy (Parseval),
    so the float reconstruction is within ``sqrt(mean((Q / 2 + 1/4) ** 2))`` RMS of the
    block; the islow IDCT is within 1 of the rounded float one (``test_jpeg``), so within
    1.5 of the unrounded one, and the clamp to 0..255 only moves samples towards the
    original. Hence that RMS plus 1.5.
    """
    q = jpeg.quality_table(quality).astype(np.float64)
    return float(np.sqrt(np.mean((q / 2 + 0.25) ** 2))) + 1.5


def check_round_trip(weights, options: dict, data: bytes) -> None:
    """``codec.decompress_matrix(data)`` against ``weights`` compressed with ``options``:

    1. the file's quantization and codebook are those of ``golden.codec.quant`` and the
       optimal K-means (each tested on its own), and every 8x8 block of the JPEG image
       (decoded by Pillow, the external oracle) is within :func:`jpeg_rms_bound` of the
       samples the encoder had to code;
    2. the decoder's output equals, bit for bit, the documented reconstruction from
       Pillow's samples: undo the remap, snap table -> centroid (or sample - 128), then
       ``(level - zero_point) * scale`` in float32;
    3. its error against the original, in quantization steps of each row, has an RMS of
       at most ``1/2 + S + A * J * sqrt(Rp * Cp / N)``: rounding (1/2 step), weight
       sharing ``S`` (the RMS distance of each weight to the value it is stored as:
       its centroid with a snap table), the JPEG error ``J = jpeg_rms_bound(quality)``
       spread over the ``N`` real samples of the ``Rp x Cp`` image, amplified by
       ``A = 3`` with a snap table (a sample off by ``e`` can land on a level up to
       ``2|e|`` away, whose centroid is 1 further) and 1 without.
    """
    settings = codec.Settings(**options)
    decoded = codec.decompress_matrix(data)
    w = np.asarray(weights, dtype=np.float32)
    assert decoded.dtype == np.float32 and decoded.shape == w.shape
    matrix, got = w.reshape(w.shape[0], -1), decoded.reshape(w.shape[0], -1)
    header = container.read_header(data)
    remap = header.remap
    q0, params = quant.quantize(matrix, per_channel=settings.per_channel,
                                symmetric=settings.symmetric)
    assert np.array_equal(header.quant.scale, params.scale)
    assert np.array_equal(header.quant.zero_point, params.zero_point)
    q, target = q0, q0.astype(np.float64)
    if settings.clusters:
        book = kmeans.optimal(q0, settings.clusters)
        q = book.share(q0)
        assert np.array_equal(header.levels, book.shared_levels)
        target = header.centroids[book.assign(q0)] if header.snap is not None else q
    # 1. The JPEG part.
    samples = np.asarray(Image.open(io.BytesIO(data)))
    error = samples.astype(np.int64) - remap.remap(quant.to_samples(q))
    blocks = error.reshape(remap.block_rows, 8, remap.block_cols, 8)
    bound = jpeg_rms_bound(settings.quality)
    assert np.sqrt(np.mean(blocks.astype(np.float64) ** 2, axis=(1, 3))).max() <= bound
    # 2. The decoder, exactly.
    u = remap.unremap(samples)
    level = header.centroids[header.snap[u]] if header.snap is not None \
        else u.astype(np.int64) - 128
    scale, zero = (np.broadcast_to(a.reshape(-1, 1), (matrix.shape[0], 1))
                   for a in (header.quant.scale, header.quant.zero_point))
    expected = ((level.astype(np.float32) - zero.astype(np.float32)) * scale).astype(np.float32)
    assert np.array_equal(got, expected)
    # 3. The error against the original weights, in quantization steps.
    steps = (got.astype(np.float64) - matrix) / scale
    sharing = np.sqrt(np.mean((target - q0) ** 2))
    spread = np.sqrt(remap.padded_rows * remap.padded_cols / matrix.size)
    amplify = 3 if header.snap is not None else 1
    assert np.sqrt(np.mean(steps ** 2)) <= 0.5 + sharing + amplify * bound * spread


@pytest.fixture(name="check_round_trip")
def _check_round_trip():
    """:func:`check_round_trip`, for the tests of the codec and of its commands."""
    return check_round_trip


def jpeg_fixed_point(shape, quality: int, seed: int) -> np.ndarray:
    """An int8 matrix that the codec stores exactly at ``quality`` (remap ``none``): its
    samples are an image that JPEG at that quality gives back unchanged, found by
    repeating decode(encode(x)) until nothing moves (a few rounds). ``shape`` must be a
    multiple of 8 (no padding)."""
    from cimcodec.golden.jpeg import fast

    x = np.clip(np.random.default_rng(seed).normal(128, 30, shape), 0, 255).astype(np.uint8)
    for _ in range(20):
        y = fast.decode(fast.encode(x, quality=quality))
        if np.array_equal(x, y):
            return quant.from_samples(x)
        x = y
    raise AssertionError("no fixed point in 20 rounds")


@pytest.fixture(name="jpeg_fixed_point")
def _jpeg_fixed_point():
    """:func:`jpeg_fixed_point`."""
    return jpeg_fixed_point


# Two pytest workers on two cores: one torch thread each, not two fighting over a core.
torch.set_num_threads(1)


@pytest.fixture
def cli():
    """``cli(*argv) -> (exit code, stdout, stderr)`` of the ``cimcodec`` command line
    (:func:`cimcodec.sim.cli.call`)."""
    from cimcodec.sim.cli import call

    return call
