"""The co-simulation harness itself: a wrong golden value must fail the cocotb test,
on both simulators, and the cache must not rebuild an unchanged design; a design's own
Verilator arguments (the tile's) reach its build and its cache key; a block refuses
a wrong shape with one error and no Amaranth warning after it."""

import gc
import pickle
import shlex
import subprocess
import warnings
from pathlib import Path

import amaranth
import numpy as np
import pytest
from _pytest.pathlib import fnmatch_ex
from amaranth.hdl import UnusedElaboratable

import cimcodec.golden.blocks.decompressor
import cimcodec.hw.decompressor
import cimcodec.tb.stream
from cimcodec.golden.blocks.decompressor import DecompressorShape
from cimcodec.golden.blocks.lfsr import ControlWords, GeneratorShape
from cimcodec.golden.blocks.tile import TileShape
from cimcodec.golden.errors import CimcodecError
from cimcodec.hw.appmeta import AppMeta
from cimcodec.hw.cim import CimArray
from cimcodec.hw.coef import CoefDecoder
from cimcodec.hw.decompressor import Decompressor
from cimcodec.hw.huffman import HuffmanDecoder
from cimcodec.hw.idct import Idct
from cimcodec.hw.lfsr import ControlWordGenerator
from cimcodec.hw.markers import MarkerParser
from cimcodec.hw.remap import RemapEngine, RemapUnit
from cimcodec.hw.tile import Tile
from cimcodec.sim import pch, tools
from cimcodec.sim.cocotb_run import (
    REWRITTEN,
    RtlMismatch,
    _build,
    bench_environment,
    flags_key,
    pch_dir,
    run_jobs,
)
from cimcodec.sim.verilog import design_key, elaborate
from cimcodec.tb import decompressor as tb_decompressor
from cimcodec.tb import lfsr as tb
from cimcodec.tb import tile as tb_tile
from cimcodec.tb.lfsr import BENCH


def test_wrong_golden_value_fails(simulator):
    shape = GeneratorShape()
    jobs = tb.jobs(shape, [(ControlWords.full(8, 1), 10)])
    jobs[0]["expected"]["o"][4]["word"] ^= 1
    with pytest.raises(RtlMismatch, match=r"o\[4\]: DUT gave"):
        run_jobs(BENCH, shape, jobs, simulator)


def test_missing_output_times_out_and_fails(simulator):
    shape = GeneratorShape()
    jobs = tb.jobs(shape, [(ControlWords.full(8, 1), 10)])
    jobs[0]["expected"]["o"].append({"word": 0, "last": 0})
    with pytest.raises(RtlMismatch, match=r"timed out"):
        run_jobs(BENCH, shape, jobs, simulator)


def test_only_the_benches_have_their_asserts_rewritten(tmp_path):
    """pytest's pattern (``COCOTB_REWRITE_ASSERTION_FILES``, in every bench's
    environment) takes the benches' files and none of the modules they import, which
    keep their compiled bytecode."""
    env = bench_environment(tmp_path / "v.json", tmp_path / "r.json")
    assert env["COCOTB_REWRITE_ASSERTION_FILES"] == REWRITTEN
    (pattern,) = shlex.split(REWRITTEN)             # as pytest's option parser reads it
    for module in (tb, cimcodec.tb.stream):
        assert fnmatch_ex(pattern, Path(module.__file__)), module.__name__
    for module in (np, amaranth, pickle, pytest, cimcodec.hw.decompressor,
                   cimcodec.golden.blocks.decompressor):
        assert not fnmatch_ex(pattern, Path(module.__file__)), module.__name__


def test_a_verilator_build_belongs_to_its_environment(monkeypatch, tmp_path):
    """A Verilator binary links cocotb's library by an rpath into the environment that
    built it: another environment's cocotb gets another build directory (a shared
    cache outliving a virtual environment gave exit 127); Icarus loads it at run time."""
    import cocotb_tools.config

    before = {sim: flags_key(sim, "lfsr") for sim in ("icarus", "verilator")}
    monkeypatch.setattr(cocotb_tools.config, "libs_dir", tmp_path / "libs")
    assert flags_key("verilator", "lfsr") != before["verilator"]
    assert flags_key("icarus", "lfsr") == before["icarus"]


def test_the_tile_alone_is_verilated_without_merge_cond(monkeypatch):
    """The command Verilator recorded in each build (its ``__verFiles.dat``) has
    ``-fno-merge-cond`` for the tile and not for the decompressor (the shapes are the
    ones the suite builds anyway), and the tile's flags key depends on its arguments,
    so a tile build made without them is not taken for one made with them."""
    commands = {}
    for bench, shape in ((tb_tile.BENCH, TileShape()),
                         (tb_decompressor.BENCH, DecompressorShape(max_rows=256,
                                                                   max_cols=256))):
        _, where = _build(bench, shape, "verilator", False)
        lines = (where / "Vtop__verFiles.dat").read_text().splitlines()
        (command,) = [line for line in lines if line.startswith("C ")]
        commands[bench.name] = command.strip('C "').split()
    assert "-fno-merge-cond" in commands["tile"]
    assert "-fno-merge-cond" not in commands["decompressor"]
    key = flags_key("verilator", "tile")
    monkeypatch.setattr(tools, "VERILATOR_DESIGN_ARGS", {})
    assert flags_key("verilator", "tile") != key


def test_verilator_builds_take_the_shared_precompiled_header():
    """The LFSR's build (one the suite makes anyway) compiled its design with
    ``-include`` of the header :mod:`sim.pch` precompiled, and GCC takes that
    ``.gch`` for the command the build ran (``-H`` marks a used one with ``!``)."""
    _, where = _build(BENCH, GeneratorShape(), "verilator", False)
    log = (where / "build.log").read_text().splitlines()
    (line,) = [x for x in log if x.rstrip().endswith("Vtop__ALL.cpp") and " -c " in x]
    words = shlex.split(line)
    header = Path(words[words.index("-include") + 1])
    assert header.parent.parent == pch_dir() and header.name == pch.NAME
    # The compile without its ccache launcher, output and dependency file.
    compiler = [w for w in words[words.index("-O0") - 1:] if w not in ("-MMD", "-c")]
    k = compiler.index("-o")
    del compiler[k:k + 2]
    done = subprocess.run([*compiler, "-fsyntax-only", "-H", "-Winvalid-pch"], cwd=where,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0] == f"! {header}.gch", done.stderr[:300]


def test_a_header_that_cannot_be_precompiled_leaves_the_make_as_it_was(tmp_path, capfd):
    """A header that fails to compile (here the make's flags force-include a file that
    does not exist, GCC saying so on two lines) costs the build its precompiled
    header, with one line saying why, and leaves nothing but the key's lock file."""
    make = ["make", "-f", "/dev/null", "CXX=c++", f"CPPFLAGS=-include {tmp_path}/none.h",
            "OPT_FAST=-O0"]
    assert pch.with_header(make, tmp_path) == make
    err = capfd.readouterr().err
    assert err.startswith("cimcodec: no precompiled header (") and err.count("\n") == 1
    assert "none.h" in err
    assert [p.suffix for p in tmp_path.iterdir()] == [".lock"]
    assert pch.with_header(make[:-1], tmp_path) == make[:-1]       # no OPT_FAST
    assert "no OPT_FAST" in capfd.readouterr().err


def test_the_precompiled_headers_key_follows_the_headers_on_disk(tmp_path):
    """Another Verilator's headers (here: one header rewritten) give another key, so a
    ``.gch`` of the old ones is never taken for them; a relative ``-I`` (the build
    directory's own ``-I.``) is left out."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "verilated.h").write_text("int a;\n")
    command = ["c++", "-O0", "-I.", f"-I{tmp_path}"]
    before = pch._headers(command)
    assert before == [f"{tmp_path}/sub/verilated.h 7 "
                      f"{(tmp_path / 'sub' / 'verilated.h').stat().st_mtime_ns}"]
    (tmp_path / "sub" / "verilated.h").write_text("int ab;\n")
    assert pch._headers(command) != before


@pytest.mark.parametrize("block", [AppMeta, CimArray, CoefDecoder, Decompressor,
                                   HuffmanDecoder, Idct, ControlWordGenerator, MarkerParser,
                                   RemapEngine, RemapUnit, Tile])
def test_a_refused_shape_leaves_one_error_and_no_warning(block, monkeypatch):
    """A block given something other than its shape raises one CimcodecError, and
    Amaranth's "created but never used" warning does not follow it when the refused
    object is collected. (Amaranth holds that warning back until a process has
    elaborated something, as the suite's processes have.)"""
    monkeypatch.setattr(UnusedElaboratable, "_MustUse__silence", False)
    gc.collect()                                # earlier tests' garbage, not this block's
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(CimcodecError, match=r" must be an? \w+, not 4\.$"):
            block(4)
        gc.collect()
    assert [str(w.message) for w in seen if w.category is UnusedElaboratable] == []


def test_elaboration_is_cached():
    shape = GeneratorShape(lfsr_width=5, fields=1, word_width=5, count_bits=4)
    first = elaborate("lfsr", BENCH.factory, shape)
    mtime = first.stat().st_mtime_ns
    assert elaborate("lfsr", BENCH.factory, shape) == first
    assert first.stat().st_mtime_ns == mtime
    assert design_key("lfsr", shape) != design_key("lfsr", GeneratorShape())


def test_a_process_with_edited_sources_does_not_touch_the_cache(monkeypatch):
    """Sources edited after the process loaded them (here: every loaded module, as if
    loaded before the epoch): the design is elaborated from the loaded modules into a
    file of its own, equal to the cached one's text, and the cache is not written."""
    from cimcodec.sim import verilog as sv

    shape = GeneratorShape(lfsr_width=7, fields=1, word_width=7, count_bits=3)
    cached = sv.build_dir() / "verilog" / "cache" / \
        f"lfsr-{design_key('lfsr', shape, BENCH.factory)}.v"
    monkeypatch.setattr(sv, "LOADED", 0.0)
    assert "cimcodec.hw.lfsr" in sv.edited_since_loaded(BENCH.factory.__module__)
    existed = cached.exists()
    apart = elaborate("lfsr", BENCH.factory, shape)
    assert apart != cached and apart.parent.name == "uncached"
    assert cached.exists() == existed
    monkeypatch.setattr(sv, "LOADED", sv.time.time())
    assert sv.edited_since_loaded(BENCH.factory.__module__) == []
    assert elaborate("lfsr", BENCH.factory, shape) == cached
    assert apart.read_text() == cached.read_text()


def test_simulator_build_is_shared(simulator):
    """A second run of the same design reuses the first one's simulator build: the
    executable is not written again (how xdist workers and tests share builds)."""
    from cimcodec.sim.cocotb_run import _build

    shape = GeneratorShape()
    jobs = tb.jobs(shape, [(ControlWords.full(8, 1), 10)])
    run_jobs(BENCH, shape, jobs, simulator)
    _, where = _build(BENCH, shape, simulator, False)
    binary = where / ("sim.vvp" if simulator == "icarus" else BENCH.name)
    mtime = binary.stat().st_mtime_ns
    run_jobs(BENCH, shape, jobs, simulator)
    assert binary.stat().st_mtime_ns == mtime


def test_design_key_follows_the_factorys_imports(tmp_path, monkeypatch):
    """The elaboration key covers the factory's module and what it imports, through
    relative and function-level imports, and nothing else."""
    import cimcodec.sim.verilog as sv

    files = {
        "hw/__init__.py": "",
        "hw/a.py": "from .b import X\ndef f():\n    from cimcodec.golden import c\n",
        "hw/b.py": "X = 1\n",
        "hw/other.py": "Y = 2\n",
        "golden/__init__.py": "",
        "golden/c.py": "import cimcodec.golden.d\n",
        "golden/d.py": "",
        "tb/__init__.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(sv, "package_dirs", lambda: {
        f"cimcodec.{p}": tmp_path / p for p in ("hw", "golden", "tb")})
    got = {str(p.relative_to(tmp_path)) for p in sv.source_files("cimcodec.hw.a").values()}
    assert got == {"hw/__init__.py", "hw/a.py", "hw/b.py", "golden/__init__.py",
                   "golden/c.py", "golden/d.py"}
    assert len(sv.source_files("cimcodec.sim.cli")) == len(files)   # outside: everything

    def factory(params):
        raise AssertionError("not elaborated")

    factory.__module__ = "cimcodec.hw.a"
    key = sv.design_key("a", GeneratorShape(), factory)
    (tmp_path / "hw/other.py").write_text("Y = 3\n")
    assert sv.design_key("a", GeneratorShape(), factory) == key
    (tmp_path / "golden/d.py").write_text("Z = 0\n")
    assert sv.design_key("a", GeneratorShape(), factory) != key
