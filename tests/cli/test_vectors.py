"""``cimcodec vectors`` and ``cimcodec regress``: vectors captured by one run replayed by
another on both simulators, shards, JUnit XML, and one sentence with exit code 2 for a
stale manifest or a bad option."""

import hashlib
import json
import shutil
import xml.etree.ElementTree as ET

import pytest

from cimcodec.sim.cli import call, main

BLOCKS = ("lfsr", "idct")
PAIRS = {(f"cimcodec.regress.{sim}", block) for block in BLOCKS
         for sim in ("icarus", "verilator")}



@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    """Vectors of two blocks written by ``cimcodec vectors``."""
    root = tmp_path_factory.mktemp("captured")
    assert main(["vectors", "-o", str(root), "--block", "lfsr", "--block", "idct",
                 "--count", "2", "--seed", "3"]) == 0
    return root


def _cases(path):
    suite = ET.parse(path).getroot().find("testsuite")
    return {(c.get("classname"), c.get("name")): c for c in suite.findall("testcase")}


def test_vectors_writes_one_directory_per_block(captured):
    assert sorted(p.name for p in captured.iterdir()) == sorted(BLOCKS)
    record = json.loads((captured / "idct" / "manifest.json").read_text())
    assert record["seed"] == 3 and record["count"] == 2
    assert set(record["files"]) == {"counts.hex", "jobs.hex", "segments.hex", "i.in.hex",
                                    "o.out.hex", "idct_tb.v"}


def test_captured_vectors_replay_on_both_simulators(captured, capsys, tmp_path):
    junit = tmp_path / "regress.xml"
    code, out, _ = call("regress", "--vectors", captured, "--sim", "both", "-j", "2",
                       "--junit", junit)
    assert code == 0, out
    rows = [line.split() for line in out.splitlines()[1:5]]
    assert sorted((r[0], r[1], r[-1]) for r in rows) == sorted(
        (b, s, "PASS") for b in BLOCKS for s in ("icarus", "verilator"))
    for row in rows:
        record = json.loads((captured / row[0] / "manifest.json").read_text())
        assert int(row[2]) == record["jobs"]
        assert int(row[3]) == sum(record["transfers"].values())
    assert out.splitlines()[-1] == "4 passed, 0 failed"
    cases = _cases(junit)
    assert set(cases) == PAIRS
    assert all(c.find("failure") is None for c in cases.values())


def test_shards_run_disjoint_parts_of_the_work(captured, capsys, tmp_path):
    seen = []
    for index in (1, 2):
        junit = tmp_path / f"shard{index}.xml"
        code, _, _ = call("regress", "--vectors", captured, "--shard", f"{index}/2",
                         "--junit", junit)
        assert code == 0
        seen.append(set(_cases(junit)))
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    assert seen[0] | seen[1] == PAIRS


def test_a_failing_block_exits_1_and_says_where(captured, capsys, tmp_path):
    mutated = shutil.copytree(captured / "lfsr", tmp_path / "lfsr")
    path = mutated / "o.out.hex"
    lines = path.read_text().splitlines()
    first = next(k for k, text in enumerate(lines) if not text.startswith("//"))
    lines[first] = format(int(lines[first], 16) ^ 1, "09x")
    path.write_text("\n".join(lines) + "\n")
    # The manifest is made to agree, so the bench is what finds the change.
    record = json.loads((mutated / "manifest.json").read_text())
    record["files"]["o.out.hex"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (mutated / "manifest.json").write_text(json.dumps(record))
    junit = tmp_path / "j.xml"
    code, out, _ = call("regress", "--vectors", mutated, "--sim", "icarus",
                       "--junit", junit)
    assert code == 1
    assert "lfsr on icarus: FAIL lfsr o.out.hex[0] (job 0" in out
    assert "[job 0: full fibonacci 2-bit seed 1]" in out
    failure = _cases(junit)[("cimcodec.regress.icarus", "lfsr")].find("failure")
    assert failure is not None and "o.out.hex[0]" in failure.get("message")


def test_stale_manifest_exits_2_with_one_sentence(captured, capsys, tmp_path):
    stale = shutil.copytree(captured, tmp_path / "stale")
    hexfile = stale / "idct" / "i.in.hex"
    hexfile.write_text(hexfile.read_text() + "0000000\n")
    code, out, err = call("regress", "--vectors", stale)
    assert code == 2 and out == ""
    assert err.startswith("cimcodec: error: Stale vectors: the sha256 of ")
    assert "idct/i.in.hex differs from its manifest's" in err
    assert len(err.strip().splitlines()) == 1


def test_vectors_of_other_verilog_are_refused_or_run_on_todays(captured, capsys, tmp_path):
    """Vectors captured from another release's Verilog: refused as stale, or with
    ``--new-rtl`` run on the Verilog built today."""
    old = shutil.copytree(captured / "lfsr", tmp_path / "old" / "lfsr")
    verilog = old / "lfsr.v"
    verilog.write_text(verilog.read_text().replace("assign cfg__ready", "assign  cfg__ready"))
    record = json.loads((old / "manifest.json").read_text())
    record["verilog"]["sha256"] = hashlib.sha256(verilog.read_bytes()).hexdigest()
    (old / "manifest.json").write_text(json.dumps(record))
    code, out, err = call("regress", "--vectors", old.parent)
    assert code == 2 and out == ""
    assert err.startswith("cimcodec: error: Stale vectors: ") and "was captured from lfsr " \
        "Verilog of sha256" in err and len(err.strip().splitlines()) == 1
    code, out, err = call("regress", "--vectors", old.parent, "--new-rtl")
    assert code == 0, out
    assert "lfsr: running the Verilog built today" in err
    assert out.splitlines()[-1] == "2 passed, 0 failed"


@pytest.mark.parametrize("argv, message", [
    (["vectors", "-o", "{tmp}", "--block", "tile"], "No vectors for block 'tile'; the blocks "
                                                    "are lfsr, remap, markers, huffman"),
    (["vectors", "-o", "{tmp}/file", "--block", "lfsr"], "is a file, not a directory"),
    (["vectors", "-o", "{tmp}", "--count", "-2"], "vector count must be an integer of at "
                                                  "least 0, not -2"),
    (["regress", "--vectors", "{tmp}/nowhere"], "is not a directory of vectors"),
    (["regress", "--vectors", "{tmp}"], "holds no vectors of any block"),
    (["regress", "--vectors", "{tmp}", "--seed", "2"], "--count and --seed choose vectors to "
                                                       "generate"),
    (["regress", "--new-rtl"], "--new-rtl applies to captured vectors"),
])
def test_bad_input_exits_2_with_one_sentence(capsys, tmp_path, argv, message):
    (tmp_path / "file").write_text("")
    code, out, err = call(*[a.format(tmp=tmp_path) for a in argv])
    assert code == 2 and out == ""
    assert err.startswith("cimcodec: error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("shard, message", [("3/2", "'3/2' is not I/N with 1 <= I <= N"),
                                            ("x", "'x' is not I/N")])
def test_bad_shard_is_a_usage_error(capsys, shard, message):
    with pytest.raises(SystemExit) as stop:
        main(["regress", "--shard", shard])
    out, err = capsys.readouterr()
    assert stop.value.code == 2 and out == ""
    assert err.startswith("cimcodec: error: argument --shard: ") and message in err
