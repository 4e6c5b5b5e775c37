"""``cimcodec lossless-bench`` and the ``lossless:<combination>`` container codecs on the
command line and in the library: the table, CSV and plot agree with the library's frames;
whole state dicts round-trip; bad input is one sentence, exit 2 and no output."""

import csv

import numpy as np
import pytest
import torch

from cimcodec.golden.codec import model as container
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.lossless import codec as lossless_codec
from cimcodec.golden.lossless import combination
from cimcodec.golden.lossless.measure import Variant, integer_tensor
from cimcodec.sim.cli import call


def fails(capsys, tmp_path, message, *argv):
    before = set(tmp_path.rglob("*"))
    code, _, err = call(*argv)
    assert code == 2, err
    assert err.startswith("cimcodec") and ": error: " in err and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert set(tmp_path.rglob("*")) == before, "a failed command left a file behind"


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    rng = np.random.default_rng(3)
    w = rng.laplace(0, 0.05, (40, 72)).astype(np.float32)
    path = tmp_path_factory.mktemp("w") / "w.npy"
    np.save(path, w)
    return w, path


COMBOS = "bitmap+*,csc+fixed,delta-dense+huffman,rel+ans+zstd"


def test_bench_table_csv_and_plot_agree_with_the_library(capsys, tmp_path, weights):
    w, path = weights
    code, out, err = call("lossless-bench", path, "--sparsity", "0.5,0.9", "--bits",
                         "8,3", "--channel", "0.25", "--combinations", COMBOS, "-o",
                         tmp_path / "out")
    assert code == 0, err
    rows = list(csv.DictReader(open(tmp_path / "out" / "lossless.csv")))
    variants = [Variant("fine", s, b) for b in (8, 3) for s in (0.5, 0.9)] + \
        [Variant("channel", 0.25, b) for b in (8, 3)]
    names = [n for n in rows[0:0]] or sorted({r["combination"] for r in rows})
    assert len(names) == 8 + 3 and "rel+ans+zstd" in names
    assert len(rows) == len(variants) * len(names)
    for r in rows:
        v = Variant(r["pruning"], float(r["sparsity"]), int(r["bits"]))
        t = integer_tensor(w, v)
        assert int(r["bytes"]) == len(combination(r["combination"]).encode(t))
        assert int(r["nonzeros"]) == np.count_nonzero(t) and r["exact"] == "True"
        assert float(r["ratio"]) == pytest.approx(t.size * v.bits / 8 / int(r["bytes"]),
                                                  abs=1e-4)
    csc = {(r["pruning"], r["sparsity"], r["bits"]): int(r["bytes"]) for r in rows
           if r["combination"] == "csc+fixed"}
    for r in rows:
        assert float(r["x_csc"]) == pytest.approx(
            csc[r["pruning"], r["sparsity"], r["bits"]] / int(r["bytes"]), abs=1e-4)
    # The printed table: one block per variant, the baseline at 1.00x.
    assert out.count("csc+fixed") == len(variants) and "1.00x" in out
    assert "kmeans3 fine 0.9" in out and "int8 channel 0.25" in out
    layers = list(csv.DictReader(open(tmp_path / "out" / "lossless_layers.csv")))
    assert len(layers) == len(rows) and {r["tensor"] for r in layers} == {"w"}
    assert (tmp_path / "out" / "lossless.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_takes_a_state_dict_and_integer_matrices(capsys, tmp_path):
    g = torch.Generator().manual_seed(0)
    state = {"fc.weight": torch.randn(30, 20, generator=g), "fc.bias": torch.randn(30),
             "conv.weight": torch.randn(8, 4, 3, 3, generator=g).bfloat16(),
             "tiny.weight": torch.randn(3, 3)}
    torch.save(state, tmp_path / "m.pt")
    code, out, err = call("lossless-bench", tmp_path / "m.pt", "--sparsity", "0.8",
                         "--bits", "4", "--combinations", "csr+huffman", "-o", tmp_path / "a")
    assert code == 0, err
    layers = list(csv.DictReader(open(tmp_path / "a" / "lossless_layers.csv")))
    assert {r["tensor"] for r in layers} == {"fc.weight", "conv.weight"}
    want = integer_tensor(state["conv.weight"].float().numpy(), Variant("fine", 0.8, 4))
    got = next(r for r in layers if r["tensor"] == "conv.weight")
    assert int(got["bytes"]) == len(combination("csr+huffman").encode(want))

    q = np.random.default_rng(1).integers(-5, 6, (16, 24)).astype(np.int16)
    np.save(tmp_path / "q.npy", q)
    code, out, err = call("lossless-bench", tmp_path / "q.npy", "--combinations",
                         "dense+fixed", "-o", tmp_path / "b")
    assert code == 0, err
    (row,) = list(csv.DictReader(open(tmp_path / "b" / "lossless.csv")))
    assert int(row["bytes"]) == len(combination("dense+fixed").encode(q))
    assert row["bits"] == "8" and row["pruning"] == "none"


@pytest.mark.parametrize("argv, message", [
    (["--sparsity", "1.5"], "fractions in [0, 1)"),
    (["--sparsity", "x"], "not a list of numbers"),
    (["--bits", "9"], "--bits takes integers 1..8"),
    (["--combinations", "nothing*"], "matches no combination"),
    (["--combinations", "bitmap+gzip"], "'gzip' is not known"),
])
def test_bench_bad_options_are_one_sentence(capsys, tmp_path, weights, argv, message):
    fails(capsys, tmp_path, message, "lossless-bench", weights[1], *argv, "-o",
          tmp_path / "out")


def test_bench_bad_inputs_are_one_sentence(capsys, tmp_path):
    fails(capsys, tmp_path, "does not exist", "lossless-bench", tmp_path / "no.npy", "-o",
          tmp_path / "out")
    np.save(tmp_path / "nan.npy", np.array([[np.nan, 1.0]], dtype=np.float32))
    fails(capsys, tmp_path, "NaN", "lossless-bench", tmp_path / "nan.npy", "-o",
          tmp_path / "out")
    np.save(tmp_path / "int.npy", np.ones((3, 3), dtype=np.int8))
    fails(capsys, tmp_path, "measured as it is", "lossless-bench", tmp_path / "int.npy",
          "--bits", "4", "-o", tmp_path / "out")
    (tmp_path / "file").write_text("x")
    fails(capsys, tmp_path, "not a directory", "lossless-bench", tmp_path / "int.npy", "-o",
          tmp_path / "file")


# ------------------------------------------------------------------ container codecs


def _shared_state(seed=0):
    """Weights with at most 15 distinct nonzero values per tensor (k-means output)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in (("a.weight", (48, 64)), ("c.weight", (16, 8, 3, 3))):
        levels = torch.randn(15, generator=g)
        pick = torch.randint(0, 16, shape, generator=g)
        out[name] = torch.cat([torch.zeros(1), levels])[pick]
        out[name.replace("weight", "bias")] = torch.randn(shape[0], generator=g)
    return out


@pytest.mark.parametrize("name", ["lossless:rel+ans", "lossless:delta-bitmap+huffman",
                                  "lossless:coo+expgolomb+zlib"])
def test_container_stores_shared_weights_exactly(name):
    state = _shared_state()
    data = container.compress(state, codec=name, settings={"bits": 4})
    back = container.decompress(data)
    for k, v in state.items():
        assert torch.equal(back[k], v), k
    info = {e.name: e for e in container.inspect(data).entries}
    assert info["a.weight"].codec == name and info["a.bias"].codec == "raw"


def test_container_uniform_int8_is_within_half_a_step():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(64, 96, generator=g)
    data = container.compress({"w": w}, codec="lossless:bitmap+fixed",
                              settings={"sparsity": 0.5})
    back = container.decompress(data)["w"]
    kept = w.abs() > w.abs().median()
    step = float(w.abs().max()) / 127.5
    assert (back[~kept] == 0).all()
    assert float((back[kept] - w[kept]).abs().max()) <= step / 2 + 1e-6
    assert container.lookup("lossless:bitmap+fixed").decode(
        container.extract(data, "w"), (64, 96), "float32", {}).dtype == np.float32


def test_container_lossless_errors_are_one_sentence():
    with pytest.raises(CimcodecError, match="'foo' is not known"):
        container.compress(_shared_state(), codec="lossless:foo+huffman")
    with pytest.raises(CimcodecError, match="take the settings bits, sparsity"):
        container.compress(_shared_state(), codec="lossless:rel+ans", settings={"quality": 3})
    with pytest.raises(CimcodecError, match="floating-point"):
        lossless_codec.codec("lossless:rel+ans").encode(np.ones((4, 4), np.int8), {})
    data = container.compress(_shared_state(), codec="lossless:rel+huffman",
                              settings={"bits": 4})
    member = container.extract(data, "a.weight")
    codec = container.lookup("lossless:rel+huffman")
    frame = 2 + 4 * member[1]        # the codebook is covered by the container's CRC
    for bad in (member[:1], member[:40], member[:-1], b"\x07" + member[1:],
                member[:frame + 9] + bytes([member[frame + 9] ^ 0x40]) + member[frame + 10:]):
        with pytest.raises(CimcodecError):
            codec.decode(bad, (48, 64), "float32", {})


def test_the_best_combinations_are_registered_and_any_other_is_built():
    for name in lossless_codec.BEST:
        assert f"lossless:{name}" in container.CODECS
    assert container.lookup("lossless:csr+rle").name == "lossless:csr+rle"
    with pytest.raises(CimcodecError, match="or lossless:<name>"):
        container.lookup("gzip")


def test_cli_compress_with_a_lossless_codec(capsys, tmp_path):
    state = _shared_state(2)
    torch.save(state, tmp_path / "m.pt")
    code, out, err = call("compress", tmp_path / "m.pt", "-o", tmp_path / "m.cimz",
                         "--codec", "lossless:delta-rel+ans", "--weight-bits", "4")
    assert code == 0 and "(lossless:delta-rel+ans)" in out, err
    assert call("decompress", tmp_path / "m.cimz", "-o", tmp_path / "b.pt")[0] == 0
    back = torch.load(tmp_path / "b.pt", weights_only=True)
    assert all(torch.equal(back[k], v) for k, v in state.items())
    code, out, _ = call("inspect", tmp_path / "m.cimz")
    assert code == 0 and out.count("lossless:delta-rel+ans") == 2
    fails(capsys, tmp_path, "'nope' is not known", "compress", tmp_path / "m.pt", "-o",
          tmp_path / "x.cimz", "--codec", "lossless:nope+ans")
    fails(capsys, tmp_path, "Codec must be one of", "compress", tmp_path / "m.pt", "-o",
          tmp_path / "x.cimz", "--codec", "gzip")
