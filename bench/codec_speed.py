"""Speed of the weight codec on a 4096x4096 matrix (not a timed test).

Run: ``.venv/bin/python -m bench.codec_speed [--size 4096] [--quality 90] [--clusters 16]``.
Prints seconds for compress (quantize, K-means, JPEG encode, container) and decompress
(container, fast JPEG decode, unremap, dequantize), the golden pure-Python decode when
``--golden`` is given, and Pillow's (libjpeg-turbo) decode of the same file.
"""

import argparse
import io
import time

import numpy as np
from PIL import Image

from cimcodec.golden.codec import pipeline as codec
from cimcodec.golden.jpeg import reference as jpeg


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--quality", type=int, default=90)
    p.add_argument("--clusters", type=int, default=16)
    p.add_argument("--remap", default="full")
    p.add_argument("--golden", action="store_true", help="also time golden.jpeg.reference.decode")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((args.size, args.size)) * 0.02).astype(np.float32)
    t0 = time.perf_counter()
    c = codec.compress_matrix(w, quality=args.quality, clusters=args.clusters,
                              remap=args.remap, seeds=(1,) if args.remap == "full" else None)
    t1 = time.perf_counter()
    out = codec.decompress_matrix(c.data)
    t2 = time.perf_counter()
    samples = np.asarray(Image.open(io.BytesIO(c.data)))
    t3 = time.perf_counter()
    assert (samples == codec.decode_samples(c.data)).all()
    assert out.shape == w.shape
    print(f"{args.size}x{args.size} float32, quality {args.quality}, {args.clusters} clusters, "
          f"remap {args.remap}: {len(c.data)} bytes ({c.ratio:.2f}x)")
    print(f"compress   {t1 - t0:7.2f} s")
    print(f"decompress {t2 - t1:7.2f} s")
    print(f"Pillow decode of the same file {t3 - t2:7.3f} s")
    if args.golden:
        t4 = time.perf_counter()
        jpeg.decode(c.data)
        print(f"golden.jpeg.reference.decode (pure Python) {time.perf_counter() - t4:7.2f} s")


if __name__ == "__main__":
    main()
