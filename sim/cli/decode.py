"""``cimcodec rtl-decode``: decode a file on the RTL decompressor
(:func:`cimcodec.sim.rtl.rtl_decode`) and write exactly what ``cimcodec decompress``
writes."""

from __future__ import annotations

import json

from cimcodec.sim.cli import args as cli


def cmd_rtl_decode(args) -> int:
    from cimcodec.golden.blocks.decompressor import DecompressorShape
    from cimcodec.golden.codec import container
    from cimcodec.sim.rtl import rtl_decode

    data = cli.read_bytes(args.input)
    cli.output_file(args.output)
    shape = DecompressorShape(max_rows=args.max_rows, max_cols=args.max_cols,
                              container=not args.plain)
    raw = args.raw or args.plain
    if not raw:
        container.read_header(data)             # refuse what decompress refuses, early
    out, stats = rtl_decode(data, raw=raw, sim=args.sim, shape=shape, integer=args.integer)
    cli.save_array(args.output, out)
    if args.stats:
        print(json.dumps(stats))
    else:
        print(f"wrote {args.output}: {'x'.join(map(str, out.shape))} {out.dtype} "
              f"({args.sim})")
    return 0


def register(sub) -> None:
    p = sub.add_parser("rtl-decode", help="decode a file on the RTL decompressor")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    cli.simulator_option(p)
    form = p.add_mutually_exclusive_group()
    form.add_argument("--raw", action="store_true",
                      help="the 8-bit samples of any baseline grayscale JPEG")
    form.add_argument("--plain", action="store_true",
                      help="on the decompressor built without the container hardware "
                           "(metadata, CRC, remap, snap): a plain JPEG decoder; implies --raw")
    form.add_argument("--integer", action="store_true",
                      help="the int8 matrix before dequantization (as decompress --integer)")
    p.add_argument("--stats", action="store_true",
                   help="print one JSON line with clocks, weights and clocks per weight")
    p.add_argument("--max-rows", type=cli.positive, default=4096,
                   help="decompressor built for frames up to this many rows")
    p.add_argument("--max-cols", type=cli.positive, default=4096)
    p.set_defaults(func=cmd_rtl_decode)
