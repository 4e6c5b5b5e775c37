"""``cimcodec lossless-bench``: every lossless combination (representation x coder,
:mod:`cimcodec.golden.lossless`) on the weights of a model or one matrix, after pruning
and quantization.

Prints one table per variant (ratio, x CSC, bits per nonzero, encode and decode MB/s,
decoder-cost class) and writes ``DIR/lossless.csv`` (one row per variant and
combination), ``DIR/lossless_layers.csv`` (frame bytes per tensor) and
``DIR/lossless.png`` (ratio against sparsity per combination). Every frame is decoded
and compared; a combination that does not give its tensor back exits with code 1.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from pathlib import Path

from cimcodec.golden.errors import CimcodecError
from cimcodec.sim.cli import args as cli


def fractions(text: str) -> tuple[float, ...]:
    """Comma-separated fractions in [0, 1)."""
    try:
        out = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of numbers") from None
    if not out or any(not 0 <= s < 1 for s in out):
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of fractions in [0, 1)")
    return out


def _tensors(path: str, min_elements: int) -> dict:
    """``{name: array}`` of the weight tensors in a ``.npy`` or ``.pt`` file."""
    import torch

    p = Path(path)
    if p.suffix == ".npy":
        array = cli.load_array(path)
        if array.ndim < 1 or array.size == 0:
            raise CimcodecError(f"{path} holds no matrix (shape {array.shape}).")
        return {p.stem: array}
    obj = cli.load_torch(path) if p.suffix == ".pt" else None
    if obj is None:
        cli.existing_file(path)
        raise CimcodecError(f"{path} must be a .npy array or a .pt torch file.")
    state = {p.stem: obj} if isinstance(obj, torch.Tensor) else cli.state_dict_of(obj, path)
    out = {name: (t.float() if t.dtype == torch.bfloat16 else t).detach().cpu().numpy()
           for name, t in state.items()
           if t.is_floating_point() and t.dim() >= 2 and t.numel() >= min_elements}
    if not out:
        raise CimcodecError(f"{path} holds no floating-point tensor of two or more "
                            f"dimensions and {min_elements} or more elements.")
    return out


def _check_finite(tensors: dict, path: str) -> None:
    import numpy as np

    for name, t in tensors.items():
        if t.dtype.kind == "f" and not np.all(np.isfinite(t)):
            raise CimcodecError(f"{path}: {name} holds NaN or infinite values.")


def _variants(args, integer: bool) -> list:
    from cimcodec.golden.lossless.measure import Variant

    if integer:
        if args.sparsity is not None or args.channel or args.bits is not None:
            raise CimcodecError("The input holds integers: it is measured as it is, so "
                                "--sparsity, --channel and --bits do not apply.")
        return [Variant("none", 0.0, 8)]
    sparsities = args.sparsity if args.sparsity is not None else (0.0, 0.5, 0.75, 0.9)
    out = []
    for bits in args.bits if args.bits is not None else (8, 4):
        if not 1 <= bits <= 8:
            raise CimcodecError(f"--bits takes integers 1..8, not {bits}.")
        out += [Variant("fine" if s else "none", s, bits) for s in sparsities]
        out += [Variant("channel", s, bits) for s in args.channel if s]
    return out


def _combinations(patterns) -> list[str]:
    from cimcodec.golden.lossless import combination, combinations

    names = combinations()
    if not patterns:
        return names
    chosen = []
    for pattern in patterns:
        found = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not found and not any(ch in pattern for ch in "*?["):
            found = [combination(pattern).name]     # a stacked or other valid name
        if not found:
            raise CimcodecError(f"--combinations {pattern!r} matches no combination.")
        chosen += [n for n in found if n not in chosen]
    return chosen


def cmd_lossless_bench(args) -> int:
    import numpy as np

    from cimcodec.golden.lossless import measure, report

    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise CimcodecError(f"{args.output} exists and is not a directory.")
    names = _combinations(args.combinations)
    floats = _tensors(args.input, args.min_elements)
    integer = all(t.dtype.kind in "iu" for t in floats.values())
    if not integer and any(t.dtype.kind not in "f" for t in floats.values()):
        raise CimcodecError(f"{args.input} must hold floating-point weights or integers.")
    variants = _variants(args, integer)
    _check_finite(floats, args.input)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for variant in variants:
        tensors = {n: measure.integer_tensor(t, variant) for n, t in floats.items()}
        bits = None if integer else variant.bits
        results.append((variant, measure.measure(tensors, names, bits=bits,
                                                 progress=args.progress)))
        for line in report.table(variant, results[-1][1], top=args.top):
            print(line)
        print()
    with cli.atomic_output(str(out / "lossless.csv")) as tmp:
        report.write_csv(tmp, report.rows(results))
    with cli.atomic_output(str(out / "lossless_layers.csv")) as tmp:
        report.write_csv(tmp, report.layer_rows(results), report.LAYER_COLUMNS)
    with cli.atomic_output(str(out / "lossless.png")) as tmp:
        report.plot(tmp, results, title=Path(args.input).name)
    failed = sorted({m.combination for _, ms in results for m in ms if not m.exact})
    print(f"wrote {out / 'lossless.csv'}, {out / 'lossless_layers.csv'} and "
          f"{out / 'lossless.png'}: {len(names)} combinations x {len(variants)} variants x "
          f"{len(floats)} tensors ({sum(int(np.size(t)) for t in floats.values())} weights)")
    if failed:
        print(f"cimcodec: error: {len(failed)} combinations did not give their tensors back: "
              f"{', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def register(sub) -> None:
    b = sub.add_parser(
        "lossless-bench",
        help="measure every lossless combination (representation x coder) on pruned, "
             "quantized weights")
    b.add_argument("input", help="MODEL.pt (a state dict: every floating-point tensor of "
                                 "2+ dimensions) or MATRIX.npy (float: pruned and "
                                 "quantized; integer: measured as it is)")
    b.add_argument("--sparsity", type=fractions,
                   help="fine-grained magnitude pruning levels (default 0,0.5,0.75,0.9)")
    b.add_argument("--channel", type=fractions, default=(),
                   help="channel pruning levels (fraction of output channels; default none)")
    b.add_argument("--bits", type=cli.integers,
                   help="quantizations: 8 = per-tensor int8, 1..7 = k-means with 2**b - 1 "
                        "shared values (default 8,4)")
    b.add_argument("--combinations", type=lambda t: tuple(x for x in t.split(",") if x),
                   help="comma-separated names or patterns (e.g. 'bitmap+*,*+huffman'; "
                        "default every [delta-]representation+coder)")
    b.add_argument("--min-elements", type=cli.positive, default=64,
                   help="smallest tensor of a state dict measured (default 64)")
    b.add_argument("--top", type=cli.integer, default=0,
                   help="rows per table (default 0: all)")
    b.add_argument("--progress", action="store_true", help="a progress bar per variant")
    b.add_argument("-o", "--output", required=True, help="output directory")
    b.set_defaults(func=cmd_lossless_bench)
