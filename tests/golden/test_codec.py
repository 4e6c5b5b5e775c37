"""The codec end to end, the vectorized JPEG twin against the golden one, the remap
search, the Huffman payload against the symbol entropy, and the data loaders."""

import gzip
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cimcodec.golden.blocks.remap import RemapParams
from cimcodec.golden.codec import chunks, kmeans, quant, search
from cimcodec.golden.codec import pipeline as codec
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg import fast as jpeg_fast
from cimcodec.golden.jpeg import reference as jpeg
from cimcodec.golden.ml import datasets
from cimcodec.golden.ml.models import MLP, train_digits_net

RNG = np.random.default_rng(21)
W = RNG.normal(0, 0.05, (45, 70)).astype(np.float32)


@pytest.mark.parametrize("options", [
    {}, {"clusters": 16}, {"clusters": 6, "remap": "full"},
    {"clusters": 8, "remap": "split", "per_channel": True, "symmetric": False},
    {"remap": "progressive", "quality": 100},
])
def test_round_trip(options):
    c = codec.compress_matrix(W, **options)
    w = codec.decompress_matrix(c.data)
    assert w.shape == W.shape and w.dtype == np.float32
    assert np.sqrt(np.mean((w - W) ** 2)) < 0.5 * np.sqrt(np.mean(W ** 2))
    if options.get("clusters"):
        q = codec.decompress_matrix(c.data, integer=True)
        assert set(np.unique(q).tolist()) <= set(c.header.levels.tolist())


def test_quality_100_without_sharing_is_nearly_lossless():
    q, params = quant.quantize(W)
    c = codec.compress_matrix(q, quality=100)
    assert np.abs(codec.decompress_matrix(c.data, integer=True).astype(int) - q).max() <= 1


@pytest.mark.parametrize("remap", ["none", "full", "split", "progressive"])
def test_snap_table_restores_sharing_exactly(remap):
    q = quant.quantize(W)[0]
    shared = kmeans.optimal(q, 8).share(q)
    c = codec.compress_matrix(W, clusters=8, quality=100, remap=remap)
    assert (codec.decompress_matrix(c.data, integer=True) == shared).all()


def test_conv_tensor_keeps_its_shape():
    w4 = RNG.normal(0, 0.1, (6, 3, 5, 5)).astype(np.float32)
    c = codec.compress_matrix(w4, clusters=4)
    assert codec.decompress_matrix(c.data).shape == (6, 3, 5, 5)


def test_state_dict_round_trip_and_ratio():
    torch.manual_seed(0)
    model = MLP((64, 32, 10))
    state = model.state_dict()
    files = codec.compress_state_dict(state, clusters=16, quality=90)
    assert set(files) == {"net.0.weight", "net.2.weight"}
    out = codec.decompress_state_dict(files, state)
    model.load_state_dict(out)
    report = codec.ratio_report(state, files)
    assert report["bytes"] == sum(len(c.data) for c in files.values()) + 4 * (32 + 10)
    with pytest.raises(CimcodecError, match="no tensor named 'fc9'"):
        codec.select_layers(state, names=["fc9"])


def _pillow(samples, **kw):
    buf = io.BytesIO()
    Image.fromarray(samples).save(buf, "JPEG", **kw)
    return buf.getvalue()


def test_fast_encoder_is_byte_identical_and_fast_decoder_equal():
    images = [RNG.integers(0, 256, (37, 53), dtype=np.uint8),
              np.clip(RNG.normal(128, 9, (136, 200)), 0, 255).astype(np.uint8),
              np.full((9, 17), 7, np.uint8)]
    for im in images:
        for quality in (5, 50, 90, 100):
            for restart in (0, 1, 5):
                for optimize in (True, False):
                    a = jpeg.encode(im, quality=quality, restart_interval=restart,
                                    optimize=optimize)
                    assert jpeg_fast.encode(im, quality=quality, restart_interval=restart,
                                            optimize=optimize) == a
                    assert (jpeg_fast.decode(a) == jpeg.decode(a)).all()
        for kw in ({"quality": 30, "restart_marker_blocks": 2}, {"quality": 95, "optimize": True},
                   {"qtables": [list(range(1, 65))], "restart_marker_rows": 1}):
            data = _pillow(im, **kw)
            assert (jpeg_fast.decode(data) == np.asarray(Image.open(io.BytesIO(data)))).all()


def test_fast_encoder_pieces_equal_the_reference():
    """The encoder codes whole restart intervals a piece at a time; any piece size gives
    the golden encoder's bytes, pieces starting mid-row included."""
    im = np.clip(RNG.normal(128, 12, (83, 205)), 0, 255).astype(np.uint8)   # 11 x 26 blocks
    for restart, optimize in ((5, True), (7, False), (0, True)):
        want = jpeg.encode(im, quality=80, restart_interval=restart, optimize=optimize)
        for chunk in (1, 12, 30, 10 ** 6):
            assert jpeg_fast.encode(im, quality=80, restart_interval=restart,
                                    optimize=optimize, chunk_blocks=chunk) == want


def test_fast_decoder_lane_groups_equal_the_golden_decoder(monkeypatch):
    """The fast path itself (no fallback) in groups of 2 lanes gives the golden
    coefficients and Pillow's samples."""
    im = np.clip(RNG.normal(128, 12, (83, 205)), 0, 255).astype(np.uint8)
    data = jpeg.encode(im, quality=80, restart_interval=5)
    golden = jpeg.decode_full(data)
    for blocks in (12, 10 ** 6):
        monkeypatch.setattr(jpeg_fast, "DECODE_BLOCKS", blocks)
        fast = jpeg_fast._fast(data)
        assert (fast.coefficients == golden.coefficients).all()
        assert (fast.samples == np.asarray(Image.open(io.BytesIO(data)))).all()
        assert (jpeg_fast._fast(data, coefficients=False).samples == golden.samples).all()


def test_pieces_do_not_change_the_file_or_the_weights(monkeypatch):
    """A matrix with restart intervals, coded with tiny pieces everywhere (quantization
    and dequantization rows, k-means histogram, remap strips, encoder intervals, decoder
    lane groups), gives the bytes and the weights of the default pieces."""
    w = RNG.normal(0, 0.05, (1030, 1100)).astype(np.float32)   # 129 x 138 = 17802 blocks
    cases = ({}, {"clusters": 12, "remap": "full", "seeds": (9,), "per_channel": True,
                  "quality": 75})
    whole = []
    for options in cases:
        c = codec.compress_matrix(w, **options)
        assert jpeg_fast.decode_full(c.data).restart_interval == 9
        whole.append((c, codec.decompress_matrix(c.data),
                      codec.decompress_matrix(c.data, integer=True)))
    monkeypatch.setattr(jpeg_fast, "ENCODE_BLOCKS", 40)
    monkeypatch.setattr(jpeg_fast, "DECODE_BLOCKS", 2000)
    monkeypatch.setattr(chunks, "ELEMENTS", 1000)
    monkeypatch.setattr(search, "REMAP_ROWS", 24)
    for options, (c, weights, integer) in zip(cases, whole):
        small = codec.compress_matrix(w, **options)
        assert small.data == c.data
        assert (small.entropy_before, small.entropy_after) == (c.entropy_before,
                                                               c.entropy_after)
        assert np.array_equal(codec.decompress_matrix(c.data), weights)
        assert np.array_equal(codec.decompress_matrix(c.data, integer=True), integer)


def test_fast_decoder_gives_the_golden_error():
    data = jpeg.encode(np.clip(RNG.normal(128, 9, (64, 64)), 0, 255).astype(np.uint8),
                       restart_interval=2)
    cut = data[:len(data) // 2] + data[-2:]
    with pytest.raises(CimcodecError) as fast:
        jpeg_fast.decode(cut)
    with pytest.raises(CimcodecError) as golden:
        jpeg.decode(cut)
    assert str(fast.value) == str(golden.value)


def test_batch_tables_equal_the_remap_params():
    s = quant.to_samples(quant.quantize(W)[0])
    for scheme in ("full", "split", "progressive"):
        template = RemapParams(45, 70, scheme)
        seeds = search.candidate_seeds(template, 6)
        a, b = search.batch_tables(template, seeds)
        for i, row in enumerate(seeds):
            params = RemapParams(45, 70, scheme, tuple(int(x) for x in row))
            assert (search.remap_with_tables(params.pad(s), a[i], b[i]) == params.remap(s)).all()
    best = search.search(s, "auto", budget=4)
    none = search.block_entropy(RemapParams(45, 70, "none").pad(s))
    assert best.entropy <= none
    base = search.sorted_baseline(s)
    assert base.side_bytes == 45 * 6 // 8 + 1 + 70 * 7 // 8 + 1


@pytest.fixture(scope="module")
def mlp2():
    return train_digits_net("mlp2", epochs=30, cache_dir=Path("build/cache"))[0]


def test_huffman_payload_within_2_percent_of_symbol_entropy(mlp2):
    """Code bits of the optimal tables against sum(-log2 p) of the coded symbols (DC
    categories and AC run/size symbols; raw EXTEND bits and stuffing excluded)."""
    from cimcodec.golden.jpeg.zigzag import to_zigzag

    for name, w in mlp2.state_dict().items():
        if w.ndim != 2 or w.numel() < 5000:
            continue
        q = quant.quantize(w.numpy())[0]
        for k in (0, 16):
            samples = quant.to_samples(kmeans.optimal(q, k).share(q) if k else q)
            data = jpeg_fast.encode(samples, quality=90)
            d = jpeg.decode_full(data)
            zz = to_zigzag(d.coefficients.reshape(-1, 64)).astype(np.int64)
            table, symbol = jpeg_fast._events(zz, len(zz))[:2]
            entropy = bits = 0.0
            for t, huff in ((0, d.dc_table), (1, d.ac_table)):
                counts = np.bincount(symbol[table == t], minlength=256)
                used = np.flatnonzero(counts)
                entropy -= float((counts[used] * np.log2(counts[used] / counts.sum())).sum())
                sizes = huff.encoder()
                bits += sum(sizes[int(s)][1] * int(counts[s]) for s in used)
            assert entropy <= bits <= 1.02 * entropy, (name, k, bits / entropy)


def test_datasets_never_download(tmp_path):
    with pytest.raises(CimcodecError, match="has no file train-images-idx3-ubyte"):
        datasets.load("mnist", tmp_path)
    with pytest.raises(CimcodecError, match="needs a directory"):
        datasets.load("cifar10")
    with pytest.raises(CimcodecError, match="must be digits, mnist or cifar10"):
        datasets.load("imagenet", tmp_path)
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    idx = b"\x00\x00\x08\x03" + b"".join(int(d).to_bytes(4, "big") for d in images.shape)
    labels = b"\x00\x00\x08\x01" + (2).to_bytes(4, "big") + bytes([3, 7])
    for name, body in (("train-images-idx3-ubyte", idx + images.tobytes()),
                       ("t10k-images-idx3-ubyte", idx + images.tobytes())):
        (tmp_path / name).write_bytes(body)
    for name in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(tmp_path / f"{name}.gz", "wb") as f:
            f.write(labels)
    xtr, ytr, xte, yte = datasets.load("mnist", tmp_path)
    assert xtr.shape == (2, 1, 3, 4) and ytr.tolist() == [3, 7]
    assert float(xtr[1, 0, 2, 3]) == pytest.approx(23 / 255)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx + images.tobytes()[:-1])
    with pytest.raises(CimcodecError, match="holds 23 bytes of data, not 24"):
        datasets.load("mnist", tmp_path)


@pytest.mark.parametrize("shape", [(45, 70), (8, 8), (1, 300), (129, 17)])
def test_fast_remap_equals_remap_params(shape):
    s = RNG.integers(0, 256, shape, dtype=np.uint8)
    for scheme, seeds in (("none", None), ("full", (5,)), ("split", None),
                          ("progressive", (3,))):
        params = RemapParams(*shape, scheme, seeds)
        coded = search.fast_remap(params, s)
        assert (coded == params.remap(s)).all()
        assert (search.fast_unremap(params, coded) == s).all()
