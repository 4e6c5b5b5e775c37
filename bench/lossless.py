"""Seed 002 reproduced: every lossless combination on pruned, quantized MLP2, LeNet-5,
ResNet-18 and MobileNetV2, the seed's findings checked one by one, the entropy bounds of
the Huffman and ANS coders, and whole models in the container's codecs side by side.

    python -m bench.lossless [--net mlp2 lenet5 resnet18 mobilenetv2] [--data digits]
                             [--sparsity 0.5 0.75 0.9] [--channel 0.5] [--bits 8 4]
                             [--stack 0.5 0.9] [-o build/lossless]

Writes ``DIR/lossless.csv`` (every variant x combination, all networks),
``DIR/lossless_layers.csv``, ``DIR/<net>.png`` and ``DIR/report.md`` (the tables of
docs/lossless.md), and prints the report. Data preparation (training, pruning with
retraining) is cached in ``cimcodec.home()/cache``. Exits 1 if any frame does not
decode to its tensor.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

import cimcodec
from cimcodec.golden.codec import entropy
from cimcodec.golden.codec import model as container
from cimcodec.golden.lossless import combination, combinations, report, symbols
from cimcodec.golden.lossless.coders import ans
from cimcodec.golden.lossless.measure import Variant, against, measure
from cimcodec.golden.ml import lossless_nets as nets
from cimcodec.golden.ml.datasets import load, split
from cimcodec.golden.ml.models import accuracy, build

#: The seed's findings (its abstract; the thesis body is not available).
SEED = {
    "entropy": "fine-grained pruning: entropy coding gives the highest ratio",
    "stacking": "two entropy coders stacked improve little over one",
    "bitmap": "bitmap: a good ratio at far lower cost than entropy coding",
    "delta": "delta coding of adjacent parameters raises sparsity, >= 1.3x",
    "csc": "vs CSC: delta + bitmap >= 1.5x, delta + Huffman >= 1.7x",
}
FIRST = ("rle", "huffman", "ans", "expgolomb", "zlib")
SECOND = ("huffman", "ans", "zlib", "lzma", "zstd")
#: Layers of at least this many weights count as large for the entropy bounds.
LARGE = 16384


def _ratio(measurements: list, name: str, base: str) -> float:
    by = {m.combination: m.bytes for m in measurements}
    return by[base] / by[name]


def _best(measurements: list, pattern=lambda c: True):
    return min((m for m in measurements if pattern(m.combination)), key=lambda m: m.bytes)


def _entropy(values: np.ndarray) -> float:
    """Zeroth-order entropy in bits per value."""
    _, counts = np.unique(values, return_counts=True)
    p = counts / values.size
    return float(-(p * np.log2(p)).sum())


def delta_statistics(tensors: dict) -> tuple:
    """Over all layers: the zero fraction and the zeroth-order entropy (bits/weight) of
    the weights, of their delta along rows (the ``delta`` transform: adjacent inputs of
    one output) and of their delta along columns (adjacent outputs, same input)."""
    flat, rows, cols = [], [], []
    for t in tensors.values():
        m = t.reshape(t.shape[0], -1)
        flat.append(m.reshape(-1))
        rows.append(np.diff(m.reshape(-1), prepend=0))
        cols.append(np.diff(m, axis=0, prepend=0).reshape(-1))
    parts = [np.concatenate(x) for x in (flat, rows, cols)]
    return tuple(float(np.mean(x == 0)) for x in parts) + tuple(_entropy(x) for x in parts)


def findings(runs: dict, zeros: dict) -> list[str]:
    """Markdown tables of the seed's claims on the fine-grained variants; ``zeros``
    gives :func:`delta_statistics` per run."""
    lines = ["### Findings on fine-grained pruned layers (whole network, every layer)", "",
             "| net | variant | best (class) | best table-free | bitmap+fixed | "
             "delta-bitmap+fixed | dense+huffman | delta-dense+huffman | delta-bitmap+huffman |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (net, variant), ms in runs.items():
        if variant.pruning != "fine":
            continue
        x = against(ms)
        best = _best(ms)
        cheap = _best(ms, lambda c: combination(c).cost.rank <= 1)
        cells = [f"{x[c]:.2f}x" for c in ("bitmap+fixed", "delta-bitmap+fixed", "dense+huffman",
                                         "delta-dense+huffman", "delta-bitmap+huffman")]
        lines.append(f"| {net} | {variant.label} | {best.combination} {x[best.combination]:.2f}x "
                     f"({best.cost_class}) | {cheap.combination} {x[cheap.combination]:.2f}x | "
                     + " | ".join(cells) + " |")
    lines += ["", "All figures: bytes of `csc+fixed` over bytes of the combination (x CSC).",
              "", "### Delta coding: bytes without / with delta (geometric mean over the "
              "representations and coders)", "",
              "| net | variant | zeros | zeros after delta (rows / columns) | H bits/weight "
              "(plain / delta rows / delta columns) | gain (mean) | gain (best with delta vs "
              "best without) |", "|---|---|---|---|---|---|---|"]
    for (net, variant), ms in runs.items():
        if variant.pruning != "fine":
            continue
        by = {m.combination: m.bytes for m in ms}
        gains = [by[c] / by[f"delta-{c}"] for c in by if not c.startswith("delta-")
                 and f"delta-{c}" in by]
        plain = min(b for c, b in by.items() if not c.startswith("delta-"))
        delta = min(b for c, b in by.items() if c.startswith("delta-"))
        z, zr, zc, h, hr, hc = zeros[(net, variant)]
        lines.append(f"| {net} | {variant.label} | {z:.1%} | {zr:.1%} / {zc:.1%} | "
                     f"{h:.3f} / {hr:.3f} / {hc:.3f} | "
                     f"{np.exp(np.mean(np.log(gains))):.3f}x | {plain / delta:.3f}x |")
    return lines


def stacking(tensors: dict, single: list) -> tuple[str, float, str, float]:
    """Best single coder and best stacked pair on the ``dense`` and ``rel`` forms."""
    pairs = [f"{r}+{a}+{b}" for r in ("dense", "rel") for a in FIRST for b in SECOND]
    stacked = measure(tensors, pairs)
    one = _best(single, lambda c: c.split("+")[0] in ("dense", "rel"))
    two = _best(stacked)
    return one.combination, one.bytes, two.combination, two.bytes


def bounds(tensors: dict) -> list[tuple]:
    """Per large layer: symbols, entropy H (bits/symbol), Huffman mean length, ANS payload
    bits over n*H, for the symbols the coders code of the dense stream."""
    out = []
    for name, t in tensors.items():
        if t.size < LARGE:
            continue
        _, s, _ = symbols.to_symbols(t.reshape(-1).astype(np.int64))
        counts = np.bincount(s)
        p = counts[counts > 0] / s.size
        h = float(-(p * np.log2(p)).sum())
        huff = entropy.mean_code_length(s) if p.size > 1 else 0.0
        words = ans.code(s)[0]
        out.append((name, s.size, h, huff, 32 * words.size / (s.size * h) if h else 0.0))
    return out


def container_table(net: str, study, data: str, test) -> list[str]:
    """The whole network stored with each container codec; accuracy on ``test``."""
    rows = []
    codecs = [("raw", {}), ("jpeg", {"quality": 90, "remap": "none"}),
              ("deep", {"weight_bits": study.variant.bits})] + [
        (f"lossless:{c}", {"bits": study.variant.bits}) for c in
        ("rel+ans", "bitmap+ans", "rel+huffman", "bitmap+huffman", "bitmap+fixed",
         "csc+fixed")]
    for codec, settings in codecs:
        t0 = time.process_time()
        blob = container.compress(study.state, codec=codec, settings=settings)
        back = container.decompress(blob)
        seconds = time.process_time() - t0
        err = max(float((back[k].float() - v.float()).abs().max()) for k, v in
                  study.state.items())
        model = build(net, data)
        model.load_state_dict(back)
        rows.append(f"| {net} | {codec} | {len(blob)} | {container.inspect(blob).ratio:.2f}x | "
                    f"{'yes' if err == 0 else f'no ({err:.3g})'} | "
                    f"{accuracy(model.eval(), *test):.4f} | {seconds:.1f} |")
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--net", nargs="+", choices=nets.NETWORKS, default=list(nets.NETWORKS))
    p.add_argument("--data", default="digits", choices=("digits", "mnist", "cifar10"))
    p.add_argument("--data-dir")
    p.add_argument("--sparsity", nargs="+", type=float, default=[0.5, 0.75, 0.9])
    p.add_argument("--channel", nargs="*", type=float, default=[0.5])
    p.add_argument("--bits", nargs="+", type=int, default=[8, 4])
    p.add_argument("--stack", nargs="*", type=float, default=None,
                   help="fine-grained sparsities of the stacking table (default the lowest "
                        "and the highest)")
    p.add_argument("-o", "--output", default="build/lossless")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    cache = cimcodec.home() / "cache"
    names = combinations()
    variants = [Variant("fine", s, b) for b in args.bits for s in args.sparsity] + \
        [Variant("channel", s, b) for b in args.bits for s in args.channel]
    runs, studies, prep, zeros, tests, lines = {}, {}, {}, {}, {}, []
    results_all, layer_all = [], []
    stack_rows, bound_rows, acc_rows = [], [], []
    for net in args.net:
        t0 = time.time()
        base = nets.pruned(net, "none", 0.0, data=args.data, data_dir=args.data_dir,
                           cache_dir=cache, progress=True)
        test = tests[net] = split(load(args.data, args.data_dir))[2]
        acc_rows.append(f"| {net} | fp32 | {accuracy(base, *test):.4f} |")
        results = []
        for v in variants:
            s = nets.study(net, v, data=args.data, data_dir=args.data_dir, cache_dir=cache,
                           progress=True)
            studies[(net, v)] = s
            acc_rows.append(f"| {net} | {v.label} | {s.accuracy:.4f} |")
        prep[net] = time.time() - t0
        for v in variants:
            tensors = studies[(net, v)].tensors
            t1 = time.time()
            ms = measure(tensors, names, bits=v.bits)
            runs[(net, v)] = ms
            results.append((v, ms))
            zeros[(net, v)] = delta_statistics(tensors)
            print(f"{net} {v.label}: {len(names)} combinations in {time.time() - t1:.0f} s "
                  f"wall", flush=True)
            stack = args.stack if args.stack is not None else (min(args.sparsity),
                                                                max(args.sparsity))
            if v.pruning == "fine" and v.sparsity in stack:
                one, ob, two, tb = stacking(tensors, ms)
                stack_rows.append(f"| {net} | {v.label} | {one} | {ob} | {two} | {tb} | "
                                  f"{ob / tb:.3f}x |")
            if v.pruning == "fine" and v.sparsity == max(args.sparsity):
                for name, n, h, huff, ratio in bounds(tensors):
                    bound_rows.append(f"| {net} | {v.label} | {name} | {n} | {h:.4f} | "
                                      f"{huff:.4f} | {huff - h:.4f} | {ratio:.5f} |")
        report.plot(out / f"{net}.png", results, title=net)
        results_all += [(v, ms, net) for v, ms in results]
        for row in report.layer_rows(results):
            layer_all.append({"net": net, **row})
    records = []
    for v, ms, net in results_all:
        records += [{"net": net, **r} for r in report.rows([(v, ms)])]
    report.write_csv(out / "lossless.csv", records, ("net",) + report.COLUMNS)
    report.write_csv(out / "lossless_layers.csv", layer_all, ("net",) + report.LAYER_COLUMNS)

    lines += ["## Data", "", "| net | variant | test accuracy |", "|---|---|---|", *acc_rows,
              "", "Preparation time (training, pruning with retraining, quantization; "
              "cached runs are near 0): " + ", ".join(f"{n} {t:.0f} s" for n, t in prep.items()),
              ""]
    lines += findings(runs, zeros)
    lines += ["", "### Stacking two coders (best single vs best stacked pair on dense and "
              "rel)", "", "| net | variant | best single | bytes | best stacked | bytes | gain |",
              "|---|---|---|---|---|---|---|", *stack_rows]
    lines += ["", f"### Entropy bounds on large layers (>= {LARGE} weights), dense stream", "",
              "| net | variant | layer | symbols | H (bits) | Huffman L | L - H | ANS bits / "
              "(n H) |", "|---|---|---|---|---|---|---|---|", *bound_rows]
    lines += ["", "### Per variant: the five best combinations and the baselines", ""]
    for (net, v), ms in runs.items():
        x = against(ms)
        top = sorted(ms, key=lambda m: m.bytes)[:5]
        keep = top + [m for m in ms if m.combination in ("csc+fixed", "bitmap+fixed",
                                                         "dense+fixed") and m not in top]
        lines.append(f"{net}, {v.label} ({ms[0].weights} weights, {ms[0].nonzeros} "
                     f"nonzero): " + "; ".join(f"{m.combination} {m.ratio:.2f}x "
                                               f"({x[m.combination]:.2f}x CSC)" for m in keep))
        lines.append("")
    lines += ["### Whole models in the container (fine 0.9, 4-bit k-means weights)", "",
              "| net | codec | bytes | ratio vs fp32 | exact | test accuracy | CPU s |",
              "|---|---|---|---|---|---|---|"]
    for net in args.net:
        key = (net, Variant("fine", max(args.sparsity), 4))
        if key in studies:
            lines += container_table(net, studies[key], args.data, tests[net])
    text = "\n".join(lines) + "\n"
    (out / "report.md").write_text(text)
    print(text)
    bad = sorted({m.combination for ms in runs.values() for m in ms if not m.exact})
    if bad:
        print(f"NOT EXACT: {', '.join(bad)}", file=sys.stderr)
        return 1
    print(f"every one of {len(names)} combinations gave every layer back exactly "
          f"({len(runs)} network variants)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
