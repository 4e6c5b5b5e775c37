"""Tables, CSV files and the ratio-against-sparsity plot of lossless measurements (the
``lossless-bench`` command and ``bench/lossless.py`` write the same files).

A *result* is ``(variant, measurements)``: a :class:`~.measure.Variant` and the
:class:`~.measure.Measurement` list of every combination over one set of tensors.
"""

from __future__ import annotations

import csv
from pathlib import Path

from cimcodec.golden.lossless.measure import BASELINE, against

#: Columns of the summary CSV (one row per variant and combination).
COLUMNS = ("pruning", "sparsity", "bits", "combination", "cost_class", "bytes", "weights",
           "nonzeros", "ratio", "x_csc", "bits_per_nonzero", "encode_mbs", "decode_mbs",
           "exact")


def rows(results) -> list[dict]:
    """The summary CSV rows of ``results``."""
    out = []
    for variant, measurements in results:
        x = against(measurements)
        for m in measurements:
            out.append({"pruning": variant.pruning, "sparsity": variant.sparsity,
                        "bits": variant.bits, "combination": m.combination,
                        "cost_class": m.cost_class, "bytes": m.bytes, "weights": m.weights,
                        "nonzeros": m.nonzeros, "ratio": round(m.ratio, 4),
                        "x_csc": round(x[m.combination], 4) if x else "",
                        "bits_per_nonzero": round(m.bits_per_nonzero, 4),
                        "encode_mbs": round(m.encode_mbs, 3),
                        "decode_mbs": round(m.decode_mbs, 3), "exact": m.exact})
    return out


def table(variant, measurements, *, top: int = 0) -> list[str]:
    """Text lines: a heading for ``variant``, then the combinations by decreasing ratio
    (the first ``top`` when ``top`` is positive; the CSC baseline always)."""
    x = against(measurements)
    first = measurements[0]
    lines = [f"{variant.label}: {len(first.layers)} tensors, {first.weights} weights, "
             f"{first.nonzeros} nonzero ({1 - first.nonzeros / max(1, first.weights):.1%} "
             f"zero), dense {first.bits} bits",
             f"  {'combination':<26} {'class':<13} {'bytes':>9} {'ratio':>7} {'x CSC':>6} "
             f"{'bits/nz':>8} {'enc MB/s':>9} {'dec MB/s':>9}"]
    ranked = sorted(measurements, key=lambda m: m.bytes)
    shown = [m for i, m in enumerate(ranked) if not top or i < top or m.combination == BASELINE]
    for m in shown:
        lines.append(f"  {m.combination:<26} {m.cost_class:<13} {m.bytes:>9} {m.ratio:>6.2f}x "
                     f"{x.get(m.combination, float('nan')):>5.2f}x {m.bits_per_nonzero:>8.2f} "
                     f"{m.encode_mbs:>9.2f} {m.decode_mbs:>9.2f}"
                     + ("" if m.exact else "  NOT EXACT"))
    return lines


def write_csv(path, records: list[dict], columns=COLUMNS) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(records)


def layer_rows(results) -> list[dict]:
    """One row per variant, combination and tensor: its frame bytes."""
    return [{"pruning": v.pruning, "sparsity": v.sparsity, "bits": v.bits,
             "combination": m.combination, "tensor": name, "bytes": size}
            for v, measurements in results for m in measurements
            for name, size in m.layers.items()]


LAYER_COLUMNS = ("pruning", "sparsity", "bits", "combination", "tensor", "bytes")


def plot(path, results, *, highlight: int = 8, title: str = "") -> None:
    """A PNG of ratio against sparsity, one panel per bit width, one line per
    combination over the fine-grained variants (and the unpruned one at sparsity 0):
    the ``highlight`` best at the highest sparsity and the CSC baseline drawn and
    labelled, the others thin and grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict = {}
    for variant, measurements in results:
        if variant.pruning == "channel":
            continue
        for m in measurements:
            curves.setdefault(variant.bits, {}).setdefault(m.combination, []).append(
                (variant.sparsity if variant.pruning == "fine" else 0.0, m.ratio))
    bits = sorted(curves, reverse=True)
    fig, axes = plt.subplots(1, max(1, len(bits)), figsize=(6.5 * max(1, len(bits)), 5),
                             squeeze=False)
    for ax, b in zip(axes[0], bits):
        lines = {c: sorted(p) for c, p in curves[b].items()}
        best = sorted(lines, key=lambda c: -lines[c][-1][1])[:highlight]
        for c, points in lines.items():
            if c not in best and c != BASELINE:
                ax.plot(*zip(*points), color="0.8", linewidth=0.6)
        for c in best + [BASELINE]:
            if c in lines:
                ax.plot(*zip(*lines[c]), marker="o", linewidth=2 if c == BASELINE else 1.4,
                        linestyle="--" if c == BASELINE else "-", label=c)
        ax.set_yscale("log")
        ax.set_xlabel("fine-grained sparsity")
        ax.set_ylabel(f"ratio against dense {b}-bit")
        ax.set_title(f"{b}-bit ({'int8' if b == 8 else 'k-means'}) {title}".strip())
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(Path(path), dpi=110, format="png")
    plt.close(fig)
