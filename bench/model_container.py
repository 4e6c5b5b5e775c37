"""Speed and memory of the model container (``cimcodec.save`` / ``cimcodec.load`` and
the CLI on a state dict).

* ``mlp2``: compress + decompress of the whole trained MLP2 (no retraining), each codec.
* ``large``: a synthetic state dict of ``--weights`` weights (default 25 M: a
  4096 x 4096 matrix, two 2048 x 2048 ones, a conv stack and biases) through the API and
  through ``cimcodec compress`` / ``decompress``, each in a fresh process whose peak
  resident set size (``ru_maxrss``) is reported against the fp32 size of the tensors.

    python -m bench.model_container [--case mlp2 large] [--weights 25e6] [--codec jpeg deep]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import cimcodec

CHILD = """
import resource, sys, time, torch, cimcodec
from cimcodec.golden.codec import model
torch.set_num_threads(1)
mode, codec, n, path = sys.argv[1], sys.argv[2], int(float(sys.argv[3])), sys.argv[4]
g = torch.Generator().manual_seed(0)
def state(n):
    side = 4096 if n >= 24e6 else int((n * 0.67) ** 0.5)
    out = {"big.weight": torch.randn(side, side, generator=g) * 0.02}
    rest = n - side * side
    k = int((rest * 0.8 / 2) ** 0.5)
    out["fc1.weight"] = torch.randn(k, k, generator=g) * 0.02
    out["fc2.weight"] = torch.randn(k, k, generator=g) * 0.02
    c = max(8, int((n - sum(t.numel() for t in out.values())) / 9 / 256))
    out["conv.weight"] = torch.randn(256, c, 3, 3, generator=g) * 0.02
    for name in list(out):
        out[name.replace("weight", "bias")] = torch.randn(out[name].shape[0], generator=g)
    return out
if mode == "api":
    s = state(n); fp32 = 4 * sum(t.numel() for t in s.values())
    t = time.time(); data = cimcodec.save(s, path, codec=codec); t1 = time.time() - t
    del data
    t = time.time(); back = cimcodec.load(path); t2 = time.time() - t
    ok = all(back[k].shape == s[k].shape for k in s)
    print(fp32, round(t1, 2), round(t2, 2), ok, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
elif mode == "make":
    s = state(n); torch.save(s, path); print(4 * sum(t.numel() for t in s.values()))
"""


def child(*args) -> str:
    done = subprocess.run([sys.executable, "-c", CHILD, *map(str, args)], capture_output=True,
                          text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def peak_of(cmd: list) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of a command, run under a fresh watcher process so the
    figure is that command's own."""
    watch = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
             "capture_output=True); print(resource.getrusage(resource.RUSAGE_CHILDREN)"
             ".ru_maxrss)")
    t = time.time()
    done = subprocess.run([sys.executable, "-c", watch, *cmd], check=True,
                          capture_output=True, text=True)
    return time.time() - t, int(done.stdout.split()[-1])


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


def large(codecs, weights: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for codec in codecs:
            path = Path(tmp) / f"api-{codec}.cimz"
            fp32, t1, t2, ok, rss = child("api", codec, weights, path).split()
            print(f"api  {codec:<5} {int(fp32) / 1e6:7.1f} MB fp32 -> "
                  f"{path.stat().st_size / 1e6:7.2f} MB  save {t1} s  load {t2} s  "
                  f"peak RSS {int(rss) / 1024:7.1f} MiB = {int(rss) * 1024 / int(fp32):.2f}x "
                  f"fp32  (shapes ok: {ok})")
        src = Path(tmp) / "state.pt"
        fp32 = int(child("make", "jpeg", weights, src))
        exe = str(Path(sys.executable).parent / "cimcodec")
        for codec in codecs:
            out = Path(tmp) / f"cli-{codec}.cimz"
            cmd = [exe, "compress", str(src), "-o", str(out), "--codec", codec]
            if codec == "jpeg":
                cmd += ["--remap", "none"]
            t, rss = peak_of(cmd)
            print(f"cli  {codec:<5} compress   {t:7.1f} s  peak RSS {rss / 1024:7.1f} MiB = "
                  f"{rss * 1024 / fp32:.2f}x fp32")
            t, rss = peak_of([exe, "decompress", str(out), "-o", str(Path(tmp) / "b.pt")])
            print(f"cli  {codec:<5} decompress {t:7.1f} s  peak RSS {rss / 1024:7.1f} MiB = "
                  f"{rss * 1024 / fp32:.2f}x fp32")


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
