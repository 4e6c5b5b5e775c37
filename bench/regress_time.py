"""Wall and CPU time of the golden-vector regression on every block and both simulators.

    .venv/bin/python -m bench.regress_time [-j 2] [--count N]

Runs ``cimcodec regress --sim both -j J`` twice in a subprocess: first with an empty
``CIMCODEC_HOME`` (a fresh clone: every elaboration, every Icarus and Verilator build,
the vector generation), then again with everything built. Prints the regression's
table and, per run, the wall time and the CPU time of the command and its children.
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time


def timed(cmd, env) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode:
        sys.exit(f"regress failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return wall, cpu, done.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-j", "--jobs", type=int, default=2)
    p.add_argument("--count", type=int, default=None)
    args = p.parse_args()
    cmd = [sys.executable, "-m", "cimcodec", "regress", "--sim", "both", "-j", str(args.jobs)]
    if args.count is not None:
        cmd += ["--count", str(args.count)]
    with tempfile.TemporaryDirectory(prefix="cimcodec-home-") as home:
        env = dict(os.environ, CIMCODEC_HOME=home)
        for label in ("fresh (nothing built)", "warm (every build cached)"):
            wall, cpu, out = timed(cmd, env)
            print(out)
            print(f"{label}: wall {wall:.1f} s, CPU {cpu:.1f} s ({' '.join(cmd[1:])})\n")


if __name__ == "__main__":
    main()
