"""The RTL accelerator tile (:class:`hw.tile.Tile`) against its golden model on Icarus
and Verilator: one tile, a layer of 2 x 2 tiles, windows at the matrix edge, random
stalls on every stream, damaged containers (the error reported, no weight written,
the tile working again after reset). Every program runs in one simulation per
simulator, on the build the demo and ``rtl-infer`` use; a tile with two decoder lanes
and row writes gets a build of its own, and the weight adapter alone runs in the
Amaranth simulator."""

import numpy as np
import pytest

from cimcodec.golden.blocks import decompressor as gd
from cimcodec.golden.blocks.tile import Clamp, TileJob, TileModel, TileParams, TileShape
from cimcodec.golden.codec import pipeline as codec
from cimcodec.golden.ml import tile_net
from cimcodec.hw.tile import WeightAdapter
from cimcodec.sim.amaranth_sim import run_testbench
from cimcodec.sim.cocotb_run import run_jobs
from cimcodec.tb import tile as tb

SHAPE = TileShape()
REQUANT = {"relu": True, "clamp": Clamp.UINT8, "multiplier": 40_000, "shift": 26}


def _matrix_file(rng, k, n, remap, lanes=1):
    w = rng.integers(-128, 128, (k, n)).astype(np.int8)
    data = codec.compress_matrix(w, quality=85, remap=remap, budget=2, exact_int8=False,
                                 lanes=lanes).data
    return data, codec.decompress_matrix(data, integer=True).astype(np.int64)


def _layer_jobs(rng, k, n, vectors, remap="full", shape=SHAPE):
    """The host's jobs for one random ``k x n`` layer, and the layer's numpy result with
    the 4-bit ADC of 16-row slices."""
    file, w = _matrix_file(rng, k, n, remap, shape.lanes)
    bias = rng.integers(-30_000, 30_000, n)
    layer = tile_net.TileLayer("net.0", file, k, n, bias, REQUANT["multiplier"],
                               REQUANT["shift"], True, Clamp.UINT8)
    net = tile_net.TileNet("test", "digits", 16, 4, 4, 256, 256, 1 / 255, (layer,),
                           np.zeros(0, np.int64))
    x = rng.integers(0, 256, (vectors, k))
    jobs = next(tile_net.Host(net, shape).steps(x))
    return jobs, tile_net.golden_logits(net, shape, x)[0]


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


def _golden(steps, shape=SHAPE):
    """The golden outcomes of a program (``None``: reset)."""
    tile, out = TileModel(shape), []
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


LANES = TileShape(lanes=2, writes_per_clock=4)


def test_rtl_tile_with_lanes_and_row_writes_matches_golden(simulator):
    """A tile whose decompressor has two lanes (files coded with restart intervals for
    them) and whose array takes a whole row (4 weights) per write: a layer of 2 x 2
    tiles with stalls, a window at the edge of a remapped matrix, and a file damaged
    near its end, against the golden model."""
    rng = np.random.default_rng(23)
    layer, layer_y = _layer_jobs(rng, 32, 8, 4, shape=LANES)
    edge, edge_y = _layer_jobs(rng, 21, 6, 3, shape=LANES)
    good, _ = _matrix_file(rng, 16, 4, "none", lanes=2)
    lanes = gd.expected_lanes(good, LANES.decompressor).samples
    assert [len(samples) for samples in lanes] == [32, 32]      # an 8 x 8 block each
    scan = _damage(good, len(good) - 12)
    assert gd.expected(scan, LANES.decompressor).error
    single = TileJob(TileParams(bias=(7, -300, 900, 0), **REQUANT), good,
                     rng.integers(0, 256, (3, 16)))
    damaged = [single, TileJob(single.params, scan, single.acts), None, single]
    cases = {"layer": (layer, 5), "edge": (edge, None), "damaged": (damaged, 11),
             "single": ([single], None)}
    programs = [tb.program(steps, seed) for steps, seed in cases.values()]
    results = dict(zip(cases, run_jobs(tb.BENCH, LANES, programs, simulator)))
    for name, (steps, _) in cases.items():
        got, want = results[name]["outcomes"], _golden(steps, LANES)
        assert len(got) == len(want), name
        for k, (g, w) in enumerate(zip(got, want)):
            assert (bool(g["error"]), g["written"]) == (bool(w.error), w.written), (name, k)
            if w.outputs is None:
                assert g["outputs"] is None, (name, k)
            else:
                np.testing.assert_array_equal(g["outputs"], w.outputs, err_msg=f"{name} {k}")
    for name, want in (("layer", layer_y), ("edge", edge_y)):
        blocks = [o["outputs"] for o in results[name]["outcomes"][:4] if o["outputs"]]
        np.testing.assert_array_equal(np.concatenate(blocks, axis=1)[:, :want.shape[1]],
                                      want[:, :want.shape[1]], err_msg=name)
    first, failed, after = results["damaged"]["outcomes"]
    assert failed["error"] and failed["written"] == 0 and after == first
    assert first["written"] == 64


@pytest.mark.parametrize("lanes,width", [(1, 1), (2, 4), (4, 2)])
def test_adapter_stages_lanes_and_copies_w_cells_per_clock(lanes, width):
    """The weight adapter alone (Amaranth simulation): samples from every lane, inside
    and outside the window (first the lanes writing the cells of one word in one beat),
    beats with ``i.valid`` low whose slots must be ignored, then the copy: ``R * C / W``
    writes, each the staged weights of its ``W`` cells (0 where no sample came), on
    consecutive clocks while ``w.ready`` is high, held while it is low."""
    shape = TileShape(lanes=lanes, writes_per_clock=width)
    dut = WeightAdapter(shape)
    rows, cols = shape.rows, shape.cols
    rng = np.random.default_rng(lanes * 10 + width)
    row0, col0 = 3, 5
    # Distinct positions around the window; the first beat fills one word's cells.
    spots = [(r, c) for r in range(row0 - 2, row0 + rows + 2)
             for c in range(col0 - 1, col0 + cols + 1)]
    word = [(row0 + 1, col0 + j) for j in range(min(lanes, width))]
    rest = [spots[k] for k in rng.permutation(len(spots)) if spots[k] not in word]
    picks = word + rest[:len(spots) * 3 // 4]
    samples = [(r, c, int(rng.integers(0, 256))) for r, c in picks]
    # The ignored slots point at a window cell no sample reaches (it must stay 0).
    spare = next((r, c) for r, c in spots if (r, c) not in picks
                 and 0 <= r - row0 < rows and 0 <= c - col0 < cols)
    want = np.zeros((rows, cols), np.int64)
    for r, c, v in samples:
        if 0 <= r - row0 < rows and 0 <= c - col0 < cols:
            want[r - row0, c - col0] = v - 128
    got = np.full((rows, cols), 999, np.int64)
    clocks, gaps = [], []

    def slot(b):
        return {"valid": int(b is not None), "row": b[0] if b else row0,
                "col": b[1] if b else col0, "sample": b[2] if b else 0}

    async def bench(ctx):
        ctx.set(dut.row0, row0)
        ctx.set(dut.col0, col0)
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        queue = list(samples)
        first = True
        while queue:
            if not first and rng.random() < 0.2:
                # ``i.valid`` low: a slot that says valid, inside the window, ignored.
                ctx.set(dut.i.valid, 0)
                junk = [slot((*spare, 7))] * lanes
                ctx.set(dut.i.payload, junk if lanes > 1 else
                        {k: junk[0][k] for k in ("row", "col", "sample")})
                await ctx.tick()
                continue
            count = len(word) if first else lanes
            beat = [queue.pop(0) if queue and k < count and (first or rng.random() < 0.8)
                    else None for k in range(lanes)]
            first = False
            slots = [slot(b) for b in beat]
            if lanes == 1:
                ctx.set(dut.i.valid, int(beat[0] is not None))
                ctx.set(dut.i.payload, {k: slots[0][k] for k in ("row", "col", "sample")})
            else:
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload, slots)
            await ctx.tick()
        ctx.set(dut.i.valid, 0)
        ctx.set(dut.copy, 1)
        await ctx.tick()
        ctx.set(dut.copy, 0)
        clock, seen = 0, None
        while ctx.get(dut.busy):
            ready = int(rng.random() < 0.7)
            ctx.set(dut.w.ready, ready)
            if ready and not ctx.get(dut.w.valid):
                gaps.append(clock)
            if ctx.get(dut.w.valid):
                payload = ctx.get(dut.w.payload)
                values = [payload.weight] if width == 1 else list(payload.weight)
                item = (int(payload.row), int(payload.col), [int(v) for v in values])
                assert seen is None or seen == item      # held while not taken
                seen = item
                if ready:
                    clocks.append(clock)
                    for j, v in enumerate(values):
                        got[payload.row, payload.col + j] = v
                    seen = None
            await ctx.tick()
            clock += 1
            assert clock < 1000

    run_testbench(dut, bench)
    np.testing.assert_array_equal(got, want)
    assert len(clocks) == rows * cols // width
    # No clock with ``w.ready`` high goes without a write between the first and the last.
    assert not [g for g in gaps if clocks[0] < g < clocks[-1]], gaps
