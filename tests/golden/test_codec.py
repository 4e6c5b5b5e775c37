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
from cimcodec.golden.ml.models import VGG16, train_digits_net

RNG = np.random.default_rng(21)
W = RNG.normal(0, 0.05, (45, 70)).astype(np.float32)


ROUND_TRIPS = [
    {}, {"clusters": 16}, {"clusters": 6, "remap": "full"},
    {"clusters": 8, "remap": "split", "per_channel": True, "symmetric": False},
    {"remap": "progressive", "quality": 100},
]


@pytest.mark.parametrize("options", ROUND_TRIPS)
def test_round_trip(options, check_round_trip):
    check_round_trip(W, options, codec.compress_matrix(W, **options).data)


def test_round_trip_check_catches_a_scaled_decoder(monkeypatch, check_round_trip):
    """A decoder that returns 0.6 * W passed the old check (RMSE < 0.5 RMS(W));
    ``check_round_trip`` (tests/conftest.py) refuses it for every setting."""
    files = [codec.compress_matrix(W, **options).data for options in ROUND_TRIPS]
    decode = codec.decompress_matrix
    monkeypatch.setattr(codec, "decompress_matrix", lambda data, **kw: 0.6 * decode(data, **kw))
    for options, data in zip(ROUND_TRIPS, files):
        w = codec.decompress_matrix(data)
        assert np.sqrt(np.mean((w - W) ** 2)) < 0.5 * np.sqrt(np.mean(W ** 2))  # old check
        with pytest.raises(AssertionError):
            check_round_trip(W, options, data)


def check_int8_round_trip(q, data) -> None:
    """An int8 matrix comes back bit for bit: as int8 (``integer``) and as float32."""
    back = codec.decompress_matrix(data, integer=True)
    assert back.dtype == np.int8 and np.array_equal(back, q)
    assert np.array_equal(codec.decompress_matrix(data), q.astype(np.float32))


@pytest.mark.parametrize("quality", [90, 100])
def test_int8_weights_come_back_bit_for_bit_or_are_refused(quality, jpeg_fixed_point):
    q = jpeg_fixed_point((24, 40), quality, quality)
    c = codec.compress_matrix(q, quality=quality)
    assert c.header.quant.scale.tolist() == [1.0] and c.header.quant.zero_point.tolist() == [0]
    check_int8_round_trip(q, c.data)
    # Most int8 matrices do not survive the JPEG, not even at quality 100: refused, with
    # the number of weights that would change.
    noisy = q.copy()
    noisy[::3, ::5] += np.where(noisy[::3, ::5] < 127, 1, -1).astype(np.int8)
    with pytest.raises(CimcodecError, match=(
            r"^int8 weights are taken as already quantized and must come back bit for "
            rf"bit, but [1-9]\d* of the 960 would change \(by up to [1-9]\d*\) at quality "
            rf"{quality}; pass floating-point weights")):
        codec.compress_matrix(noisy, quality=quality)
    with pytest.raises(CimcodecError, match=rf"at quality {quality} with 4 clusters; "):
        codec.compress_matrix(q, quality=quality, clusters=4)


def test_int8_check_catches_an_off_by_one_decoder(monkeypatch, jpeg_fixed_point):
    """The old check allowed every weight to move by 1 at quality 100; a decoder that
    adds 1 to one sample passed it, :func:`check_int8_round_trip` refuses it."""
    q = jpeg_fixed_point((24, 40), 100, 100)
    data = codec.compress_matrix(q, quality=100).data
    decode = codec.decode_samples

    def off_by_one(data):
        s = decode(data).copy()
        s[5, 7] += 1 if s[5, 7] < 255 else -1
        return s

    monkeypatch.setattr(codec, "decode_samples", off_by_one)
    back = codec.decompress_matrix(data, integer=True)
    assert np.abs(back.astype(int) - q).max() <= 1                          # old check
    with pytest.raises(AssertionError):
        check_int8_round_trip(q, data)


def _vgg16_weights():
    torch.manual_seed(0)
    return {name: t.numpy() for name, t in VGG16(width=0.125).state_dict().items()
            if name.endswith("weight") and t.ndim in (2, 4)}


def test_conv_and_vgg16_tensors_round_trip_with_their_values(check_round_trip):
    """Conv kernels are coded as ``out x in*kh*kw`` matrices and come back in their
    shape with the values ``check_round_trip`` demands: a random kernel, and every conv
    and FC weight of a (narrow) VGG16."""
    tensors = {"random": RNG.normal(0, 0.1, (6, 3, 5, 5)).astype(np.float32),
               **_vgg16_weights()}
    assert sum(t.ndim == 4 for t in tensors.values()) == 14
    for name, w in tensors.items():
        options = {"clusters": 4} if name == "random" else {"quality": 75}
        check_round_trip(w, options, codec.compress_matrix(w, **options).data)


def test_conv_check_catches_a_kernel_in_the_wrong_order(monkeypatch, check_round_trip):
    """A decoder that rebuilds a conv kernel in the wrong memory order keeps its shape,
    which is all the old check looked at; ``check_round_trip`` refuses it."""
    w4 = RNG.normal(0, 0.1, (6, 3, 5, 5)).astype(np.float32)
    data = codec.compress_matrix(w4, clusters=4).data
    decode = codec.decompress_matrix

    def wrong_order(data, **kw):
        w = decode(data, **kw)
        return w.reshape(6, 5, 5, 3).transpose(0, 3, 1, 2)     # (out, kh, kw, in) read

    monkeypatch.setattr(codec, "decompress_matrix", wrong_order)
    assert codec.decompress_matrix(data).shape == (6, 3, 5, 5)               # old check
    with pytest.raises(AssertionError):
        check_round_trip(w4, {"clusters": 4}, data)


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
