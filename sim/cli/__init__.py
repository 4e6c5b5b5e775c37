"""The ``cimcodec`` command line.

Every error a user can cause (bad option, bad file, wrong shape or dtype, missing
simulator) ends as one sentence on standard error and exit code 2; an RTL / golden
mismatch exits with code 1. ``--debug`` shows the traceback of either. Anything else is
a bug in cimcodec and keeps its traceback.

Each command lives in a module of this package with a ``register(subparsers)``; they
share :mod:`cimcodec.sim.cli.args` and import nothing else from here.
"""

from __future__ import annotations

import sys

from cimcodec.golden.errors import CimcodecError
from cimcodec.sim.cli import args as cli
from cimcodec.sim.cli import (
    blocks,
    cim,
    codec,
    decode,
    decompose,
    demo,
    lossless,
    model,
    remap,
    tile,
    vectors,
)
from cimcodec.sim.tools import ToolError, ToolFailed

COMMANDS = (demo, codec, model, decompose, lossless, decode, cim, remap, blocks, tile, vectors)


def parser() -> cli.Parser:
    p = cli.Parser(prog="cimcodec", description=__doc__.splitlines()[0])
    p.add_argument("--debug", action="store_true",
                   help="show the traceback of an error instead of one sentence")
    sub = p.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.register(sub)
    return p


def main(argv=None) -> int:
    from cimcodec.sim.cocotb_run import RtlMismatch

    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (CimcodecError, ToolError) as e:
        if args.debug:
            raise
        print(f"cimcodec: error: {e}", file=sys.stderr)
        return 2
    except ToolFailed as e:
        if args.debug:
            raise
        print(f"cimcodec: error: {e}", file=sys.stderr)
        return 1
    except RtlMismatch as e:
        if args.debug:
            raise
        print(f"cimcodec: error: the RTL disagreed with the golden model or the simulator "
              f"failed: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1
    except OSError as e:
        if args.debug:
            raise
        print(f"cimcodec: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cimcodec: interrupted", file=sys.stderr)
        return 130


def call(*argv) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of the command line ``argv`` run in this process
    (arguments converted with ``str``; argparse's usage errors give their exit code)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


if __name__ == "__main__":
    sys.exit(main())
