"""Accuracy of digits-trained LeNet-5 and MLP2 through the CIM macro (seed 001).

Run ``python -m bench.cim_accuracy`` from the checkout. For each network, unpruned and
pruned with variational channel masks (:mod:`golden.ml.cim_train`), it prints a markdown
table of test accuracy (360 digits):

* float: the float network with BatchNorm;
* 8-bit QAT: BatchNorm folded, int8 weights and uint8 activations, exact integer
  product, fine-tuned with the straight-through estimator;
* CIM ideal, B bits: the 8-bit QAT model evaluated through ideal CIM macros of 64 rows
  with a B-bit ADC (a long dot product is cut into 64-row tiles whose integer results
  are added digitally; lossless from ``ceil(log2(64 + 1)) = 7`` bits);
* CIM-aware QAT, B bits: the same, fine-tuned through the B-bit macros;
* non-ideal rows: the 8-bit QAT model through 7-bit macros with the analog
  non-idealities of :mod:`golden.ml.cim_analog`, one at a time and combined (mean over
  chips 1 and 2), and fine-tuned through the combined ones on chip 0 (CIM-aware QAT
  with non-idealities; evaluated on chips 1 and 2).

and a second table of what pruning removed (parameters and multiply-accumulates of
the convolution and linear layers; BatchNorm is folded so it is not counted). Trained
models are cached in ``cimcodec.home()/cache``; the first run trains everything.
"""

from __future__ import annotations

import argparse
import copy
import shlex
import sys
import time
from pathlib import Path

import torch
from torch import nn

import cimcodec
from cimcodec.golden.ml.cim_analog import AnalogParams
from cimcodec.golden.ml.cim_train import (
    attach_masks,
    calibrate,
    configure,
    kl_divergence,
    prune_channels,
    to_cim,
)
from cimcodec.golden.ml.models import accuracy, digits, fit_digits, train_digits_net

NETS = {"lenet5": "LeNet-5", "mlp2": "MLP2"}
ADC_BITS = range(3, 9)
#: Bits of the ADC for the non-ideal rows: the lossless minimum for 64 rows.
NONIDEAL_BITS = 7
#: One non-ideality at a time, then two combinations (LSB of the 7-bit ADC).
LEVELS = {
    "mismatch 1 %": AnalogParams(mismatch_pct=1),
    "mismatch 3 %": AnalogParams(mismatch_pct=3),
    "mismatch 10 %": AnalogParams(mismatch_pct=10),
    "thermal noise 0.25 LSB rms": AnalogParams(thermal_noise_lsb=0.25),
    "thermal noise 0.5 LSB rms": AnalogParams(thermal_noise_lsb=0.5),
    "offset 0.3 LSB (charge inj. 0.15 + ADC 0.15)": AnalogParams(
        charge_injection_lsb=0.15, adc_offset_lsb=0.15),
    "gain error 2 %": AnalogParams(gain_error_pct=2),
    "INL 0.5 LSB": AnalogParams(inl_lsb=0.5),
    "combined A: 1 %, 0.1 LSB rms, 0.1 LSB offset, 0.5 % gain, 0.25 LSB INL": AnalogParams(
        mismatch_pct=1, thermal_noise_lsb=0.1, adc_offset_lsb=0.1, gain_error_pct=0.5,
        inl_lsb=0.25),
    "combined B: 3 %, 0.25 LSB rms, 0.3 LSB offset, 1 % gain, 0.5 LSB INL": AnalogParams(
        mismatch_pct=3, thermal_noise_lsb=0.25, charge_injection_lsb=0.15,
        adc_offset_lsb=0.15, gain_error_pct=1, inl_lsb=0.5),
}
#: Non-ideal levels also used for CIM-aware fine-tuning.
TRAINED_LEVELS = ("combined A: 1 %, 0.1 LSB rms, 0.1 LSB offset, 0.5 % gain, 0.25 LSB INL",
                  "combined B: 3 %, 0.25 LSB rms, 0.3 LSB offset, 1 % gain, 0.5 LSB INL")
CHIPS = (1, 2)
FLOAT_EPOCHS = 30
MASK_EPOCHS, KL_WEIGHT, FINETUNE_EPOCHS = 40, 16.0, 15
QAT_EPOCHS, CIM_QAT_EPOCHS = 5, 3


def costs(model: nn.Module) -> tuple[int, int]:
    """Parameters and multiply-accumulates of the linear and convolution layers for one
    digit."""
    params, macs, hooks = 0, 0, []

    def count(module, _inputs, output):
        nonlocal macs
        per_out = module.weight[0].numel()
        positions = output[0, 0].numel() if output.dim() == 4 else 1
        macs += per_out * module.weight.shape[0] * positions

    for module in model.modules():
        if isinstance(module, nn.Linear | nn.Conv2d):
            params += module.weight.numel() + (0 if module.bias is None else module.bias.numel())
            hooks.append(module.register_forward_hook(count))
    with torch.no_grad():
        model.eval()(torch.zeros(1, 64))
    for hook in hooks:
        hook.remove()
    return params, macs


def _cached(path: Path, build):
    if path.exists():
        return torch.load(path, weights_only=False)
    model = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model, path)
    return model


def pruned_net(name, model, data, cache: Path, seed: int):
    """Variational-mask training, pruning, fine-tuning (cached)."""
    def build():
        masked = attach_masks(model)
        n_train = len(data[0])
        fit_digits(masked, epochs=MASK_EPOCHS, seed=seed, data=data,
                   penalty=lambda: KL_WEIGHT * kl_divergence(masked) / n_train)
        pruned, kept = prune_channels(masked)
        pruned.kept = kept
        return fit_digits(pruned, epochs=FINETUNE_EPOCHS, seed=seed, lr=1e-3, data=data)
    return _cached(cache / f"{name}-digits-vmask-s{seed}-k{KL_WEIGHT:g}.pt", build)


def qat_net(tag, model, data, cache: Path, seed: int):
    """BatchNorm folded, calibrated and fine-tuned with 8-bit fake quantization (cached)."""
    def build():
        cim = calibrate(to_cim(model), data[0])
        return fit_digits(cim, epochs=QAT_EPOCHS, seed=seed, lr=5e-4, data=data)
    return _cached(cache / f"{tag}-qat8-s{seed}.pt", build)


def fine_tuned(model, data, seed, **settings):
    tuned = configure(copy.deepcopy(model), **settings)
    return fit_digits(tuned, epochs=CIM_QAT_EPOCHS, seed=seed, lr=2e-4, data=data)


def evaluate(model, data, **settings) -> float:
    configure(model, **settings)
    return accuracy(model.eval(), data[2], data[3])


def column(name, model, data, cache, seed, log):
    """Accuracies of one network (rows of the table) in order."""
    tag = name
    rows = {"float (BatchNorm, fp32)": accuracy(model, data[2], data[3])}
    qat = qat_net(tag, model, data, cache, seed)
    rows["8-bit QAT (exact integer product)"] = evaluate(qat, data, adc_bits=None, analog=None)
    for bits in ADC_BITS:
        rows[f"CIM ideal, {bits}-bit ADC (8-bit QAT model)"] = evaluate(
            qat, data, adc_bits=bits, analog=None)
    for bits in ADC_BITS:
        tuned = fine_tuned(qat, data, seed, adc_bits=bits, analog=None)
        rows[f"CIM-aware QAT, {bits}-bit ADC"] = evaluate(tuned, data)
        log(f"{tag}: CIM-aware QAT {bits} bits done")
    for level, analog in LEVELS.items():
        runs = [evaluate(qat, data, adc_bits=NONIDEAL_BITS,
                         analog=AnalogParams(**{**analog.__dict__, "chip_seed": chip,
                                                "noise_seed": chip}))
                for chip in CHIPS]
        rows[f"non-ideal {level} (8-bit QAT model)"] = (
            sum(runs) / len(runs))
    for level in TRAINED_LEVELS:
        train_chip = AnalogParams(**{**LEVELS[level].__dict__, "chip_seed": 0})
        tuned = fine_tuned(qat, data, seed, adc_bits=NONIDEAL_BITS, analog=train_chip)
        runs = [evaluate(tuned, data, analog=AnalogParams(
            **{**LEVELS[level].__dict__, "chip_seed": chip, "noise_seed": chip}))
            for chip in CHIPS]
        rows[f"CIM-aware QAT on chip 0 with non-ideal {level.split(':')[0]}"] = (
            sum(runs) / len(runs))
    log(f"{tag} done")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=cimcodec.home() / "cache")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest for these small tensors)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    def log(message):
        print(f"[{time.perf_counter() - start:6.1f} s] {message}", file=sys.stderr, flush=True)

    data = digits(args.seed)
    columns, pruning = {}, []
    for name, label in NETS.items():
        model, _ = train_digits_net(name, epochs=FLOAT_EPOCHS, seed=args.seed,
                                    cache_dir=args.cache)
        log(f"{name} float ready")
        pruned = pruned_net(name, model, data, args.cache, args.seed)
        log(f"{name} pruned ready")
        columns[label] = column(name, model, data, args.cache, args.seed, log)
        columns[f"{label} pruned"] = column(f"{name}-pruned", pruned, data, args.cache,
                                            args.seed, log)
        (p0, m0), (p1, m1) = costs(model), costs(pruned)
        pruning.append((label, pruned.kept, p0, p1, m0, m1))

    command = "python -m bench.cim_accuracy " + shlex.join(argv or sys.argv[1:])
    print(f"Command: `{command.strip()}`  \n"
          f"Wall time: {time.perf_counter() - start:.1f} s "
          f"(torch threads: {args.threads}, seed {args.seed})\n")
    print("Test accuracy (%) on scikit-learn digits (360 test images, 1 image = 0.28 %):\n")
    labels = list(columns)
    print("| configuration | " + " | ".join(labels) + " |")
    print("|---|" + "---:|" * len(labels))
    for row in columns[labels[0]]:
        print(f"| {row} | " + " | ".join(f"{100 * columns[c][row]:.2f}" for c in labels) + " |")
    print("\nVariational channel pruning (kept/total channels per masked layer; parameters "
          "and MACs per image of the conv and linear layers):\n")
    print("| network | channels kept | params | params pruned | MACs | MACs pruned |")
    print("|---|---|---:|---:|---:|---:|")
    for label, kept, p0, p1, m0, m1 in pruning:
        kept_text = ", ".join(f"{k}/{t}" for k, t in kept)
        print(f"| {label} | {kept_text} | {p0} -> {p1} | {100 * (1 - p1 / p0):.2f} % "
              f"| {m0} -> {m1} | {100 * (1 - m1 / m0):.2f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
