"""Deep Compression (seed 003) reproduced: the paper's per-layer table for LeNet-300-100
(our MLP2) and LeNet-5, on digits by default or on MNIST from a directory.

For each network: train (cached), run :func:`cimcodec.golden.ml.deep_compression.run`
(pruning with retraining, trained quantization, the ``deep`` codec in the model
container), then print, per layer and for the whole network, the weights kept, the
weight and index bits before and after Huffman, the size against fp32 before and after
Huffman, and the accuracy after each stage; the ratio of the whole container (every
byte, biases and manifest included) against fp32. The seed's figures are printed beside
ours with the data-set caveat.

    python -m bench.deep_compression [--net mlp2 lenet5] [--data digits|mnist --data-dir DIR]
                                     [--max-loss 0.01] [-o build/deep_compression.md]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import cimcodec
from cimcodec.golden.codec import deep
from cimcodec.golden.codec import model as container
from cimcodec.golden.ml import deep_compression as dc
from cimcodec.golden.ml.datasets import load
from cimcodec.golden.ml.models import train

#: The paper's figures (Table 1 and 2 of Han et al., ICLR 2016), MNIST.
PAPER = {"mlp2": ("LeNet-300-100", "40x (1070 KB -> 27 KB), error 1.64 -> 1.58 %",
                  {"ip1": "8 % kept, 6 -> 4.4 weight bits, 5 -> 3.7 index bits, 2.32 %",
                   "ip2": "9 %, 6 -> 4.4, 5 -> 4.3, 3.04 %",
                   "ip3": "26 %, 6 -> 4.3, 5 -> 3.2, 12.70 %",
                   "total": "8 %, 6 -> 5.1, 5 -> 3.7, 2.49 % (40x)"}),
         "lenet5": ("LeNet-5", "39x (1720 KB -> 44 KB), error 0.80 -> 0.74 %", {})}


def layer_rows(model: torch.nn.Module, data: bytes) -> list[dict]:
    """Per prunable layer: the figures of the paper's table, from the stored bytes."""
    info = {e.name: e for e in container.inspect(data).entries}
    state = container.decompress(data)
    rows = []
    for name in dc.prunable(model):
        entry = info[name]
        w = state[name].numpy()
        b, r = entry_bits(data, entry)
        a = deep.analyze(w, deep.Settings(weight_bits=b, index_bits=r))
        fixed_bits = (a["nonzero"] + a["fillers"]) * (b + r) + 32 * a["clusters"]
        rows.append({"layer": name, "weights": a["weights"], "kept": a["kept"],
                     "b": b, "b_huff": a["weight_bits_huffman"], "r": r,
                     "r_huff": a["index_bits_huffman"],
                     "fixed": fixed_bits / (32 * a["weights"]),
                     "stored": 8 * entry.size / (32 * a["weights"]), "bytes": entry.size})
    return rows


def entry_bits(data: bytes, entry) -> tuple[int, int]:
    member = container.extract(data, entry.name)
    return member[0], member[1]


def network(name: str, args) -> list[str]:
    t0 = time.time()
    model, _ = train(name, args.data, data_dir=args.data_dir, epochs=args.epochs,
                     cache_dir=cimcodec.home() / "cache", progress=True)
    dataset = load(args.data, args.data_dir)
    result = dc.run(model, dataset, max_loss=args.max_loss, progress=True,
                    description={"net": name, "data": args.data})
    info = container.inspect(result.data)
    rows = layer_rows(result.model, result.data)
    acc = result.accuracy
    weights = sum(r["weights"] for r in rows)
    kept = sum(r["kept"] * r["weights"] for r in rows) / weights
    lines = [f"### {name} on {args.data} ({PAPER[name][0]} of the paper)", "",
             "| layer | weights | kept | weight bits (-> Huffman) | index bits (-> Huffman) "
             "| size vs fp32 (-> Huffman) |", "|---|---:|---:|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['layer']} | {r['weights']} | {100 * r['kept']:.1f} % | "
                     f"{r['b']} -> {r['b_huff']:.2f} | {r['r']} -> {r['r_huff']:.2f} | "
                     f"{100 * r['fixed']:.2f} % -> {100 * r['stored']:.2f} % |")
    member_bytes = sum(r["bytes"] for r in rows)
    lines.append(f"| weights | {weights} | {100 * kept:.1f} % | | | "
                 f"{100 * 8 * member_bytes / (32 * weights):.2f} % "
                 f"({32 * weights / (8 * member_bytes):.1f}x) |")
    lines += ["", f"Whole container, every byte (biases, codebooks, Huffman tables, "
                  f"manifest): **{info.file_bytes} bytes against {info.fp32_bytes} fp32 "
                  f"bytes = {info.ratio:.1f}x**.", "",
              "| stage | validation | test |", "|---|---:|---:|"]
    for stage in ("baseline", "pruned", "quantized", "stored"):
        lines.append(f"| {stage} | {acc[stage]['validation']:.4f} | "
                     f"{acc[stage]['test']:.4f} |")
    sparsity = ", ".join(f"{k} {v:.2f}" for k, v in result.sparsities.items())
    lines += ["", f"Per-layer sparsity {sparsity}; {result.init} k-means initialisation; "
                  f"weight bits {sorted(set(result.weight_bits.values()))}; meets the "
                  f"{args.max_loss:g} loss floor on validation: {result.meets}; "
                  f"{len(result.tried)} settings tried; {time.time() - t0:.0f} s.",
              "", f"Paper ({PAPER[name][0]}, MNIST): {PAPER[name][1]}."]
    for layer, text in PAPER[name][2].items():
        lines.append(f"- {layer}: {text}")
    lines.append("")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--net", nargs="+", choices=("mlp2", "lenet5"), default=["mlp2", "lenet5"])
    p.add_argument("--data", choices=("digits", "mnist"), default="digits")
    p.add_argument("--data-dir")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--max-loss", type=float, default=0.01)
    p.add_argument("-o", "--output", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    lines = []
    for name in args.net:
        lines += network(name, args)
    text = "\n".join(lines)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    raise SystemExit(main())
