"""``cimcodec train / eval``: the networks the codecs are measured on.

``train`` gives users and benchmarks a trained state dict to start from (cached in
``cimcodec.home()/cache``); ``eval`` prints the test accuracy of the weights as stored: a
model container is decoded from its bytes first.
"""

from __future__ import annotations

from cimcodec.sim.cli import args as cli


def _data_options(p, default="digits") -> None:
    p.add_argument("--data", choices=("digits", "mnist", "cifar10"), default=default,
                   help="data set (default digits, bundled with scikit-learn)")
    p.add_argument("--data-dir", help="the directory of the mnist / cifar10 files (nothing "
                                      "is downloaded)")


def cmd_train(args) -> int:
    import torch

    import cimcodec
    from cimcodec.golden.ml.models import train

    cache = cimcodec.home() / "cache"
    model, acc = train(args.net, args.data, data_dir=args.data_dir, epochs=args.epochs,
                       seed=args.seed, cache_dir=cache, progress=True)
    with cli.atomic_output(args.output) as tmp:
        torch.save(model.state_dict(), tmp)
    params = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.output}: {args.net} ({params} parameters) trained on {args.data}, "
          f"test accuracy {acc:.4f}")
    return 0


def cmd_eval(args) -> int:
    from cimcodec.golden.ml.datasets import load, split
    from cimcodec.golden.ml.models import accuracy

    state, description = cli.load_model_file(args.input)
    what = "decoded from the container" if cli.is_container(args.input) else "as stored"
    net = cli.network(state, description, args.net, args.data)
    name = args.net or description["net"]
    data = args.data or description.get("data", "digits")
    if description.get("decomposed"):
        name = f"decomposed {name}"
    _, val, test = split(load(data, args.data_dir))
    print(f"{args.input}: {name} on {data} ({what}): test accuracy "
          f"{accuracy(net, *test):.4f} ({len(test[1])} images), validation "
          f"{accuracy(net, *val):.4f}")
    return 0


def register(sub) -> None:
    from cimcodec.golden.ml.models import NETS

    t = sub.add_parser("train", help="train a network and save its state dict")
    t.add_argument("--net", choices=NETS, required=True)
    _data_options(t)
    t.add_argument("--epochs", type=cli.positive, default=30, help="epochs (default 30)")
    t.add_argument("--seed", type=cli.integer, default=0)
    t.add_argument("-o", "--output", required=True, help="MODEL.pt")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="test accuracy of a state dict or a model container")
    e.add_argument("input", help="MODEL.pt or MODEL.cimz")
    e.add_argument("--net", choices=NETS,
                   help="the network (default: the one the file's description names)")
    _data_options(e, default=None)
    e.set_defaults(func=cmd_eval)
