"""``cimcodec vectors / regress``: golden vectors for every hardware block, and the
regression of the plain Verilog benches on them (:mod:`cimcodec.sim.vectors`,
:mod:`cimcodec.sim.regress`)."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from cimcodec.golden.errors import CimcodecError
from cimcodec.sim.cli import args as cli


def _names(args) -> list[str] | None:
    """The blocks ``--block`` names (``None``: all), each checked."""
    from cimcodec.sim.vectors import block_named
    if not args.block or "all" in args.block:
        return None
    return [block_named(name).name for name in dict.fromkeys(args.block)]


def cmd_vectors(args) -> int:
    """Write the vectors of the chosen blocks under ``-o DIR``."""
    from cimcodec.sim.vectors import read_manifest, write

    for where in write(args.output, _names(args), _count(args), _seed(args)):
        record = read_manifest(where)
        transfers = sum(record["transfers"].values())
        print(f"{where}: {record['jobs']} vectors, {transfers} transfers "
              f"(seed {record['seed']}, {record['count']} random)")
    return 0


def shard_spec(text: str) -> tuple[int, int]:
    """``I/N``: shard I of N, 1 <= I <= N."""
    try:
        index, count = (int(t) for t in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not I/N") from None
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"{text!r} is not I/N with 1 <= I <= N")
    return index, count


def _captured(root: Path, names, new_rtl: bool) -> tuple[dict, dict]:
    """``{block: directory}`` of the vector directories under ``root`` (or ``root``
    itself when it is one block's), each checked against its manifest, and ``{block:
    Verilog built today}`` of those it differs from (``new_rtl``)."""
    from cimcodec.sim.vectors import check, read_manifest

    if not root.is_dir():
        raise CimcodecError(f"{root} is not a directory of vectors.")
    found = [root] if (root / "manifest.json").is_file() else sorted(
        d for d in root.iterdir() if (d / "manifest.json").is_file())
    directories, today = {}, {}
    for directory in found:
        if names is not None and read_manifest(directory).get("block") not in names:
            continue
        record, verilog = check(directory, new_rtl=new_rtl)
        directories[record["block"]] = directory
        if verilog.parent != directory:
            today[record["block"]] = verilog
    missing = sorted(set(names or ()) - set(directories))
    if missing or not directories:
        raise CimcodecError(f"{root} holds no vectors of {', '.join(missing) or 'any block'}.")
    return directories, today


def cmd_regress(args) -> int:
    """Check (or generate) the vectors, run every block on the simulators, report."""
    from cimcodec.sim import regress
    from cimcodec.sim.vectors import write

    if args.vectors and (args.count is not None or args.seed is not None):
        raise CimcodecError("--count and --seed choose vectors to generate; the vectors "
                            "of --vectors have theirs.")
    if args.new_rtl and not args.vectors:
        raise CimcodecError("--new-rtl applies to captured vectors (--vectors DIR).")
    names = _names(args)
    sims = ("icarus", "verilator") if args.sim == "both" else (args.sim,)
    scratch, today = None, {}
    try:
        if args.vectors:
            directories, today = _captured(Path(args.vectors), names, args.new_rtl)
            for block in today:
                print(f"{block}: running the Verilog built today, not the one the vectors "
                      "were captured from", file=sys.stderr)
        else:
            scratch = tempfile.mkdtemp(prefix="cimcodec-vectors-")
            written = write(scratch, names, _count(args), _seed(args))
            directories = {d.name: d for d in written}
            print(f"vectors: {len(written)} blocks, seed {_seed(args)}, {_count(args)} random "
                  "(write them with 'cimcodec vectors' to keep them)", file=sys.stderr)

        def progress(result):
            verdict = "PASS" if result.passed else f"FAIL: {result.message}"
            print(f"{result.block} on {result.sim}: {verdict}", file=sys.stderr)

        results = regress.regress(directories, sims, args.jobs, args.shard, progress, today)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    print(regress.table(results))
    if args.junit:
        cli.write_bytes(args.junit, regress.junit(results))
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _count(args) -> int:
    from cimcodec.sim.vectors import DEFAULT_COUNT
    return DEFAULT_COUNT if args.count is None else args.count


def _seed(args) -> int:
    return 1 if args.seed is None else args.seed


def _generation_options(p) -> None:
    p.add_argument("--block", action="append",
                   help="a block, or 'all' (repeatable; default all)")
    p.add_argument("--count", type=cli.integer,
                   help="random vectors per block after the corner cases (default "
                        "cimcodec.sim.vectors.DEFAULT_COUNT)")
    p.add_argument("--seed", type=cli.integer,
                   help="seed of the random vectors and of the benches' stalls (default 1)")


def register(sub) -> None:
    v = sub.add_parser("vectors", help="golden stimulus and expected-response files per block")
    v.add_argument("-o", "--output", required=True, help="output directory")
    _generation_options(v)
    v.set_defaults(func=cmd_vectors)

    r = sub.add_parser("regress", help="run the plain Verilog benches on the golden vectors")
    r.add_argument("--vectors", help="a directory written by 'cimcodec vectors' (default: "
                                     "generate them)")
    r.add_argument("--sim", choices=("icarus", "verilator", "both"), default="both",
                   help="simulators (default both)")
    r.add_argument("-j", "--jobs", type=cli.positive, default=1,
                   help="blocks run in parallel on this machine (default 1)")
    r.add_argument("--shard", type=shard_spec, default=(1, 1),
                   help="run shard I of N (1 <= I <= N) of the (block, simulator) pairs")
    r.add_argument("--junit", help="write JUnit XML here")
    r.add_argument("--new-rtl", action="store_true",
                   help="with --vectors: run the Verilog built today where it differs from "
                        "the captured one, instead of refusing the vectors as stale")
    _generation_options(r)
    r.set_defaults(func=cmd_regress)
