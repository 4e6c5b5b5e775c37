"""``cimcodec export-int / infer / rtl-infer``: the 64-16-10 digits MLP exported for the
16 x 4 tile with a 4-bit ADC; the golden integer network against a numpy chain written
from the container's tensors; the whole network on the RTL tile classifying sampled
test images exactly as the golden model (Verilator; the tile's own bench runs on both
simulators in tests/rtl/test_tile.py); bad input exits 2 with one sentence and no
simulation."""

import json

import numpy as np
import pytest
import torch

from cimcodec.golden.codec import model as container
from cimcodec.golden.codec import pipeline as codec
from cimcodec.golden.ml.datasets import load, split
from cimcodec.golden.ml.models import build
from cimcodec.sim.cli import main


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``(MODEL.pt, MODEL.cimz, export-int's output)`` for the digits MLP."""
    where = tmp_path_factory.mktemp("tile")
    pt, cimz = where / "mlp.pt", where / "mlp.cimz"
    assert main(["train", "--net", "mlp", "-o", str(pt)]) == 0
    assert main(["export-int", str(pt), "--net", "mlp", "--adc-bits", "4", "--remap", "full",
                 "--budget", "2", "--qat-epochs", "1", "--cim-epochs", "1",
                 "-o", str(cimz)]) == 0
    return pt, cimz


def _numpy_network(data, x):
    """The MLP from the container's tensors, written out: each layer sums the golden
    macro's results over 16-row slices (the 4-bit ADC is lossy on 16 rows, so the slices
    matter), then the output stage as ``floor((2 v M + 2**S) / 2**(S + 1))``."""
    from cimcodec.golden.blocks.cim import CimParams

    spec = container.inspect(data).model["integer"]
    state = container.decompress(data, names=[
        f"{layer['name']}.{part}" for layer in spec["layers"] for part in ("bias", "requant")])
    q = np.clip(np.round(x / spec["input_scale"]), 0, 255).astype(np.int64)
    for layer in spec["layers"]:
        name = layer["name"]
        w = codec.decompress_matrix(container.extract(data, f"{name}.matrix"),
                                    integer=True).astype(np.int64)
        k = w.shape[0]
        pad = -k % 16
        qp, wp = np.pad(q, ((0, 0), (0, pad))), np.pad(w, ((0, pad), (0, 0)))
        acc = sum(CimParams(16, w.shape[1], 4).compute(wp[t:t + 16], qp[:, t:t + 16])
                  for t in range(0, k + pad, 16))
        v = acc + state[f"{name}.bias"].numpy().astype(np.int64)
        m, s = (int(t) for t in state[f"{name}.requant"])
        r = np.floor_divide(2 * v * m + 2**s, 2**(s + 1))
        q = np.clip(r, 0, 255) if layer["clamp"] == "uint8" else r
    return q


def test_export_int_and_infer(exported, capsys):
    _, cimz = exported
    capsys.readouterr()
    assert main(["infer", str(cimz), "--stats"]) == 0
    stats = json.loads(capsys.readouterr().out)
    x, y = split(load("digits"))[2]
    logits = _numpy_network(cimz.read_bytes(), x.numpy().astype(np.float64))
    assert stats["images"] == len(y) == 360
    assert stats["predictions"]["golden"] == logits.argmax(1).tolist()
    assert stats["accuracy"]["golden"] == pytest.approx(float((logits.argmax(1) ==
                                                               y.numpy()).mean()))
    # Layer 0 (64 x 16) loads 4 x 4 windows per batch of 128 images, layer 2 (16 x 10)
    # 1 x 3 windows once; int8 windows hold every weight once per load.
    assert stats["loads"] == 16 * 3 + 3
    assert stats["int8_bytes_per_image"] == pytest.approx((64 * 16 * 3 + 16 * 10) / 360)
    assert main(["infer", str(cimz)]) == 0
    out = capsys.readouterr().out
    assert "16 x 4 CIM tile with a 4-bit ADC (layers 64x16, 16x10)" in out
    assert f"golden {stats['accuracy']['golden']:.4f}" in out


def test_rtl_infer_classifies_as_the_golden_model(exported, capsys):
    """Three images through the network on the 16 x 4 array tests/rtl/test_tile.py
    builds, then the first on its build with two lanes and row writes, on Verilator
    (the tile's bench runs on both simulators there; ``--sim`` reaches the same runner
    as every other ``rtl-*`` command, which tests/cli/test_cim.py and test_decode.py run
    on Icarus). One test, so that the one-lane run serves both."""
    _, cimz = exported
    capsys.readouterr()
    cols, count = 4, 3
    assert main(["rtl-infer", str(cimz), "--count", str(count), "--sim", "verilator",
                 "--cols", str(cols), "--stats"]) == 0
    stats = json.loads(capsys.readouterr().out)
    x, _ = split(load("digits"))[2]
    logits = _numpy_network(cimz.read_bytes(), x[:count].numpy().astype(np.float64))
    assert stats["rtl_equals_golden"]
    assert stats["predictions"]["rtl"] == stats["predictions"]["golden"] \
        == logits.argmax(1).tolist()
    # Layers 64x16 and 16x10 on 16-row windows of `cols` columns, one job per load.
    loads = 4 * -(-16 // cols) + -(-10 // cols)
    assert stats["loads"] == loads and stats["jobs"] == loads
    assert stats["clocks"] == pytest.approx(count * stats["clocks_per_image"])
    assert 0 < stats["mac_clocks_per_image"] < stats["load_clocks_per_image"]
    reload = stats["reload_clocks"]
    assert set(reload) == {"net.0", "net.2"}
    for figures in reload.values():            # a whole member per load, then 64 cells
        assert figures["clocks"] > figures["file_bytes"] + 64

    # The same network on a tile with two decoder lanes whose array takes a row (4
    # weights) per write (the members have no restart intervals, so lane 0 decodes them
    # all; the build tests/rtl/test_tile.py makes), on the first image: the same class;
    # each reload's copy 48 clocks shorter (16 writes, not 64). A reload's clocks do not
    # depend on the images (every image's vectors ride on the same 19 loads).
    capsys.readouterr()
    assert main(["rtl-infer", str(cimz), "--count", "1", "--sim", "verilator", "--stats",
                 "--cols", str(cols), "--lanes", "2", "--cim-writes", "4"]) == 0
    one, wide = stats, json.loads(capsys.readouterr().out)
    assert wide["rtl_equals_golden"]
    assert wide["predictions"] == {k: v[:1] for k, v in one["predictions"].items()}
    for name, figures in wide["reload_clocks"].items():
        assert figures["int8_clocks"] == 16 and one["reload_clocks"][name]["int8_clocks"] == 64
        assert figures["clocks"] == pytest.approx(
            one["reload_clocks"][name]["clocks"] - 48, abs=1e-9), name


@pytest.fixture
def plain_container(tmp_path):
    path = tmp_path / "plain.cimz"
    path.write_bytes(container.compress(build("mlp").state_dict()))
    return path


def _fails(argv, capsys, message):
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("options, message", [
    (["--adc-bits", "5"], "trained for a 4-bit ADC, not a 5-bit one"),
    (["--rows", "8"], "trained for 16-row macros with a 4-bit ADC"),
    (["--data", "mnist", "--data-dir", "."], "exported for digits, not mnist"),
    (["--count", "361"], "The test split has 360 images, fewer than the 361 asked for."),
])
def test_infer_refuses_another_setting(exported, capsys, options, message):
    for command in (["infer"], ["rtl-infer", "--sim", "icarus"]):
        _fails([*command, str(exported[1]), *options], capsys, message)


@pytest.mark.parametrize("options, message", [
    (["--lanes", "3"], "Decompressor lanes must be one of 1, 2, 4 or 8, not 3."),
    (["--cim-writes", "3"], "Writes per clock must be a power of two that divides the 4 "
                            "columns, not 3."),
    (["--cim-writes", "8"], "Writes per clock must be a power of two that divides the 4 "
                            "columns, not 8."),
])
def test_rtl_infer_refuses_bad_lanes_and_writes(exported, capsys, options, message):
    _fails(["rtl-infer", "--sim", "icarus", str(exported[1]), *options], capsys, message)


def test_container_without_integer_data(plain_container, capsys):
    for command in (["infer"], ["rtl-infer", "--sim", "icarus"]):
        _fails([*command, str(plain_container)], capsys, "holds no integer network")


def test_export_int_refuses_what_the_tile_cannot_run(exported, tmp_path, capsys):
    pt = exported[0]
    out = str(tmp_path / "x.cimz")
    _fails(["export-int", str(pt), "--net", "mlp", "--adc-bits", "4", "--rows", "8",
            "--max-matrix", "8", "-o", out], capsys,
           "Layer net.0 (64 x 16 weights) does not fit the tile: its decompressor takes "
           "matrices up to 8 x 8.")
    lenet = tmp_path / "lenet.pt"
    torch.save(build("lenet5").state_dict(), lenet)
    _fails(["export-int", str(lenet), "--net", "lenet5", "--adc-bits", "4", "-o", out],
           capsys, "layer 0 of the network is CIMConv2d")
    _fails(["export-int", str(pt), "--net", "mlp2", "--adc-bits", "4", "-o", out], capsys,
           "does not fit mlp2")
    _fails(["export-int", str(pt), "--net", "mlp", "--adc-bits", "4", "-o",
            str(tmp_path / "missing" / "x.cimz")], capsys, "does not exist")
    assert not (tmp_path / "x.cimz").exists()
