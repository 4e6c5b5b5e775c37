"""Fast-path hit rate of the one-lookup Huffman stage, for the fast table's index width K.

    .venv/bin/python -m bench.huffman_fast [--bits 8,9,10]

A symbol takes the hardware Huffman decoder's fast path (one clock) when its code is at
most ``K`` bits and takes at most 15 bits with its extra bits
(:func:`golden.blocks.huffman.fast_hits`; the slow path costs three clocks more). Files:
the digits MLP's FC1 (128x64) and a normal 256x256 matrix through the codec at several
settings, and Pillow JPEGs (standard and optimized tables) of the two photographs
scikit-learn ships (``load_sample_images``: china.jpg, flower.jpg, in grayscale). The
last row is the fast tables' size: two tables (DC and AC) of ``2**K`` entries of
:data:`hw.huffman.FAST_ENTRY` bits. """

import argparse
import io
import sys

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_images
from tqdm import tqdm

import cimcodec
from cimcodec.golden.blocks.huffman import fast_hits, jpeg_scan
from cimcodec.golden.codec import pipeline as codec
from cimcodec.golden.ml.models import train_digits_mlp
from cimcodec.hw.huffman import FAST_ENTRY


def files() -> list[tuple[str, bytes]]:
    model, _ = train_digits_mlp((64, 128, 10), cache_dir=cimcodec.home() / "cache")
    fc1 = model.net[0].weight.detach().numpy()
    normal = np.random.default_rng(0).normal(0, 0.05, (256, 256)).astype(np.float32)
    out = []
    for name, weights in (("FC1 128x64", fc1), ("normal 256x256", normal)):
        for q, k, r in [(90, 0, "none"), (75, 16, "full"), (50, 16, "split")]:
            settings = codec.Settings(quality=q, clusters=k, remap=r, budget=8)
            out.append((f"{name} q{q} k{k} {r}",
                        codec.compress_matrix(weights, settings).data))
    for name, image in zip(("china", "flower"), load_sample_images().images):
        gray = Image.fromarray(image).convert("L")
        for q, optimize in ((50, False), (75, True), (95, False)):
            buf = io.BytesIO()
            gray.save(buf, "JPEG", quality=q, optimize=optimize)
            out.append((f"Pillow {name} q{q}{' optimized' if optimize else ''}",
                        buf.getvalue()))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bits", default="8,9,10", help="index widths K (default 8,9,10)")
    args = p.parse_args()
    widths = [int(b) for b in args.bits.split(",")]
    print("| file | bytes | symbols | " + " | ".join(f"hit K={k}" for k in widths) + " |")
    print("| --- | ---: | ---: | " + " | ".join("---:" for _ in widths) + " |")
    for name, data in tqdm(files(), desc="files", unit="file", file=sys.stderr):
        dc, ac, intervals = jpeg_scan(data)
        rates = []
        for k in widths:
            hits, symbols = fast_hits(intervals, dc, ac, k)
            rates.append(f"{100 * hits / symbols:.2f} %")
        print(f"| {name} | {len(data)} | {symbols} | " + " | ".join(rates) + " |")
    size = FAST_ENTRY.size
    print("| fast tables (bits) | | | "
          + " | ".join(f"2 x {1 << k} x {size} = {2 * size << k}" for k in widths) + " |")


if __name__ == "__main__":
    main()
