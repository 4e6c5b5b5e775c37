"""Speed and memory of the model container (``cimcodec.save`` / ``cimcodec.load`` and
the CLI on a state dict).

* ``mlp2``: compress + decompress of the whole trained MLP2 (no retraining), each codec.
* ``large``: a synthetic state dict of ``--weights`` weights (default 25 M: a
  4096 x 4096 matrix, two ~1800 x 1800 ones, a conv kernel and biases) through the API
  (``save`` and ``load`` each in a fresh process) and through ``cimcodec compress`` /
  ``decompress``. Every process reports its wall and CPU time and its peak resident set
  size (``ru_maxrss``), against the fp32 size of the tensors, in all and above the
  *base*: the peak of a process that has only imported torch and cimcodec (the cost of
  any torch program, whatever the model).

    python -m bench.model_container [--case mlp2 large] [--weights 25e6] [--codec jpeg deep]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import cimcodec

IMPORTS = ("import torch, cimcodec, cimcodec.sim.cli.codec; "
           "from cimcodec.golden.codec import deep, model, pipeline")

CHILD = IMPORTS + """
import json, resource, sys, time
torch.set_num_threads(1)
mode, codec, n, path = sys.argv[1], sys.argv[2], int(float(sys.argv[3])), sys.argv[4]
def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_maxrss
def state(n):
    # Built in place: no temporaries beyond the tensors themselves.
    g = torch.Generator().manual_seed(0)
    side = 4096 if n >= 24e6 else int((n * 0.67) ** 0.5)
    out = {"big.weight": torch.randn(side, side, generator=g).mul_(0.02)}
    rest = n - side * side
    k = int((rest * 0.8 / 2) ** 0.5)
    out["fc1.weight"] = torch.randn(k, k, generator=g).mul_(0.02)
    out["fc2.weight"] = torch.randn(k, k, generator=g).mul_(0.02)
    c = max(8, int((n - sum(t.numel() for t in out.values())) / 9 / 256))
    out["conv.weight"] = torch.randn(256, c, 3, 3, generator=g).mul_(0.02)
    for name in list(out):
        out[name.replace("weight", "bias")] = torch.randn(out[name].shape[0], generator=g)
    return out
base = usage()[1]
if mode == "make":
    s = state(n)
    torch.save(s, path)
    print(json.dumps({"fp32": 4 * sum(t.numel() for t in s.values())}))
elif mode == "save":
    s = state(n)
    cpu, t = usage()[0], time.time()
    cimcodec.save(s, path, codec=codec)
    wall = time.time() - t
    print(json.dumps({"wall": wall, "cpu": usage()[0] - cpu, "peak": usage()[1],
                      "base": base, "fp32": 4 * sum(t.numel() for t in s.values()),
                      "shapes": {k: list(v.shape) for k, v in s.items()}}))
else:
    cpu, t = usage()[0], time.time()
    back = cimcodec.load(path)
    wall = time.time() - t
    print(json.dumps({"wall": wall, "cpu": usage()[0] - cpu, "peak": usage()[1],
                      "base": base, "shapes": {k: list(v.shape) for k, v in back.items()}}))
"""

WATCH = ("import json, resource, subprocess, sys, time; t = time.time(); "
         "subprocess.run(sys.argv[1:], check=True, capture_output=True); "
         "r = resource.getrusage(resource.RUSAGE_CHILDREN); "
         "print(json.dumps({'wall': time.time() - t, 'cpu': r.ru_utime + r.ru_stime, "
         "'peak': r.ru_maxrss}))")


def child(*args) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, *map(str, args)], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def watched(cmd: list) -> dict:
    """Wall and CPU seconds and peak RSS (KiB) of a command, run under a fresh watcher
    process so the figures are that command's own."""
    done = subprocess.run([sys.executable, "-c", WATCH, *cmd], check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout)


def mlp2(codecs) -> None:
    from cimcodec.golden.ml.models import train

    model, _ = train("mlp2", cache_dir=cimcodec.home() / "cache")
    state = model.state_dict()
    for codec in codecs:
        t = time.time()
        data = cimcodec.save(state, codec=codec)
        t1 = time.time() - t
        t = time.time()
        cimcodec.load(data)
        t2 = time.time() - t
        print(f"mlp2 {codec:<5} {len(data):>8} bytes  compress {t1:6.2f} s  "
              f"decompress {t2:6.2f} s  total {t1 + t2:6.2f} s")


def _line(what: str, run: dict, fp32: int, base: int) -> str:
    peak = run["peak"]
    return (f"{what:<24} wall {run['wall']:7.1f} s  cpu {run['cpu']:7.1f} s  peak RSS "
            f"{peak / 1024:7.1f} MiB = {peak * 1024 / fp32:5.2f}x fp32; above the base "
            f"{(peak - base) / 1024:7.1f} MiB = {(peak - base) * 1024 / fp32:5.2f}x")


def large(codecs, weights: float) -> None:
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        base = watched([sys.executable, "-c", IMPORTS])["peak"]
        fp32 = 0
        for codec in codecs:
            path = Path(tmp) / f"api-{codec}.cimz"
            saved = child("save", codec, weights, path)
            loaded = child("load", codec, weights, path)
            fp32 = saved["fp32"]
            if loaded["shapes"] != saved["shapes"]:
                raise SystemExit(f"{codec}: the loaded state dict differs in names or shapes")
            print(f"{codec}: {fp32 / 1e6:.1f} MB fp32 -> {path.stat().st_size / 1e6:.2f} MB; "
                  f"base (python + torch + cimcodec) {base / 1024:.1f} MiB")
            print(_line("  api  save", saved, fp32, base))
            print(_line("  api  load", loaded, fp32, base))
        src = Path(tmp) / "state.pt"
        child("make", "jpeg", weights, src)
        exe = str(Path(sys.executable).parent / "cimcodec")
        for codec in codecs:
            out = Path(tmp) / f"cli-{codec}.cimz"
            cmd = [exe, "compress", str(src), "-o", str(out), "--codec", codec]
            if codec == "jpeg":
                cmd += ["--remap", "none"]
            print(_line(f"  cli  compress {codec}", watched(cmd), fp32, base))
            back = [exe, "decompress", str(out), "-o", str(Path(tmp) / "b.pt")]
            print(_line(f"  cli  decompress {codec}", watched(back), fp32, base))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", nargs="+", choices=("mlp2", "large"), default=["mlp2", "large"])
    p.add_argument("--codec", nargs="+", default=["jpeg", "deep"])
    p.add_argument("--weights", type=float, default=25e6)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if "mlp2" in args.case:
        mlp2(args.codec)
    if "large" in args.case:
        large(args.codec, args.weights)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
