"""A digits network on the accelerator tile: accuracy of the integer tiled network
against fp32 (golden model over the whole test split, RTL over the first ``--count``
test images), clocks per image, bytes read per image and the array reload time.

Run ``python -m bench.tile_infer`` from the checkout (``--help`` for the options). It
trains the network (cached in ``cimcodec.home()/cache``), fine-tunes it for the tile's
macros and ADC (:func:`cimcodec.golden.ml.tile_net.fine_tune`), exports its integer
network into a model container, runs it on the golden tile over the whole test split
and on the RTL tile (every tile job checked against the golden one), and prints a
markdown report.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

import cimcodec
from cimcodec.golden.blocks.tile import TileShape
from cimcodec.golden.ml import tile_net
from cimcodec.golden.ml.datasets import load
from cimcodec.golden.ml.models import train
from cimcodec.sim.rtl import rtl_network


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", default="mlp", choices=("mlp", "mlp2"))
    parser.add_argument("--rows", type=int, default=TileShape.rows)
    parser.add_argument("--cols", type=int, default=TileShape.cols)
    parser.add_argument("--adc-bits", type=int, default=TileShape.adc_bits)
    parser.add_argument("--max-matrix", type=int, default=TileShape.max_rows)
    parser.add_argument("--quality", type=int, default=90)
    parser.add_argument("--remap", default="full")
    parser.add_argument("--count", type=int, default=100,
                        help="test images on the RTL (0: golden only)")
    parser.add_argument("--sim", default="verilator", choices=("icarus", "verilator"))
    parser.add_argument("--lanes", type=int, default=1, choices=(1, 2, 4, 8),
                        help="decoder lanes (the members get restart intervals for them)")
    parser.add_argument("--cim-writes", type=int, default=1, choices=(1, 2, 4, 8, 16),
                        help="weights per write into the CIM array")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    shape = TileShape(args.rows, args.cols, args.adc_bits, max_rows=args.max_matrix,
                      max_cols=args.max_matrix, lanes=args.lanes,
                      writes_per_clock=args.cim_writes)
    model, _ = train(args.net, "digits", cache_dir=cimcodec.home() / "cache")
    dataset = load("digits")
    data, _ = tile_net.export_network(model, dataset, shape, net=args.net, data="digits",
                                      settings={"quality": args.quality, "remap": args.remap,
                                                "budget": 8, "lanes": args.lanes})
    net = tile_net.load(data)
    acts, labels, fp32 = tile_net.held_out_images(net, dataset)
    _, whole = tile_net.golden_run(net, shape, acts, labels, fp32)
    rtl = None
    if args.count:
        n = args.count
        rtl = rtl_network(data, acts[:n], labels[:n], fp32[:n], shape, args.sim)

    command = "python -m bench.tile_infer " + shlex.join(argv or sys.argv[1:])
    weights = sum(layer.inputs * layer.outputs for layer in net.layers)
    print(f"Command: `{command.strip()}`  \n"
          f"Wall time: {time.perf_counter() - start:.1f} s\n")
    print(f"{args.net} ({', '.join(f'{x.inputs}x{x.outputs}' for x in net.layers)}) on a "
          f"{shape.rows} x {shape.cols} tile, {shape.adc_bits}-bit ADC; weight members "
          f"{net.file_bytes} bytes for {weights} int8 weights (quality {args.quality}, remap "
          f"{args.remap}), container {len(data)} bytes\n")
    print("| run | images | fp32 | golden integer | RTL | RTL == golden |")
    print("|---|---:|---:|---:|---:|---|")
    acc = whole["accuracy"]
    print(f"| golden, whole test split | {whole['images']} | {100 * acc['fp32']:.2f} % | "
          f"{100 * acc['golden']:.2f} % | - | - |")
    if rtl is not None:
        acc = rtl["accuracy"]
        print(f"| RTL ({args.sim}) | {rtl['images']} | {100 * acc['fp32']:.2f} % | "
              f"{100 * acc['golden']:.2f} % | {100 * acc['rtl']:.2f} % | every output of "
              f"{rtl['jobs']} jobs |")
    delta = 100 * (whole["accuracy"]["golden"] - whole["accuracy"]["fp32"])
    print(f"\nInteger tiled network minus fp32 over the whole split: {delta:+.2f} points.")
    if rtl is None:
        return 0
    print(f"\nPer image ({rtl['images']} images in batches of up to {shape.vectors}): "
          f"{rtl['clocks_per_image']:.1f} clocks, of which weight load "
          f"{rtl['load_clocks_per_image']:.1f} and MAC {rtl['mac_clocks_per_image']:.1f}; "
          f"{rtl['file_bytes_per_image']:.1f} compressed bytes read against "
          f"{rtl['int8_bytes_per_image']:.1f} int8 bytes of the same windows.\n")
    print("| layer | member bytes | weights | one array load from the member (clocks, "
          "measured) | from int8 (clocks, R x C / W) |")
    print("|---|---:|---:|---:|---:|")
    for layer in net.layers:
        figures = rtl["reload_clocks"][layer.name]
        print(f"| {layer.name} ({layer.inputs}x{layer.outputs}) | {figures['file_bytes']} | "
              f"{layer.inputs * layer.outputs} | {figures['clocks']:.1f} | "
              f"{figures['int8_clocks']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
