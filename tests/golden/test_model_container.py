"""The model container (``.cimz``): whole state dicts in and out, tensor codecs chosen
per tensor, the deep codec's sparse storage, and clear errors on damaged files."""

import copy
import struct
import zlib

import numpy as np
import pytest
import torch

from cimcodec.golden.codec import chunks, deep, entropy, pipeline
from cimcodec.golden.codec import model as cm
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.ml import models


def _odd_state(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "vec": torch.randn(37, generator=g),                       # 1-D: raw
        "cube": torch.randn(5, 6, 7, generator=g),                 # 3-D, 210 < 256: raw
        "conv": torch.randn(12, 5, 3, 3, generator=g),             # 4-D conv, 540 weights
        "conv1x1": torch.randn(33, 17, 1, 1, generator=g),         # 1x1 conv
        "odd": torch.randn(29, 43, generator=g),                   # not multiples of 8
        "half": torch.randn(24, 40, generator=g).half(),
        "brain": torch.randn(20, 30, generator=g).bfloat16(),
        "double": torch.randn(16, 20, generator=g).double(),
        "steps": torch.tensor(12345, dtype=torch.int64),           # 0-d integer buffer
        "ids": torch.arange(-5, 300, dtype=torch.int32),
        "flags": torch.tensor([True, False, True]),
        "bytes": torch.arange(256, dtype=torch.uint8).reshape(16, 16),
        "small": torch.randn(3, 4, generator=g),
    }


@pytest.mark.parametrize("codec", ["jpeg", "deep", "raw"])
def test_state_dict_round_trip_keeps_names_order_shapes_dtypes(codec):
    state = _odd_state()
    settings = {"quality": 95, "remap": "none"} if codec == "jpeg" else {}
    data = cm.compress(state, codec=codec, settings=settings)
    back = cm.decompress(data)
    assert list(back) == list(state)
    info = cm.inspect(data)
    for e in info.entries:
        original, got = state[e.name], back[e.name]
        assert got.dtype == original.dtype and got.shape == original.shape, e.name
        lossy = codec != "raw" and original.is_floating_point() and original.dim() >= 2 \
            and original.numel() >= cm.MIN_ELEMENTS
        assert e.codec == (codec if lossy else "raw"), e.name
        if not lossy:    # stored losslessly: bit for bit (bfloat16 included)
            assert torch.equal(got, original), e.name
    # The lossy members decode exactly as the tensor codec decodes them alone.
    for e in info.entries:
        if e.codec == "jpeg":
            alone = pipeline.decompress_matrix(cm.extract(data, e.name))
            want = torch.from_numpy(alone).to(state[e.name].dtype)
            assert torch.equal(back[e.name], want), e.name
        elif e.codec == "deep":
            want = torch.from_numpy(deep.decode(cm.extract(data, e.name), e.shape))
            assert torch.equal(back[e.name], want.to(state[e.name].dtype)), e.name
    # Every byte is counted: fp32 bytes of all tensors over the file.
    assert info.ratio == pytest.approx(4 * sum(t.numel() for t in state.values()) / len(data))


def test_jpeg_members_are_within_the_codec_bound():
    """Quality 100, no clusters: each weight is within two int8 steps of the original
    (one for rounding to int8, one for the JPEG round trip of the samples)."""
    state = _odd_state()
    back = cm.decompress(cm.compress(state, settings={"quality": 100, "remap": "none"}))
    for name in ("conv", "conv1x1", "odd", "double"):
        w = state[name].double()
        step = w.abs().max() / 127.5
        assert (back[name].double() - w).abs().max() <= 2 * step, name


def test_empty_state_dict_and_model_description():
    data = cm.compress({}, model={"net": "mlp2"})
    assert cm.decompress(data) == {}
    info = cm.inspect(data)
    assert info.entries == () and info.model == {"net": "mlp2"}


def test_every_network_loads_strictly_after_a_round_trip():
    for name in models.NETS:
        torch.manual_seed(0)
        net = models.build(name)
        state = net.state_dict()
        codec = "jpeg" if name in ("mlp2", "lenet5") else "raw"   # the VGGs: faster
        back = cm.decompress(cm.compress(state, codec=codec,
                                         settings={"quality": 90, "remap": "none"}
                                         if codec == "jpeg" else {}))
        fresh = models.build(name)
        fresh.load_state_dict(back, strict=True)
        for key in state:   # integer buffers exact, floats as stored
            if not state[key].is_floating_point():
                assert torch.equal(back[key], state[key])


def test_raw_codec_picks_an_exact_half_precision_form():
    x = torch.randn(100).half().float()       # float32 values that fit float16
    data = cm.compress({"b": x})
    assert cm.inspect(data).entries[0].size <= 1 + 2 * 100
    assert torch.equal(cm.decompress(data)["b"], x)


def test_per_tensor_codec_choice_and_unknown_codecs():
    state = {"a": torch.randn(20, 20), "b": torch.randn(20, 20)}
    data = cm.compress(state, codecs={"b": "raw"}, settings={"remap": "none"})
    assert [e.codec for e in cm.inspect(data).entries] == ["jpeg", "raw"]
    with pytest.raises(CimcodecError, match=r"Codec must be one of .*not 'zip'"):
        cm.compress(state, codec="zip")
    with pytest.raises(CimcodecError, match=r"no tensor named 'c'"):
        cm.compress(state, codecs={"c": "raw"})


def test_a_registered_codec_is_used_and_named_in_the_manifest():
    class Negate:
        name = "negate"

        def encode(self, array, settings):
            return (-array.astype("<f4")).tobytes(), {"n": 1}

        def decode(self, data, shape, dtype, options):
            assert options == {"n": 1}
            return -np.frombuffer(data, "<f4").reshape(shape)

    cm.register(Negate())
    try:
        state = {"w": torch.randn(30, 30)}
        data = cm.compress(state, codec="negate")
        assert cm.inspect(data).entries[0].codec == "negate"
        assert torch.equal(cm.decompress(data)["w"], state["w"])
    finally:
        del cm.CODECS["negate"]
    with pytest.raises(CimcodecError, match=r"Codec must be one of"):
        cm.decompress(data)


@pytest.mark.parametrize("damage", ["truncate", "flip", "magic", "version", "manifest",
                                    "member_size", "not_bytes"])
def test_damaged_containers_are_one_sentence(damage):
    data = bytearray(cm.compress({"w": torch.randn(20, 20), "b": torch.randn(20)}))
    if damage == "truncate":
        data = data[:-7]
    elif damage == "flip":
        data[-3] ^= 0x10
    elif damage == "magic":
        data[0] = ord("X")
    elif damage == "version":
        data[4] = 9
    elif damage == "manifest":   # a valid CRC over a manifest that is not JSON
        body = struct.pack("<I", 5) + zlib.compress(b"{oops") [:5]
        data = bytearray(cm.MAGIC + b"\1" + struct.pack("<I", zlib.crc32(body)) + body)
    elif damage == "member_size":   # the manifest claims more bytes than the file has
        info = cm.inspect(bytes(data))
        body = bytes(data[9:])
        data = bytearray(bytes(data[:5]) + struct.pack("<I", zlib.crc32(body + b"x"))
                         + body + b"x")
        assert info.entries
    if damage == "not_bytes":
        with pytest.raises(CimcodecError, match="must be bytes"):
            cm.decompress("a string")
        return
    with pytest.raises(CimcodecError) as e:
        cm.decompress(bytes(data))
    assert "\n" not in str(e.value) and str(e.value).endswith(".")


def test_extract_names_a_missing_tensor():
    data = cm.compress({"w": torch.randn(20, 20)})
    with pytest.raises(CimcodecError, match=r"no tensor named 'v'; it has w"):
        cm.extract(data, "v")
    with pytest.raises(CimcodecError, match=r"no tensor named 'v'"):
        cm.decompress(data, names=["v"])


# ------------------------------------------------------------------ the deep codec


def test_sparse_indices_with_fillers_above_31_and_255():
    n = 2000
    w = np.zeros((1, n), dtype=np.float32)
    where = [0, 5, 40, 41, 300, 301, 1999]        # gaps 4, 34, 0, 258, 0, 1697
    w[0, where] = np.arange(1, len(where) + 1)
    for r in (5, 8):
        _, labels = deep.share(w, 31)
        indices, gaps = deep.sparse_indices(labels, r)
        span = 1 << r
        assert gaps.max() <= span - 1
        fillers = sum(g // span for g in np.diff([-1] + where) - 1)
        assert len(indices) == len(where) + fillers and (indices == 0).sum() == fillers
        positions = deep.positions_of(gaps)
        assert positions[indices > 0].tolist() == where
        blob = deep.encode(w, deep.Settings(index_bits=r))
        np.testing.assert_array_equal(deep.decode(blob, w.shape), w)


def test_sparse_indices_all_zero_rows_and_a_dense_layer():
    w = np.zeros((6, 50), dtype=np.float32)
    w[2] = np.repeat(np.linspace(-1, 1, 25), 2)   # one dense row between all-zero rows
    w[5, 49] = 3.0
    np.testing.assert_array_equal(deep.decode(deep.encode(w), w.shape), w)
    dense = np.random.default_rng(1).normal(size=(8, 9)).astype(np.float32)
    dense = np.round(dense * 2) / 2 + 5     # at most 31 distinct nonzero values: exact
    assert np.unique(dense).size <= 31 and (dense != 0).all()
    blob = deep.encode(dense)
    _, gaps = deep.sparse_indices(deep.share(dense, 31)[1], 5)
    assert (gaps == 0).all()
    np.testing.assert_array_equal(deep.decode(blob, dense.shape), dense)
    zero = np.zeros((4, 4), dtype=np.float32)
    np.testing.assert_array_equal(deep.decode(deep.encode(zero), zero.shape), zero)


def test_kmeans_linear_init_is_deterministic_and_has_at_most_k_values():
    w = np.random.default_rng(3).normal(size=(40, 50)).astype(np.float32)
    w[np.abs(w) < 0.5] = 0
    for init in deep.INITS:
        c1, l1 = deep.share(w, 15, init=init)
        c2, l2 = deep.share(w, 15, init=init)
        assert np.array_equal(c1, c2) and np.array_equal(l1, l2)
        assert len(c1) <= 15 and np.all(np.diff(c1) > 0)
        decoded = deep.decode(deep.encode(w, deep.Settings(weight_bits=4, init=init)), w.shape)
        assert np.unique(decoded[decoded != 0]).size <= 15
        assert np.array_equal(decoded == 0, w == 0)     # pruned weights stay pruned
    v = w[w != 0].astype(np.float64)
    np.testing.assert_array_equal(deep.init_centroids(v, 4, "linear"),
                                  np.linspace(v.min(), v.max(), 4))
    # Nearest-centroid assignment: every weight's label is its nearest shared value.
    c, labels = deep.share(w, 15)
    book = np.concatenate([[0], c])
    nz = w != 0
    nearest = np.abs(w[nz][:, None] - c[None, :]).argmin(axis=1) + 1
    assert np.array_equal(labels[nz], nearest)
    assert np.array_equal(book[labels][~nz], np.zeros((~nz).sum()))


def test_huffman_streams_round_trip_and_reject_damage():
    rng = np.random.default_rng(4)
    s = np.minimum(rng.geometric(0.3, 5000) - 1, 255)
    data = entropy.encode(s)
    assert data[0] == entropy.HUFFMAN
    got, end = entropy.decode(data, len(s))
    assert np.array_equal(got, s) and end == len(data)
    # Huffman needs at most entropy + 1 bit a symbol (plus the table).
    p = np.bincount(s) / len(s)
    h = -(p[p > 0] * np.log2(p[p > 0])).sum()
    assert entropy.mean_code_length(s) <= h + 1
    fixed = entropy.encode(s, huffman=False)
    assert np.array_equal(entropy.decode(fixed, len(s))[0], s)
    with pytest.raises(CimcodecError, match="truncated"):
        entropy.decode(data[:len(data) // 2], len(s))
    with pytest.raises(CimcodecError):
        entropy.decode(bytes([7]), 3)


def test_deep_pieces_do_not_change_the_member(monkeypatch):
    """The deep codec clusters, builds its streams and decodes them a piece at a time;
    tiny pieces (and Huffman window tables of 64 bits) give the same member and
    weights."""
    rng = np.random.default_rng(8)
    w = rng.normal(0, 0.05, (200, 310)).astype(np.float32)
    w[rng.random(w.shape) < 0.6] = 0
    few = np.where(w != 0, rng.choice([-0.5, 0.25, 1.0], w.shape), 0).astype(np.float32)
    cases = ((w, deep.Settings()), (w, deep.Settings(init="forgy", sparsity=0.3)),
             (w, deep.Settings(weight_bits=8, init="density")),
             (w, deep.Settings(index_bits=2, huffman=False)), (few, deep.Settings()))
    whole = [(blob := deep.encode(x, s), deep.decode(blob, x.shape)) for x, s in cases]
    monkeypatch.setattr(chunks, "ELEMENTS", 4000)
    monkeypatch.setattr(entropy, "WINDOW_BITS", 64)
    for (x, s), (blob, weights) in zip(cases, whole):
        assert deep.encode(x, s) == blob
        assert np.array_equal(deep.decode(blob, x.shape), weights)
    with pytest.raises(CimcodecError, match="truncated"):
        deep.decode(whole[0][0][:len(whole[0][0]) // 2], w.shape)


def test_deep_member_damage_is_one_sentence():
    w = deep.prune(np.random.default_rng(5).normal(size=(30, 30)), 0.8)
    blob = deep.encode(w)
    for bad in (blob[:3], blob[:-1], blob + b"\0", bytes([9]) + blob[1:]):
        with pytest.raises(CimcodecError):
            deep.decode(bad, w.shape)
    with pytest.raises(CimcodecError, match="entries for"):
        deep.decode(blob, (2, 2))


def test_prune_keeps_the_largest_weights():
    w = np.arange(1, 101, dtype=np.float32).reshape(10, 10) * np.where(
        np.arange(100) % 2, 1, -1).reshape(10, 10)
    p = deep.prune(w, 0.9)
    assert np.count_nonzero(p) == 10 and np.all(np.abs(p[p != 0]) >= 91)


def test_torch_state_dicts_of_copies_do_not_alias():
    """compress reads the tensors; it must not change them."""
    state = _odd_state()
    before = copy.deepcopy(state)
    cm.compress(state, codec="deep")
    assert all(torch.equal(state[k], before[k]) for k in state)


def test_shared_jpeg_segments_are_stored_once_and_put_back():
    g = torch.Generator().manual_seed(7)
    state = {"a": torch.randn(40, 24, generator=g), "b": torch.randn(16, 64, generator=g),
             "c": torch.randn(24, 24, generator=g)}
    settings = {"quality": 80, "remap": "none"}
    shared = cm.compress(state, settings=settings)
    plain = cm.compress(state, settings=settings, share=False)
    info = cm.inspect(shared)
    assert info.shared and len(shared) < len(plain)
    # The shared bytes really are stored once: the DQT of quality 80 is in every member.
    dqt = [s for s in info.shared if s[:2] == b"\xff\xdb"]
    assert len(dqt) == 1 and shared.count(dqt[0]) == 1
    for e in info.entries:
        assert "splice" in e.options
        alone = pipeline.compress_matrix(state[e.name].numpy(), **settings).data
        assert cm.extract(shared, e.name) == alone == cm.extract(plain, e.name)
    back, ref = cm.decompress(shared), cm.decompress(plain)
    assert all(torch.equal(back[k], ref[k]) for k in state)


def test_a_corrupt_splice_list_is_one_sentence():
    state = {"a": torch.randn(16, 16), "b": torch.randn(16, 16)}
    data = cm.compress(state, settings={"remap": "none"})
    info = cm.inspect(data)
    e = info.entries[1]
    bad = cm.Inspection(info.entries, info.model, info.file_bytes, info.manifest_bytes, ())
    with pytest.raises(CimcodecError, match="shared-segment list is corrupt"):
        bad.member(data, e)
