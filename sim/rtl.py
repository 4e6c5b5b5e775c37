"""The RTL as plain functions: each builds its block (cached), runs the cocotb bench on
a simulator and returns what the hardware produced, as the golden function would. Every
output is compared with the golden model inside the simulation; a difference raises
:class:`cimcodec.sim.cocotb_run.RtlMismatch`.

* :func:`rtl_decode`: a file through :class:`cimcodec.hw.decompressor.Decompressor`. The
  hardware gets nothing but the file's bytes: it parses the JPEG and the container's
  APP11 metadata (matrix size, remap, snap table), checks the CRC-32 of the
  entropy-coded data, decodes it, runs the islow IDCT, applies the codebook snap table
  and undoes the remap, streaming ``(row, col, sample)`` in original matrix order. One
  step runs in software after it, by design: the 8-bit samples (or codebook indices)
  are dequantized to float exactly as
  :func:`cimcodec.golden.codec.pipeline.decompress_matrix` does.
* :func:`rtl_mac`: ``Y = X @ W`` through :class:`cimcodec.hw.cim.CimArray`.
* :func:`rtl_infer`: a whole integer network (:mod:`cimcodec.golden.ml.tile_net`) on
  :class:`cimcodec.hw.tile.Tile`, its weights loaded tile by tile from the container's
  bytes by the host sequencer in the cocotb bench; :func:`rtl_network` beside the
  golden network, with the figures ``rtl-infer`` and the demo print.
"""

from __future__ import annotations

import numpy as np

from cimcodec.golden.blocks import decompressor as gd
from cimcodec.golden.codec import container
from cimcodec.golden.codec.pipeline import weights_from_samples
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg.fast import decode_full
from cimcodec.golden.ml import tile_net
from cimcodec.sim.cocotb_run import RtlMismatch, run_jobs
from cimcodec.tb import cim as tb_cim
from cimcodec.tb import decompressor as tb_decompressor
from cimcodec.tb import tile as tb_tile


def rtl_decode(data: bytes, *, raw: bool, sim: str, shape=None, integer: bool = False):
    """``(array, stats)``: the decoded file from the RTL, as ``decompress`` would give it
    (``raw``: the 8-bit samples of any baseline grayscale JPEG)."""
    shape = shape or gd.DecompressorShape()
    job = tb_decompressor.job(data, shape, raw=raw)
    result = run_jobs(tb_decompressor.BENCH, shape, [job], sim)[0]
    items = result["outputs"]["o"]
    end = items[-1]
    if end["error"]:
        name = gd.Error(end["code"]).name if end["code"] in gd.Error._value2member_map_ \
            else str(end["code"])
        raise CimcodecError(f"The RTL decoder stopped with error {name} on this file.")
    if shape.lanes > 1:
        samples = [s for lane in tb_decompressor.lane_samples(items, shape.lanes)
                   for s in lane]
    else:
        samples = [(o["row"], o["col"], o["sample"]) for o in items[:-1]]
    # Whole file: clocks from reset to the status event. Sample phase: from the first
    # weight to the status event, the rate once the headers are read.
    phase = result["clocks"] - result["first_clock"]
    stats = {"sim": sim, "lanes": shape.lanes, "in_bytes": shape.in_bytes,
             "clocks": result["clocks"],
             "weights": len(samples),
             "file_bytes": len(data),
             "clocks_per_weight": round(result["clocks"] / max(1, len(samples)), 4),
             "sample_phase_clocks": phase,
             "sample_phase_clocks_per_weight": round(phase / max(1, len(samples)), 4)}
    if raw:
        frame = decode_full(data).samples.shape
        out = np.zeros(frame, np.uint8)
        for r, c, s in samples:
            out[r, c] = s
        return out, stats
    # Dequantization (software): the header gives the scales and the codebook.
    header = container.read_header(data)
    u = np.zeros((header.rows, header.cols), np.uint8)
    for r, c, s in samples:
        u[r, c] = s
    return weights_from_samples(header, u, integer=integer, snapped=True), stats


def rtl_mac(params, weights, acts, sim: str):
    """``Y`` from the RTL array and the run's clock counts (the golden model checks
    every result inside the simulation; a difference raises ``RtlMismatch``)."""
    result = run_jobs(tb_cim.BENCH, params, tb_cim.jobs(params, [[(weights, acts)]]), sim)[0]
    return np.array(result["outputs"]["o"], dtype=np.int64).reshape(len(acts), params.cols), \
        result


def rtl_infer(container: bytes, acts, shape, sim: str):
    """``(logits, result)``: the integer network of ``container`` on the RTL tile built
    for ``shape`` (a :class:`cimcodec.golden.blocks.tile.TileShape`), for the first
    layer's activations ``acts`` (``(n, inputs)``, 0..255). Every job's status and
    outputs are checked against the golden tile in the simulation (a difference raises
    ``RtlMismatch``); ``result`` holds them and the clock counts (:mod:`cimcodec.tb.tile`).
    """
    job = tb_tile.network(container, acts)
    result = run_jobs(tb_tile.BENCH, shape, [job], sim)[0]
    return np.asarray(result["logits"], dtype=np.int64), result


def rtl_network(container: bytes, acts, labels, fp32, shape, sim: str) -> dict:
    """The integer network of ``container`` on the RTL tile and on the golden one, for
    the first layer's activations ``acts`` of images with ``labels`` (``fp32``: the float
    network's classes): :func:`cimcodec.golden.ml.tile_net.golden_run`'s figures plus the
    RTL's accuracy and classes, its clocks (in all, per image, the weight-load and MAC
    parts) and, per layer, the mean clocks of one array load (``reload_clocks``) beside
    the member's bytes and the ``R * C / W`` clocks of the same load from int8 at the
    array's ``W = shape.writes_per_clock`` weights per clock. Raises ``RtlMismatch``
    unless every job and the logits equal the golden model's."""
    net = tile_net.load(container)
    golden, stats = tile_net.golden_run(net, shape, acts, labels, fp32)
    logits, result = rtl_infer(container, acts, shape, sim)
    if not np.array_equal(logits, golden):
        raise RtlMismatch("the RTL network's logits differ from the golden model's")
    n, clocks, load = len(labels), result["clocks"], result["load_clocks"]
    stats["accuracy"]["rtl"] = float((logits.argmax(1) == np.asarray(labels)).mean())
    stats["predictions"]["rtl"] = logits.argmax(1).tolist()
    per_layer = {}
    for (name, _, _), count in zip(stats["windows"], result["reloads"]):
        per_layer.setdefault(name, []).append(count)
    files = {layer.name: len(layer.file) for layer in net.layers}
    stats.update({
        "sim": sim, "rtl_equals_golden": True, "clocks": clocks,
        "clocks_per_image": clocks / n, "load_clocks_per_image": load / n,
        "mac_clocks_per_image": (clocks - load) / n,
        "reload_clocks": {name: {"clocks": sum(c) / len(c), "file_bytes": files[name],
                                 "int8_clocks": shape.cim.load_clocks}
                          for name, c in per_layer.items()}})
    return stats
