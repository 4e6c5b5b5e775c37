"""``cimcodec demo``: a digits MLP's first layer through every remap scheme on the RTL
control-word generator and remap unit, then through the codec and the RTL decompressor,
then a whole compressed MLP classifying digits on the RTL accelerator tile; every output
checked against the golden model."""

from __future__ import annotations

import sys
import time

import numpy as np

import cimcodec
from cimcodec.golden.blocks.lfsr import Scheme
from cimcodec.golden.errors import CimcodecError
from cimcodec.sim.cli import args as cli

#: Test images the demo classifies on the RTL tile.
DEMO_IMAGES = 100


def cmd_demo(args) -> int:
    """Digits MLP -> first FC layer -> every remap scheme on the RTL, checked against
    the golden model."""
    from tqdm import tqdm

    from cimcodec.golden.blocks.decompressor import DecompressorShape
    from cimcodec.golden.blocks.lfsr import GeneratorShape
    from cimcodec.golden.blocks.remap import RemapParams, RemapShape, block_order
    from cimcodec.golden.codec import pipeline as codec
    from cimcodec.golden.codec.search import block_entropy
    from cimcodec.golden.ml.models import quantize_symmetric, train_digits_mlp
    from cimcodec.sim.cocotb_run import RtlMismatch, run_jobs
    from cimcodec.sim.rtl import rtl_decode
    from cimcodec.tb import lfsr as test_lfsr
    from cimcodec.tb import remap as test_remap

    t0 = time.time()
    model, acc = train_digits_mlp((64, args.hidden, 10), cache_dir=cimcodec.home() / "cache")
    weights = model.net[0].weight.detach().numpy()
    q, scale = quantize_symmetric(weights)
    samples = (q.astype(np.int16) + 128).astype(np.uint8)  # JPEG level shift
    print(f"MLP 64-{args.hidden}-10 on scikit-learn digits: test accuracy {acc:.4f}; "
          f"FC1 weights {weights.shape[0]}x{weights.shape[1]} -> int8 (scale {scale:.5f})")

    remap_shape, gen_shape = RemapShape(), GeneratorShape()
    seeds = {Scheme.NONE: None, Scheme.FULL: (5,), Scheme.SPLIT: (3, 5),
             Scheme.PROGRESSIVE: (5,)}
    rows = []
    failed = False
    for scheme in tqdm(list(Scheme), desc=f"RTL on {args.sim}", unit="scheme"):
        params = RemapParams(*samples.shape, scheme, seeds[scheme])
        coded = params.remap(samples)
        r2, c2 = block_order(params.padded_rows, params.padded_cols)
        checks = []
        words = params.control_words()
        if words is not None:
            checks.append(("lfsr", test_lfsr.BENCH, gen_shape,
                           test_lfsr.jobs(gen_shape, [(words, params.n_words)])))
        job = test_remap.job(remap_shape, params, data=coded[r2, c2])
        # The golden inverse must put every weight back where it came from.
        expected = job["expected"]["o"]
        assert all(samples[e["row"], e["col"]] == e["data"] for e in expected)
        checks.append(("remap", test_remap.BENCH, remap_shape, [job]))
        for block, bench, shape, jobs in checks:
            try:
                result = run_jobs(bench, shape, jobs, args.sim)[0]
                ok, clocks = True, result["clocks"]
            except RtlMismatch as e:
                print(e, file=sys.stderr)
                ok, clocks, failed = False, "-", True
            vectors = sum(len(v) for v in jobs[0]["expected"].values())
            entropy = f"{block_entropy(coded) / coded.size:.3f}" if block == "remap" else "-"
            rows.append((block, scheme.value, vectors, clocks, "PASS" if ok else "FAIL", entropy))
    print()
    print(f"{'block':<6} {'scheme':<12} {'vectors':>8} {'clocks':>8} {'pass':>5} "
          f"{'8x8 entropy (bits/weight)':>26}")
    for block, scheme, vectors, clocks, ok, entropy in rows:
        print(f"{block:<6} {scheme:<12} {vectors:>8} {clocks!s:>8} {ok:>5} {entropy:>26}")
    # The whole decoder: FC1 compressed by the codec, decoded on the RTL decompressor,
    # compared with the golden decoder (inside the simulation, sample by sample, and
    # here on the dequantized matrix).
    print("\nFC1 through the codec and the RTL decompressor "
          f"({args.sim}, decompressor built for 256x256):")
    print(f"{'quality':>7} {'clusters':>8} {'remap':<12} {'bytes':>6} {'ratio':>7} "
          f"{'clocks':>7} {'clk/weight':>10} {'pass':>5}")
    for settings in [codec.Settings(quality=90, clusters=0, remap="none"),
                     codec.Settings(quality=75, clusters=16, remap="full", budget=8),
                     codec.Settings(quality=50, clusters=16, remap="auto", budget=8)]:
        packed = codec.compress_matrix(weights, settings)
        golden_w = codec.decompress_matrix(packed.data)
        try:
            rtl_w, stats = rtl_decode(packed.data, raw=False, sim=args.sim,
                                      shape=DecompressorShape(256, 256))
            ok = bool(np.array_equal(rtl_w, golden_w))
        except (RtlMismatch, CimcodecError) as e:
            print(e, file=sys.stderr)
            ok, stats = False, {"clocks": "-", "clocks_per_weight": "-"}
        failed |= not ok
        rows.append(("decompressor", settings.remap, weights.size, stats["clocks"],
                     "PASS" if ok else "FAIL", "-"))
        scheme = packed.header.remap.scheme.value
        print(f"{settings.quality:>7} {settings.clusters:>8} {scheme:<12} "
              f"{len(packed.data):>6} {packed.ratio:>6.2f}x {stats['clocks']!s:>7} "
              f"{stats['clocks_per_weight']!s:>10} {'PASS' if ok else 'FAIL':>5}")

    ok = _tile(args.sim)
    failed |= not ok
    rows.append(("tile", "mlp", DEMO_IMAGES, "-", "PASS" if ok else "FAIL", "-"))

    print(f"\n{sum(r[4] == 'PASS' for r in rows)} passed, {sum(r[4] == 'FAIL' for r in rows)} "
          f"failed ({args.sim}, {time.time() - t0:.1f} s)")
    return 1 if failed else 0


def _tile(sim: str) -> bool:
    """The digits MLP fine-tuned for the accelerator tile's macros, its integer network
    in a model container, and the first test images classified on the RTL tile, every
    tile job checked against the golden tile. Returns whether the RTL matched."""
    from cimcodec.golden.blocks.tile import TileShape
    from cimcodec.golden.ml import tile_net
    from cimcodec.golden.ml.datasets import load
    from cimcodec.golden.ml.models import train
    from cimcodec.sim.cocotb_run import RtlMismatch
    from cimcodec.sim.rtl import rtl_network

    shape = TileShape()
    model, _ = train("mlp", "digits", cache_dir=cimcodec.home() / "cache")
    dataset = load("digits")
    data, _ = tile_net.export_network(model, dataset, shape, net="mlp", data="digits",
                                      settings={"quality": 90, "remap": "full", "budget": 8})
    net = tile_net.load(data)
    acts, labels, fp32 = tile_net.held_out_images(net, dataset)
    _, whole = tile_net.golden_run(net, shape, acts, labels, fp32)
    n = DEMO_IMAGES
    print(f"\nThe digits MLP 64-16-10 on the RTL accelerator tile ({sim}): {shape.rows} x "
          f"{shape.cols} CIM array with a {shape.adc_bits}-bit ADC, decompressor for "
          f"{shape.max_rows} x {shape.max_cols}; integer network in a {len(data)}-byte model "
          f"container (JPEG weight members, {net.file_bytes} bytes for "
          f"{sum(layer.inputs * layer.outputs for layer in net.layers)} weights)")
    print(f"{'images':>7} {'fp32':>7} {'golden':>7} {'RTL':>7} {'RTL == golden':>14} "
          f"{'clk/image':>10} {'load':>8} {'MAC':>6}")
    acc = whole["accuracy"]
    print(f"{whole['images']:>7} {acc['fp32']:>7.4f} {acc['golden']:>7.4f} {'-':>7} "
          f"{'-':>14} {'-':>10} {'-':>8} {'-':>6}")
    try:
        stats = rtl_network(data, acts[:n], labels[:n], fp32[:n], shape, sim)
    except RtlMismatch as e:
        print(e, file=sys.stderr)
        return False
    acc = stats["accuracy"]
    print(f"{n:>7} {acc['fp32']:>7.4f} {acc['golden']:>7.4f} {acc['rtl']:>7.4f} "
          f"{'PASS':>14} {stats['clocks_per_image']:>10.1f} "
          f"{stats['load_clocks_per_image']:>8.1f} {stats['mac_clocks_per_image']:>6.1f}")
    print(f"(RTL == golden: the status and outputs of all {stats['jobs']} tile jobs and every "
          f"logit, bit for bit; {stats['loads']} array loads, each decoding its layer's "
          f"whole member)")
    return True


def register(sub) -> None:
    d = sub.add_parser("demo", help="a digits MLP through the remap, the decompressor and the "
                                     "accelerator tile on the RTL")
    cli.simulator_option(d)
    d.add_argument("--hidden", type=cli.positive, default=128,
                   help="hidden units of the MLP whose FC1 the remap and decompressor runs "
                        "use (default 128)")
    d.set_defaults(func=cmd_demo)
