"""``cimcodec mac / rtl-mac``: the CIM MAC array's commands.

``mac`` runs the golden integer model (:class:`cimcodec.golden.blocks.cim.CimParams`);
``rtl-mac`` runs the same arrays through :class:`cimcodec.hw.cim.CimArray` on a
simulator (:func:`cimcodec.sim.rtl.rtl_mac`) and writes the same ``Y``; ``--stats``
prints one JSON line with clocks and MACs per clock.
"""

from __future__ import annotations

import json

import numpy as np

from cimcodec.golden.errors import CimcodecError
from cimcodec.sim.cli import args as cli


def _load(path: str, what: str) -> np.ndarray:
    array = cli.load_array(path)
    if array.ndim != 2:
        raise CimcodecError(f"The {what} array {path} must be 2-D, not {array.ndim}-D "
                            f"with shape {array.shape}.")
    return array


def _params(args, weights: np.ndarray):
    from cimcodec.golden.blocks.cim import CimParams

    # The planes and writes per clock change the RTL's clocks, never ``Y``; ``mac``
    # has no such options and takes the defaults (see ``register``).
    return CimParams(weights.shape[0], weights.shape[1], args.adc_bits, args.signed_acts,
                     planes_per_clock=args.cim_planes, writes_per_clock=args.cim_writes)


def cmd_mac(args) -> int:
    weights, acts = _load(args.weights, "weight"), _load(args.acts, "activation")
    y = _params(args, weights).compute(weights, acts)
    cli.save_array(args.output, y)
    print(f"wrote {args.output}: {y.shape[0]}x{y.shape[1]} int64")
    return 0


def cmd_rtl_mac(args) -> int:
    from cimcodec.sim.rtl import rtl_mac

    weights, acts = _load(args.weights, "weight"), _load(args.acts, "activation")
    params = _params(args, weights)
    params.compute(weights, acts)  # one-sentence errors before any simulator starts
    cli.output_file(args.output)
    y, result = rtl_mac(params, weights, acts, args.sim)
    cli.save_array(args.output, y)
    if args.stats:
        n, first, last = len(acts), result["first_clock"], result["clocks"]
        steady = (last - first) / (n - 1) if n > 1 else None
        print(json.dumps({
            "sim": args.sim, "rows": params.rows, "cols": params.cols,
            "adc_bits": params.adc_bits, "planes_per_clock": params.planes_per_clock,
            "writes_per_clock": params.writes_per_clock,
            "vectors": n, "weights_loaded": weights.size,
            "clocks": last, "first_result_clock": first,
            "clocks_per_vector": steady,
            "macs_per_clock": params.rows * params.cols / steady if steady else None,
        }))
    else:
        print(f"wrote {args.output}: {y.shape[0]}x{y.shape[1]} int64 ({args.sim})")
    return 0


def register(sub) -> None:
    from cimcodec.golden.blocks.cim import CimParams

    planes = CimParams.__dataclass_fields__["planes_per_clock"].default
    writes = CimParams.__dataclass_fields__["writes_per_clock"].default
    for name, func, help_text in [
        ("mac", cmd_mac, "golden CIM MAC: Y = X @ W through the B-bit ADC model"),
        ("rtl-mac", cmd_rtl_mac, "the same on the RTL CIM array"),
    ]:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--weights", required=True, help="W.npy, [R, C] int8")
        p.add_argument("--acts", required=True, help="X.npy, [N, R] uint8 (or int8)")
        p.add_argument("--adc-bits", type=cli.integer, required=True, help="ADC resolution B")
        p.add_argument("--signed-acts", action="store_true", help="activations are int8")
        p.add_argument("-o", "--output", required=True, help="Y.npy, [N, C] int64")
        if name == "rtl-mac":
            cli.simulator_option(p)
            p.add_argument("--cim-planes", type=cli.positive, default=planes,
                           help=f"weight planes per clock: 1, 2, 4 or 8 (default {planes})")
            p.add_argument("--cim-writes", type=cli.positive, default=writes,
                           help="weights per write (adjacent cells of a row): a power of "
                                f"two that divides the columns (default {writes})")
            p.add_argument("--stats", action="store_true",
                           help="print one JSON line with clocks and MACs per clock")
        p.set_defaults(func=func, cim_planes=planes, cim_writes=writes)
