"""``cimcodec verilog / synth``: every top hardware block as Verilog, and its FPGA
figures."""

from __future__ import annotations

from pathlib import Path

from cimcodec.golden.errors import CimcodecError
from cimcodec.sim.cli import args as cli

BLOCKS = ("lfsr", "remap", "markers", "huffman", "coef", "idct", "decompressor", "jpeg", "cim")


def blocks(args) -> dict:
    """name -> (component factory, elaboration parameters) of the top blocks chosen."""
    from cimcodec.golden.blocks.cim import CimParams
    from cimcodec.golden.blocks.coef import CoefShape
    from cimcodec.golden.blocks.decompressor import HUFFMAN_SHAPE, DecompressorShape
    from cimcodec.golden.blocks.idct import IdctShape
    from cimcodec.golden.blocks.lfsr import GeneratorShape
    from cimcodec.golden.blocks.markers import MarkerShape
    from cimcodec.golden.blocks.remap import RemapShape
    from cimcodec.hw.cim import CimArray
    from cimcodec.hw.coef import CoefDecoder
    from cimcodec.hw.decompressor import Decompressor
    from cimcodec.hw.huffman import HuffmanDecoder
    from cimcodec.hw.idct import Idct
    from cimcodec.hw.lfsr import ControlWordGenerator
    from cimcodec.hw.markers import MarkerParser
    from cimcodec.hw.remap import RemapEngine

    table = {"lfsr": (ControlWordGenerator, GeneratorShape()),
             "remap": (RemapEngine, RemapShape()),
             "markers": (MarkerParser, MarkerShape()),
             "huffman": (HuffmanDecoder, HUFFMAN_SHAPE),
             "coef": (CoefDecoder, CoefShape()),
             "idct": (Idct, IdctShape()),
             "decompressor": (Decompressor, DecompressorShape(
                 lanes=args.lanes, in_bytes=args.in_bytes, dsp_lanes=args.dsp_lanes,
                 idct_share=args.idct_share)),
             # The decompressor without the container hardware: a plain baseline JPEG
             # decoder, the counterpart of core_jpeg in docs/results.md.
             "jpeg": (Decompressor, DecompressorShape(
                 container=False, lanes=args.lanes, in_bytes=args.in_bytes,
                 dsp_lanes=args.dsp_lanes, idct_share=args.idct_share)),
             "cim": (CimArray, CimParams(args.cim_rows, args.cim_cols, args.cim_adc_bits,
                                         planes_per_clock=args.cim_planes,
                                         writes_per_clock=args.cim_writes))}
    return {name: table[name] for name in (args.block or BLOCKS)}


def cmd_verilog(args) -> int:
    """Write one Verilog file per top block and lint each with Verilator."""
    from cimcodec.sim.verilog import elaborate, lint

    chosen = blocks(args)                         # checks the parameters first
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise CimcodecError(f"{out_dir} exists and is not a directory.")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, (factory, params) in chosen.items():
        target = out_dir / f"{name}.v"
        cli.write_bytes(str(target), elaborate(name, factory, params).read_bytes())
        lint(target, name)
        print(f"{target}: {params} (verilator --lint-only: clean)")
    return 0


def report(result: dict, options: dict) -> dict:
    """The JSON report of one block's synthesis: its ECP5-85k cells (LUT4, CCU2C, FF,
    DP16KD, MULT18, distributed RAM), its post-route Fmax (``None`` without place and
    route), the placer and seed that placed it (``None`` without), the elaboration
    parameters and the command's build options."""
    cells = result["ecp5_cells"]
    return {
        "block": result["block"],
        "device": "ECP5-85k (LFE5U-85F CABGA381)",
        "lut4": cells.get("LUT4", 0),
        "ccu2c": cells.get("CCU2C", 0),
        "lut4_ccu2c": cells.get("LUT4", 0) + cells.get("CCU2C", 0),
        "ff": cells.get("TRELLIS_FF", 0),
        "dp16kd": cells.get("DP16KD", 0),
        "mult18": cells.get("MULT18X18D", 0),
        "dpr16x4": cells.get("TRELLIS_DPR16X4", 0),
        "fmax_mhz": result["fmax_mhz"],
        "mapper": result.get("ecp5_mapper"),
        "placer": result.get("placer"),
        "seed": result.get("seed"),
        "params": result["params"],
        "options": options,
    }


def cmd_synth(args) -> int:
    """Synthesise the blocks for ECP5-85k and iCE40, print a table and write one JSON
    report per block (:func:`report`) to ``--report``."""
    import json

    from tqdm import tqdm

    from cimcodec.sim.synth import ECP5_COLUMNS, ICE40_COLUMNS, ice40_ffs, synthesize
    from cimcodec.sim.verilog import build_dir

    chosen = blocks(args)                         # checks the parameters first
    out_dir = Path(args.report) if args.report else build_dir() / "synth" / "reports"
    if out_dir.exists() and not out_dir.is_dir():
        raise CimcodecError(f"{out_dir} exists and is not a directory.")
    out_dir.mkdir(parents=True, exist_ok=True)
    options = {"pnr": not args.no_pnr, "cim_rows": args.cim_rows, "cim_cols": args.cim_cols,
               "cim_adc_bits": args.cim_adc_bits, "cim_planes": args.cim_planes,
               "cim_writes": args.cim_writes, "lanes": args.lanes,
               "in_bytes": args.in_bytes, "dsp_lanes": args.dsp_lanes,
               "idct_share": args.idct_share, "placer": args.placer,
               "seed": args.seed, "ice40": not args.no_ice40}
    results = []
    for name, (factory, params) in tqdm(chosen.items(), desc="synthesis", unit="block"):
        result = synthesize(name, factory, params, pnr=not args.no_pnr, placer=args.placer,
                            seed=args.seed, ice40=not args.no_ice40)
        results.append(result)
        target = out_dir / f"{name}.json"
        cli.write_bytes(str(target), (json.dumps(report(result, options), indent=1)
                                      + "\n").encode())
    head = ["block", *ECP5_COLUMNS, "Fmax MHz", "|", *ICE40_COLUMNS, "SB_DFF*"]
    print(" ".join(f"{h:>10}" for h in head))
    for r in results:
        ecp5, ice40 = r["ecp5_cells"], r["ice40_cells"]
        ice40_row = ([ice40.get(c, 0) for c in ICE40_COLUMNS] + [ice40_ffs(ice40)]
                     if "ice40_error" not in r else ["-"] * (len(ICE40_COLUMNS) + 1))
        row = [r["block"], *(ecp5.get(c, 0) for c in ECP5_COLUMNS),
               r["fmax_mhz"] if r["fmax_mhz"] is not None else "-", "|", *ice40_row]
        print(" ".join(f"{v!s:>10}" for v in row))
    for r in results:
        print(f"{r['block']}: {r['params']}")
        if "ice40_error" in r:
            print(f"{r['block']}: no iCE40 figures: {r['ice40_error']}")
    print(f"JSON reports in {out_dir}")
    return 0


def _block_options(p) -> None:
    from cimcodec.golden.blocks.cim import CimParams

    planes = CimParams.__dataclass_fields__["planes_per_clock"].default
    p.add_argument("--block", action="append", choices=BLOCKS,
                   help="a top block (repeatable; default all)")
    p.add_argument("--cim-rows", type=cli.positive, default=64,
                   help="CIM array rows (default 64)")
    p.add_argument("--cim-cols", type=cli.positive, default=16,
                   help="CIM array columns (default 16)")
    p.add_argument("--cim-adc-bits", type=cli.positive, default=5,
                   help="CIM ADC bits (default 5)")
    p.add_argument("--cim-planes", type=cli.positive, default=planes,
                   help=f"CIM weight planes per clock: 1, 2, 4 or 8 (default {planes})")
    p.add_argument("--cim-writes", type=cli.positive, default=1,
                   help="CIM weights per write (adjacent cells of a row): a power of two "
                        "that divides --cim-cols (default 1)")
    p.add_argument("--lanes", type=cli.positive, default=1,
                   help="decoder lanes of the decompressor and jpeg blocks: 1, 2, 4 or 8 "
                        "(default 1)")
    p.add_argument("--in-bytes", type=cli.positive, default=1,
                   help="file bytes per input beat of the decompressor and jpeg blocks: 1, "
                        "2, 4 or 8 (default 1; more lets entropy-coded beats past the "
                        "marker parser)")
    p.add_argument("--dsp-lanes", type=cli.integer, default=None, metavar="N",
                   help="lanes (the first N) whose IDCT constant products use DSP "
                        "multipliers, the others logic (default: all; 8 lanes fit an "
                        "ECP5-85k's 156 multipliers with at most 5)")
    p.add_argument("--idct-share", type=cli.positive, default=1, metavar="N",
                   help="lanes per IDCT butterfly: 1, 2 or 4, dividing --lanes (default 1; at "
                        "2 no lane waits for it)")


def register(sub) -> None:
    v = sub.add_parser("verilog", help="write <dir>/<block>.v for every block and lint each")
    v.add_argument("-o", "--output", default="build/verilog",
                   help="output directory (default build/verilog)")
    _block_options(v)
    v.set_defaults(func=cmd_verilog)

    s = sub.add_parser("synth", help="ECP5-85k / iCE40 cell counts and ECP5 Fmax")
    s.add_argument("--no-pnr", action="store_true", help="cell counts only, no place & route")
    s.add_argument("--no-ice40", action="store_true",
                   help="ECP5 only: leave out the iCE40 cell counts (the multi-lane "
                        "decompressors fit no iCE40, and their iCE40 run is long)")
    s.add_argument("--placer", choices=("heap", "static"), default=None,  # = synth.PLACERS
                   help="nextpnr placer (default: static for the cim block, heap for "
                        "the others)")
    s.add_argument("--seed", type=cli.positive, default=1,
                   help="nextpnr placement seed (default 1); another seed of a block "
                        "synthesised before only places and routes again")
    s.add_argument("--report", metavar="DIR",
                   help="directory of the JSON reports, one <block>.json per block "
                        "(default $CIMCODEC_HOME/synth/reports)")
    _block_options(s)
    s.set_defaults(func=cmd_synth)
