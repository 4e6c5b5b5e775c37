"""``cimcodec decompose``: Tucker-2, CP or mixed (MTD) decomposition of a trained network's
layers, rank selection and fine-tuning (:mod:`cimcodec.golden.ml.mtd`).

The output is a ``.pt`` checkpoint ``{"state_dict": ..., "description": ...}``: the
description (network, data set, each decomposed layer's method and ranks) is what
:func:`cimcodec.golden.ml.models.from_description` rebuilds the network from, so
``cimcodec eval OUT.pt`` evaluates it and ``cimcodec compress OUT.pt`` stores it in a
model container with the description as the container's ``model`` entry.
"""

from __future__ import annotations

import argparse

from cimcodec.sim.cli import args as cli


def ranks(text: str):
    """``auto``, ``vbmf``, ``energy:E`` or a positive integer."""
    if text in ("auto", "vbmf") or text.startswith("energy:"):
        return text
    try:
        return cli.positive(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not auto, vbmf, energy:E or a positive integer") from None


def cmd_decompose(args) -> int:
    import torch

    from cimcodec.golden.ml import mtd
    from cimcodec.golden.ml.datasets import load

    state, description = cli.load_model_file(args.input)
    model = cli.network(state, description, args.net, args.data)
    dataset = load(args.data, args.data_dir, seed=args.seed)
    names = None if args.layers is None else [n.strip() for n in args.layers.split(",")
                                              if n.strip()]
    result = mtd.run(model, dataset, net=args.net, data=args.data, method=args.method,
                     ranks=args.ranks, target_ratio=args.target_ratio, names=names,
                     finetune_epochs=args.finetune_epochs, lr=args.lr, seed=args.seed,
                     progress=True)
    with cli.atomic_output(args.output) as tmp:
        torch.save({"state_dict": result.model.state_dict(),
                    "description": result.description}, tmp)
    width = max(len(r["layer"]) for r in result.rows)
    print(f"{'layer':<{width}} {'method':<6} {'ranks':<9} {'params before':>13} "
          f"{'after':>8} {'ratio':>8} {'accuracy':>8}")
    for r in result.rows:
        print(f"{r['layer']:<{width}} {r['method']:<6} "
              f"{'x'.join(map(str, r['ranks'])) or '-':<9} {r['before']:>13} {r['after']:>8} "
              f"{r['before'] / r['after']:>7.2f}x {r['accuracy']:>8.4f}")
    acc = result.accuracy
    print(f"(accuracy: validation, that layer decomposed alone, before fine-tuning)\n"
          f"{args.net} on {args.data}: {result.params[0]} -> {result.params[1]} parameters, "
          f"{result.ratio:.2f}x; accuracy validation / test: original "
          f"{acc['original']['validation']:.4f} / {acc['original']['test']:.4f}, decomposed "
          f"{acc['decomposed']['validation']:.4f} / {acc['decomposed']['test']:.4f}, "
          f"fine-tuned ({args.finetune_epochs} epochs) {acc['finetuned']['validation']:.4f} / "
          f"{acc['finetuned']['test']:.4f}")
    print(f"wrote {args.output}: the decomposed state dict with its description "
          f"(cimcodec eval / compress take it)")
    return 0


def register(sub) -> None:
    from cimcodec.golden.ml.mtd import METHODS

    p = sub.add_parser("decompose", help="Tucker / CP / mixed decomposition of a network's "
                                         "layers, with rank selection and fine-tuning")
    p.add_argument("input", help="MODEL.pt (a state dict of --net) or MODEL.cimz")
    p.add_argument("--net", choices=("lenet5", "vgg11", "vgg16"), required=True)
    p.add_argument("--method", choices=METHODS, default="mtd",
                   help="tucker, cp, or mtd: the better of the two per layer (default)")
    p.add_argument("--ranks", type=ranks, default="auto",
                   help="auto (the budget of --target-ratio, else vbmf), vbmf, energy:E "
                        "(keep that fraction of the unfoldings' energy) or one rank R")
    p.add_argument("--target-ratio", type=float,
                   help="whole-network parameter ratio to reach (ranks chosen per layer)")
    p.add_argument("--finetune-epochs", type=cli.integer, default=20,
                   help="fine-tuning epochs after the decomposition (default 20)")
    p.add_argument("--lr", type=float, default=3e-3, help="fine-tuning learning rate")
    p.add_argument("--layers", help="comma-separated layer names to decompose (default "
                                    "every convolution but the first, every linear layer "
                                    "but the last)")
    p.add_argument("--data", choices=("digits", "mnist", "cifar10"), default="digits",
                   help="data set (default digits, bundled with scikit-learn)")
    p.add_argument("--data-dir", help="the directory of the mnist / cifar10 files")
    p.add_argument("--seed", type=cli.integer, default=0)
    p.add_argument("-o", "--output", required=True, help="OUT.pt")
    p.set_defaults(func=cmd_decompose)
