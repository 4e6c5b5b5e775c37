"""Whole models on the command line: ``compress`` a state dict into a model container,
``decompress`` / ``inspect`` / ``extract`` / ``eval`` it, ``train``; one extracted
tensor decodes bit-exactly on the RTL decompressor; bad input is one sentence and no
output file."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from cimcodec.golden.codec import model as container
from cimcodec.golden.codec import pipeline
from cimcodec.golden.ml import models
from cimcodec.golden.ml.datasets import split
from cimcodec.sim.cli import call
from cimcodec.sim.rtl import rtl_decode


def fails(capsys, tmp_path, message, *argv, code=2):
    before = set(tmp_path.iterdir())
    got, out, err = call(*argv)
    assert got == code, err
    assert err.startswith("cimcodec") and ": error: " in err and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert set(tmp_path.iterdir()) == before, "a failed command left a file behind"


@pytest.fixture(scope="module")
def mlp2(tmp_path_factory):
    """A lightly trained MLP2 state dict (BatchNorm included) and its file."""
    torch.manual_seed(0)
    net = models.build("mlp2")
    models.fit_digits(net, epochs=2, data=split(models.digits(0))[0])
    path = tmp_path_factory.mktemp("mlp2") / "mlp2.pt"
    torch.save(net.state_dict(), path)
    return net, path


def test_compress_decompress_a_whole_model(capsys, tmp_path, mlp2):
    net, path = mlp2
    out = tmp_path / "m.cimz"
    code, text, _ = call("compress", path, "-o", out, "--quality", "90",
                        "--remap", "none")
    assert code == 0 and f"{len(net.state_dict())} tensors" in text
    data = out.read_bytes()
    want = container.decompress(data)
    assert call("decompress", out, "-o", tmp_path / "back.pt")[0] == 0
    back = torch.load(tmp_path / "back.pt", weights_only=True)
    assert list(back) == list(net.state_dict())
    assert all(torch.equal(back[k], want[k]) for k in want)
    fresh = models.build("mlp2")
    fresh.load_state_dict(back, strict=True)
    # Integer buffers and small tensors exact; weights as the JPEG codec gives them.
    state = net.state_dict()
    assert torch.equal(back["net.1.num_batches_tracked"], state["net.1.num_batches_tracked"])
    assert torch.equal(back["net.0.bias"], state["net.0.bias"])
    jpeg = pipeline.decompress_matrix(container.extract(data, "net.0.weight"))
    assert torch.equal(back["net.0.weight"], torch.from_numpy(jpeg))
    # inspect: one row per tensor, and the totals counting every byte.
    code, text, _ = call("inspect", out)
    lines = text.splitlines()
    assert code == 0 and lines[0].split()[:4] == ["tensor", "shape", "dtype", "codec"]
    rows = {line.split()[0]: line.split() for line in lines[1:-2]}
    info = container.inspect(data)
    assert set(rows) == {e.name for e in info.entries}
    for e in info.entries:
        assert rows[e.name][3] == e.codec and int(rows[e.name][4]) == e.size
    assert lines[-2].split()[2] == str(len(data)) and f"{info.ratio:.2f}x" in lines[-2]
    # eval decodes the container from its bytes.
    code, text, _ = call("eval", out, "--net", "mlp2")
    x, y = split(models.digits(0))[2]
    acc = models.accuracy(models.load_net("mlp2", want), x, y)
    assert code == 0 and f"test accuracy {acc:.4f}" in text


def test_checkpoint_dicts_and_the_deep_codec(capsys, tmp_path, mlp2):
    net, _ = mlp2
    ckpt = tmp_path / "ckpt.pt"
    torch.save({"epoch": 3, "state_dict": net.state_dict()}, ckpt)
    out = tmp_path / "d.cimz"
    code, text, _ = call("compress", ckpt, "-o", out, "--codec", "deep",
                        "--sparsity", "0.8", "--weight-bits", "4")
    assert code == 0 and "(deep)" in text
    back = container.decompress(out.read_bytes())
    w = back["net.3.weight"]
    assert (w == 0).float().mean().item() == pytest.approx(0.8, abs=1e-3)
    assert torch.unique(w[w != 0]).numel() <= 15
    fails(capsys, tmp_path, "is stored with the deep codec, not as a JPEG", "extract", out,
          "--tensor", "net.3.weight", "-o", tmp_path / "t.jpg")


def test_extract_gives_a_jpeg_any_viewer_opens(capsys, tmp_path, mlp2):
    _, path = mlp2
    out = tmp_path / "m.cimz"
    assert call("compress", path, "-o", out, "--remap", "none")[0] == 0
    assert call("extract", out, "--tensor", "net.3.weight", "-o",
               tmp_path / "t.jpg")[0] == 0
    data = (tmp_path / "t.jpg").read_bytes()
    assert data == container.extract(out.read_bytes(), "net.3.weight")
    image = np.asarray(Image.open(tmp_path / "t.jpg"))
    assert image.shape == (104, 304)
    np.testing.assert_array_equal(image, pipeline.decode_samples(data))


def test_an_extracted_tensor_decodes_bit_exactly_on_the_rtl(capsys, tmp_path, mlp2,
                                                           simulator):
    _, path = mlp2
    out = tmp_path / "m.cimz"
    assert call("compress", path, "-o", out, "--quality", "75", "--clusters", "16",
               "--remap", "full", "--budget", "2")[0] == 0
    member = container.extract(out.read_bytes(), "net.6.weight")
    got, _ = rtl_decode(member, raw=False, sim=simulator, integer=True)
    np.testing.assert_array_equal(got, pipeline.decompress_matrix(member, integer=True))


def test_bad_model_input_is_one_sentence(capsys, tmp_path, mlp2):
    net, path = mlp2
    good = tmp_path / "g.cimz"
    assert call("compress", path, "-o", good, "--remap", "none")[0] == 0
    data = good.read_bytes()
    (tmp_path / "cut.cimz").write_bytes(data[:len(data) // 2])
    fails(capsys, tmp_path, "truncated or corrupt", "decompress", tmp_path / "cut.cimz",
          "-o", tmp_path / "x.pt")
    bad = bytearray(data)
    bad[40] ^= 0xFF
    (tmp_path / "bad.cimz").write_bytes(bytes(bad))
    fails(capsys, tmp_path, "truncated or corrupt", "eval", tmp_path / "bad.cimz", "--net",
          "mlp2")
    fails(capsys, tmp_path, "no tensor named 'fc9'", "extract", good, "--tensor", "fc9",
          "-o", tmp_path / "x.jpg")
    fails(capsys, tmp_path, "or lossless:<name>, not 'zip'", "compress", path, "-o",
          tmp_path / "x.cimz", "--codec", "zip")
    fails(capsys, tmp_path, "does not fit lenet5", "eval", good, "--net", "lenet5")
    torch.save(net, tmp_path / "module.pt", pickle_protocol=pickle.HIGHEST_PROTOCOL)
    # Torch's own warning about the pickle would be printed before the sentence.
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fails(capsys, tmp_path, "torch.save(model.state_dict(), PATH)", "compress",
              tmp_path / "module.pt", "-o", tmp_path / "x.cimz")
    assert [str(w.message) for w in seen] == []
    fails(capsys, tmp_path, "not for raw", "compress", path, "-o", tmp_path / "x.cimz",
          "--net", "mlp2", "--codec", "raw")
    fails(capsys, tmp_path, "--target-ratio needs --net", "compress", path, "-o",
          tmp_path / "x.cimz", "--target-ratio", "40")
    fails(capsys, tmp_path, "invalid choice: 'imagenet'", "compress", path, "-o",
          tmp_path / "x.cimz", "--net", "mlp2", "--data", "imagenet")
    fails(capsys, tmp_path, "does not fit mlp2 on mnist", "compress", path, "-o",
          tmp_path / "x.cimz",
          "--codec", "deep", "--net", "mlp2", "--data", "mnist")
