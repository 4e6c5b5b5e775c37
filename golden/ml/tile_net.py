"""The integer network on the accelerator tile (:mod:`golden.blocks.tile`): exported from
a CIM-aware QAT model into a model container, and run layer by layer, tile by tile, by
a host sequencer that the golden model and the cocotb bench share.

The integer network
-------------------
A chain of linear layers with ReLU between them (an MLP; BatchNorm folded by
:func:`golden.ml.cim_train.to_cim`), fine-tuned for ``R``-row macros with a ``B``-bit
ADC, then exported (:func:`golden.ml.cim_train.export_integer`): int8 weights ``q_w``
with scale ``s_w``, input scale ``s_a`` and float bias ``b`` per layer. Layer ``l`` of
``K`` inputs and ``N`` outputs becomes, in integers::

    acc      = the tile's int32 sums of q_a @ W        (W: the K x N int8 matrix)
    bias[n]  = round(b[n] / (s_a s_w))                                  (int32)
    hidden layer:  q_a' = clamp(round_half_up((acc + bias) * M / 2**S), 0, 255),
                   M / 2**S ~= s_a s_w / s_a'   (M 16 bits, 2**15 <= M < 2**16)
    last layer:    logits = acc + bias          (M = 1, S = 0, int32)

``s_a'`` is the next layer's input scale, so ``q_a'`` is exactly that layer's unsigned
8-bit input (the QAT model's ``clamp(round(x / s_a'), 0, 255)`` of the ReLU output, up
to the rounding of ``bias``, ``M / 2**S`` and half-way cases). The image is quantized
once by the host, ``q_a = clamp(round(x / s_a), 0, 255)`` with the first layer's
``s_a``; the class is the argmax of the logits (the first on a tie).

The container
-------------
A :mod:`golden.codec.model` container: per layer ``NAME`` (the torch module name),
``NAME.matrix`` the int8 ``K x N`` weight matrix as the CIM array holds it (rows =
inputs), through the ``jpeg`` codec (a baseline JPEG member, standalone as
:func:`golden.codec.model.extract` gives it: the bytes the tile reads; no snap table,
so the decompressor's samples are ``weight + 128``);
``NAME.bias`` (int32, ``N``) and ``NAME.requant`` (int32, ``[M, S]``) through ``raw``.
The manifest's ``model`` entry describes the rest::

    {"net": ..., "data": ..., "integer": {"version": 1, "rows": R, "cols": C,
     "adc_bits": B, "max_rows": ..., "max_cols": ..., "input_scale": s_a,
     "layers": [{"name": NAME, "relu": bool, "clamp": "uint8" | "int32"}, ...],
     "fp32_test_predictions": [...]}}

``rows`` and ``adc_bits`` are what the network was trained for; ``cols`` and the
matrix limits are the array it was declared for. The weights the golden model uses
are the ones the decompressor gives, not the exported ones: the codec is lossy.
``fp32_test_predictions`` are the float network's classes of the test split.

The host sequencer
------------------
:meth:`Host.steps` walks layers and tiles: for each column tile ``c0`` (steps of ``C``),
each batch of up to ``V`` images and each row tile ``r0`` (steps of ``R``), one job
loads the window ``(r0, c0)`` from the layer's member, streams the batch's
activations ``x[:, r0:r0 + R]`` (zero past ``K``), sums with ``first`` at ``r0 = 0`` and
sends the sums through the output stage at the last row tile. A layer of one row tile
loads each column tile once and reuses it for every batch (``load = 0``). The outputs,
columns ``c0 .. c0 + C - 1`` of the batch (the columns past ``N`` dropped), feed the
next layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np

from cimcodec.golden.blocks.cim import CimParams
from cimcodec.golden.blocks.decompressor import Error
from cimcodec.golden.blocks.tile import (
    INT32,
    MULTIPLIER_BITS,
    SHIFT_BITS,
    Clamp,
    TileJob,
    TileModel,
    TileOutcome,
    TileParams,
    TileShape,
)
from cimcodec.golden.errors import CimcodecError

VERSION = 1
CLAMPS = {"uint8": Clamp.UINT8, "int32": Clamp.INT32}


@dataclass(frozen=True)
class TileLayer:
    """One layer of the integer network (module docstring)."""

    name: str
    file: bytes
    inputs: int
    outputs: int
    bias: np.ndarray
    multiplier: int
    shift: int
    relu: bool
    clamp: Clamp


@dataclass(frozen=True)
class TileNet:
    """The integer network of a container: its layers and what it was trained for."""

    net: str
    data: str
    rows: int
    cols: int
    adc_bits: int
    max_rows: int
    max_cols: int
    input_scale: float
    layers: tuple
    fp32_predictions: np.ndarray

    def shape(self, *, rows=None, cols=None, adc_bits=None, vectors=128, lanes=1,
              writes_per_clock=1) -> TileShape:
        """The tile to run on: the declared one, or another array size or ADC setting
        when it computes the same sums (see :meth:`check`); any decoder lanes and array
        writes per clock (they change the clocks, not the sums)."""
        shape = TileShape(self.rows if rows is None else rows,
                          self.cols if cols is None else cols,
                          self.adc_bits if adc_bits is None else adc_bits, vectors,
                          self.max_rows, self.max_cols, lanes=lanes,
                          writes_per_clock=writes_per_clock)
        self.check(shape)
        return shape

    def check(self, shape: TileShape) -> None:
        """Raise :class:`CimcodecError` unless ``shape`` runs this network as trained:
        the ADC resolution of training, and the rows of training unless both row counts
        have a lossless ADC (then every count, and so every sum, is the same); and every
        layer's matrix within the decompressor's limits."""
        if shape.adc_bits != self.adc_bits:
            raise CimcodecError(
                f"The network was trained for a {self.adc_bits}-bit ADC, not a "
                f"{shape.adc_bits}-bit one; export it again for that ADC.")
        trained = CimParams(self.rows, 1, self.adc_bits)
        if shape.rows != self.rows and not (shape.cim.exact and trained.exact):
            raise CimcodecError(
                f"The network was trained for {self.rows}-row macros with a "
                f"{self.adc_bits}-bit ADC (its full scale is {self.rows} rows); a "
                f"{shape.rows}-row array gives other sums.")
        for layer in self.layers:
            check_fit(layer.name, layer.inputs, layer.outputs, shape)

    def quantize(self, x) -> np.ndarray:
        """Images ``(n, inputs)`` in 0..1 as the first layer's activations:
        ``clamp(round(x / s_a), 0, 255)`` (int64)."""
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        if x.shape[1] != self.layers[0].inputs:
            raise CimcodecError(f"The network takes {self.layers[0].inputs} inputs per image, "
                                f"not {x.shape[1]}.")
        return np.clip(np.round(x / self.input_scale), 0, 255).astype(np.int64)

    @property
    def file_bytes(self) -> int:
        """Bytes of every layer's weight member."""
        return sum(len(layer.file) for layer in self.layers)


def check_fit(name: str, inputs: int, outputs: int, shape: TileShape) -> None:
    """Raise :class:`CimcodecError` unless the decompressor of ``shape`` takes layer
    ``name``'s ``inputs x outputs`` matrix (padded to whole 8x8 blocks)."""
    if -(-inputs // 8) * 8 > shape.max_rows or -(-outputs // 8) * 8 > shape.max_cols:
        raise CimcodecError(
            f"Layer {name} ({inputs} x {outputs} weights) does not fit the tile: its "
            f"decompressor takes matrices up to {shape.max_rows} x {shape.max_cols}.")


# ------------------------------------------------------------------ container


def _raw(container, info, name, dtype, shape):
    from cimcodec.golden.codec import model

    entry = next((e for e in info.entries if e.name == name), None)
    if entry is None or entry.codec != "raw" or entry.dtype != dtype \
            or entry.shape != tuple(shape):
        raise CimcodecError(f"The container's integer network needs a raw {dtype} tensor "
                            f"{name} of shape {tuple(shape)}.")
    return model.CODECS["raw"].decode(model.extract(container, name), entry.shape, dtype, {})


def load(container: bytes) -> TileNet:
    """The integer network in container bytes (module docstring).

    Raises
    ------
    CimcodecError
        Not a model container, or one without integer export data, or export data that
        does not describe a chain of layers the tile runs.
    """
    from cimcodec.golden.codec import container as jpeg_container
    from cimcodec.golden.codec import model

    info = model.inspect(container)
    spec = info.model.get("integer")
    if not isinstance(spec, dict):
        raise CimcodecError("The container holds no integer network (its model description "
                            "has no 'integer' entry); write one with cimcodec export-int.")
    try:
        if spec["version"] != VERSION:
            raise CimcodecError(f"The container's integer network has version "
                                f"{spec['version']}; this cimcodec reads {VERSION}.")
        sizes = {k: spec[k] for k in ("rows", "cols", "adc_bits", "max_rows", "max_cols")}
        TileShape(sizes["rows"], sizes["cols"], sizes["adc_bits"], 1, sizes["max_rows"],
                  sizes["max_cols"])
        scale = float(spec["input_scale"])
        described = [(d["name"], bool(d["relu"]), CLAMPS[d["clamp"]]) for d in spec["layers"]]
        fp32 = np.asarray(spec["fp32_test_predictions"], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, CimcodecError):
            raise
        raise CimcodecError("The container's integer network description is incomplete or "
                            "malformed.") from None
    if not described or not scale > 0:
        raise CimcodecError("The container's integer network has no layers or no input "
                            "scale.")
    entries = {e.name: e for e in info.entries}
    layers = []
    for name, relu, clamp in described:
        entry = entries.get(f"{name}.matrix")
        if entry is None or entry.codec != "jpeg" or entry.dtype != "int8" \
                or len(entry.shape) != 2:
            raise CimcodecError(f"The container's integer network needs the int8 matrix "
                                f"{name}.matrix stored as a JPEG.")
        inputs, outputs = entry.shape
        file = model.extract(container, f"{name}.matrix")
        if jpeg_container.read_header(file).snap is not None:
            raise CimcodecError(f"{name}.matrix has a snap table: the tile loads weights, "
                                f"not codebook indices.")
        bias = _raw(container, info, f"{name}.bias", "int32", (outputs,)).astype(np.int64)
        multiplier, shift = (int(v) for v in _raw(container, info, f"{name}.requant",
                                                   "int32", (2,)))
        params = TileParams(multiplier=multiplier, shift=shift, clamp=clamp, relu=relu)
        if layers and layers[-1].outputs != inputs:
            raise CimcodecError(f"Layer {name} takes {inputs} inputs, the layer before it "
                                f"gives {layers[-1].outputs}.")
        layers.append(TileLayer(name, file, inputs, outputs, bias, params.multiplier,
                                params.shift, relu, clamp))
    return TileNet(info.model.get("net", "?"), info.model.get("data", "?"), sizes["rows"],
                   sizes["cols"], sizes["adc_bits"], sizes["max_rows"], sizes["max_cols"],
                   scale, tuple(layers), fp32)


def requantization(real: float) -> tuple[int, int]:
    """``(M, S)`` with ``M / 2**S`` the closest to ``real`` (> 0) for a 16-bit ``M``:
    ``2**15 <= M < 2**16`` where the shift allows it."""
    if not real > 0 or not math.isfinite(real):
        raise CimcodecError(f"A requantization scale must be positive, not {real!r}.")
    mantissa, exponent = math.frexp(real)            # real = mantissa * 2**exponent
    shift = MULTIPLIER_BITS - exponent
    multiplier = round(mantissa * (1 << MULTIPLIER_BITS))
    if multiplier == 1 << MULTIPLIER_BITS:
        multiplier, shift = multiplier >> 1, shift - 1
    if shift < 0:
        raise CimcodecError(f"A requantization scale of {real:g} needs a multiplier wider "
                            f"than {MULTIPLIER_BITS} bits.")
    top = (1 << SHIFT_BITS) - 1
    if shift > top:
        multiplier, shift = round(real * (1 << top)), top
    return multiplier, shift


def _chain(cim_model):
    """The CIM layers of ``cim_model.net`` (``(name, module)``) and whether a ReLU follows
    each, or one sentence saying why the tile cannot run it."""
    from torch import nn

    from cimcodec.golden.ml.cim_train import CIMLinear

    layers, relus = [], []
    for index, module in enumerate(cim_model.net):
        if isinstance(module, CIMLinear):
            layers.append((f"net.{index}", module))
            relus.append(False)
        elif isinstance(module, nn.ReLU) and layers and not relus[-1]:
            relus[-1] = True
        elif not (isinstance(module, nn.Flatten) and not layers):
            raise CimcodecError(
                f"The tile runs a chain of linear layers with ReLU between them; layer "
                f"{index} of the network is {type(module).__name__}.")
    if not layers or relus[-1]:
        raise CimcodecError("The tile runs a chain of linear layers ending in a linear layer.")
    return layers, relus


def fine_tune(model, fit, shape: TileShape, *, seed: int = 0, qat_epochs: int = 5,
              cim_epochs: int = 3, progress: bool = False):
    """The CIM-aware QAT model of a float ``model`` (with an ``nn.Sequential`` ``net``)
    for the tile ``shape``: BatchNorm folded, activation ranges calibrated on ``fit``
    (``(x, y)``), fine-tuned with 8-bit fake quantization (exact product), then
    through ``R``-row macros with the ``B``-bit ADC (the schedule of
    ``bench/cim_accuracy.py``). The network is checked first: a chain of linear layers
    whose matrices fit the tile's decompressor. Torch runs on one thread meanwhile: the
    tensors are small, and on a 2-core machine the default (one thread per core) took
    4 times the wall time."""
    import torch

    from cimcodec.golden.ml.cim_train import calibrate, configure, to_cim
    from cimcodec.golden.ml.models import fit_digits

    cim = to_cim(model, tile_rows=shape.rows)
    for name, layer in _chain(cim)[0]:
        check_fit(name, layer.in_features, layer.out_features, shape)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        calibrate(cim, fit[0])
        fit_digits(cim, epochs=qat_epochs, seed=seed, lr=5e-4, data=fit, progress=progress)
        configure(cim, adc_bits=shape.adc_bits)
        return fit_digits(cim, epochs=cim_epochs, seed=seed, lr=2e-4, data=fit,
                          progress=progress)
    finally:
        torch.set_num_threads(threads)


def export(cim_model, fp32_model, test, shape: TileShape, *, net: str, data: str,
           settings: dict | None = None) -> bytes:
    """Container bytes of the integer network of a fine-tuned CIM model (module
    docstring), declared for ``shape``; ``settings`` are the jpeg codec's (``snap`` is
    always off, ``exact_int8`` too). ``fp32_model``'s classes of ``test`` (``(x, y)``) are kept for
    reference.

    Raises
    ------
    CimcodecError
        A network that is not a chain of linear layers, a layer that does not fit
        ``shape``, a bias or scale the integer path cannot hold.
    """
    import torch

    from cimcodec.golden.codec import model as container
    from cimcodec.golden.ml.cim_train import export_integer

    linear, relus = _chain(cim_model)
    if any((m.tile_rows, m.adc_bits) != (shape.rows, shape.adc_bits) for _, m in linear):
        raise CimcodecError(f"The CIM model was not fine-tuned for the tile's {shape.rows} "
                            f"rows and {shape.adc_bits}-bit ADC.")
    exported = export_integer(cim_model)
    for layer in exported:
        check_fit(layer.name, *layer.matrix.shape, shape)
    state, described, names = {}, [], []
    for index, (layer, relu) in enumerate(zip(exported, relus)):
        step = layer.act_scale * layer.weight_scale
        bias = np.round(layer.bias.astype(np.float64) / step)
        if np.abs(bias).max(initial=0) > INT32[1]:
            raise CimcodecError(f"Layer {layer.name}'s bias does not fit 32 bits.")
        last = index == len(exported) - 1
        requant = (1, 0) if last else requantization(step / exported[index + 1].act_scale)
        state[f"{layer.name}.matrix"] = torch.from_numpy(layer.matrix)
        state[f"{layer.name}.bias"] = torch.from_numpy(bias.astype(np.int32))
        state[f"{layer.name}.requant"] = torch.tensor(requant, dtype=torch.int32)
        described.append({"name": layer.name, "relu": bool(relu),
                          "clamp": "int32" if last else "uint8"})
        names.append(f"{layer.name}.matrix")
    with torch.no_grad():
        fp32 = fp32_model.eval()(test[0]).argmax(1).tolist()
    spec = {"version": VERSION, "rows": shape.rows, "cols": shape.cols,
            "adc_bits": shape.adc_bits, "max_rows": shape.max_rows, "max_cols": shape.max_cols,
            "input_scale": exported[0].act_scale, "layers": described,
            "fp32_test_predictions": fp32}
    # No snap table (the tile loads samples, not codebook indices); the JPEG loss on
    # the int8 matrices is accepted: the network runs on the weights it decodes to.
    settings = {**(settings or {}), "snap": False, "exact_int8": False}
    out = container.compress(state, codec="jpeg", settings=settings,
                             codecs=dict.fromkeys(names, "jpeg"),
                             model={"net": net, "data": data, "integer": spec})
    return out


def export_network(model, dataset, shape: TileShape, *, net: str, data: str,
                   settings: dict | None = None, seed: int = 0, qat_epochs: int = 5,
                   cim_epochs: int = 3, progress: bool = False):
    """``(container bytes, CIM model)``: :func:`fine_tune` on the training part of
    ``dataset`` (``(x_train, y_train, x_test, y_test)``, its validation part held out),
    then :func:`export` with the test part's float classes."""
    from cimcodec.golden.ml.datasets import split

    fit, _, test = split(dataset)
    cim = fine_tune(model, fit, shape, seed=seed, qat_epochs=qat_epochs,
                    cim_epochs=cim_epochs, progress=progress)
    return export(cim, model, test, shape, net=net, data=data, settings=settings), cim


def held_out_images(net: TileNet, dataset, count: int | None = None):
    """``(acts, labels, fp32)`` of the first ``count`` (default all) test images of
    ``dataset``: the first layer's activations, the labels and the float network's
    classes kept in the container."""
    from cimcodec.golden.ml.datasets import split

    x, y = split(dataset)[2]
    if len(net.fp32_predictions) != len(y):
        raise CimcodecError(f"The container's float reference covers "
                            f"{len(net.fp32_predictions)} test images; the test split has "
                            f"{len(y)}.")
    count = len(y) if count is None else count
    if count > len(y):
        raise CimcodecError(f"The test split has {len(y)} images, fewer than the {count} "
                            f"asked for.")
    return net.quantize(x[:count].numpy()), y[:count].numpy(), net.fp32_predictions[:count]


# ------------------------------------------------------------------ the host


@dataclass
class Traffic:
    """What the host sent the tile: jobs, loads, the bytes of the members it loaded and
    the int8 bytes the same windows hold (one byte per weight inside the matrix), and
    each load's ``(layer, row0, col0)``."""

    jobs: int = 0
    loads: int = 0
    file_bytes: int = 0
    int8_bytes: int = 0
    windows: list = field(default_factory=list)


class Host:
    """The host sequencer (module docstring): it plans the jobs of one layer at a time
    and collects their outputs; :func:`drive` (plain functions) or the cocotb bench
    (coroutines) run the jobs."""

    def __init__(self, net: TileNet, shape: TileShape):
        net.check(shape)
        self.net, self.shape = net, shape
        self.traffic = Traffic()

    def steps(self, acts) -> Generator[list, list, np.ndarray]:
        """Yield the jobs of each layer, receive their outcomes in order, return the
        last layer's outputs ``(n, N)`` (int64) for the activations ``acts``
        (``(n, inputs)``, 0..255)."""
        x = np.asarray(acts, dtype=np.int64)
        for layer in self.net.layers:
            jobs, places = self._layer(layer, x)
            outcomes = yield jobs
            x = self._collect(layer, jobs, places, outcomes, len(x))
        return x

    def _layer(self, layer: TileLayer, x):
        s, t = self.shape, self.traffic
        k, n = layer.inputs, layer.outputs
        jobs, places = [], []
        for c0 in range(0, n, s.cols):
            common = {"col0": c0, "relu": layer.relu, "clamp": layer.clamp,
                      "multiplier": layer.multiplier, "shift": layer.shift,
                      "bias": tuple(int(b) for b in layer.bias[c0:c0 + s.cols])}
            for b0 in range(0, len(x), s.vectors):
                batch = x[b0:b0 + s.vectors]
                for r0 in range(0, k, s.rows):
                    last = r0 + s.rows >= k
                    load = not (r0 == 0 and last and b0 > 0)
                    acts = np.zeros((len(batch), s.rows), np.int64)
                    acts[:, :min(s.rows, k - r0)] = batch[:, r0:r0 + s.rows]
                    params = TileParams(load=load, row0=r0, first=r0 == 0, last=last, **common)
                    jobs.append(TileJob(params, layer.file if load else None, acts))
                    places.append((b0, c0) if last else None)
                    t.jobs += 1
                    if load:
                        t.loads += 1
                        t.file_bytes += len(layer.file)
                        t.int8_bytes += min(s.rows, k - r0) * min(s.cols, n - c0)
                        t.windows.append((layer.name, r0, c0))
        return jobs, places

    def _collect(self, layer, jobs, places, outcomes, count):
        if len(outcomes) != len(jobs):
            raise CimcodecError(f"{len(outcomes)} outcomes for {len(jobs)} jobs.")
        y = np.zeros((count, layer.outputs), np.int64)
        for job, place, outcome in zip(jobs, places, outcomes):
            if outcome.error:
                code = Error(outcome.error).name if outcome.error in Error._value2member_map_ \
                    else outcome.error
                raise CimcodecError(
                    f"The tile stopped with error {code} loading layer {layer.name}'s window "
                    f"at ({job.params.row0}, {job.params.col0}).")
            if place is not None:
                b0, c0 = place
                width = min(self.shape.cols, layer.outputs - c0)
                y[b0:b0 + len(job.acts), c0:c0 + width] = outcome.outputs[:, :width]
        return y


def drive(steps: Generator, execute: Callable[[list], list]) -> np.ndarray:
    """Run a host's :meth:`Host.steps` with ``execute(jobs) -> outcomes``."""
    jobs = next(steps)
    while True:
        try:
            jobs = steps.send(execute(jobs))
        except StopIteration as stop:
            return stop.value


def golden_logits(net: TileNet, shape: TileShape, acts) -> tuple[np.ndarray, Traffic]:
    """The golden integer network: the host's jobs on :class:`TileModel`; returns the
    logits and the host's traffic."""
    host, tile = Host(net, shape), TileModel(shape)

    def execute(jobs) -> list[TileOutcome]:
        return [tile.run(job) for job in jobs]

    return drive(host.steps(acts), execute), host.traffic


def golden_run(net: TileNet, shape: TileShape, acts, labels, fp32) -> tuple[np.ndarray, dict]:
    """``(logits, figures)`` of the golden integer network on ``acts`` (the first layer's
    activations of images with ``labels``, and ``fp32`` the float network's classes of
    the same images): accuracies, classes, the host's jobs and loads, and the bytes read
    per image (the loaded members against the same windows as int8)."""
    logits, traffic = golden_logits(net, shape, acts)
    labels, fp32, n = np.asarray(labels), np.asarray(fp32), len(labels)
    return logits, {
        "images": n,
        "accuracy": {"golden": float((logits.argmax(1) == labels).mean()),
                     "fp32": float((fp32 == labels).mean())},
        "predictions": {"golden": logits.argmax(1).tolist(), "fp32": fp32.tolist()},
        "jobs": traffic.jobs, "loads": traffic.loads, "windows": traffic.windows,
        "file_bytes_per_image": traffic.file_bytes / n,
        "int8_bytes_per_image": traffic.int8_bytes / n}
