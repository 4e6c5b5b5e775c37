"""``cimcodec words / remap``: LFSR control words and the weight-matrix remap."""

from __future__ import annotations

from cimcodec.golden.blocks.lfsr import ControlWords, Kind, Scheme
from cimcodec.golden.blocks.remap import RemapParams, check_matrix
from cimcodec.golden.errors import CimcodecError
from cimcodec.sim.cli import args as cli


def cmd_words(args) -> int:
    """Print control words of one scheme."""
    scheme = Scheme(args.scheme)
    takes = args.fields or (3, args.width - 3)
    seeds = args.seeds or (1,) * (len(takes) if scheme is Scheme.SPLIT else 1)
    if scheme is Scheme.FULL:
        words = ControlWords.full(args.width, seeds[0], taps=args.taps, kind=args.kind)
    elif scheme is Scheme.SPLIT:
        words = ControlWords.split(takes, seeds, kind=args.kind)
    else:
        words = ControlWords.progressive(args.width, seeds[0], stage_len=args.stage_len,
                                         taps=args.taps, kind=args.kind)
    for w in words.words(args.count).tolist():
        print(w)
    return 0


def cmd_remap(args) -> int:
    """Remap a weight matrix (or undo it) and save it as .npy."""
    matrix = check_matrix(cli.load_array(args.input))
    if args.inverse:
        if args.shape is None or len(args.shape) != 2:
            raise CimcodecError("--inverse needs the original shape as --shape ROWS,COLS.")
        params = RemapParams(*args.shape, args.scheme, args.seeds, kind=args.kind)
        out = params.unremap(matrix)
    else:
        params = RemapParams(*matrix.shape, args.scheme, args.seeds, kind=args.kind)
        out = params.remap(matrix)
    cli.save_array(args.output, out)
    print(f"wrote {args.output}: {out.shape[0]}x{out.shape[1]} ({params.scheme.value}, "
          f"seeds {','.join(map(str, params.seeds))})")
    return 0


def register(sub) -> None:
    w = sub.add_parser("words", help="print LFSR control words")
    w.add_argument("--scheme", choices=[s.value for s in Scheme if s is not Scheme.NONE],
                   default="full")
    w.add_argument("--width", type=cli.integer, default=16, help="word / LFSR width in bits")
    w.add_argument("--seeds", type=cli.integers, help="comma-separated seeds (one per field)")
    w.add_argument("--fields", type=cli.integers,
                   help="split scheme: bits per field, LSB first")
    w.add_argument("--taps", type=cli.integer,
                   help="tap mask (bit k-1 for x**k); default maximal")
    w.add_argument("--kind", choices=[k.value for k in Kind], default="fibonacci")
    w.add_argument("--stage-len", type=cli.integer, default=1,
                   help="progressive: words per stage")
    w.add_argument("--count", type=cli.integer, default=16)
    w.set_defaults(func=cmd_words)

    r = sub.add_parser("remap", help="remap a weight matrix (.npy) or undo it")
    r.add_argument("input")
    r.add_argument("-o", "--output", required=True)
    r.add_argument("--scheme", choices=[s.value for s in Scheme], default="full")
    r.add_argument("--seeds", type=cli.integers)
    r.add_argument("--kind", choices=[k.value for k in Kind], default="fibonacci")
    r.add_argument("--inverse", action="store_true", help="undo a remap (needs --shape)")
    r.add_argument("--shape", type=cli.integers, help="original ROWS,COLS for --inverse")
    r.set_defaults(func=cmd_remap)
