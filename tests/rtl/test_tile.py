"""The RTL accelerator tile (:class:`hw.tile.Tile`) against its golden model on Icarus
and Verilator: one tile, a layer of 2 x 2 tiles, windows at the matrix edge, random
stalls on every stream, damaged containers (the error reported, no weight written,
the tile working again after reset). Every program runs in one simulation per
simulator, on the build the demo and ``rtl-infer`` use."""

import numpy as np

from cimcodec.golden.blocks import decompressor as gd
from cimcodec.golden.blocks.tile import Clamp, TileJob, TileModel, TileParams, TileShape
from cimcodec.golden.codec import pipeline as codec
from cimcodec.golden.ml import tile_net
from cimcodec.sim.cocotb_run import run_jobs
from cimcodec.tb import tile as tb

SHAPE = TileShape()
REQUANT = {"relu": True, "clamp": Clamp.UINT8, "multiplier": 40_000, "shift": 26}


def _matrix_file(rng, k, n, remap):
    w = rng.integers(-128, 128, (k, n)).astype(np.int8)
    data = codec.compress_matrix(w, quality=85, remap=remap, budget=2, exact_int8=False).data
    return data, codec.decompress_matrix(data, integer=True).astype(np.int64)


def _layer_jobs(rng, k, n, vectors, remap="full"):
    """The host's jobs for one random ``k x n`` layer, and the layer's numpy result with
    the 4-bit ADC of 16-row slices."""
    file, w = _matrix_file(rng, k, n, remap)
    bias = rng.integers(-30_000, 30_000, n)
    layer = tile_net.TileLayer("net.0", file, k, n, bias, REQUANT["multiplier"],
                               REQUANT["shift"], True, Clamp.UINT8)
    net = tile_net.TileNet("test", "digits", 16, 4, 4, 256, 256, 1 / 255, (layer,),
                           np.zeros(0, np.int64))
    x = rng.integers(0, 256, (vectors, k))
    jobs = next(tile_net.Host(net, SHAPE).steps(x))
    return jobs, tile_net.golden_logits(net, SHAPE, x)[0]


def _damage(data, where, xor=0x55):
    bad = bytearray(data)
    bad[where] ^= xor
    return bytes(bad)


def _cases():
    rng = np.random.default_rng(17)
    single_file, _ = _matrix_file(rng, 16, 4, "none")
    # Damage in the scan (the CRC or a decode stage finds it) and in a header (DQT's
    # length: the marker parser's code).
    scan = _damage(single_file, len(single_file) - 12)
    dqt = single_file.index(b"\xff\xdb") + 3
    header = _damage(single_file, dqt, 0x40)
    single = TileJob(TileParams(bias=(100, -2000, 3000, 0), **REQUANT), single_file,
                     rng.integers(0, 256, (6, 16)))
    two_by_two, two_by_two_y = _layer_jobs(rng, 32, 8, 5)
    edge, edge_y = _layer_jobs(rng, 21, 6, 3)
    # The last window once more, on the weights it loaded (load = 0).
    reuse = [TileJob(TileParams(load=False, row0=j.params.row0, col0=j.params.col0,
                                first=True, last=True), None, j.acts) for j in edge[-1:]]
    # Each damaged file between two good loads: the second load follows a reset.
    damaged = [single, TileJob(single.params, scan, single.acts[:2]), None, single,
               TileJob(single.params, header, single.acts[:2]), None, single]
    cases = {
        "single": ([single], None),
        "2x2": (two_by_two, None),
        "edge": (edge + reuse, None),
        "2x2 stalls": (two_by_two, 7),
        "damaged": (damaged, 9),
    }
    numpy = {"2x2 stalls": two_by_two_y, "edge": edge_y}
    return cases, numpy, (scan, header), len(single_file)


def _golden(steps):
    """The golden outcomes of a program (``None``: reset)."""
    tile, out = TileModel(SHAPE), []
    for step in steps:
        if step is None:
            tile.reset()
            continue
        out.append(tile.run(step))
    return out


def test_rtl_tile_matches_golden(simulator):
    """Every program on Verilator; on Icarus, several times slower per clock, the 2 x 2
    layer only with stalls (the same jobs, the same outcomes)."""
    cases, numpy, bad_files, file_bytes = _cases()
    if simulator == "icarus":
        del cases["2x2"]
    programs = [tb.program(steps, seed) for steps, seed in cases.values()]
    results = dict(zip(cases, run_jobs(tb.BENCH, SHAPE, programs, simulator)))
    for name, (steps, _) in cases.items():
        got = results[name]["outcomes"]
        want = _golden(steps)
        assert len(got) == len(want), name
        for k, (g, w) in enumerate(zip(got, want)):
            assert bool(g["error"]) == bool(w.error), (name, k)
            assert g["written"] == w.written, (name, k)
            if w.outputs is None:
                assert g["outputs"] is None, (name, k)
            else:
                np.testing.assert_array_equal(g["outputs"], w.outputs, err_msg=f"{name} {k}")
        assert results[name]["load_clocks"] > 0
    # The layers of several tiles, gathered, are the layer computed as a whole.
    for name, want in numpy.items():
        blocks = [o["outputs"] for o in results[name]["outcomes"][:4] if o["outputs"]]
        layer = np.concatenate(blocks, axis=1)[:, :want.shape[1]]
        np.testing.assert_array_equal(layer, want, err_msg=name)
    # A damaged file: the error, no weight written, nothing after it until the reset,
    # then the same job as the first one gives the same outputs.
    first, scan, after_scan, header, after_header = results["damaged"]["outcomes"]
    for failed, bad in zip((scan, header), bad_files):
        assert gd.expected(bad, SHAPE.decompressor).error
        assert failed["error"] and failed["written"] == 0 and failed["outputs"] is None
    assert header["error"] == gd.Error.LENGTH           # exact for damage before the scan
    assert after_scan == after_header == first and first["written"] == 64
    # Without stalls: the file at up to a byte per clock, the Huffman decoder's table
    # copy and fast-table fill, the decompressor's fill (its two padded 8x8 blocks,
    # about 300 clocks on this small file), the 64-cell copy; then the array's clocks
    # per vector (8 at the tile's default 8 planes per clock).
    clocks = results["single"]
    load, mac = clocks["load_clocks"], clocks["clocks"] - clocks["load_clocks"]
    vectors = len(cases["single"][0][0].acts)
    fill = gd.HUFFMAN_SHAPE.max_start_clocks
    assert file_bytes + 64 <= load <= file_bytes + fill + 2 * 64 + 64 + 300, load
    per_vector = SHAPE.cim.clocks_per_vector
    assert SHAPE.cim.planes_per_clock == 8 and per_vector == 8
    assert per_vector * vectors <= mac <= per_vector * vectors + 20, mac
