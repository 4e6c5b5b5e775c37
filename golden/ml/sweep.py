"""Rate-accuracy study: compress a digits-trained network's layers at every
(quality, clusters, remap) setting, decompress, and measure the test accuracy.

The *ratio* is the whole network's: fp32 bytes of every tensor over the stored bytes
(container files of the compressed layers plus fp32 of every other tensor, biases and
BatchNorm included). The best setting is the highest ratio whose accuracy is at most
1 percentage point below the uncompressed network's. Results go to a markdown table
and a PNG scatter plot (drawn with Pillow).
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import cimcodec
from cimcodec.golden.codec import pipeline as codec
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.ml.models import accuracy, train_digits_net

COLORS = {"none": (80, 80, 80), "full": (200, 40, 40), "split": (40, 120, 200),
          "progressive": (40, 160, 60), "auto": (160, 60, 200)}


def evaluate(model, state, data, settings: codec.Settings, *, conv: bool = False) -> dict:
    """Compress the FC (and with ``conv`` the conv) layers of ``state``, load the
    decoded weights into a copy of ``model`` and measure it."""
    files = codec.compress_state_dict(state, settings, conv=conv)
    report = codec.ratio_report(state, files)
    net = copy.deepcopy(model)
    net.load_state_dict(codec.decompress_state_dict(files, state))
    net.eval()
    return {"ratio": report["total"], "layers_ratio": report["compressed_layers"],
            "bytes": report["bytes"], "accuracy": accuracy(net, data[2], data[3]),
            "entropy_before": sum(c.entropy_before for c in files.values()),
            "entropy_after": sum(c.entropy_after for c in files.values())}


def plot(rows, baseline: float, path: Path) -> None:
    """Accuracy against ratio, one colour per remap scheme, the 1 % line dashed."""
    from PIL import Image, ImageDraw

    w, h, m = 720, 480, 60
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    xs = [r["ratio"] for r in rows] or [1]
    ys = [r["accuracy"] for r in rows] + [baseline]
    x0, x1 = 0.0, max(xs) * 1.05
    y0, y1 = max(0.0, min(ys) - 0.02), min(1.0, max(ys) + 0.01)

    def px(x, y):
        return (m + (x - x0) / (x1 - x0) * (w - 2 * m),
                h - m - (y - y0) / max(y1 - y0, 1e-9) * (h - 2 * m))

    d.rectangle([m, m, w - m, h - m], outline="black")
    for i in range(6):
        x = x0 + i * (x1 - x0) / 5
        y = y0 + i * (y1 - y0) / 5
        d.text((px(x, y0)[0] - 10, h - m + 8), f"{x:.0f}x", fill="black")
        d.text((8, px(x0, y)[1] - 6), f"{y:.3f}", fill="black")
    for y, dash in ((baseline, 8), (baseline - 0.01, 4)):
        yy = px(x0, y)[1]
        for x in range(m, w - m, 2 * dash):
            d.line([x, yy, x + dash, yy], fill=(120, 120, 120))
    for r in rows:
        cx, cy = px(r["ratio"], r["accuracy"])
        d.ellipse([cx - 4, cy - 4, cx + 4, cy + 4], fill=COLORS.get(r["remap"], "black"))
    for i, (name, color) in enumerate(COLORS.items()):
        d.rectangle([w - m - 110, m + 10 + 16 * i, w - m - 100, m + 20 + 16 * i], fill=color)
        d.text((w - m - 95, m + 8 + 16 * i), name, fill="black")
    d.text((m, 20), "accuracy vs whole-network compression ratio (dashed: baseline, -1 %)",
           fill="black")
    img.save(path)


def run(*, net="mlp2", qualities=(50, 75, 90, 95), clusters=(0, 8, 16, 32),
        remaps=("none", "full", "split", "progressive"), out_dir=Path("sweep"),
        epochs=30, budget=8, data="digits", progress=True) -> dict:
    """The sweep; returns the rows, the baseline accuracy, the best row and the paths.

    Every setting, the data set and the output directory are checked before the
    network is trained, so a bad one costs no training and leaves no file.

    Raises
    ------
    CimcodecError
        An empty grid, a bad setting (:class:`cimcodec.golden.codec.pipeline.Settings`),
        an unknown data set, or an ``out_dir`` that exists and is not a directory.
    """
    from tqdm import tqdm

    from cimcodec.golden.ml.datasets import load

    grid = [codec.Settings(quality=q, clusters=k, remap=r, budget=budget)
            for q, k, r in itertools.product(qualities, clusters, remaps)]
    if not grid:
        raise CimcodecError(
            "The sweep needs at least one quality, one cluster count and one remap scheme.")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise CimcodecError(f"{out_dir} exists and is not a directory.")
    dataset = load(data)
    model, _ = train_digits_net(net, epochs=epochs, cache_dir=cimcodec.home() / "cache")
    baseline = accuracy(model, dataset[2], dataset[3])
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rows = []
    for settings in tqdm(grid, desc=f"sweep {net}", unit="setting", disable=not progress):
        rows.append({"quality": settings.quality, "clusters": settings.clusters,
                     "remap": settings.remap, **evaluate(model, state, dataset, settings)})
    ok = [r for r in rows if r["accuracy"] >= baseline - 0.01]
    best = max(ok, key=lambda r: r["ratio"]) if ok else None
    out_dir.mkdir(parents=True, exist_ok=True)
    table = out_dir / f"sweep-{net}.md"
    lines = [f"# {net} on {data}: baseline accuracy {baseline:.4f}", "",
             "| quality | clusters | remap | ratio | accuracy | within 1 % |",
             "| ---: | ---: | --- | ---: | ---: | --- |"]
    for r in sorted(rows, key=lambda r: -r["ratio"]):
        mark = "yes" if r["accuracy"] >= baseline - 0.01 else ""
        lines.append(f"| {r['quality']} | {r['clusters']} | {r['remap']} | "
                     f"{r['ratio']:.2f}x | {r['accuracy']:.4f} | {mark} |")
    table.write_text("\n".join(lines) + "\n")
    png = out_dir / f"sweep-{net}.png"
    plot(rows, baseline, png)
    return {"rows": rows, "baseline": baseline, "best": best, "table": table, "plot": png}
