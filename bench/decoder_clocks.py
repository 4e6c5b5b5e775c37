"""Clocks per 8x8 block and per weight of the RTL decompressor on real files.

    .venv/bin/python -m bench.decoder_clocks [--sim verilator|icarus] [--lanes N]
        [--in-bytes W] [--idct-share S]

Files: the digits MLP's FC1 (128x64, 8,192 weights) through the codec at several
settings, MLP2's FC2 (100x300, 30,000 weights: the largest layer of the project's
LeNet-300-100 on digits) at quality 90, and Pillow-written grayscale JPEGs of
weight-like noise. Each is decoded on the RTL (every
sample checked against the golden decoder inside the simulation); the table gives the
file size, 8x8 blocks, clocks from reset to the status event, clocks per block and per
weight, and the sample phase (first weight to the status event) on its own. Headers
cost one clock per byte, so the whole-file figure is above the sample rate. The last
columns are the file's Huffman symbols per block (golden model), mean and largest: the
Huffman decoder's one symbol per clock has to keep up with the IDCT's 64 clocks.
With ``--lanes N`` the decompressor has N lanes and the codec writes restart intervals
for them (``Settings(lanes=N)``; the Pillow files get one interval per 8x8 block row).
With ``--in-bytes W`` the file arrives W bytes per input beat, and beats of
entropy-coded data without ``0xFF`` go past the marker parser
(``DecompressorShape(in_bytes=W)``). With ``--idct-share S`` every S lanes share one
IDCT butterfly (``DecompressorShape(idct_share=S)``).
"""

import argparse
import io
import sys
import time

import numpy as np
from PIL import Image
from tqdm import tqdm

import cimcodec
from cimcodec.golden.blocks.decompressor import DecompressorShape
from cimcodec.golden.blocks.huffman import jpeg_scan, scan_symbols
from cimcodec.golden.codec import pipeline as codec
from cimcodec.golden.ml.models import train_digits_mlp, train_digits_net
from cimcodec.sim.rtl import rtl_decode


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sim", default="verilator", choices=("verilator", "icarus"))
    p.add_argument("--lanes", type=int, default=1, choices=(1, 2, 4, 8))
    p.add_argument("--in-bytes", type=int, default=1, choices=(1, 2, 4, 8))
    p.add_argument("--idct-share", type=int, default=1, choices=(1, 2, 4))
    args = p.parse_args()
    t0 = time.time()
    model, _ = train_digits_mlp((64, 128, 10), cache_dir=cimcodec.home() / "cache")
    weights = model.net[0].weight.detach().numpy()
    mlp2, _ = train_digits_net("mlp2", cache_dir=cimcodec.home() / "cache")
    fc2 = mlp2.net[3].weight.detach().numpy()
    files = []
    for name, matrix, q, k, r in [("FC1", weights, 90, 0, "none"), ("MLP2 FC2", fc2, 90, 0, "none"),
                                  ("FC1", weights, 75, 16, "full"),
                                  ("FC1", weights, 50, 16, "split")]:
        data = codec.compress_matrix(matrix, codec.Settings(quality=q, clusters=k, remap=r,
                                                            budget=8, lanes=args.lanes)).data
        files.append((f"{name} q{q} k{k} {r}", data, False, matrix.shape))
    rng = np.random.default_rng(0)
    for q in (50, 95):
        img = np.clip(rng.normal(128, 40, (128, 64)), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        options = {"restart_marker_rows": 1} if args.lanes > 1 else {}
        Image.fromarray(img).save(buf, "JPEG", quality=q, **options)
        files.append((f"Pillow noise q{q}", buf.getvalue(), True, img.shape))
    try:
        shape = DecompressorShape(512, 512, lanes=args.lanes, in_bytes=args.in_bytes,
                                  idct_share=args.idct_share)
    except cimcodec.CimcodecError as e:
        p.error(str(e))
    print("| file | bytes | blocks | clocks | clocks/block | clocks/weight "
          "| sample-phase clocks | sample-phase clocks/weight | symbols/block | most in a block |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, data, raw, (rows, cols) in tqdm(files, desc="decoding", unit="file",
                                              file=sys.stderr):
        _, stats = rtl_decode(data, raw=raw, sim=args.sim, shape=shape)
        weights_n = rows * cols
        blocks = -(-rows // 8) * -(-cols // 8)
        phase = stats["sample_phase_clocks"]
        print(f"| {name} | {len(data)} | {blocks} | {stats['clocks']} | "
              f"{stats['clocks'] / blocks:.1f} | {stats['clocks'] / weights_n:.3f} | "
              f"{phase} | {phase / weights_n:.3f} | {_symbols_per_block(data)} |")
    print(f"\n{args.sim}, {time.time() - t0:.0f} s")


def _symbols_per_block(data: bytes) -> str:
    """Mean and largest Huffman symbols per 8x8 block of a file's scan."""
    dc, ac, intervals = jpeg_scan(data)
    symbols, _ = scan_symbols(intervals, dc, ac)
    counts = []
    for s in symbols:
        if s.dc:
            counts.append(0)
        counts[-1] += 1
    return f"{len(symbols) / len(counts):.1f} | {max(counts)}"


if __name__ == "__main__":
    main()
