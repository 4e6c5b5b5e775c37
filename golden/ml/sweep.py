"""Rate-accuracy study of a network: the ratio of its model container (every byte
against fp32) and the accuracy of the network decoded from it, for each method, as a
markdown table and a matplotlib figure.

Methods (one curve each):

* ``jpeg``: the JPEG codec on the network as it is, over ``qualities`` (no retraining);
* ``jpeg, 16 clusters``: the same with 16 shared levels (k-means);
* ``jpeg + reorder``: the same after function-preserving neuron reordering
  (:mod:`cimcodec.golden.ml.reorder`);
* ``deep, no retraining``: magnitude pruning at ``sparsities``, 4-bit k-means, the
  ``deep`` codec;
* with ``retrain``: every setting that the JPEG path with retraining
  (:func:`cimcodec.golden.ml.jpeg_aware.run`) and Deep Compression
  (:func:`cimcodec.golden.ml.deep_compression.run`) stored and measured.

The accuracy is the test split's, of the network decoded from the container's bytes.
The seeds' figures (other data sets) are drawn as labelled markers at the baseline
accuracy, with the caveat in their label.
"""

from __future__ import annotations

import copy
from pathlib import Path

from cimcodec.golden.codec import model as container
from cimcodec.golden.ml.models import accuracy, load_net

#: Published points (ratio, label) drawn for reference: MNIST / other networks.
ANCHORS = {"mlp2": [(19.05, "seed 000 JPEG+WMR, MLP2, MNIST"),
                    (40.0, "Deep Compression, LeNet-300-100, MNIST")],
           "lenet5": [(7.86, "seed 000 JPEG+WMR, LeNet-5, MNIST"),
                      (39.0, "Deep Compression, LeNet-5, MNIST")],
           "vgg16": [(21.29, "seed 000, VGG16, CIFAR-10"), (49.0, "Deep Compression, VGG-16, "
                                                                  "ImageNet")]}
QUALITIES = (95, 90, 75, 50, 35, 20, 10)
SPARSITIES = (0.5, 0.7, 0.8, 0.9, 0.95)


def measure(name: str, data_name: str, blob: bytes, test) -> dict:
    """Ratio and test accuracy of the network decoded from container ``blob``."""
    net = load_net(name, container.decompress(blob), data_name)
    return {"ratio": container.inspect(blob).ratio, "bytes": len(blob),
            "accuracy": accuracy(net, *test)}


def curves(model, name: str, data_name: str, data, *, qualities=QUALITIES,
           sparsities=SPARSITIES, retrain: bool = False, progress: bool = False) -> dict:
    """``{method: [row, ...]}``, each row ``{"setting", "ratio", "bytes", "accuracy"}``
    (module docstring)."""
    from tqdm import tqdm

    from cimcodec.golden.ml import deep_compression, jpeg_aware
    from cimcodec.golden.ml.datasets import split
    from cimcodec.golden.ml.reorder import reorder

    _, _, test = split(data)
    state = model.state_dict()
    reordered = reorder(model)[0].state_dict()
    jobs = []
    for q in qualities:
        jobs.append(("jpeg", f"quality {q}", state, "jpeg", {"quality": q, "remap": "none"}))
        jobs.append(("jpeg, 16 clusters", f"quality {q}", state, "jpeg",
                     {"quality": q, "clusters": 16, "remap": "none"}))
        jobs.append(("jpeg + reorder", f"quality {q}", reordered, "jpeg",
                     {"quality": q, "remap": "none"}))
    for s in sparsities:
        jobs.append(("deep, no retraining", f"sparsity {s}", state, "deep",
                     {"sparsity": s, "weight_bits": 4}))
    out: dict = {}
    for method, setting, sd, codec, settings in tqdm(jobs, desc=f"sweep {name}",
                                                     unit="setting", disable=not progress):
        blob = container.compress(sd, codec=codec, settings=settings)
        out.setdefault(method, []).append({"setting": setting,
                                           **measure(name, data_name, blob, test)})
    if retrain:
        description = {"net": name, "data": data_name}
        for method, result in (
                ("JPEG path (retrained)", jpeg_aware.run(copy.deepcopy(model), data,
                                                         description=description,
                                                         progress=progress)),
                ("Deep Compression (retrained)", deep_compression.run(
                    copy.deepcopy(model), data, description=description,
                    progress=progress))):
            out[method] = [{"setting": _setting(t), "ratio": t["ratio"], "bytes": t["bytes"],
                            "accuracy": t["test"]} for t in result.tried]
    return out


def _setting(tried: dict) -> str:
    keys = ("budget", "init", "weight_bits", "qualities")
    return ", ".join(f"{k} {tried[k]}" for k in keys if k in tried)


def frontier(rows: list) -> list:
    """The rows no other row beats in both ratio and accuracy, by ratio."""
    rows = sorted(rows, key=lambda r: (-r["ratio"], -r["accuracy"]))
    out, best = [], -1.0
    for r in rows:
        if r["accuracy"] > best:
            out.append(r)
            best = r["accuracy"]
    return sorted(out, key=lambda r: r["ratio"])


def plot(data: dict, baseline: float, path: Path, title: str, anchors=()) -> None:
    """Accuracy against ratio (log axis): each method's points and its Pareto frontier,
    the baseline and the 1 % floor, the published ratios as labelled markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(9, 5.5))
    for method, rows in data.items():
        pts = ax.scatter([r["ratio"] for r in rows], [r["accuracy"] for r in rows], s=14,
                         alpha=0.45)
        front = frontier(rows)
        ax.plot([r["ratio"] for r in front], [r["accuracy"] for r in front], "-o",
                markersize=4, color=pts.get_facecolor()[0][:3], label=method)
    ax.axhline(baseline, color="0.3", linestyle="--", linewidth=1, label="fp32 baseline")
    ax.axhline(baseline - 0.01, color="0.6", linestyle=":", linewidth=1, label="-1 %")
    low = min(r["accuracy"] for rows in data.values() for r in rows)
    bottom = max(low, baseline - 0.15) - 0.01
    for ratio, label in anchors:
        ax.axvline(ratio, color="black", linestyle="-.", linewidth=0.8)
        ax.text(ratio, bottom + 0.005, f" {label}\n (another data set: not comparable)",
                rotation=90, fontsize=7, va="bottom", ha="right")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}x"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks([2, 3, 5, 10, 20, 30, 50, 100, 200])
    ax.set_xlabel("compression ratio (whole container, every byte, vs fp32)")
    ax.set_ylabel("test accuracy (decoded from the container)")
    ratios = [r["ratio"] for rows in data.values() for r in rows] + [a[0] for a in anchors]
    ax.set_xlim(min(ratios) / 1.2, max(ratios) * 1.3)
    ax.set_ylim(bottom, baseline + 0.02)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def table(data: dict, baseline: float, title: str) -> str:
    """The rows as markdown, best ratio first per method, the 1 % floor marked."""
    lines = [f"# {title}", "", f"fp32 test accuracy {baseline:.4f}.", "",
             "| method | setting | bytes | ratio | test accuracy | within 1 % |",
             "| --- | --- | ---: | ---: | ---: | --- |"]
    for method, rows in data.items():
        for r in sorted(rows, key=lambda r: -r["ratio"]):
            ok = "yes" if r["accuracy"] >= baseline - 0.01 else ""
            lines.append(f"| {method} | {r['setting']} | {r['bytes']} | {r['ratio']:.2f}x | "
                         f"{r['accuracy']:.4f} | {ok} |")
    return "\n".join(lines) + "\n"


def run(model, name: str, data_name: str, data, out_dir: Path, *, retrain: bool = False,
        qualities=QUALITIES, sparsities=SPARSITIES, progress: bool = True) -> dict:
    """The study of ``model`` (network ``name``): writes ``sweep-<name>.md`` and
    ``sweep-<name>.png`` in ``out_dir``; returns the curves, the baseline, the best
    result within 1 % and the paths."""
    from cimcodec.golden.ml.datasets import split

    _, _, test = split(data)
    baseline = accuracy(model.eval(), *test)
    data_curves = curves(model, name, data_name, data, qualities=qualities,
                         sparsities=sparsities, retrain=retrain, progress=progress)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"{name} on {data_name}: ratio against accuracy"
    md, png = out_dir / f"sweep-{name}.md", out_dir / f"sweep-{name}.png"
    md.write_text(table(data_curves, baseline, title))
    plot(data_curves, baseline, png, title, ANCHORS.get(name, ()))
    ok = [dict(r, method=m) for m, rows in data_curves.items() for r in rows
          if r["accuracy"] >= baseline - 0.01]
    best = max(ok, key=lambda r: r["ratio"]) if ok else None
    return {"curves": data_curves, "baseline": baseline, "best": best, "table": md,
            "plot": png}
