"""``cimcodec compress / decompress / inspect``: the external oracle (``--raw`` equals
Pillow on every file), round trips, and one sentence with exit code 2 for bad input."""

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from cimcodec.golden.codec import pipeline as codec
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg import reference as jpeg
from cimcodec.sim.cli import args as cli_args
from cimcodec.sim.cli import call, main

W = np.random.default_rng(31).normal(0, 0.05, (50, 30)).astype(np.float32)



def fails(capsys, message, *argv):
    code, out, err = call(*argv)
    assert code == 2 and out == "", err
    assert err.startswith("cimcodec: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def pillow(path):
    return np.asarray(Image.open(path))


@pytest.mark.parametrize("options", [
    [], ["--clusters", "16", "--remap", "none"], ["--clusters", "8", "--remap", "split"],
    ["--remap", "progressive", "--quality", "40", "--per-channel", "--affine"],
])
def test_compress_raw_equals_pillow_and_round_trip(capsys, tmp_path, options):
    np.save(tmp_path / "w.npy", W)
    code, out, _ = call("compress", tmp_path / "w.npy", "-o", tmp_path / "w.jpg",
                       "--budget", "4", *options)
    assert code == 0 and "wrote" in out
    code = call("decompress", tmp_path / "w.jpg", "-o", tmp_path / "raw.npy", "--raw")[0]
    assert code == 0
    assert (np.load(tmp_path / "raw.npy") == pillow(tmp_path / "w.jpg")).all()
    assert call("decompress", tmp_path / "w.jpg", "-o", tmp_path / "o.npy")[0] == 0
    data = (tmp_path / "w.jpg").read_bytes()
    assert (np.load(tmp_path / "o.npy") == codec.decompress_matrix(data)).all()
    code, out, _ = call("inspect", tmp_path / "w.jpg")
    info = json.loads(out)
    assert code == 0 and info["shape"] == [50, 30] and info["file_bytes"] == len(data)


@pytest.mark.parametrize("kw", [
    {"quality": 1}, {"quality": 55, "optimize": True}, {"quality": 100},
    {"quality": 80, "restart_marker_blocks": 3},
    {"qtables": [[300 + i for i in range(64)]]}, {"qtables": [[1] * 64]},
])
def test_raw_decodes_pillow_files_exactly(capsys, tmp_path, kw):
    im = np.clip(np.random.default_rng(2).normal(128, 30, (29, 43)), 0, 255).astype(np.uint8)
    Image.fromarray(im).save(tmp_path / "p.jpg", "JPEG", **kw)
    assert call("decompress", tmp_path / "p.jpg", "-o", tmp_path / "p.npy", "--raw")[0] == 0
    assert (np.load(tmp_path / "p.npy") == pillow(tmp_path / "p.jpg")).all()
    fails(capsys, "not a cimcodec container", "decompress", tmp_path / "p.jpg", "-o",
          tmp_path / "x.npy")


def _state_dict_layer(capsys, tmp_path):
    """Compress layer ``0.weight`` of a saved state dict with the CLI and decompress it:
    ``(original weights, file bytes, decompressed array)``."""
    torch.manual_seed(0)
    state = torch.nn.Sequential(torch.nn.Linear(20, 12), torch.nn.Linear(12, 4)).state_dict()
    torch.save(state, tmp_path / "m.pt")
    assert call("compress", tmp_path / "m.pt", "--layer", "0.weight", "-o",
               tmp_path / "l.jpg", "--remap", "none")[0] == 0
    assert call("decompress", tmp_path / "l.jpg", "-o", tmp_path / "l.npy")[0] == 0
    return state["0.weight"].numpy(), (tmp_path / "l.jpg").read_bytes(), \
        np.load(tmp_path / "l.npy")


def check_layer(weights, data, decoded, check_round_trip):
    """The CLI's output is the library's decode of the same bytes, bit for bit, and the
    weights it holds are the original ones within the codec's bound."""
    assert decoded.dtype == np.float32 and decoded.shape == weights.shape
    assert np.array_equal(decoded, codec.decompress_matrix(data))
    check_round_trip(weights, {"remap": "none"}, data)


def test_compress_a_state_dict_layer(capsys, tmp_path, check_round_trip):
    check_layer(*_state_dict_layer(capsys, tmp_path), check_round_trip)
    fails(capsys, "has no tensor named 'fc9'", "compress", tmp_path / "m.pt", "--layer", "fc9",
          "-o", tmp_path / "x.jpg")
    fails(capsys, "holds 2 2-D tensors; name one with --layer", "compress", tmp_path / "m.pt",
          "-o", tmp_path / "x.jpg")


def test_layer_check_catches_a_scrambled_layer(capsys, tmp_path, monkeypatch,
                                               check_round_trip):
    """A loader that reads the layer in the wrong memory order keeps its shape, which is
    all the old check looked at; :func:`check_layer` refuses it."""
    load = cli_args.load_tensor

    def scrambled(path, layer):
        tensor, name = load(path, layer)
        return tensor.T.reshape(tensor.shape), name

    monkeypatch.setattr(cli_args, "load_tensor", scrambled)
    weights, data, decoded = _state_dict_layer(capsys, tmp_path)
    assert decoded.shape == (12, 20)                                       # old check
    with pytest.raises(AssertionError):
        check_layer(weights, data, decoded, check_round_trip)


def _container(tmp_path):
    np.save(tmp_path / "w.npy", W)
    main(["compress", str(tmp_path / "w.npy"), "-o", str(tmp_path / "w.jpg"), "--remap", "none",
          "--clusters", "8"])
    return (tmp_path / "w.jpg").read_bytes()


def _dht_with_300_symbols(data):
    pos = data.index(b"\xff\xc4")
    body = b"\x00" + bytes([0] * 14 + [45, 255]) + bytes(300)
    seg = b"\xff\xc4" + (len(body) + 2).to_bytes(2, "big") + body
    return data[:pos] + seg + data[pos:]


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d[:len(d) // 2], "ends"),
    (lambda d: b"PK\x03\x04" + d[4:], "not a JPEG file"),
    (lambda d: d[:2] + d[d.index(b"\xff\xda"):], "CIMCODEC APP11"),
    (lambda d: d[:-40] + bytes([d[-40] ^ 0x10]) + d[-39:], "CRC-32 mismatch"),
    (_dht_with_300_symbols, "more than 256"),
])
def test_bad_files_exit_2_with_one_sentence(capsys, tmp_path, mutate, message):
    (tmp_path / "bad.jpg").write_bytes(mutate(_container(tmp_path)))
    capsys.readouterr()
    fails(capsys, message, "decompress", tmp_path / "bad.jpg", "-o", tmp_path / "x.npy")
    fails(capsys, message, "inspect", tmp_path / "bad.jpg")


def test_raw_bad_jpegs(capsys, tmp_path):
    good = jpeg.encode(np.full((16, 16), 100, np.uint8))
    sof = good.index(b"\xff\xc0")
    huge = good[:sof + 5] + (65535).to_bytes(2, "big") + (65535).to_bytes(2, "big") \
        + good[sof + 9:]
    dht = good.index(b"\xff\xc4")
    swapped = good[:2] + good[good.index(b"\xff\xda"):-2] + good[2:good.index(b"\xff\xda")] \
        + b"\xff\xd9"
    absent = good[:-4] + b"\xff\x00\xff\x00" + good[-2:]  # all ones: a code no table holds
    cases = [(huge, "out of range"), (swapped, "SOS marker comes before any SOF"),
             (good[:dht] + good[dht + 4:], "Expected a marker"),
             (absent, "A Huffman code in block 0 is not in its table."),
             (b"", "does not start with SOI")]
    for data, message in cases:
        (tmp_path / "b.jpg").write_bytes(data)
        fails(capsys, message, "decompress", tmp_path / "b.jpg", "-o", tmp_path / "x.npy",
              "--raw")


def test_message_check_catches_the_wrong_error(capsys, tmp_path, monkeypatch):
    """The old case expected the message "" (in every error) for a code no table holds;
    its file actually failed as truncated. A decoder that reports truncation for every
    file passed it, the real message does not."""
    good = jpeg.encode(np.full((16, 16), 100, np.uint8))
    (tmp_path / "b.jpg").write_bytes(good[:-4] + b"\xff\x00\xff\x00" + good[-2:])

    def truncated(data):
        raise CimcodecError("Entropy-coded data ends inside block 1.")

    monkeypatch.setattr(codec, "decode_samples", truncated)
    fails(capsys, "", "decompress", tmp_path / "b.jpg", "-o", tmp_path / "x.npy", "--raw")
    with pytest.raises(AssertionError):
        fails(capsys, "A Huffman code in block 0 is not in its table.", "decompress",
              tmp_path / "b.jpg", "-o", tmp_path / "x.npy", "--raw")


def test_bad_arguments(capsys, tmp_path):
    np.save(tmp_path / "w.npy", W)
    fails(capsys, "does not exist", "compress", tmp_path / "nope.npy", "-o", tmp_path / "x.jpg")
    fails(capsys, "JPEG quality must be an integer 1..100", "compress", tmp_path / "w.npy",
          "-o", tmp_path / "x.jpg", "--quality", "0")
    fails(capsys, "cluster count must be 0", "compress", tmp_path / "w.npy", "-o",
          tmp_path / "x.jpg", "--clusters", "300")
    np.save(tmp_path / "e.npy", np.zeros((0, 3), np.float32))
    fails(capsys, "at least one dimension and one element", "compress", tmp_path / "e.npy",
          "-o", tmp_path / "x.jpg")
    (tmp_path / "t.txt").write_text("hello")
    fails(capsys, "must be a .npy array or a .pt", "compress", tmp_path / "t.txt", "-o",
          tmp_path / "x.jpg")
    fails(capsys, "does not start with SOI", "inspect", tmp_path / "t.txt")
    img = io.BytesIO()
    Image.new("L", (8, 8)).save(img, "PNG")
    (tmp_path / "i.png").write_bytes(img.getvalue())
    fails(capsys, "not a JPEG", "decompress", tmp_path / "i.png", "-o", tmp_path / "x.npy",
          "--raw")
