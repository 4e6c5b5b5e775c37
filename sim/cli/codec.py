"""``cimcodec compress / decompress / inspect / sweep``: the weight codec's commands.

Every bad input (a truncated or corrupt JPEG, a non-JPEG file, a CRC mismatch, a wrong
shape or dtype, an unknown layer) ends as one :class:`CimcodecError` sentence and exit
code 2 through :func:`cimcodec.sim.cli.main`. The dtype and finiteness checks are the
library's (:func:`cimcodec.golden.codec.pipeline.as_array`); nothing is cast here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from cimcodec.golden.errors import CimcodecError
from cimcodec.sim.cli import args as cli


def _jpeg_settings(args) -> dict:
    return {**cli.jpeg_settings(args), "per_channel": args.per_channel,
            "symmetric": not args.affine}


def _deep_settings(args) -> dict:
    return {"weight_bits": args.weight_bits, "index_bits": args.index_bits,
            "init": args.init, "sparsity": args.sparsity, "huffman": not args.no_huffman}


def _lossless_settings(args) -> dict:
    return {"bits": args.weight_bits, "sparsity": args.sparsity}


def codec_name(text: str) -> str:
    """A codec of the model container (registered, or a ``lossless:`` combination)."""
    from cimcodec.golden.codec import model

    try:
        return model.lookup(text).name
    except CimcodecError as e:
        raise argparse.ArgumentTypeError(str(e).rstrip(".")) from None


def _is_container(data: bytes) -> bool:
    from cimcodec.golden.codec import model

    return data[:4] == model.MAGIC


def _compress_tensor(args, tensor, name) -> int:
    """One tensor into one baseline JPEG container (the per-tensor format)."""
    from cimcodec.golden.codec import pipeline as codec

    settings = codec.Settings(**_jpeg_settings(args))
    result = codec.compress_matrix(codec.as_array(tensor), settings)
    cli.write_bytes(args.output, result.data)
    h = result.header
    print(f"wrote {args.output}: {name} {'x'.join(map(str, h.shape))} -> {len(result.data)} "
          f"bytes, {result.ratio:.2f}x vs fp32 (quality {args.quality}, "
          f"{h.levels.size if h.levels is not None else 'no'} clusters, remap "
          f"{h.remap.scheme.value} seeds {list(h.remap.seeds)}; 8x8 entropy "
          f"{result.entropy_before / 8 / 1024:.1f} -> {result.entropy_after / 8 / 1024:.1f} KiB)")
    _warn_ratio(result.ratio, int(np.prod(h.shape)), "tensor")
    return 0


def _warn_ratio(ratio: float, weights: int, what: str = "tensors") -> None:
    if ratio < 1:
        cli.warn(f"the file is larger than the fp32 {what} ({ratio:.2f}x): headers and "
                 f"metadata outweigh {weights} weights.")


def _compress_model(args, state, description=None) -> int:
    """A whole state dict into a model container (``description``, the network a
    ``cimcodec decompose`` checkpoint carries, becomes its ``model`` entry), with
    retraining when ``--net`` is given (:func:`_retrain`)."""
    from cimcodec.golden.codec import model

    settings = _deep_settings(args) if args.codec == "deep" else (
        _jpeg_settings(args) if args.codec == "jpeg" else
        _lossless_settings(args) if args.codec.startswith("lossless:") else {})
    if args.net is not None:
        if args.codec not in ("deep", "jpeg"):
            raise CimcodecError("--net retrains the network for the jpeg or the deep codec, "
                                f"not for {args.codec}.")
        return _retrain(args, state, description or {})
    if args.target_ratio is not None:
        raise CimcodecError("--target-ratio needs --net (the network to retrain).")
    data = model.compress(state, codec=args.codec, settings=settings,
                          min_elements=args.min_elements, model=description, progress=True)
    info = model.inspect(data)
    cli.write_bytes(args.output, data)
    print(f"wrote {args.output}: {len(info.entries)} tensors, {info.fp32_bytes} fp32 bytes "
          f"-> {info.file_bytes} bytes, {info.ratio:.2f}x ({args.codec})")
    _warn_ratio(info.ratio, info.fp32_bytes // 4)
    return 0


def _retrain(args, state, description: dict) -> int:
    """The codec with retraining: Deep Compression (``deep``) or the JPEG path with
    structured pruning, JPEG-aware fine-tuning and per-layer rate control (``jpeg``)."""
    from cimcodec.golden.codec import model
    from cimcodec.golden.ml.datasets import load

    net = cli.network(state, description, args.net, args.data)
    dataset = load(args.data, args.data_dir)
    description = {**description, "net": args.net, "data": args.data}
    if args.codec == "deep":
        from cimcodec.golden.ml import deep_compression as dc

        if args.target_ratio is not None:
            raise CimcodecError("--target-ratio applies to the jpeg codec; Deep Compression "
                                "takes --max-loss.")
        options = {} if args.weight_bits is None else {"weight_bits": args.weight_bits}
        result = dc.run(net, dataset, max_loss=args.max_loss, index_bits=args.index_bits,
                        description=description, progress=True, **options)
        what = "Deep Compression"
    else:
        from cimcodec.golden.ml import jpeg_aware

        floor = None if args.target_ratio is not None else args.max_loss
        result = jpeg_aware.run(net, dataset, max_loss=floor, target_ratio=args.target_ratio,
                                description=description, progress=True)
        what = "the JPEG path"
    acc = result.accuracy
    info = model.inspect(result.data)
    summary = (f"{info.ratio:.2f}x ({info.file_bytes} bytes), accuracy "
               f"{acc['stored']['test']:.4f} vs {acc['baseline']['test']:.4f} on the test "
               f"split ({acc['stored']['validation']:.4f} vs "
               f"{acc['baseline']['validation']:.4f} on validation)")
    if not result.meets:
        best = Path(args.output)
        best = best.with_name(f"{best.stem}.best{best.suffix or '.cimz'}")
        cli.write_bytes(str(best), result.data)
        target = (f"reaches {args.target_ratio:g}x" if args.target_ratio is not None and
                  args.codec == "jpeg" else
                  f"keeps the validation accuracy within {args.max_loss:g} of the baseline")
        raise CimcodecError(f"No setting {target}; the best found, {summary}, is in {best}.")
    cli.write_bytes(args.output, result.data)
    print(f"wrote {args.output}: {what} for {args.net} on {args.data}: {summary}")
    return 0


JPEG_SUFFIXES = (".jpg", ".jpeg")


def cmd_compress(args) -> int:
    """A ``.jpg``/``.jpeg`` output is one tensor as a baseline JPEG (a ``.pt`` input names
    it with ``--layer`` unless it holds one 2-D tensor); any other output is a model
    container of the whole state dict (or of the one tensor given)."""
    if Path(args.input).suffix not in (".npy", ".pt"):
        cli.existing_file(args.input)
        raise CimcodecError(f"{args.input} must be a .npy array or a .pt torch file.")
    cli.output_file(args.output)
    single = Path(args.output).suffix.lower() in JPEG_SUFFIXES
    if single and (args.codec != "jpeg" or args.net is not None):
        raise CimcodecError(f"{args.output} is a single-tensor JPEG; write a .cimz model "
                            "container for --net or another --codec.")
    if single:
        tensor, name = cli.load_tensor(args.input, args.layer)
        return _compress_tensor(args, tensor, name)
    if args.layer is not None or Path(args.input).suffix == ".npy":
        import torch

        from cimcodec.golden.codec.pipeline import as_array

        tensor, name = cli.load_tensor(args.input, args.layer)
        state = {name: torch.from_numpy(as_array(tensor)) if isinstance(tensor, np.ndarray)
                 else tensor}
        description = None
    else:
        state, description = cli.load_model_file(args.input)
    return _compress_model(args, state, description)


def cmd_decompress(args) -> int:
    from cimcodec.golden.codec import pipeline as codec

    data = cli.read_bytes(args.input)
    if _is_container(data):
        import torch

        from cimcodec.golden.codec import model

        if args.raw or args.integer:
            raise CimcodecError("--raw and --integer apply to JPEG files, not to model "
                                "containers.")
        state = model.decompress(data)
        with cli.atomic_output(args.output) as tmp:
            torch.save(state, tmp)
        print(f"wrote {args.output}: {len(state)} tensors (a state dict)")
        return 0
    if args.raw:
        out = codec.decode_samples(data)
    else:
        out = codec.decompress_matrix(data, integer=args.integer)
    cli.save_array(args.output, out)
    print(f"wrote {args.output}: {'x'.join(map(str, out.shape))} {out.dtype}")
    return 0


def cmd_inspect(args) -> int:
    from cimcodec.golden.codec import container
    from cimcodec.golden.jpeg import fast as jpeg_fast

    data = cli.read_bytes(args.input)
    if _is_container(data):
        return _inspect_model(data)
    header = container.read_header(data)
    decoded = jpeg_fast.decode_full(data)  # validates the JPEG part as well
    info = header.describe()
    info["restart_interval"] = decoded.restart_interval
    info["qtable_dc_ac0"] = [int(decoded.qtable[0]), int(decoded.qtable[1])]
    info["file_bytes"] = len(data)
    info["ratio_vs_fp32"] = round(4 * int(np.prod(header.shape)) / len(data), 3)
    print(json.dumps(info, indent=2))
    return 0


def _inspect_model(data: bytes) -> int:
    from cimcodec.golden.codec import model

    info = model.inspect(data)
    width = max([len(e.name) for e in info.entries] + [6])
    cw = max([len(e.codec) for e in info.entries] + [6])
    print(f"{'tensor':<{width}} {'shape':<16} {'dtype':<9} {'codec':<{cw}} {'bytes':>8} "
          f"{'bits/w':>7} {'ratio':>8}")
    for e in info.entries:
        shape = "x".join(map(str, e.shape)) or "scalar"
        print(f"{e.name:<{width}} {shape:<16} {e.dtype:<9} {e.codec:<{cw}} {e.size:>8} "
              f"{e.bits_per_weight:>7.3f} {e.ratio:>7.2f}x")
    members = sum(e.size for e in info.entries)
    print(f"{'total':<{width}} {sum(e.elements for e in info.entries):<16} {'':<9} {'':<{cw}} "
          f"{info.file_bytes:>8} {8 * info.file_bytes / max(1, info.fp32_bytes // 4):>7.3f} "
          f"{info.ratio:>7.2f}x")
    print(f"(file {info.file_bytes} bytes: members {members}, manifest "
          f"{info.manifest_bytes}, header {info.file_bytes - members - info.manifest_bytes}"
          + (f"; model {json.dumps(info.model)}" if info.model else "") + ")")
    return 0


def cmd_extract(args) -> int:
    from cimcodec.golden.codec import model

    data = cli.read_bytes(args.input)
    info = model.inspect(data)
    entry = next((e for e in info.entries if e.name == args.tensor), None)
    if entry is None:
        raise CimcodecError(f"{args.input} has no tensor named {args.tensor!r}; it has "
                            f"{', '.join(e.name for e in info.entries)}.")
    if entry.codec != "jpeg":
        raise CimcodecError(f"{args.tensor} is stored with the {entry.codec} codec, not as a "
                            f"JPEG; decompress the container to get its values.")
    cli.write_bytes(args.output, model.extract(data, args.tensor))
    print(f"wrote {args.output}: {args.tensor} as a baseline JPEG ({entry.size} bytes)")
    return 0


def cmd_sweep(args) -> int:
    import cimcodec
    from cimcodec.golden.ml import sweep
    from cimcodec.golden.ml.datasets import load
    from cimcodec.golden.ml.models import load_net, train

    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise CimcodecError(f"{args.output} exists and is not a directory.")
    data = load(args.data, args.data_dir)     # a missing data set before any training
    if args.model is None:
        model, _ = train(args.net, args.data, data_dir=args.data_dir,
                         cache_dir=cimcodec.home() / "cache", progress=True)
    else:
        model = load_net(args.net, cli.state_dict_of(cli.load_torch(args.model), args.model),
                         args.data)
    result = sweep.run(model, args.net, args.data, data, out_dir, retrain=args.retrain,
                       qualities=args.quality)
    best = result["best"]
    print(f"wrote {result['table']} and {result['plot']}")
    if best is None:
        print("no setting stays within 1 % of the baseline accuracy")
    else:
        print(f"best within 1 % loss: {best['ratio']:.2f}x with {best['method']} "
              f"({best['setting']}), accuracy {best['accuracy']:.4f} vs "
              f"{result['baseline']:.4f}")
    return 0


def register(sub) -> None:
    from cimcodec.golden.codec.deep import INITS
    from cimcodec.golden.codec.model import CODECS, MIN_ELEMENTS
    from cimcodec.golden.ml.models import NETS

    c = sub.add_parser(
        "compress", help="compress a state dict (.pt) into a model container (.cimz), or "
                         "one tensor (.npy, or --layer) into a JPEG")
    c.add_argument("input", help="IN.pt (a state dict, a checkpoint holding one under "
                                 "'state_dict' or 'model', or a tensor) or IN.npy")
    c.add_argument("--layer", help="one state-dict entry to compress on its own")
    c.add_argument("-o", "--output", required=True)
    c.add_argument("--codec", type=codec_name, default="jpeg",
                   help=f"codec of the weight matrices and conv kernels: "
                        f"{', '.join(sorted(CODECS))} or any lossless:<combination> "
                        f"(default jpeg); small tensors are stored losslessly")
    c.add_argument("--min-elements", type=cli.positive, default=MIN_ELEMENTS,
                   help=f"smallest tensor the codec takes (default {MIN_ELEMENTS})")
    j = c.add_argument_group("jpeg codec")
    cli.jpeg_options(j)
    j.add_argument("--per-channel", action="store_true", help="one scale per output channel")
    j.add_argument("--affine", action="store_true", help="affine instead of symmetric")
    g = c.add_argument_group("deep codec (Deep Compression)")
    g.add_argument("--weight-bits", type=cli.integer,
                   help="codebook index bits b (2**b - 1 shared values; default 5 for FC, "
                        "8 for conv; with --net 4 and 5 are tried); lossless codecs: "
                        "quantization bits (default 8, int8)")
    g.add_argument("--index-bits", type=cli.integer,
                   help="relative-index bits (default 5 for FC, 8 for conv)")
    g.add_argument("--init", choices=INITS, default="linear", help="k-means initialisation")
    g.add_argument("--sparsity", type=float, default=0.0,
                   help="prune this fraction by magnitude, without retraining (deep and "
                        "lossless codecs)")
    g.add_argument("--no-huffman", action="store_true", help="fixed-width streams")
    r = c.add_argument_group("retraining (with --net)")
    r.add_argument("--net", choices=NETS,
                   help="the network the state dict belongs to: retrains it for the codec "
                        "(jpeg: block pruning, JPEG-aware fine-tuning and per-layer rate "
                        "control; deep: Deep Compression)")
    r.add_argument("--data", choices=("digits", "mnist", "cifar10"), default="digits",
                   help="training and evaluation data for --net (default digits)")
    r.add_argument("--data-dir", help="the directory of the mnist / cifar10 files")
    r.add_argument("--max-loss", type=float, default=0.01,
                   help="largest validation accuracy drop allowed (default 0.01)")
    r.add_argument("--target-ratio", type=float,
                   help="jpeg: the most accurate container at least this many times "
                        "smaller than fp32 (instead of --max-loss)")
    c.set_defaults(func=cmd_compress)

    d = sub.add_parser("decompress", help="decode a model container to a state dict (.pt), "
                                          "or a JPEG (ours or any grayscale one) to .npy")
    d.add_argument("input")
    d.add_argument("-o", "--output", required=True)
    form = d.add_mutually_exclusive_group()
    form.add_argument("--raw", action="store_true",
                      help="the 8-bit decoded samples of any baseline grayscale JPEG")
    form.add_argument("--integer", action="store_true",
                      help="the int8 weights before dequantization")
    d.set_defaults(func=cmd_decompress)

    i = sub.add_parser("inspect", help="print a model container's per-tensor table, or a "
                                       "JPEG container's metadata")
    i.add_argument("input")
    i.set_defaults(func=cmd_inspect)

    x = sub.add_parser("extract", help="pull one JPEG-coded tensor out of a model container")
    x.add_argument("input")
    x.add_argument("--tensor", required=True, help="the state-dict name")
    x.add_argument("-o", "--output", required=True, help="OUT.jpg")
    x.set_defaults(func=cmd_extract)

    s = sub.add_parser("sweep", help="ratio against accuracy of a network, per method: a "
                                     "table and a figure")
    s.add_argument("model", nargs="?", help="MODEL.pt (default: --net trained on --data, "
                                            "cached)")
    s.add_argument("--net", choices=NETS, default="mlp2")
    s.add_argument("--data", choices=("digits", "mnist", "cifar10"), default="digits")
    s.add_argument("--data-dir", help="the directory of the mnist / cifar10 files")
    s.add_argument("--quality", type=cli.qualities, default=(95, 90, 75, 50, 35, 20, 10),
                   help="JPEG qualities of the no-retraining curves")
    s.add_argument("--retrain", action="store_true",
                   help="also run the JPEG path and Deep Compression with retraining (slow)")
    s.add_argument("-o", "--output", default="sweep", help="output directory (default sweep)")
    s.set_defaults(func=cmd_sweep)
