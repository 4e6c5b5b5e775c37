"""What every ``cimcodec`` command shares: the argument parser, argument types, file
loaders and the atomic output writer. Command modules import this and the library,
never each other.

Every error a user can cause ends as one sentence (:class:`CimcodecError`) that
:func:`cimcodec.sim.cli.main` prints as ``cimcodec: error: ...`` with exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from cimcodec.golden.errors import CimcodecError
from cimcodec.sim.tools import SIMULATORS


class Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line, ``cimcodec: error: ...`` like every
    other error (the usage is in ``--help``)."""

    def error(self, message):
        self.exit(2, f"cimcodec: error: {message} (see {self.prog} --help)\n")


def integer(text: str) -> int:
    """Decimal or 0x-prefixed integer."""
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def positive(text: str) -> int:
    """An integer of at least 1."""
    value = integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def integers(text: str) -> tuple[int, ...]:
    """Comma-separated integers."""
    return tuple(integer(t) for t in text.split(",") if t.strip())


def quality(text: str) -> int:
    """An IJG JPEG quality, 1..100."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"JPEG quality must be an integer 1..100, not {text}")
    return value


def qualities(text: str) -> tuple[int, ...]:
    """Comma-separated JPEG qualities, at least one."""
    out = tuple(quality(t.strip()) for t in text.split(",") if t.strip())
    if not out:
        raise argparse.ArgumentTypeError(f"{text!r} needs at least one quality")
    return out


def choices(allowed) -> callable:
    """Comma-separated words, each one of ``allowed``."""
    def parse(text: str) -> tuple[str, ...]:
        out = tuple(t.strip() for t in text.split(",") if t.strip())
        bad = [t for t in out if t not in allowed]
        if bad or not out:
            raise argparse.ArgumentTypeError(
                f"{bad[0] if bad else text!r} is not one of {', '.join(allowed)}")
        return out
    return parse


def simulator_option(p, default="verilator") -> None:
    p.add_argument("--sim", choices=SIMULATORS, default=default,
                   help=f"simulator (default {default})")


def jpeg_options(group) -> None:
    """The jpeg codec's settings for int8 weight matrices (quality, shared weights,
    remap): options of a parser or argument group."""
    from cimcodec.golden.codec.pipeline import REMAPS

    group.add_argument("--quality", type=integer, default=90,
                       help="IJG quality 1..100 (default 90)")
    group.add_argument("--clusters", type=integer, default=0,
                       help="K-means shared weights, 0 for none (default)")
    group.add_argument("--remap", choices=REMAPS, default="auto")
    group.add_argument("--budget", type=integer, default=16,
                       help="seeds tried per remap scheme (default 16)")
    group.add_argument("--lanes", type=integer, default=1, choices=(1, 2, 4, 8),
                       help="decoder lanes to write restart intervals for (default 1)")


def jpeg_settings(args) -> dict:
    """The settings of :func:`jpeg_options` as the jpeg codec takes them."""
    return {"quality": args.quality, "clusters": args.clusters, "remap": args.remap,
            "budget": args.budget, "lanes": args.lanes}


def existing_file(path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise CimcodecError(f"{path} does not exist or is not a file.")
    return p


def read_bytes(path: str) -> bytes:
    return existing_file(path).read_bytes()


def is_container(path: str) -> bool:
    """Whether the file starts as a model container (only its first bytes are read)."""
    from cimcodec.golden.codec import model as container

    with existing_file(path).open("rb") as f:
        return f.read(len(container.MAGIC)) == container.MAGIC


def load_array(path: str) -> np.ndarray:
    """A ``.npy`` array (no pickles)."""
    p = existing_file(path)
    try:
        array = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise CimcodecError(f"{path} is not a readable .npy array file.") from None
    if not isinstance(array, np.ndarray):        # an .npz archive under any name
        array.close()
        raise CimcodecError(f"{path} is an .npz archive, not a .npy array file.")
    return array


def load_torch(path: str):
    """What a ``.pt`` file holds, loaded with ``weights_only`` (tensors, dicts, lists and
    numbers; a pickled module is refused with a sentence saying what to save)."""
    import pickle
    import warnings
    import zipfile

    import torch

    p = existing_file(path)
    try:
        # torch warns (on stderr, before our sentence) about a pickled module's protocol
        # while refusing it; the refusal below says what to do.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            return torch.load(p, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError:
        if not zipfile.is_zipfile(p):      # not torch.save's format: garbage read as pickle
            raise CimcodecError(f"{path} is not a readable torch file.") from None
        raise CimcodecError(
            f"{path} holds pickled Python objects (a whole nn.Module?); save the weights "
            "instead with torch.save(model.state_dict(), PATH).") from None
    except Exception:
        raise CimcodecError(f"{path} is not a readable torch file.") from None


def load_tensor(path: str, layer: str | None):
    """``(tensor, name)``: one weight tensor from a ``.npy`` file, or from a ``.pt`` file
    holding a tensor or a state dict (``layer`` names the entry; without it the state
    dict must hold exactly one 2-D tensor). Torch tensors come back as they are (their
    dtype, bfloat16 included, is the library's to check)."""
    import torch

    p = Path(path)
    if p.suffix == ".npy":
        if layer is not None:
            raise CimcodecError("--layer applies only to .pt state dicts.")
        return load_array(path), p.stem
    if p.suffix != ".pt":
        existing_file(path)
        raise CimcodecError(f"{path} must be a .npy array or a .pt torch file.")
    obj = load_torch(path)
    if isinstance(obj, torch.Tensor):
        return obj, p.stem
    state = state_dict_of(obj, path)
    if layer is None:
        names = [n for n, t in state.items() if t.ndim == 2]
        if len(names) != 1:
            raise CimcodecError(f"{path} holds {len(names)} 2-D tensors; name one with --layer.")
        layer = names[0]
    if layer not in state:
        raise CimcodecError(f"{path} has no tensor named {layer!r}; it has "
                            f"{', '.join(map(str, state))}.")
    return state[layer], layer


def state_dict_of(obj, path: str) -> dict:
    """The state dict in a loaded ``.pt`` object: the object itself, or the entry
    ``state_dict`` / ``model`` of a checkpoint dict."""
    import torch

    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise CimcodecError(f"{path} holds neither a tensor nor a state dict of tensors.")
    return obj


def load_model_file(path: str) -> tuple[dict, dict]:
    """``(state dict, description)`` of a whole-model file: a model container (the
    description is its ``model`` entry) or a ``.pt`` state dict or checkpoint (its
    ``description`` entry, as ``cimcodec decompose`` writes); ``{}`` when there is none."""
    from cimcodec.golden.codec import model as container

    if is_container(path):
        data = read_bytes(path)
        return container.decompress(data), dict(container.inspect(data).model)
    obj = load_torch(path)
    description = obj.get("description") if isinstance(obj, dict) else None
    return state_dict_of(obj, path), dict(description) if isinstance(description, dict) else {}


def network(state: dict, description: dict, net: str | None, data: str | None):
    """The network a state dict belongs to: rebuilt from its saved ``description``
    (:func:`cimcodec.golden.ml.models.from_description`, which a decomposed network
    needs) or built as ``net`` on ``data``; ``net`` and ``data``, when given, must agree
    with the description."""
    from cimcodec.golden.ml.models import from_description, load_net

    saved = description.get("net")
    if net is not None and saved is not None and net != saved:
        raise CimcodecError(f"The file holds a {saved}, not a {net}.")
    if data is not None and description.get("data", data) != data:
        raise CimcodecError(f"The file's network was made for {description['data']}, not "
                            f"{data}.")
    if description.get("decomposed") or (net is None and saved is not None):
        return from_description(description, state)
    if net is None:
        raise CimcodecError("The file carries no network description: name it with --net.")
    return load_net(net, state, data or "digits")


def output_file(path: str) -> Path:
    """``path`` as a file to write, or one sentence: it is a directory, or its directory
    does not exist. Commands that run a simulator check their output first."""
    target = Path(path)
    if target.is_dir():
        raise CimcodecError(f"{path} is a directory, not a file name.")
    if not target.parent.is_dir():
        raise CimcodecError(f"The directory of {path} does not exist.")
    return target


@contextmanager
def atomic_output(path: str):
    """Yield a temporary path beside ``path``; it replaces ``path`` only when the block
    ends without an exception, so a failure leaves no half-written file."""
    target = output_file(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix or ".tmp",
                               dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_array(path: str, array: np.ndarray) -> None:
    """``np.save`` to exactly ``path`` (no ``.npy`` appended), atomically."""
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def write_bytes(path: str, data: bytes) -> None:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def warn(message: str) -> None:
    """One line on standard error that does not stop the command."""
    print(f"cimcodec: warning: {message}", file=sys.stderr)
