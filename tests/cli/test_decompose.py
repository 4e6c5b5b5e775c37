"""``cimcodec decompose``: the per-layer table, the checkpoint with its description that
``eval`` and ``compress`` take straight, the parameter target, and bad input as one
sentence with no output file."""

import pytest
import torch

from cimcodec.golden.codec import model as container
from cimcodec.golden.ml import models
from cimcodec.golden.ml.datasets import digits, split


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    """A lightly trained LeNet-5 state dict file."""
    torch.manual_seed(0)
    net = models.fit_digits(models.build("lenet5"), epochs=1,
                            data=split(digits(0))[0])
    path = tmp_path_factory.mktemp("lenet") / "lenet5.pt"
    torch.save(net.state_dict(), path)
    return path


def _test_accuracy(net):
    return models.accuracy(net, *split(digits(0))[2])


def _decompose(cli, lenet, out, *options):
    """Run ``decompose`` on the LeNet-5; ``(printed text, description, network rebuilt
    from the checkpoint)``."""
    code, text, err = cli("decompose", lenet, "--net", "lenet5", *options, "-o", out)
    assert code == 0, err
    saved = torch.load(out, weights_only=True)
    return text, saved["description"], models.from_description(saved["description"],
                                                               saved["state_dict"])


def test_decompose_writes_a_checkpoint_eval_and_compress_take(cli, tmp_path, lenet):
    out = tmp_path / "dec.pt"
    text, description, net = _decompose(cli, lenet, out, "--method", "mtd", "--ranks", "3",
                                        "--finetune-epochs", "1")
    assert description["net"] == "lenet5" and set(description["decomposed"]) == {
        "net.4", "net.9", "net.12"}
    rows = {line.split()[0]: line.split() for line in text.splitlines()[1:4]}
    assert rows["net.9"][1:3] == ["svd", "3"] and rows["net.9"][3:5] == ["7800", str(
        3 * (64 + 120) + 120)]
    assert rows["net.4"][1] in ("tucker", "cp")
    assert description["decomposed"]["net.4"]["method"] == rows["net.4"][1]
    before = sum(t.numel() for k, t in torch.load(lenet, weights_only=True).items()
                 if "running" not in k and "num_batches" not in k)
    assert f"{before} -> {sum(p.numel() for p in net.parameters())} parameters" in text
    # eval needs no --net: the description names the network.
    code, text, err = cli("eval", out)
    assert code == 0, err
    assert "decomposed lenet5" in text and f"test accuracy {_test_accuracy(net):.4f}" in text
    # compress takes it straight and keeps the description in the container.
    cimz = tmp_path / "dec.cimz"
    code, text, err = cli("compress", out, "-o", cimz, "--remap", "none")
    assert code == 0, err
    data = cimz.read_bytes()
    assert container.inspect(data).model == description
    stored = models.from_description(description, container.decompress(data))
    code, text, err = cli("eval", cimz, "--net", "lenet5")
    assert code == 0 and f"test accuracy {_test_accuracy(stored):.4f}" in text, err


def test_target_ratio_is_reached(cli, tmp_path, lenet):
    _, description, net = _decompose(cli, lenet, tmp_path / "t.pt", "--method", "tucker",
                                     "--target-ratio", "2.5", "--finetune-epochs", "0")
    before = models.load_net("lenet5", torch.load(lenet, weights_only=True))
    count = sum(p.numel() for p in net.parameters())
    assert sum(p.numel() for p in before.parameters()) / count >= 2.5
    assert all(d["method"] in ("tucker", "svd")
               for d in description["decomposed"].values())


@pytest.mark.parametrize("argv,message", [
    (("--ranks", "7"), "Tucker rank 7 is above the input mode of net.4 (6 channels)"),
    (("--layers", "net.1"), "net.1 is a BatchNorm2d; only Conv2d and Linear"),
    (("--target-ratio", "500"), "No rank reaches 500x"),
    (("--ranks", "vbmf", "--target-ratio", "4"), "--target-ratio chooses the ranks"),
    (("--net", "vgg11"), "does not fit vgg11"),
])
def test_bad_input_is_one_sentence_and_no_file(cli, tmp_path, lenet, argv, message):
    out = tmp_path / "bad.pt"
    args = ["decompose", lenet, "--net", "lenet5", "--finetune-epochs", "0", "-o", out]
    if "--net" in argv:
        args[2:4] = []
    code, text, err = cli(*args, *argv)
    assert code == 2 and message in err, err
    assert err.startswith("cimcodec: error: ") and len(err.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []
