"""``cimcodec compress / decompress / inspect / sweep``: the weight codec's commands.

Every bad input (a truncated or corrupt JPEG, a non-JPEG file, a CRC mismatch, a wrong
shape or dtype, an unknown layer) ends as one :class:`CimcodecError` sentence and exit
code 2 through :func:`cimcodec.sim.cli.main`. The dtype and finiteness checks are the
library's (:func:`cimcodec.golden.codec.pipeline.as_array`); nothing is cast here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cimcodec.sim.cli import args as cli


def cmd_compress(args) -> int:
    from cimcodec.golden.codec import pipeline as codec

    tensor, name = cli.load_tensor(args.input, args.layer)
    settings = codec.Settings(quality=args.quality, clusters=args.clusters, remap=args.remap,
                              per_channel=args.per_channel, symmetric=not args.affine,
                              budget=args.budget)
    result = codec.compress_matrix(codec.as_array(tensor), settings)
    cli.write_bytes(args.output, result.data)
    h = result.header
    print(f"wrote {args.output}: {name} {'x'.join(map(str, h.shape))} -> {len(result.data)} "
          f"bytes, {result.ratio:.2f}x vs fp32 (quality {args.quality}, "
          f"{h.levels.size if h.levels is not None else 'no'} clusters, remap "
          f"{h.remap.scheme.value} seeds {list(h.remap.seeds)}; 8x8 entropy "
          f"{result.entropy_before / 8 / 1024:.1f} -> {result.entropy_after / 8 / 1024:.1f} KiB)")
    if result.ratio < 1:
        cli.warn(f"the file is larger than the fp32 tensor ({result.ratio:.2f}x): headers "
                 f"and metadata outweigh {int(np.prod(h.shape))} weights.")
    return 0


def cmd_decompress(args) -> int:
    from cimcodec.golden.codec import pipeline as codec

    data = cli.read_bytes(args.input)
    if args.raw:
        out = codec.decode_samples(data)
    else:
        out = codec.decompress_matrix(data, integer=args.integer)
    cli.save_array(args.output, out)
    print(f"wrote {args.output}: {'x'.join(map(str, out.shape))} {out.dtype}")
    return 0


def cmd_inspect(args) -> int:
    from cimcodec.golden.codec import container
    from cimcodec.golden.jpeg import fast as jpeg_fast

    data = cli.read_bytes(args.input)
    header = container.read_header(data)
    decoded = jpeg_fast.decode_full(data)  # validates the JPEG part as well
    info = header.describe()
    info["restart_interval"] = decoded.restart_interval
    info["qtable_dc_ac0"] = [int(decoded.qtable[0]), int(decoded.qtable[1])]
    info["file_bytes"] = len(data)
    info["ratio_vs_fp32"] = round(4 * int(np.prod(header.shape)) / len(data), 3)
    print(json.dumps(info, indent=2))
    return 0


def cmd_sweep(args) -> int:
    from cimcodec.golden.ml import sweep

    result = sweep.run(net=args.net, qualities=args.quality, clusters=args.clusters,
                       remaps=args.remap, out_dir=Path(args.output), epochs=args.epochs,
                       budget=args.budget, data=args.data)
    best = result["best"]
    print(f"wrote {result['table']} and {result['plot']}")
    if best is None:
        print("no setting stays within 1 % of the baseline accuracy")
    else:
        print(f"best within 1 % loss: {best['ratio']:.2f}x at quality {best['quality']}, "
              f"{best['clusters']} clusters, remap {best['remap']} (accuracy "
              f"{best['accuracy']:.4f} vs {result['baseline']:.4f})")
    return 0


def register(sub) -> None:
    from cimcodec.golden.codec.pipeline import REMAPS

    c = sub.add_parser("compress", help="compress a weight tensor (.npy or .pt) into a JPEG")
    c.add_argument("input", help="IN.npy or IN.pt (a tensor or a state dict)")
    c.add_argument("--layer", help="state-dict entry to compress (for .pt)")
    c.add_argument("-o", "--output", required=True)
    c.add_argument("--quality", type=cli.integer, default=90,
                   help="IJG quality 1..100 (default 90)")
    c.add_argument("--clusters", type=cli.integer, default=0,
                   help="K-means shared weights, 0 for none (default)")
    c.add_argument("--remap", choices=REMAPS, default="auto")
    c.add_argument("--per-channel", action="store_true", help="one scale per output channel")
    c.add_argument("--affine", action="store_true", help="affine instead of symmetric")
    c.add_argument("--budget", type=cli.integer, default=16,
                   help="seeds tried per remap scheme (default 16)")
    c.set_defaults(func=cmd_compress)

    d = sub.add_parser("decompress", help="decode a container (or any grayscale JPEG) to .npy")
    d.add_argument("input")
    d.add_argument("-o", "--output", required=True)
    form = d.add_mutually_exclusive_group()
    form.add_argument("--raw", action="store_true",
                      help="the 8-bit decoded samples of any baseline grayscale JPEG")
    form.add_argument("--integer", action="store_true",
                      help="the int8 weights before dequantization")
    d.set_defaults(func=cmd_decompress)

    i = sub.add_parser("inspect", help="print a container's metadata")
    i.add_argument("input")
    i.set_defaults(func=cmd_inspect)

    s = sub.add_parser("sweep", help="quality x clusters x remap study of a digits network")
    s.add_argument("--net", choices=("mlp2", "lenet5"), default="mlp2")
    s.add_argument("--quality", type=cli.integers, default=(50, 75, 90, 95))
    s.add_argument("--clusters", type=cli.integers, default=(0, 8, 16, 32))
    s.add_argument("--remap", type=cli.choices(REMAPS),
                   default=("none", "full", "split", "progressive"))
    s.add_argument("--epochs", type=cli.positive, default=30)
    s.add_argument("--budget", type=cli.positive, default=8)
    s.add_argument("--data", choices=("digits",), default="digits")
    s.add_argument("-o", "--output", default="sweep", help="output directory (default sweep)")
    s.set_defaults(func=cmd_sweep)
