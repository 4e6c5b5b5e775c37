"""The hardware-decodable JPEG path on digits: reordering against the LFSR remap, the
JPEG path with retraining and per-layer rate control per network, and the rate-accuracy
figure (docs/codec.md, docs/img/).

    python -m bench.jpeg_path [--part reorder jpeg rtl figure] [--net mlp2 lenet5 vgg11]
                              [-o build/jpeg_path]

* ``reorder``: on every weight matrix of the trained MLP2, the 8x8-block entropy of its
  int8 samples and the JPEG bytes (quality 75, no clusters) with no remap, the best LFSR
  remap the search finds (``auto``, budget 32), function-preserving reordering, and
  reordering followed by the best LFSR remap.
* ``jpeg``: :func:`cimcodec.golden.ml.jpeg_aware.run` with a 1 % validation floor per
  network: per layer the block sparsity, the quality and the member bytes; the whole
  container's ratio; accuracies.
* ``rtl``: every JPEG member of those containers decoded on the RTL decompressor on
  Verilator and Icarus, against the golden decoder.
* ``figure``: :func:`cimcodec.golden.ml.sweep.run` with retraining for MLP2 (every curve
  of the sweep plus the JPEG path's and Deep Compression's settings), written to
  ``docs/img/rate_accuracy_mlp2.png``.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import torch

import cimcodec
from cimcodec.golden.blocks.remap import RemapParams
from cimcodec.golden.codec import model as container
from cimcodec.golden.codec import pipeline, quant, search
from cimcodec.golden.ml import deep_compression as dc
from cimcodec.golden.ml import jpeg_aware, sweep
from cimcodec.golden.ml.datasets import load
from cimcodec.golden.ml.models import train
from cimcodec.golden.ml.reorder import reorder

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _entropy_and_bytes(weight, remap: str) -> tuple[float, int]:
    matrix = pipeline.as_matrix(weight)[0]
    settings = pipeline.Settings(quality=75, remap=remap, budget=32)
    c = pipeline.compress_matrix(matrix, settings)
    return c.entropy_after / 8 / 1024, len(c.data)


def part_reorder(lines: list) -> None:
    model, _ = train("mlp2", cache_dir=cimcodec.home() / "cache")
    ordered, _ = reorder(model, "greedy")
    a, b = dc.fold_batchnorm(model).state_dict(), dc.fold_batchnorm(ordered).state_dict()
    lines += ["### Reordering against the LFSR remap (MLP2, BatchNorm folded, quality 75)",
              "", "8x8-block entropy of the int8 samples (KiB) / JPEG file bytes:", "",
              "| layer | no remap | best LFSR remap | reordered | reordered + best LFSR |",
              "|---|---|---|---|---|"]
    for name in dc.prunable(model):
        cells = []
        for state, remap in ((a, "none"), (a, "auto"), (b, "none"), (b, "auto")):
            h, n = _entropy_and_bytes(state[name].numpy(), remap)
            cells.append(f"{h:.2f} / {n}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    q, _ = quant.quantize(pipeline.as_matrix(a["net.3.weight"].numpy())[0])
    s = quant.to_samples(q)
    lines += ["", f"(for scale: a 100x300 layer's block entropy with no remap is "
                  f"{search.block_entropy(RemapParams(*s.shape, 'none').pad(s)) / 8192:.2f} "
                  f"KiB)", ""]


def part_jpeg(nets, lines: list) -> None:
    for name in nets:
        t0 = time.time()
        model, acc = train(name, cache_dir=cimcodec.home() / "cache", progress=True)
        result = jpeg_aware.run(model, load("digits"), max_loss=0.01, progress=True,
                                description={"net": name, "data": "digits"})
        info = container.inspect(result.data)
        lines += [f"### {name}: the JPEG path, 1 % validation floor", "",
                  "| layer | shape | block sparsity | quality | member bytes |",
                  "|---|---|---:|---:|---:|"]
        for e in info.entries:
            if e.codec == "jpeg":
                lines.append(f"| {e.name} | {'x'.join(map(str, e.shape))} | "
                             f"{result.sparsities[e.name]:.2f} | {result.qualities[e.name]} | "
                             f"{e.size} |")
        acc_ = result.accuracy
        lines += ["", f"Whole container: **{info.file_bytes} bytes against {info.fp32_bytes} "
                      f"fp32 bytes = {info.ratio:.1f}x** (shared header segments "
                      f"{sum(len(s) for s in info.shared)} bytes). Test accuracy "
                      f"{acc_['stored']['test']:.4f} against {acc_['baseline']['test']:.4f} "
                      f"(validation {acc_['stored']['validation']:.4f} against "
                      f"{acc_['baseline']['validation']:.4f}); meets the floor: "
                      f"{result.meets}; {len(result.tried)} settings stored and measured, "
                      f"{time.time() - t0:.0f} s.", ""]
        out = cimcodec.home() / f"jpeg_path-{name}.cimz"
        container.write_file(out, result.data)
        lines += [f"(container kept in `{out.name}` under `cimcodec.home()`)", ""]


def part_figure(lines: list, out_dir: Path) -> None:
    model, _ = train("mlp2", cache_dir=cimcodec.home() / "cache")
    result = sweep.run(model, "mlp2", "digits", load("digits"), out_dir, retrain=True)
    target = DOCS / "img" / "rate_accuracy_mlp2.png"
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(result["plot"], target)
    best = result["best"]
    lines += [f"Rate-accuracy figure: `docs/img/{target.name}`; table "
              f"`{result['table']}`. Best within 1 %: {best['ratio']:.1f}x with "
              f"{best['method']} ({best['setting']}).", ""]


def part_rtl(nets, lines: list) -> None:
    """Every JPEG member of the containers ``part_jpeg`` kept, decoded on the RTL
    decompressor on both simulators and compared with the golden decoder."""
    import numpy as np

    from cimcodec.sim.rtl import rtl_decode

    lines += ["### Every JPEG member on the RTL decompressor", "",
              "| network | tensor | simulator | clocks | weights | bit-exact |",
              "|---|---|---|---:|---:|---|"]
    for name in nets:
        data = (cimcodec.home() / f"jpeg_path-{name}.cimz").read_bytes()
        for e in container.inspect(data).entries:
            if e.codec != "jpeg":
                continue
            member = container.extract(data, e.name)
            want = pipeline.decompress_matrix(member, integer=True)
            for sim in ("verilator", "icarus"):
                got, stats = rtl_decode(member, raw=False, sim=sim, integer=True)
                lines.append(f"| {name} | {e.name} | {sim} | {stats['clocks']} | "
                             f"{stats['weights']} | {bool(np.array_equal(got, want))} |")
    lines.append("")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", nargs="+", choices=("reorder", "jpeg", "rtl", "figure"),
                   default=["reorder", "jpeg", "rtl", "figure"])
    p.add_argument("--net", nargs="+", default=["mlp2", "lenet5", "vgg11"])
    p.add_argument("-o", "--output", type=Path, default=Path("build/jpeg_path"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    args.output.mkdir(parents=True, exist_ok=True)
    lines: list = []
    if "reorder" in args.part:
        part_reorder(lines)
    if "jpeg" in args.part:
        part_jpeg(args.net, lines)
    if "rtl" in args.part:
        part_rtl(args.net, lines)
    if "figure" in args.part:
        part_figure(lines, args.output)
    text = "\n".join(lines)
    print(text)
    (args.output / "jpeg_path.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
