"""The ``cimcodec`` command line.

Every error a user can cause (bad option, bad file, wrong shape, missing simulator)
ends as one sentence on standard error and exit code 2; an RTL / golden mismatch exits
with code 1.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from golden.errors import CimcodecError
from golden.lfsr import ControlWords, Kind, Scheme

from .tools import SIMULATORS, ToolError


def _int(text: str) -> int:
    """Decimal or 0x-prefixed integer."""
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _ints(text: str) -> tuple[int, ...]:
    return tuple(_int(t) for t in text.split(",") if t.strip())


def _load_matrix(path: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise CimcodecError(f"{path} does not exist or is not a file.")
    try:
        return np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise CimcodecError(f"{path} is not a readable .npy array file.") from None


def cmd_words(args) -> int:
    """Print control words of one scheme."""
    scheme = Scheme(args.scheme)
    takes = args.fields or (3, args.width - 3)
    seeds = args.seeds or (1,) * (len(takes) if scheme is Scheme.SPLIT else 1)
    if scheme is Scheme.FULL:
        words = ControlWords.full(args.width, seeds[0], taps=args.taps, kind=args.kind)
    elif scheme is Scheme.SPLIT:
        words = ControlWords.split(takes, seeds, kind=args.kind)
    elif scheme is Scheme.PROGRESSIVE:
        words = ControlWords.progressive(args.width, seeds[0], stage_len=args.stage_len,
                                         taps=args.taps, kind=args.kind)
    else:
        raise CimcodecError("Scheme 'none' has no control words.")
    if args.count < 0:
        raise CimcodecError(f"Word count must be zero or more, not {args.count}.")
    for w in words.words(args.count).tolist():
        print(w)
    return 0


def cmd_remap(args) -> int:
    """Remap a weight matrix (or undo it) and save it as .npy."""
    from golden.remap import RemapParams, check_matrix

    matrix = check_matrix(_load_matrix(args.input))
    if args.inverse:
        if args.shape is None or len(args.shape) != 2:
            raise CimcodecError("--inverse needs the original shape as --shape ROWS,COLS.")
        params = RemapParams(*args.shape, args.scheme, args.seeds, kind=args.kind)
        out = params.unremap(matrix)
    else:
        params = RemapParams(*matrix.shape, args.scheme, args.seeds, kind=args.kind)
        out = params.remap(matrix)
    np.save(args.output, out)
    print(f"wrote {args.output}: {out.shape[0]}x{out.shape[1]} ({params.scheme.value}, "
          f"seeds {','.join(map(str, params.seeds))})")
    return 0


BLOCKS = ("lfsr", "remap", "markers", "huffman", "coef", "idct", "decompressor", "jpeg", "cim")


def _blocks(args) -> dict:
    """name -> (component factory, elaboration parameters) of the top blocks chosen."""
    from golden.cim import CimParams
    from golden.decompressor import DecompressorShape
    from golden.lfsr import GeneratorShape
    from golden.markers import MarkerShape
    from golden.remap import RemapShape
    from hw.cim import CimArray
    from hw.coef import CoefDecoder, CoefShape
    from hw.dct import Idct, IdctShape
    from hw.decompressor import HUFFMAN_SHAPE, Decompressor
    from hw.huffman import HuffmanDecoder
    from hw.lfsr import ControlWordGenerator
    from hw.markers import MarkerParser
    from hw.remap import RemapEngine

    table = {"lfsr": (ControlWordGenerator, GeneratorShape()),
             "remap": (RemapEngine, RemapShape()),
             "markers": (MarkerParser, MarkerShape()),
             "huffman": (HuffmanDecoder, HUFFMAN_SHAPE),
             "coef": (CoefDecoder, CoefShape()),
             "idct": (Idct, IdctShape()),
             "decompressor": (Decompressor, DecompressorShape()),
             # The decompressor without the container hardware: a plain baseline JPEG
             # decoder, the counterpart of core_jpeg in docs/results.md.
             "jpeg": (Decompressor, DecompressorShape(container=False)),
             "cim": (CimArray, CimParams(args.cim_rows, args.cim_cols, args.cim_adc_bits))}
    return {name: table[name] for name in (args.block or BLOCKS)}


def cmd_verilog(args) -> int:
    """Write one Verilog file per top block and lint each with Verilator."""
    from .verilog import elaborate, lint

    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, (factory, params) in _blocks(args).items():
        target = out_dir / f"{name}.v"
        target.write_text(elaborate(name, factory, params).read_text())
        lint(target, name)
        print(f"{target}: {params} (verilator --lint-only: clean)")
    return 0


def cmd_synth(args) -> int:
    """Synthesise the blocks for ECP5-85k and iCE40 and print a table."""
    from tqdm import tqdm

    from .synth import ECP5_COLUMNS, ICE40_COLUMNS, ice40_ffs, synthesize

    results = []
    for name, (factory, params) in tqdm(_blocks(args).items(), desc="synthesis",
                                        unit="block"):
        results.append(synthesize(name, factory, params, pnr=not args.no_pnr))
    head = ["block", *ECP5_COLUMNS, "Fmax MHz", "|", *ICE40_COLUMNS, "SB_DFF*"]
    print(" ".join(f"{h:>10}" for h in head))
    for r in results:
        ecp5, ice40 = r["ecp5_cells"], r["ice40_cells"]
        row = [r["block"], *(ecp5.get(c, 0) for c in ECP5_COLUMNS),
               r["fmax_mhz"] if r["fmax_mhz"] is not None else "-", "|",
               *(ice40.get(c, 0) for c in ICE40_COLUMNS), ice40_ffs(ice40)]
        print(" ".join(f"{v!s:>10}" for v in row))
    for r in results:
        print(f"{r['block']}: {r['params']}")
    return 0


def _block_entropy(matrix: np.ndarray) -> float:
    """Mean Shannon entropy (bits/sample) of the 8x8 blocks of a padded matrix."""
    rows, cols = matrix.shape
    blocks = matrix.reshape(rows // 8, 8, cols // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 64)
    total = 0.0
    for block in blocks:
        p = np.unique(block, return_counts=True)[1] / 64
        total += float(-(p * np.log2(p)).sum())
    return total / len(blocks)


def cmd_demo(args) -> int:
    """Digits MLP -> first FC layer -> every remap scheme on the RTL, checked against
    the golden model."""
    from tqdm import tqdm

    from golden.lfsr import GeneratorShape
    from golden.models import quantize_symmetric, train_digits_mlp
    from golden.remap import RemapParams, RemapShape, block_order
    from tb import test_lfsr, test_remap

    from .cocotb_run import RtlMismatch, run_jobs
    from .verilog import build_dir

    t0 = time.time()
    model, acc = train_digits_mlp((64, args.hidden, 10), cache_dir=build_dir() / "cache")
    weights = model.net[0].weight.detach().numpy()
    q, scale = quantize_symmetric(weights)
    samples = (q.astype(np.int16) + 128).astype(np.uint8)  # JPEG level shift
    print(f"MLP 64-{args.hidden}-10 on scikit-learn digits: test accuracy {acc:.4f}; "
          f"FC1 weights {weights.shape[0]}x{weights.shape[1]} -> int8 (scale {scale:.5f})")

    remap_shape, gen_shape = RemapShape(), GeneratorShape()
    seeds = {Scheme.NONE: None, Scheme.FULL: (5,), Scheme.SPLIT: (3, 5),
             Scheme.PROGRESSIVE: (5,)}
    rows = []
    failed = False
    for scheme in tqdm(list(Scheme), desc=f"RTL on {args.sim}", unit="scheme"):
        params = RemapParams(*samples.shape, scheme, seeds[scheme])
        coded = params.remap(samples)
        r2, c2 = block_order(params.padded_rows, params.padded_cols)
        checks = []
        words = params.control_words()
        if words is not None:
            checks.append(("lfsr", test_lfsr.BENCH, gen_shape,
                           test_lfsr.jobs(gen_shape, [(words, params.n_words)])))
        job = test_remap.job(remap_shape, params, data=coded[r2, c2])
        # The golden inverse must put every weight back where it came from.
        expected = job["expected"]["o"]
        assert all(samples[e["row"], e["col"]] == e["data"] for e in expected)
        checks.append(("remap", test_remap.BENCH, remap_shape, [job]))
        for block, bench, shape, jobs in checks:
            try:
                result = run_jobs(bench, shape, jobs, args.sim)[0]
                ok, clocks = True, result["clocks"]
            except RtlMismatch as e:
                print(e, file=sys.stderr)
                ok, clocks, failed = False, "-", True
            vectors = sum(len(v) for v in jobs[0]["expected"].values())
            entropy = f"{_block_entropy(coded):.3f}" if block == "remap" else "-"
            rows.append((block, scheme.value, vectors, clocks, "PASS" if ok else "FAIL", entropy))
    print()
    print(f"{'block':<6} {'scheme':<12} {'vectors':>8} {'clocks':>8} {'pass':>5} "
          f"{'8x8 entropy (bits/weight)':>26}")
    for block, scheme, vectors, clocks, ok, entropy in rows:
        print(f"{block:<6} {scheme:<12} {vectors:>8} {clocks!s:>8} {ok:>5} {entropy:>26}")
    # The whole decoder: FC1 compressed by the codec, decoded on the RTL decompressor,
    # compared with the golden decoder (inside the simulation, sample by sample, and
    # here on the dequantized matrix).
    from golden import codec
    from golden.decompressor import DecompressorShape

    from .cli_decode import rtl_decode

    print("\nFC1 through the codec and the RTL decompressor "
          f"({args.sim}, decompressor built for 256x256):")
    print(f"{'quality':>7} {'clusters':>8} {'remap':<12} {'bytes':>6} {'ratio':>7} "
          f"{'clocks':>7} {'clk/weight':>10} {'pass':>5}")
    for settings in [codec.Settings(quality=90, clusters=0, remap="none"),
                     codec.Settings(quality=75, clusters=16, remap="full", budget=8),
                     codec.Settings(quality=50, clusters=16, remap="auto", budget=8)]:
        packed = codec.compress_matrix(weights, settings)
        golden_w = codec.decompress_matrix(packed.data)
        try:
            rtl_w, stats = rtl_decode(packed.data, raw=False, sim=args.sim,
                                      shape=DecompressorShape(256, 256))
            ok = bool(np.array_equal(rtl_w, golden_w))
        except (RtlMismatch, CimcodecError) as e:
            print(e, file=sys.stderr)
            ok, stats = False, {"clocks": "-", "clocks_per_weight": "-"}
        failed |= not ok
        rows.append(("decompressor", settings.remap, weights.size, stats["clocks"],
                     "PASS" if ok else "FAIL", "-"))
        scheme = packed.header.remap.scheme.value
        print(f"{settings.quality:>7} {settings.clusters:>8} {scheme:<12} "
              f"{len(packed.data):>6} {packed.ratio:>6.2f}x {stats['clocks']!s:>7} "
              f"{stats['clocks_per_weight']!s:>10} {'PASS' if ok else 'FAIL':>5}")

    print(f"\n{sum(r[4] == 'PASS' for r in rows)} passed, {sum(r[4] == 'FAIL' for r in rows)} "
          f"failed ({args.sim}, {time.time() - t0:.1f} s)")
    return 1 if failed else 0


def _block_options(p) -> None:
    p.add_argument("--block", action="append", choices=BLOCKS,
                   help="a top block (repeatable; default all)")
    p.add_argument("--cim-rows", type=_int, default=64, help="CIM array rows (default 64)")
    p.add_argument("--cim-cols", type=_int, default=16, help="CIM array columns (default 16)")
    p.add_argument("--cim-adc-bits", type=_int, default=5, help="CIM ADC bits (default 5)")


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line (the usage is in ``--help``)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cimcodec", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="train a digits MLP and check its FC1 remap on the RTL")
    d.add_argument("--sim", choices=SIMULATORS, default="verilator")
    d.add_argument("--hidden", type=_int, default=128, help="hidden units (default 128)")
    d.set_defaults(func=cmd_demo)

    v = sub.add_parser("verilog", help="write build/verilog/<block>.v and lint each")
    v.add_argument("-o", "--output", default="build/verilog")
    _block_options(v)
    v.set_defaults(func=cmd_verilog)

    w = sub.add_parser("words", help="print LFSR control words")
    w.add_argument("--scheme", choices=[s.value for s in Scheme if s is not Scheme.NONE],
                   default="full")
    w.add_argument("--width", type=_int, default=16, help="word / LFSR width in bits")
    w.add_argument("--seeds", type=_ints, help="comma-separated seeds (one per field)")
    w.add_argument("--fields", type=_ints, help="split scheme: bits per field, LSB first")
    w.add_argument("--taps", type=_int, help="tap mask (bit k-1 for x**k); default maximal")
    w.add_argument("--kind", choices=[k.value for k in Kind], default="fibonacci")
    w.add_argument("--stage-len", type=_int, default=1, help="progressive: words per stage")
    w.add_argument("--count", type=_int, default=16)
    w.set_defaults(func=cmd_words)

    r = sub.add_parser("remap", help="remap a weight matrix (.npy) or undo it")
    r.add_argument("input")
    r.add_argument("-o", "--output", required=True)
    r.add_argument("--scheme", choices=[s.value for s in Scheme], default="full")
    r.add_argument("--seeds", type=_ints)
    r.add_argument("--kind", choices=[k.value for k in Kind], default="fibonacci")
    r.add_argument("--inverse", action="store_true", help="undo a remap (needs --shape)")
    r.add_argument("--shape", type=_ints, help="original ROWS,COLS for --inverse")
    r.set_defaults(func=cmd_remap)

    s = sub.add_parser("synth", help="ECP5-85k / iCE40 cell counts and ECP5 Fmax")
    s.add_argument("--no-pnr", action="store_true", help="cell counts only, no place & route")
    _block_options(s)
    s.set_defaults(func=cmd_synth)

    from . import cli_cim, cli_codec, cli_decode
    cli_codec.register(sub)
    cli_decode.register(sub)
    cli_cim.register(sub)
    return p


def main(argv=None) -> int:
    from .cocotb_run import RtlMismatch

    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (CimcodecError, ToolError) as e:
        print(f"cimcodec: error: {e}", file=sys.stderr)
        return 2
    except RtlMismatch as e:
        print(f"cimcodec: error: the RTL disagreed with the golden model or the simulator "
              f"failed: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"cimcodec: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cimcodec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

