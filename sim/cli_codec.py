"""``cimcodec compress / decompress / inspect / sweep``: the weight codec's commands.

Every bad input (a truncated or corrupt JPEG, a non-JPEG file, a CRC mismatch, a wrong
shape, an unknown layer) ends as one :class:`CimcodecError` sentence and exit code 2
through :func:`sim.cli.main`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from golden.errors import CimcodecError


def _read_bytes(path: str) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise CimcodecError(f"{path} does not exist or is not a file.")
    return p.read_bytes()


def _load_tensor(path: str, layer: str | None) -> tuple[np.ndarray, str]:
    """A weight tensor from ``.npy`` or a torch ``.pt`` state dict (``--layer``)."""
    p = Path(path)
    if not p.is_file():
        raise CimcodecError(f"{path} does not exist or is not a file.")
    if p.suffix == ".npy":
        if layer is not None:
            raise CimcodecError("--layer applies only to .pt state dicts.")
        try:
            return np.load(p, allow_pickle=False), p.stem
        except (ValueError, OSError, EOFError):
            raise CimcodecError(f"{path} is not a readable .npy array file.") from None
    if p.suffix == ".pt":
        import torch
        try:
            obj = torch.load(p, weights_only=True, map_location="cpu")
        except Exception:
            raise CimcodecError(f"{path} is not a readable torch file.") from None
        if isinstance(obj, torch.Tensor):
            return obj.detach().numpy(), p.stem
        if not isinstance(obj, dict) or not obj:
            raise CimcodecError(f"{path} holds neither a tensor nor a state dict.")
        if layer is None:
            names = [n for n, t in obj.items() if isinstance(t, torch.Tensor) and t.ndim == 2]
            if len(names) != 1:
                raise CimcodecError(
                    f"{path} holds {len(names)} 2-D tensors; name one with --layer.")
            layer = names[0]
        if layer not in obj or not isinstance(obj[layer], torch.Tensor):
            raise CimcodecError(
                f"{path} has no tensor named {layer!r}; it has {', '.join(map(str, obj))}.")
        return obj[layer].detach().float().numpy(), layer
    raise CimcodecError(f"{path} must be a .npy array or a .pt torch file.")


def cmd_compress(args) -> int:
    from golden import codec

    tensor, name = _load_tensor(args.input, args.layer)
    if tensor.dtype != np.int8:
        tensor = tensor.astype(np.float32)
    settings = codec.Settings(quality=args.quality, clusters=args.clusters, remap=args.remap,
                              per_channel=args.per_channel, symmetric=not args.affine,
                              budget=args.budget)
    result = codec.compress_matrix(tensor, settings)
    Path(args.output).write_bytes(result.data)
    h = result.header
    print(f"wrote {args.output}: {name} {'x'.join(map(str, h.shape))} -> {len(result.data)} "
          f"bytes, {result.ratio:.2f}x vs fp32 (quality {args.quality}, "
          f"{h.levels.size if h.levels is not None else 'no'} clusters, remap "
          f"{h.remap.scheme.value} seeds {list(h.remap.seeds)}; 8x8 entropy "
          f"{result.entropy_before / 8 / 1024:.1f} -> {result.entropy_after / 8 / 1024:.1f} KiB)")
    return 0


def cmd_decompress(args) -> int:
    from golden import codec

    data = _read_bytes(args.input)
    if args.raw:
        out = codec.decode_samples(data)
    else:
        out = codec.decompress_matrix(data, integer=args.integer)
    np.save(args.output, out)
    print(f"wrote {args.output}: {'x'.join(map(str, out.shape))} {out.dtype}")
    return 0


def cmd_inspect(args) -> int:
    from golden import container, jpeg_fast

    data = _read_bytes(args.input)
    header = container.read_header(data)
    decoded = jpeg_fast.decode_full(data)  # validates the JPEG part as well
    info = header.describe()
    info["restart_interval"] = decoded.restart_interval
    info["qtable_dc_ac0"] = [int(decoded.qtable[0]), int(decoded.qtable[1])]
    info["file_bytes"] = len(data)
    info["ratio_vs_fp32"] = round(4 * int(np.prod(header.shape)) / len(data), 3)
    print(json.dumps(info, indent=2))
    return 0


def cmd_sweep(args) -> int:
    from golden import sweep

    result = sweep.run(net=args.net, qualities=args.quality, clusters=args.clusters,
                       remaps=args.remap, out_dir=Path(args.output), epochs=args.epochs,
                       budget=args.budget, data=args.data, root=args.root)
    best = result["best"]
    print(f"wrote {result['table']} and {result['plot']}")
    if best is None:
        print("no setting stays within 1 % of the baseline accuracy")
    else:
        print(f"best within 1 % loss: {best['ratio']:.2f}x at quality {best['quality']}, "
              f"{best['clusters']} clusters, remap {best['remap']} (accuracy "
              f"{best['accuracy']:.4f} vs {result['baseline']:.4f})")
    return 0


def _int_list(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated integer list") \
            from None


def _remap_list(text: str) -> list[str]:
    from golden.codec import REMAPS

    out = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in out if t not in REMAPS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown remap {bad[0]!r}")
    return out


def register(sub) -> None:
    """Add the codec's subcommands to the ``cimcodec`` parser."""
    from golden.codec import REMAPS

    c = sub.add_parser("compress", help="compress a weight tensor (.npy or .pt) into a JPEG")
    c.add_argument("input", help="IN.npy or IN.pt (a tensor or a state dict)")
    c.add_argument("--layer", help="state-dict entry to compress (for .pt)")
    c.add_argument("-o", "--output", required=True)
    c.add_argument("--quality", type=int, default=90, help="IJG quality 1..100 (default 90)")
    c.add_argument("--clusters", type=int, default=0,
                   help="K-means shared weights, 0 for none (default)")
    c.add_argument("--remap", choices=REMAPS, default="auto")
    c.add_argument("--per-channel", action="store_true", help="one scale per output channel")
    c.add_argument("--affine", action="store_true", help="affine instead of symmetric")
    c.add_argument("--budget", type=int, default=16, help="seeds tried per remap scheme")
    c.set_defaults(func=cmd_compress)

    d = sub.add_parser("decompress", help="decode a container (or any grayscale JPEG) to .npy")
    d.add_argument("input")
    d.add_argument("-o", "--output", required=True)
    d.add_argument("--raw", action="store_true",
                   help="the 8-bit decoded samples of any baseline grayscale JPEG")
    d.add_argument("--integer", action="store_true",
                   help="the int8 weights before dequantization")
    d.set_defaults(func=cmd_decompress)

    i = sub.add_parser("inspect", help="print a container's metadata")
    i.add_argument("input")
    i.set_defaults(func=cmd_inspect)

    s = sub.add_parser("sweep", help="quality x clusters x remap study of a digits network")
    s.add_argument("--net", choices=("mlp2", "lenet5"), default="mlp2")
    s.add_argument("--quality", type=_int_list, default=[50, 75, 90, 95])
    s.add_argument("--clusters", type=_int_list, default=[0, 8, 16, 32])
    s.add_argument("--remap", type=_remap_list, default=["none", "full", "split", "progressive"])
    s.add_argument("--epochs", type=int, default=30)
    s.add_argument("--budget", type=int, default=8)
    s.add_argument("--data", choices=("digits",), default="digits")
    s.add_argument("--root", help="unused for digits")
    s.add_argument("-o", "--output", default="build/sweep")
    s.set_defaults(func=cmd_sweep)
