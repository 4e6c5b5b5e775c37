"""The command line's contract (README, "Command line"): every bad input a user can give
ends with exit code 2 and exactly one line on standard error, ``cimcodec: error: ...``,
with no traceback and no file written (not even a temporary one), before any simulator
or training starts; ``--debug`` shows the traceback instead, and a real bug keeps its
traceback. The inputs the codec does take (float16, bfloat16, float32, float64; int8
that survives exactly) compress and decompress with their values."""

import importlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cimcodec.golden.codec import pipeline as codec
from cimcodec.golden.errors import CimcodecError
from cimcodec.sim.cli import call, main

W = np.random.default_rng(5).normal(0, 0.05, (20, 30)).astype(np.float32)


def _pt(path, obj):
    torch.save(obj, path)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """One directory with every input file the rows below name."""
    d = tmp_path_factory.mktemp("in")
    rng = np.random.default_rng(0)
    arrays = {
        "w": W, "str": np.array([["a", "b"], ["c", "d"]]), "c64": W.astype(np.complex64),
        "u8": rng.integers(0, 256, (20, 30)).astype(np.uint8),
        "i64": rng.integers(-5, 5, (20, 30)), "bool": W > 0,
        "i8": rng.integers(-128, 128, (16, 24)).astype(np.int8),
        "huge": np.full((4, 4), 1e300), "empty": np.zeros((0, 3), np.float32),
        "scalar": np.float32(3.0), "rec": np.zeros(4, dtype=[("a", "f4"), ("b", "i4")]),
        "W8": rng.integers(-128, 128, (4, 2)).astype(np.int8),
        "Wf": np.zeros((4, 2), np.float32), "X": rng.integers(0, 256, (2, 4)).astype(np.uint8),
        "Xneg": -np.ones((2, 4), np.int64), "X3": np.zeros((2, 4, 1), np.uint8),
        "m8": rng.integers(0, 256, (16, 24)).astype(np.uint8), "cube": np.zeros((2, 3, 4)),
    }
    for name, a in arrays.items():
        np.save(d / f"{name}.npy", a)
    for name, value in (("nan", np.nan), ("inf", -np.inf)):
        bad = W.copy()
        bad[3, 4] = value
        np.save(d / f"{name}.npy", bad)
    np.save(d / "obj.npy", np.array([1, "a", None], dtype=object), allow_pickle=True)
    np.savez(d / "archive.npz", a=W)
    os.rename(d / "archive.npz", d / "npz.npy")
    (d / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    (d / "t.txt").write_text("hello")
    (d / "sub").mkdir()
    torch.manual_seed(0)
    _pt(d / "m.pt", torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Linear(4, 3))
        .state_dict())
    _pt(d / "mod.pt", torch.nn.Linear(3, 4))
    _pt(d / "list.pt", [1, 2])
    (d / "junk.pt").write_bytes(b"not a torch file")
    for name, t in (("cplx", torch.zeros(3, 4, dtype=torch.complex64)),
                    ("u8", torch.zeros(3, 4, dtype=torch.uint8)),
                    ("i64", torch.zeros(3, 4, dtype=torch.int64)),
                    ("bool", torch.zeros(3, 4, dtype=torch.bool)),
                    ("f8", torch.zeros(3, 4, dtype=torch.float8_e4m3fn)),
                    ("sparse", torch.ones(3, 4).to_sparse()),
                    ("meta", torch.zeros(3, 4, device="meta"))):
        _pt(d / f"{name}.pt", {"w": t})
    data = codec.compress_matrix(W, clusters=8).data
    (d / "c.jpg").write_bytes(data)
    (d / "cut.jpg").write_bytes(data[:len(data) // 2])
    (d / "crc.jpg").write_bytes(data[:-40] + bytes([data[-40] ^ 0x10]) + data[-39:])
    buf = io.BytesIO()
    Image.fromarray(np.full((16, 16), 100, np.uint8)).save(buf, "JPEG")
    (d / "plain.jpg").write_bytes(buf.getvalue())
    (d / "empty.jpg").write_bytes(b"")
    return d


# (argv with {in} / {out} for the input and an empty output directory, words the one
# line must hold). Every row must fail before any simulator or training starts.
NOT_A_DTYPE = "Weights must be floating point (float16, bfloat16, float32, float64) or int8"
INT8 = "int8 weights are taken as already quantized and must come back bit for bit"
MAC = ["--weights", "{in}/W8.npy", "--acts", "{in}/X.npy", "--adc-bits", "5"]
ROWS = [
    # compress: dtypes, values, shapes
    ("compress {in}/str.npy -o {out}/x.jpg", f"{NOT_A_DTYPE} (already quantized), not <U1 "
     "(strings); convert them first."),
    ("compress {in}/c64.npy -o {out}/x.jpg", "not complex64;"),
    ("compress {in}/u8.npy -o {out}/x.jpg", "not uint8;"),
    ("compress {in}/i64.npy -o {out}/x.jpg", "not int64;"),
    ("compress {in}/bool.npy -o {out}/x.jpg", "not bool;"),
    ("compress {in}/rec.npy -o {out}/x.jpg", "(records); convert them first."),
    ("compress {in}/i8.npy -o {out}/x.jpg --remap none", f"{INT8}, but "),
    ("compress {in}/i8.npy -o {out}/x.jpg --remap none --clusters 4", "at quality 90 with 4 "
     "clusters; pass floating-point weights"),
    ("compress {in}/nan.npy -o {out}/x.jpg", "The weights hold NaN or infinite values."),
    ("compress {in}/inf.npy -o {out}/x.jpg", "The weights hold NaN or infinite values."),
    ("compress {in}/huge.npy -o {out}/x.jpg", "The weights exceed the float32 range"),
    ("compress {in}/empty.npy -o {out}/x.jpg", "at least one dimension and one element, not "
     "shape (0, 3)."),
    ("compress {in}/scalar.npy -o {out}/x.jpg", "not shape ()."),
    # compress: files
    ("compress {in}/nope.npy -o {out}/x.jpg", "nope.npy does not exist or is not a file."),
    ("compress {in}/sub -o {out}/x.jpg", "sub does not exist or is not a file."),
    ("compress {in}/t.txt -o {out}/x.jpg", "must be a .npy array or a .pt torch file."),
    ("compress {in}/junk.npy -o {out}/x.jpg", "junk.npy is not a readable .npy array file."),
    ("compress {in}/obj.npy -o {out}/x.jpg", "obj.npy is not a readable .npy array file."),
    ("compress {in}/npz.npy -o {out}/x.jpg", "npz.npy is an .npz archive, not a .npy array"),
    ("compress {in}/w.npy -o {out}", "is a directory, not a file name."),
    ("compress {in}/w.npy -o {out}/no/x.jpg", "x.jpg does not exist."),
    ("compress {in}/w.npy --layer fc -o {out}/x.jpg", "--layer applies only to .pt"),
    ("compress {in}/junk.pt -o {out}/x.jpg", "junk.pt is not a readable torch file."),
    ("compress {in}/mod.pt -o {out}/x.jpg", "holds pickled Python objects (a whole "
     "nn.Module?); save the weights instead with torch.save(model.state_dict(), PATH)."),
    ("compress {in}/list.pt -o {out}/x.jpg", "holds neither a tensor nor a state dict"),
    ("compress {in}/m.pt -o {out}/x.jpg", "holds 2 2-D tensors; name one with --layer."),
    ("compress {in}/m.pt --layer fc9 -o {out}/x.jpg", "has no tensor named 'fc9'"),
    ("compress {in}/cplx.pt -o {out}/x.jpg", "not complex64;"),
    ("compress {in}/u8.pt -o {out}/x.jpg", "not uint8;"),
    ("compress {in}/i64.pt -o {out}/x.jpg", "not int64;"),
    ("compress {in}/bool.pt -o {out}/x.jpg", "not bool;"),
    ("compress {in}/f8.pt -o {out}/x.jpg", "not float8_e4m3fn;"),
    ("compress {in}/sparse.pt -o {out}/x.jpg", "of layout torch.sparse_coo; pass a dense one"),
    ("compress {in}/meta.pt -o {out}/x.jpg", "on the meta device, which holds no values"),
    # compress: options
    ("compress {in}/w.npy -o {out}/x.jpg --budget -1", "The seed budget must be a positive "
     "integer, not -1."),
    ("compress {in}/w.npy -o {out}/x.jpg --budget 0", "positive integer, not 0."),
    ("compress {in}/w.npy -o {out}/x.jpg --quality 0", "JPEG quality must be an integer "
     "1..100, not 0."),
    ("compress {in}/w.npy -o {out}/x.jpg --quality 101", "1..100, not 101."),
    ("compress {in}/w.npy -o {out}/x.jpg --quality high", "'high' is not an integer"),
    ("compress {in}/w.npy -o {out}/x.jpg --clusters -1", "The cluster count must be 0"),
    ("compress {in}/w.npy -o {out}/x.jpg --clusters 257", "1..256, not 257."),
    ("compress {in}/w.npy -o {out}/x.jpg --remap bogus", "invalid choice: 'bogus'"),
    ("compress {in}/w.npy -o {out}/x.jpg --frobnicate", "unrecognized arguments: --frob"),
    ("compress {in}/w.npy", "the following arguments are required: -o/--output"),
    # decompress / inspect
    ("decompress {in}/nope.jpg -o {out}/x.npy", "does not exist or is not a file."),
    ("decompress {in}/sub -o {out}/x.npy", "does not exist or is not a file."),
    ("decompress {in}/c.jpg -o {out}", "is a directory, not a file name."),
    ("decompress {in}/t.txt -o {out}/x.npy", "does not start with SOI"),
    ("decompress {in}/empty.jpg -o {out}/x.npy --raw", "does not start with SOI"),
    ("decompress {in}/plain.jpg -o {out}/x.npy", "not a cimcodec container"),
    ("decompress {in}/cut.jpg -o {out}/x.npy", "ends"),
    ("decompress {in}/crc.jpg -o {out}/x.npy", "CRC-32 mismatch"),
    ("decompress {in}/c.jpg -o {out}/x.npy --raw --integer", "argument --integer: not "
     "allowed with argument --raw"),
    ("inspect {in}/nope.jpg", "does not exist or is not a file."),
    ("inspect {in}/plain.jpg", "not a cimcodec container"),
    ("inspect {in}/crc.jpg", "CRC-32 mismatch"),
    # mac / rtl-mac
    *[(f"{cmd} {' '.join(args)} -o {{out}}/y.npy", message)
      for cmd in ("mac", "rtl-mac") for args, message in (
          (MAC[:1] + ["{in}/Wf.npy"] + MAC[2:], "Weights must be an integer array, not "
           "float32."),
          (MAC[:1] + ["{in}/str.npy"] + MAC[2:], "Weights must be an integer array, not <U1"),
          (MAC[:1] + ["{in}/npz.npy"] + MAC[2:], "is an .npz archive"),
          (MAC[:1] + ["{in}/nope.npy"] + MAC[2:], "nope.npy does not exist"),
          (MAC[:3] + ["{in}/Xneg.npy"] + MAC[4:], "Activations must be 8-bit unsigned "
           "(0..255), not -1..-1."),
          (MAC[:3] + ["{in}/X3.npy"] + MAC[4:], "must be 2-D, not 3-D"),
          (MAC[:3] + ["{in}/c64.npy"] + MAC[4:], "Activations must be an integer array, "
           "not complex64."),
          (MAC[:5] + ["0"], "ADC resolution must be between 1 and 16 bits, not 0."),
          (MAC[:5] + ["17"], "between 1 and 16 bits, not 17."),
          (MAC[:5] + ["five"], "'five' is not an integer"))],
    ("mac " + " ".join(MAC) + " -o {out}", "is a directory, not a file name."),
    ("rtl-mac " + " ".join(MAC) + " -o {out} --sim icarus", "is a directory, not a file"),
    ("rtl-mac " + " ".join(MAC) + " -o {out}/no/y.npy", "y.npy does not exist."),
    ("rtl-mac " + " ".join(MAC) + " -o {out}/y.npy --sim modelsim",
     "invalid choice: 'modelsim'"),
    # rtl-decode
    ("rtl-decode {in}/nope.jpg -o {out}/x.npy", "does not exist or is not a file."),
    ("rtl-decode {in}/t.txt -o {out}/x.npy", "not a JPEG file"),
    ("rtl-decode {in}/plain.jpg -o {out}/x.npy", "not a cimcodec container"),
    ("rtl-decode {in}/crc.jpg -o {out}/x.npy", "CRC-32 mismatch"),
    ("rtl-decode {in}/c.jpg -o {out}", "is a directory, not a file name."),
    ("rtl-decode {in}/c.jpg -o {out}/no/x.npy", "x.npy does not exist."),
    ("rtl-decode {in}/plain.jpg -o {out}/x.npy --raw --max-rows 12",
     "max rows must be a multiple of 8"),
    ("rtl-decode {in}/c.jpg -o {out}/x.npy --max-rows 0", "'0' is not a positive integer"),
    ("rtl-decode {in}/c.jpg -o {out}/x.npy --sim modelsim", "invalid choice: 'modelsim'"),
    ("rtl-decode {in}/c.jpg -o {out}/x.npy --plain --integer", "argument --integer: not "
     "allowed with argument --plain"),
    # words / remap
    ("words --count -1", "must be an integer 0..16777216, not -1."),
    ("words --count 99999999999999999999", "0..16777216, not 99999999999999999999."),
    ("words --width 0", "LFSR width must be between 2 and 32 bits, not 0."),
    ("words --width 40", "LFSR width must be between 2 and 32 bits, not 40."),
    ("words --width 8 --seeds 0", "LFSR seed must be between 1 and 255"),
    ("words --seeds a", "'a' is not an integer"),
    ("words --taps 0", "must have bit 15 as their top bit"),
    ("words --scheme progressive --stage-len 0", "stage length must be at least 1, not 0."),
    ("words --scheme split --fields 3,5 --seeds 1", "need one seed per field"),
    ("words --scheme bogus", "invalid choice: 'bogus'"),
    ("words --kind bogus", "invalid choice: 'bogus'"),
    ("remap {in}/m8.npy -o {out}/r.npy --inverse", "--inverse needs the original shape"),
    ("remap {in}/m8.npy -o {out}/r.npy --inverse --shape 3", "--shape ROWS,COLS."),
    ("remap {in}/m8.npy -o {out}/r.npy --inverse --shape a,b", "'a' is not an integer"),
    ("remap {in}/m8.npy -o {out}/r.npy --inverse --shape=-3,4", "Row count must be a "
     "positive integer, not -3."),
    ("remap {in}/m8.npy -o {out}/r.npy --inverse --shape 0,4", "Row count must be a "
     "positive integer, not 0."),
    ("remap {in}/m8.npy -o {out}/r.npy --inverse --shape 100,100", "Expected a 104x104 "
     "matrix, not 16x24."),
    ("remap {in}/cube.npy -o {out}/r.npy", "must be 2-D, not 3-D"),
    ("remap {in}/junk.npy -o {out}/r.npy", "is not a readable .npy array file."),
    ("remap {in}/nope.npy -o {out}/r.npy", "does not exist or is not a file."),
    ("remap {in}/m8.npy -o {out}/r.npy --seeds 1,2,3,4,5", "needs 1 seed(s), not 5."),
    ("remap {in}/m8.npy -o {out}/r.npy --seeds=-1", "LFSR seed must be between 1 and 31"),
    ("remap {in}/m8.npy -o {out}", "is a directory, not a file name."),
    # export-int / infer / rtl-infer (refusals that need an exported network: in
    # tests/cli/test_tile.py)
    ("export-int {in}/m.pt --net mlp --adc-bits 4 -o {out}/x.cimz", "The state dict does "
     "not fit mlp on digits: it lacks 'net.0.weight'"),
    ("export-int {in}/mod.pt --net mlp --adc-bits 4 -o {out}/x.cimz", "holds pickled Python "
     "objects"),
    ("export-int {in}/m.pt --net mlp --adc-bits 0 -o {out}/x.cimz", "'0' is not a positive "
     "integer"),
    ("export-int {in}/m.pt --net mlp -o {out}/x.cimz", "the following arguments are "
     "required: --adc-bits"),
    ("infer {in}/c.jpg", "is not a cimcodec model container"),
    ("infer {in}/nope.cimz", "nope.cimz does not exist or is not a file."),
    ("infer {in}/c.jpg --count 0", "'0' is not a positive integer"),
    ("rtl-infer {in}/c.jpg --sim icarus", "is not a cimcodec model container"),
    ("rtl-infer {in}/c.jpg --sim modelsim", "invalid choice: 'modelsim'"),
    # sweep / verilog / synth / demo, and the command itself
    ("sweep --quality 0 -o {out}/s", "JPEG quality must be an integer 1..100, not 0"),
    ("sweep --quality , -o {out}/s", "needs at least one quality"),
    ("sweep --quality 101 -o {out}/s", "JPEG quality must be an integer 1..100, not 101"),
    ("sweep -o {in}/t.txt", "t.txt exists and is not a directory."),
    ("sweep --net resnet -o {out}/s", "invalid choice: 'resnet'"),
    ("sweep --data mnist -o {out}/s", "The mnist data set needs a directory holding its files."),
    ("sweep --data imagenet -o {out}/s", "invalid choice: 'imagenet'"),
    ("sweep {in}/t.txt -o {out}/s", "is not a readable torch file."),
    ("verilog -o {in}/t.txt --block lfsr", "t.txt exists and is not a directory."),
    ("verilog -o {out}/v --block bogus", "invalid choice: 'bogus'"),
    ("verilog -o {out}/v --block cim --cim-adc-bits 99", "between 1 and 16 bits, not 99."),
    ("synth --block cim --cim-rows 0", "'0' is not a positive integer"),
    ("verilog -o {out}/v --block cim --cim-planes 3", "Planes per clock must be 1, 2, 4 or 8, "
     "not 3."),
    ("synth --block cim --cim-planes 0", "'0' is not a positive integer"),
    ("synth --block cim --placer sa", "invalid choice: 'sa'"),
    ("synth --block lfsr --seed 0", "'0' is not a positive integer"),
    ("demo --hidden 0", "'0' is not a positive integer"),
    ("demo --sim modelsim", "invalid choice: 'modelsim'"),
    ("frobnicate", "invalid choice: 'frobnicate'"),
    ("", "the following arguments are required: command"),
]


def _listing(directory: Path) -> dict:
    return {p.relative_to(directory): p.stat().st_mtime_ns for p in directory.rglob("*")}


def run(argv) -> tuple[int, str, str]:
    return call(*argv)


@pytest.fixture
def nothing_runs(monkeypatch):
    """No simulator, Verilog elaboration or training may start for a bad input."""
    def started(*args, **kwargs):
        raise AssertionError("a simulator, an elaboration or a training started")

    # Modules that bind fit_digits by name at import: imported before the patch, so
    # none of them keeps the stand-in after this test.
    for module in ("deep_compression", "jpeg_aware", "mtd"):
        importlib.import_module(f"cimcodec.golden.ml.{module}")

    for target in ("cimcodec.sim.rtl.run_jobs", "cimcodec.sim.verilog.elaborate",
                   "cimcodec.golden.ml.models.train", "cimcodec.golden.ml.models.fit_digits"):
        monkeypatch.setattr(target, started)


@pytest.mark.parametrize("command, message", ROWS, ids=[r[0].split(" -o")[0] for r in ROWS])
def test_bad_input_is_one_sentence_and_exit_2(command, message, inputs, tmp_path,
                                              nothing_runs):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    before = _listing(inputs)
    argv = [a.format(**{"in": inputs, "out": out_dir}) for a in command.split()]
    code, out, err = run(argv)
    assert code == 2 and out == "", (code, out, err)
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("cimcodec: error: ") and message in err, err
    assert "Traceback" not in err
    assert not any(out_dir.iterdir()), list(out_dir.iterdir())
    assert _listing(inputs) == before


def test_debug_shows_the_traceback(inputs, tmp_path):
    """``--debug`` re-raises, in-process and from the entry point (a command that
    imports no torch, to keep the subprocess short); without it the same input is one
    line."""
    argv = ["compress", str(inputs / "str.npy"), "-o", str(tmp_path / "x.jpg")]
    with pytest.raises(CimcodecError, match="not <U1"):
        main(["--debug", *argv])
    assert not any(tmp_path.iterdir())
    entry = [sys.executable, "-m", "cimcodec"]
    for debug in (True, False):
        done = subprocess.run([*entry, *["--debug"] * debug, "words", "--width", "0"],
                              capture_output=True, text=True)
        last = "LFSR width must be between 2 and 32 bits, not 0.\n"
        assert done.stdout == ""
        if debug:
            assert done.returncode == 1
            assert done.stderr.startswith("Traceback (most recent call last):\n")
            assert done.stderr.endswith(f"cimcodec.golden.errors.CimcodecError: {last}")
        else:
            assert done.returncode == 2 and done.stderr == f"cimcodec: error: {last}"


def test_a_bug_keeps_its_traceback(inputs, tmp_path, monkeypatch):
    """An exception that is not about the user's input is not turned into exit 2."""
    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(codec, "compress_matrix", bug)
    with pytest.raises(ZeroDivisionError):
        main(["compress", str(inputs / "w.npy"), "-o", str(tmp_path / "x.jpg")])
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------- what the codec does take


def _compress_decompress(source, tmp_path, *options):
    """CLI compress (remap none) and decompress: ``(file bytes, decompressed array)``."""
    code, out, err = run(["compress", str(source), "-o", str(tmp_path / "w.jpg"),
                          "--remap", "none", *options])
    assert code == 0 and out.startswith("wrote") and err == "", err
    data = (tmp_path / "w.jpg").read_bytes()
    code, _, err = run(["decompress", str(tmp_path / "w.jpg"), "-o", str(tmp_path / "w.npy")])
    assert code == 0 and err == ""
    return data, np.load(tmp_path / "w.npy")


@pytest.mark.parametrize("kind, dtype", [
    ("npy", np.float16), ("npy", np.float64),
    ("pt", torch.float16), ("pt", torch.bfloat16), ("pt", torch.float64)])
def test_float_dtypes_compress_and_decompress(kind, dtype, tmp_path, check_round_trip):
    if kind == "npy":
        np.save(tmp_path / "in.npy", W.astype(dtype))
        source, original = tmp_path / "in.npy", W.astype(dtype)
    else:
        tensor = torch.from_numpy(W).to(dtype)
        _pt(tmp_path / "in.pt", {"fc.weight": tensor, "fc.bias": torch.zeros(20)})
        source, original = tmp_path / "in.pt", tensor.float().numpy()   # exact widening
    data, decoded = _compress_decompress(source, tmp_path)
    assert decoded.dtype == np.float32
    assert np.array_equal(decoded, codec.decompress_matrix(data))
    check_round_trip(original, {}, data)


def test_int8_round_trips_bit_for_bit(tmp_path, jpeg_fixed_point):
    q = jpeg_fixed_point((16, 24), 90, 7)
    np.save(tmp_path / "q.npy", q)
    data, decoded = _compress_decompress(tmp_path / "q.npy", tmp_path)
    assert np.array_equal(decoded, q.astype(np.float32))
    code, _, _ = run(["decompress", str(tmp_path / "w.jpg"), "-o", str(tmp_path / "i.npy"),
                      "--integer"])
    back = np.load(tmp_path / "i.npy")
    assert code == 0 and back.dtype == np.int8 and np.array_equal(back, q)


def test_a_ratio_below_1x_is_written_with_a_one_line_warning(tmp_path):
    np.save(tmp_path / "v.npy", W[0, :10])
    code, out, err = run(["compress", str(tmp_path / "v.npy"), "-o", str(tmp_path / "v.jpg")])
    ratio = 4 * 10 / (tmp_path / "v.jpg").stat().st_size
    assert code == 0 and out.startswith(f"wrote {tmp_path / 'v.jpg'}: v 10 -> ")
    assert ratio < 1 and err == (
        f"cimcodec: warning: the file is larger than the fp32 tensor ({ratio:.2f}x): "
        f"headers and metadata outweigh 10 weights.\n")
