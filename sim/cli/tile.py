"""``cimcodec export-int / infer / rtl-infer``: a network on the accelerator tile.

``export-int`` fine-tunes a trained network for a tile's CIM macros and ADC and writes
its integer network into a model container (:mod:`cimcodec.golden.ml.tile_net`);
``infer`` runs that container on the golden tile, ``rtl-infer`` on the RTL tile
(:class:`cimcodec.hw.tile.Tile`), every job checked against the golden one. Both print
the accuracy of the integer network beside the float network's, the bytes the tile
read and, on the RTL, the clocks per image.
"""

from __future__ import annotations

import json

from cimcodec.golden.errors import CimcodecError
from cimcodec.sim.cli import args as cli


def _test_split(args, net):
    """The first ``--count`` test images of the container's data set (see
    :func:`cimcodec.golden.ml.tile_net.held_out_images`)."""
    from cimcodec.golden.ml import tile_net
    from cimcodec.golden.ml.datasets import load

    if args.data != net.data:
        raise CimcodecError(f"The network was exported for {net.data}, not {args.data}.")
    return tile_net.held_out_images(net, load(args.data, args.data_dir), args.count)


def _network(args):
    """``(container bytes, TileNet, TileShape)`` of the input and the tile options."""
    from cimcodec.golden.ml import tile_net

    data = cli.read_bytes(args.input)
    net = tile_net.load(data)
    shape = net.shape(rows=args.rows, cols=args.cols, adc_bits=args.adc_bits,
                      lanes=args.tile_lanes, writes_per_clock=args.cim_writes)
    return data, net, shape


def _describe(path, net, shape) -> str:
    layers = ", ".join(f"{layer.inputs}x{layer.outputs}" for layer in net.layers)
    return (f"{path}: {net.net} on {net.data}, integer network on a {shape.rows} x "
            f"{shape.cols} CIM tile with a {shape.adc_bits}-bit ADC (layers {layers})")


def _print_summary(stats) -> None:
    acc = stats["accuracy"]
    rtl = f"RTL {acc['rtl']:.4f}  " if "rtl" in acc else ""
    print(f"  accuracy  {rtl}golden {acc['golden']:.4f}  fp32 {acc['fp32']:.4f}")
    if "clocks_per_image" in stats:
        print(f"  clocks per image: {stats['clocks_per_image']:.1f} (weight load "
              f"{stats['load_clocks_per_image']:.1f}, MAC {stats['mac_clocks_per_image']:.1f});"
              f" {stats['jobs']} tile jobs, {stats['loads']} array loads, {stats['clocks']} "
              f"clocks")
    else:
        print(f"  {stats['jobs']} tile jobs, {stats['loads']} array loads")
    fb, ib = stats["file_bytes_per_image"], stats["int8_bytes_per_image"]
    print(f"  bytes read per image: {fb:.1f} compressed (each load reads its layer's whole "
          f"member) against {ib:.1f} as int8 windows")


def cmd_export_int(args) -> int:
    from cimcodec.golden.blocks.tile import TileShape
    from cimcodec.golden.ml import tile_net
    from cimcodec.golden.ml.datasets import load, split
    from cimcodec.golden.ml.models import accuracy, load_net

    state = cli.state_dict_of(cli.load_torch(args.input), args.input)
    model = load_net(args.net, state, args.data)
    shape = TileShape(args.rows, args.cols, args.adc_bits, max_rows=args.max_matrix,
                      max_cols=args.max_matrix)
    cli.output_file(args.output)                # before the fine-tuning, not after
    dataset = load(args.data, args.data_dir)
    data, cim = tile_net.export_network(
        model, dataset, shape, net=args.net, data=args.data, settings=cli.jpeg_settings(args),
        seed=args.seed, qat_epochs=args.qat_epochs, cim_epochs=args.cim_epochs, progress=True)
    cli.write_bytes(args.output, data)
    net = tile_net.load(data)
    acts, labels, fp32 = tile_net.held_out_images(net, dataset)
    _, stats = tile_net.golden_run(net, shape, acts, labels, fp32)
    weights = sum(layer.inputs * layer.outputs for layer in net.layers)
    print(f"wrote {args.output}: {len(data)} bytes; weight members {net.file_bytes} bytes for "
          f"{weights} int8 weights ({weights / net.file_bytes:.2f}x int8, "
          f"{4 * weights / net.file_bytes:.2f}x fp32)")
    print(_describe(args.output, net, shape))
    print(f"  test split, {len(acts)} images: CIM-aware QAT model (float) "
          f"{accuracy(cim, *split(dataset)[2]):.4f}")
    _print_summary(stats)
    return 0


def cmd_infer(args) -> int:
    from cimcodec.golden.ml import tile_net

    _, net, shape = _network(args)
    _, stats = tile_net.golden_run(net, shape, *_test_split(args, net))
    if args.stats:
        print(json.dumps(stats))
        return 0
    print(_describe(args.input, net, shape))
    print(f"golden integer model, {stats['images']} test images:")
    _print_summary(stats)
    return 0


def cmd_rtl_infer(args) -> int:
    from cimcodec.sim.rtl import rtl_network

    data, net, shape = _network(args)
    stats = rtl_network(data, *_test_split(args, net), shape, args.sim)
    if args.stats:
        print(json.dumps(stats))
        return 0
    print(_describe(args.input, net, shape))
    print(f"RTL ({args.sim}), {stats['images']} test images:")
    print(f"  RTL == golden: every status and output of the {stats['jobs']} tile jobs "
          f"(checked in the simulation) and every logit, bit for bit")
    _print_summary(stats)
    per_clock = ("one weight" if shape.writes_per_clock == 1
                 else f"{shape.writes_per_clock} weights")
    for name, figures in stats["reload_clocks"].items():
        print(f"  array reload, {name}: {figures['clocks']:.1f} clocks from "
              f"{figures['file_bytes']} compressed bytes against {figures['int8_clocks']} "
              f"from int8 ({per_clock} per clock)")
    return 0


def _tile_options(p, *, export: bool) -> None:
    from cimcodec.golden.blocks.tile import TileShape

    default = TileShape()
    if export:
        p.add_argument("--adc-bits", type=cli.positive, required=True,
                       help="ADC resolution to fine-tune for")
        p.add_argument("--rows", type=cli.positive, default=default.rows,
                       help=f"CIM array rows, the ADC's full scale (default {default.rows})")
        p.add_argument("--cols", type=cli.positive, default=default.cols,
                       help=f"CIM array columns (default {default.cols})")
        p.add_argument("--max-matrix", type=cli.positive, default=default.max_rows,
                       help="largest weight matrix (rows and columns) the tile's "
                            f"decompressor takes (default {default.max_rows})")
        return
    p.add_argument("--rows", type=cli.positive,
                   help="CIM array rows (default: the network's; another count only when "
                        "both it and the trained one have a lossless ADC)")
    p.add_argument("--cols", type=cli.positive, help="CIM array columns (default: declared)")
    p.add_argument("--adc-bits", type=cli.positive,
                   help="ADC resolution (default and only choice: the trained one)")


def _data_options(p) -> None:
    p.add_argument("--data", choices=("digits", "mnist", "cifar10"), default="digits",
                   help="data set (default digits)")
    p.add_argument("--data-dir", help="the directory of the mnist / cifar10 files")


def register(sub) -> None:
    from cimcodec.golden.ml.models import NETS

    e = sub.add_parser("export-int", help="fine-tune a network for the tile's CIM macros and "
                                          "write its integer network into a model container")
    e.add_argument("input", help="MODEL.pt (a state dict, e.g. from cimcodec train)")
    e.add_argument("--net", choices=NETS, required=True)
    _data_options(e)
    _tile_options(e, export=True)
    e.add_argument("--seed", type=cli.integer, default=0)
    e.add_argument("--qat-epochs", type=cli.positive, default=5,
                   help="epochs of 8-bit QAT (default 5)")
    e.add_argument("--cim-epochs", type=cli.positive, default=3,
                   help="epochs through the CIM macros (default 3)")
    cli.jpeg_options(e.add_argument_group("jpeg codec of the weight matrices"))
    e.add_argument("-o", "--output", required=True, help="MODEL.cimz")
    e.set_defaults(func=cmd_export_int)

    for name, func, help_text in [
        ("infer", cmd_infer, "classify test images with the integer network on the golden "
                             "tile"),
        ("rtl-infer", cmd_rtl_infer, "the same on the RTL tile, checked job by job against "
                                     "the golden tile"),
    ]:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("input", help="MODEL.cimz from export-int")
        _data_options(p)
        p.add_argument("--count", type=cli.positive,
                       help="the first N test images (default all)")
        _tile_options(p, export=False)
        p.set_defaults(tile_lanes=1, cim_writes=1)      # the golden tile's sums
        if name == "rtl-infer":
            cli.simulator_option(p)
            p.add_argument("--lanes", dest="tile_lanes", type=cli.positive, default=1,
                           help="decoder lanes of the tile's decompressor: 1, 2, 4 or 8 "
                                "(default 1; export-int --lanes N codes the files for them)")
            p.add_argument("--cim-writes", type=cli.positive, default=1,
                           help="weights per write into the CIM array (adjacent cells of a "
                                "row): a power of two that divides the columns (default 1)")
        p.add_argument("--stats", action="store_true", help="print the figures as JSON")
        p.set_defaults(func=func)
