"""``cimcodec rtl-decode``: decode a file on the RTL decompressor and write exactly what
``cimcodec decompress`` writes.

The hardware (:class:`hw.decompressor.Decompressor`) gets nothing but the file's bytes:
it parses the JPEG and the container's APP11 metadata (matrix size, remap, snap table),
checks the CRC-32 of the entropy-coded data, decodes it, runs the islow IDCT, applies
the codebook snap table and undoes the remap, streaming ``(row, col, sample)`` in
original matrix order. One step runs in software after it, by design: the 8-bit
samples (or codebook indices) are dequantized to float exactly as
:func:`golden.codec.decompress_matrix` does, with the header read by
:func:`golden.container.read_header`. Every sample the RTL emits is compared inside the
simulation with the golden decoder's.
"""

import json

import numpy as np

from golden.errors import CimcodecError

from .tools import SIMULATORS


def rtl_decode(data: bytes, *, raw: bool, sim: str, shape=None, integer: bool = False):
    """``(array, stats)``: the decoded file from the RTL, as ``decompress`` would give it
    (``raw``: the 8-bit samples of any baseline grayscale JPEG)."""
    from golden import container, quant
    from golden import decompressor as gd
    from tb import test_decompressor as tb

    from .cocotb_run import run_jobs

    shape = shape or gd.DecompressorShape()
    job = tb.job(data, shape, raw=raw)
    result = run_jobs(tb.BENCH, shape, [job], sim)[0]
    items = result["outputs"]["o"]
    end = items[-1]
    if end["error"]:
        name = gd.Error(end["code"]).name if end["code"] in gd.Error._value2member_map_ \
            else str(end["code"])
        raise CimcodecError(f"The RTL decoder stopped with error {name} on this file.")
    samples = [(o["row"], o["col"], o["sample"]) for o in items[:-1]]
    # Whole file: clocks from reset to the status event. Sample phase: from the first
    # weight to the status event, the rate once the headers are read.
    phase = result["clocks"] - result["first_clock"]
    stats = {"sim": sim, "clocks": result["clocks"], "weights": len(samples),
             "file_bytes": len(data),
             "clocks_per_weight": round(result["clocks"] / max(1, len(samples)), 4),
             "sample_phase_clocks": phase,
             "sample_phase_clocks_per_weight": round(phase / max(1, len(samples)), 4)}
    if raw:
        from golden.jpeg_fast import decode_full

        frame = decode_full(data).samples.shape
        out = np.zeros(frame, np.uint8)
        for r, c, s in samples:
            out[r, c] = s
        return out, stats
    # Dequantization (software): the header gives the scales and the codebook.
    header = container.read_header(data)
    u = np.zeros((header.rows, header.cols), np.uint8)
    for r, c, s in samples:
        u[r, c] = s
    if header.snap is not None:
        if integer:
            return header.levels[u].astype(np.int8).reshape(header.rows, header.cols), stats
        v = header.centroids[u]
    else:
        if integer:
            return quant.from_samples(u), stats
        v = quant.from_samples(u).astype(np.float32)
    return header.quant.dequantize(v).reshape(header.shape), stats


def cmd_rtl_decode(args) -> int:
    from golden import decompressor as gd

    from .cli_codec import _read_bytes

    data = _read_bytes(args.input)
    shape = gd.DecompressorShape(max_rows=args.max_rows, max_cols=args.max_cols,
                                 container=not args.plain)
    raw = args.raw or args.plain
    if not raw:
        from golden import container

        container.read_header(data)             # refuse what decompress refuses, early
    out, stats = rtl_decode(data, raw=raw, sim=args.sim, shape=shape, integer=args.integer)
    np.save(args.output, out)
    if args.stats:
        print(json.dumps(stats))
    else:
        print(f"wrote {args.output}: {'x'.join(map(str, out.shape))} {out.dtype} "
              f"({args.sim})")
    return 0


def register(sub) -> None:
    """Add ``rtl-decode`` to the ``cimcodec`` parser."""
    from .cli import _int

    p = sub.add_parser("rtl-decode", help="decode a file on the RTL decompressor")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--sim", choices=SIMULATORS, default="verilator")
    p.add_argument("--raw", action="store_true",
                   help="the 8-bit samples of any baseline grayscale JPEG")
    p.add_argument("--plain", action="store_true",
                   help="on the decompressor built without the container hardware "
                        "(metadata, CRC, remap, snap): a plain JPEG decoder; implies --raw")
    p.add_argument("--integer", action="store_true",
                   help="the int8 matrix before dequantization (as decompress --integer)")
    p.add_argument("--stats", action="store_true",
                   help="print one JSON line with clocks, weights and clocks per weight")
    p.add_argument("--max-rows", type=_int, default=4096,
                   help="decompressor built for frames up to this many rows")
    p.add_argument("--max-cols", type=_int, default=4096)
    p.set_defaults(func=cmd_rtl_decode)

