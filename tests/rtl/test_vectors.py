"""Golden vectors and the plain Verilog benches (no cocotb): the files and their packing,
seeds, the committed benches, the manifest checks, and the benches on Icarus and
Verilator passing good vectors and failing mutated vectors or Verilog."""

import json
import re
import shutil
import subprocess

import pytest

from cimcodec.golden.blocks.lfsr import Lfsr
from cimcodec.golden.errors import CimcodecError
from cimcodec.sim import plain_bench, regress, tools, vectors
from cimcodec.sim.vector_cases import BLOCKS


@pytest.fixture(scope="module")
def lfsr_dir(tmp_path_factory):
    """The lfsr block's vectors: the corner cases and 3 random ones."""
    return vectors.write(tmp_path_factory.mktemp("vectors"), ["lfsr"], count=3, seed=5)[0]


def _data_lines(path):
    return [line for line in path.read_text().splitlines() if not line.startswith("//")]


def _copy(directory, tmp_path):
    return shutil.copytree(directory, tmp_path / directory.name)


def test_committed_benches_are_what_the_generator_writes():
    for name, block in BLOCKS.items():
        assert vectors.bench_path(name).read_text() == plain_bench.render(block), name


def test_files_follow_the_manifest_and_the_golden_model(lfsr_dir):
    record = json.loads((lfsr_dir / "manifest.json").read_text())
    assert record["block"] == "lfsr" and record["seed"] == 5 and record["count"] == 3
    for name, digest in record["files"].items():
        assert vectors._sha256((lfsr_dir / name).read_bytes()) == digest, name
    counts = [int(v, 16) for v in _data_lines(lfsr_dir / "counts.hex")]
    assert counts == [record["jobs"], record["segments"], record["transfers"]["cfg"],
                      record["transfers"]["o"]]
    assert len(_data_lines(lfsr_dir / "o.out.hex")) == record["transfers"]["o"]
    # The first job: a 2-bit Fibonacci LFSR from seed 1, nine words; each line is the
    # word in bits 31..0 and ``last`` in bit 32, as the manifest's fields say.
    assert record["labels"][0] == "full fibonacci 2-bit seed 1"
    o_fields = {f["name"]: f for f in next(p for p in record["ports"] if p["name"] == "o")
                ["fields"]}
    assert (o_fields["word"]["offset"], o_fields["word"]["width"]) == (0, 32)
    assert (o_fields["last"]["offset"], o_fields["last"]["width"]) == (32, 1)
    words = Lfsr(2, 1).states(9).tolist()
    want = [w | (int(k == 8) << 32) for k, w in enumerate(words)]
    assert [int(v, 16) for v in _data_lines(lfsr_dir / "o.out.hex")[:9]] == want


@pytest.mark.parametrize("name", ["lfsr", "coef"])
def test_same_seed_same_files_other_seed_other_random_vectors(name):
    first, record = vectors.generate(name, count=4, seed=11)
    again, record_again = vectors.generate(name, count=4, seed=11)
    assert first == again and record == record_again
    other, record_other = vectors.generate(name, count=4, seed=12)
    corners = len(record["labels"]) - 4
    # The corner cases do not depend on the seed; the random ones do.
    assert record_other["labels"][:corners] == record["labels"][:corners]
    output = next(p["file"] for p in record["ports"] if p["kind"] == "out")
    first_jobs = _lines_per_job(first, record)
    other_jobs = _lines_per_job(other, record_other)
    assert first_jobs[:corners] == other_jobs[:corners]
    assert first_jobs[corners:] != other_jobs[corners:]
    assert first[output] != other[output]


def _lines_per_job(files, record):
    """The expected lines of each job of the block's one output stream."""
    port = next(p["name"] for p in record["ports"] if p["kind"] == "out")
    layout = {f["name"]: f for f in record["layouts"]["jobs.hex"]}[f"count_{port}"]
    lines = [v for v in files[f"{port}.out.hex"].decode().splitlines()
             if not v.startswith("//")]
    out, at = [], 0
    for job in files["jobs.hex"].decode().splitlines():
        if job.startswith("//"):
            continue
        n = (int(job, 16) >> layout["offset"]) & ((1 << layout["width"]) - 1)
        out.append(lines[at:at + n])
        at += n
    return out


def test_bad_count_and_seed_name_the_parameter():
    with pytest.raises(CimcodecError, match=r"vector count must be an integer of at least 0"):
        vectors.generate("lfsr", count=-1)
    with pytest.raises(CimcodecError, match=r"seed must be an integer 0..4294967295"):
        vectors.generate("lfsr", seed=1 << 32)
    with pytest.raises(CimcodecError, match=r"No vectors for block 'tile'; the blocks are lfsr"):
        vectors.generate("tile")


def test_stale_manifest_is_refused(lfsr_dir, tmp_path):
    record, captured = vectors.check(lfsr_dir)
    assert record["block"] == "lfsr" and captured == lfsr_dir / "lfsr.v"
    changed = _copy(lfsr_dir, tmp_path / "file")
    text = (changed / "o.out.hex").read_text()
    (changed / "o.out.hex").write_text(text.replace("\n0", "\n1", 1))
    with pytest.raises(CimcodecError, match=r"^Stale vectors: the sha256 of \S+/o.out.hex "
                                            r"differs from its manifest's"):
        vectors.check(changed)
    # Vectors captured from other Verilog (its file and the manifest agree, today's
    # elaboration does not).
    other = _copy(lfsr_dir, tmp_path / "verilog")
    verilog = other / "lfsr.v"
    verilog.write_text(verilog.read_text() + "// another release\n")
    record = json.loads((other / "manifest.json").read_text())
    record["verilog"]["sha256"] = vectors._sha256(verilog.read_bytes())
    (other / "manifest.json").write_text(json.dumps(record))
    with pytest.raises(CimcodecError, match=r"^Stale vectors: \S+ was captured from lfsr "
                                            r"Verilog of sha256 [0-9a-f]{12}, the Verilog "
                                            r"built today is [0-9a-f]{12}"):
        vectors.check(other)
    # Asked for, today's Verilog is what runs on the captured vectors.
    record, today = vectors.check(other, new_rtl=True)
    assert today == vectors.verilog(BLOCKS["lfsr"]) and today.read_bytes() == (
        lfsr_dir / "lfsr.v").read_bytes()


def test_shards_split_the_work_deterministically():
    items = [(b, s) for b in BLOCKS for s in ("icarus", "verilator")]
    sizes = {b: len(b) * 1000 for b in BLOCKS}

    def cost(item):
        return sizes[item[0]] * (2 if item[1] == "icarus" else 1)

    for count in (1, 2, 3, 5):
        shards = [regress.shard(items, i, count, cost) for i in range(1, count + 1)]
        assert sorted(sum(shards, [])) == sorted(items)
        assert shards == [regress.shard(list(reversed(items)), i, count, cost)
                          for i in range(1, count + 1)]
    with pytest.raises(CimcodecError, match=r"shard must be I/N with 1 <= I <= N, not 3/2"):
        regress.shard(items, 3, 2, cost)


def test_junit_has_one_testcase_per_block_and_simulator():
    import xml.etree.ElementTree as ET

    results = [regress.Result("lfsr", "icarus", True, jobs=3, clocks=9),
               regress.Result("lfsr", "verilator", False, message="FAIL lfsr o.out.hex[4]",
                              log="FAIL lfsr o.out.hex[4] (job 0 ...)")]
    suite = ET.fromstring(regress.junit(results)).find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("cimcodec.regress.icarus", "lfsr"), ("cimcodec.regress.verilator", "lfsr")]
    assert cases[0].find("failure") is None
    assert cases[1].find("failure").get("message") == "FAIL lfsr o.out.hex[4]"


def test_plain_bench_passes(lfsr_dir, simulator):
    record = json.loads((lfsr_dir / "manifest.json").read_text())
    result = regress.run(lfsr_dir, simulator)
    assert result.passed and result.returncode == 0, result.log
    assert result.transfers == sum(record["transfers"].values())
    assert f"SUMMARY lfsr PASS jobs {record['jobs']}/{record['jobs']}" in result.log
    # Every job's clocks: at least one per word and one for the cfg transfer.
    assert result.clocks >= record["transfers"]["o"] + record["jobs"]


def test_flipped_expected_bit_fails_at_its_index(lfsr_dir, simulator, tmp_path):
    mutated = _copy(lfsr_dir, tmp_path)
    path = mutated / "o.out.hex"
    lines = path.read_text().splitlines()
    index = 40
    line = [k for k, text in enumerate(lines) if not text.startswith("//")][index]
    good = int(lines[line], 16)
    bad = good ^ (1 << 3)
    lines[line] = format(bad, "09x")
    path.write_text("\n".join(lines) + "\n")
    result = regress.run(mutated, simulator)
    assert not result.passed and result.returncode != 0
    assert f"FAIL lfsr o.out.hex[{index}] " in result.message
    assert f"expected {bad:09x}, got {good:09x}" in result.message
    assert re.search(r"SUMMARY lfsr FAIL jobs \d+/", result.log)


def test_truncated_response_file_fails(lfsr_dir, simulator, tmp_path):
    mutated = _copy(lfsr_dir, tmp_path)
    path = mutated / "o.out.hex"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-5]) + "\n")
    total = len(_data_lines(lfsr_dir / "o.out.hex"))
    result = regress.run(mutated, simulator)
    assert not result.passed and result.returncode != 0
    assert f"o.out.hex holds {total - 5} lines, counts.hex gives {total}" in result.message


def test_inverted_output_bit_in_the_verilog_fails(lfsr_dir, simulator, tmp_path):
    mutated = _copy(lfsr_dir, tmp_path)
    verilog = mutated / "lfsr.v"
    text, count = re.subn(r"(\n\s*assign o__payload\[32\] = )([^;]+);", r"\1~(\2);",
                          verilog.read_text(), count=1)
    assert count == 1
    verilog.write_text(text)
    result = regress.run(mutated, simulator)
    assert not result.passed and result.returncode != 0
    # ``last`` inverted: the first word of the first job already differs.
    assert "FAIL lfsr o.out.hex[0] (job 0, transfer 0 of its o stream)" in result.message


def test_bench_is_plain_enough_for_icarus_g2012(lfsr_dir, tmp_path):
    """The bench compiles as SystemVerilog too (iverilog -g2012); the lfsr's Verilog,
    which has no logic waiting for a time-0 event, then passes."""
    tools.setup_icarus()
    out = tmp_path / "sim.vvp"
    subprocess.run(["iverilog", "-g2012", "-s", "lfsr_tb", "-o", str(out),
                    str(lfsr_dir / "lfsr.v"), str(lfsr_dir / "lfsr_tb.v")], check=True)
    done = subprocess.run(["vvp", "-n", str(out), f"+vectors={lfsr_dir}", "+seed=9",
                           "+stall=50"], capture_output=True, text=True)
    assert done.returncode == 0 and "PASS lfsr" in done.stdout, done.stdout
    assert re.search(r"SUMMARY lfsr PASS jobs (\d+)/\1 .* seed 9\n", done.stdout)


def test_clock_limit_fails_a_hang(lfsr_dir, simulator, tmp_path):
    """A job whose expected transfers never come ends at its clock limit."""
    mutated = _copy(lfsr_dir, tmp_path)
    record = json.loads((mutated / "manifest.json").read_text())
    layout = {f["name"]: f for f in record["layouts"]["jobs.hex"]}
    lines = (mutated / "jobs.hex").read_text().splitlines()
    first = next(k for k, text in enumerate(lines) if not text.startswith("//"))
    value = int(lines[first], 16)
    count = layout["count_o"]
    n = (value >> count["offset"]) & ((1 << count["width"]) - 1)
    lines[first] = format(value + (1 << count["offset"]), f"0{len(lines[first])}x")
    (mutated / "jobs.hex").write_text("\n".join(lines) + "\n")
    # The expected file gets the line the job now waits for.
    out = (mutated / "o.out.hex").read_text().splitlines()
    data = [k for k, text in enumerate(out) if not text.startswith("//")]
    out.insert(data[n], "000000000")
    (mutated / "o.out.hex").write_text("\n".join(out) + "\n")
    counts = (mutated / "counts.hex").read_text().splitlines()
    counts[-1] = format(int(counts[-1], 16) + 1, "08x")
    (mutated / "counts.hex").write_text("\n".join(counts) + "\n")
    result = regress.run(mutated, simulator)
    limit = (value >> layout["limit"]["offset"]) & 0xFFFFFFFF
    assert not result.passed and result.returncode != 0
    assert f"FAIL lfsr job 0: no end within its limit of {limit} clocks" in result.message
    assert limit == 1000 + 20 * (n + 1)


def test_decompressor_plain_bench_passes_on_verilator(tmp_path):
    """The largest block: Verilator splits its C++ into several files, the build path the
    small blocks never take (a precompiled-header build of the wheel failed there)."""
    directory = vectors.write(tmp_path, ["decompressor"], count=1, seed=3)[0]
    record = json.loads((directory / "manifest.json").read_text())
    result = regress.run(directory, "verilator")
    assert result.passed and result.returncode == 0, result.log
    assert f"SUMMARY decompressor PASS jobs {record['jobs']}/{record['jobs']}" in result.log
