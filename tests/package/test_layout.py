"""The package as a user gets it: one ``cimcodec`` namespace, an import graph without
cycles, and a non-editable install that works from any directory."""

import ast
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

import cimcodec

REPO = Path(__file__).resolve().parents[2]
#: Where each installed package's sources are in the repository.
SOURCES = {"cimcodec": REPO / "cimcodec", "cimcodec.hw": REPO / "hw",
           "cimcodec.golden": REPO / "golden", "cimcodec.sim": REPO / "sim",
           "cimcodec.tb": REPO / "tb"}


def _modules() -> dict:
    """``{module name: path}`` of every module of the package, from the sources."""
    out = {}
    for package, where in SOURCES.items():
        for path in where.rglob("*.py"):
            parts = path.relative_to(where).with_suffix("").parts
            if package == "cimcodec" and parts[0] in ("hw", "golden", "sim", "tb"):
                continue
            out[".".join((package, *parts)).removesuffix(".__init__")] = path
    return out


def import_graph(modules: dict) -> dict:
    """``{module: set of cimcodec modules it imports}``, function-level imports included;
    ``from a import b`` counts as importing ``a.b`` when that is a module, else ``a``."""
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                for a in node.names:
                    edges.add(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def cycles(graph: dict) -> list:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_cycle():
    graph = import_graph(_modules())
    assert len(graph) > 60
    assert cycles(graph) == []


def test_cycle_finder_finds_a_planted_cycle():
    """The check above can fail: a two-module cycle through a function-level import."""
    graph = import_graph(_modules())
    graph["cimcodec.golden.errors"] = graph["cimcodec.golden.errors"] | {
        "cimcodec.golden.codec.pipeline"}
    assert any("cimcodec.golden.errors" in c for c in cycles(graph))


def test_benches_import_nothing_from_sim():
    graph = import_graph(_modules())
    offenders = {m: sorted(e for e in edges if e.startswith("cimcodec.sim"))
                 for m, edges in graph.items() if m.startswith("cimcodec.tb")}
    assert {m: e for m, e in offenders.items() if e} == {}
    assert any(e.startswith("cimcodec.tb") for e in graph["cimcodec.sim.rtl"])


def test_home_is_the_environment_setting_or_the_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("CIMCODEC_HOME", str(tmp_path / "h"))
    assert cimcodec.home() == (tmp_path / "h").resolve()
    monkeypatch.delenv("CIMCODEC_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    assert cimcodec.home() == (tmp_path / "c" / "cimcodec").resolve()


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with a non-editable ``pip install`` of the repository's wheel. Its
    dependencies come from this environment's site-packages through a ``.pth`` line (no
    download, and no ``.pth`` of this environment runs, so the editable install of the
    checkout stays invisible)."""
    root = tmp_path_factory.mktemp("install")
    wheels = root / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
                    str(REPO)], check=True, capture_output=True, cwd=root)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                                "get_paths()['purelib'])"], check=True, capture_output=True,
                               text=True).stdout.strip())
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(wheels.glob("cimcodec-*.whl"))
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True, cwd=root)
    env = {k: v for k, v in os.environ.items()
           if k not in ("CIMCODEC_HOME", "PYTHONPATH", "VIRTUAL_ENV")}
    env["XDG_CACHE_HOME"] = str(root / "cache")
    work = root / "elsewhere"
    work.mkdir()
    return {"python": python, "bin": venv / "bin", "site": site, "env": env, "cwd": work}


def _run(installed, *cmd):
    return subprocess.run(cmd, cwd=installed["cwd"], env=installed["env"], capture_output=True,
                          text=True, timeout=300)


def test_installed_package_imports_from_anywhere(installed):
    done = _run(installed, str(installed["python"]), "-c", """
import importlib, pkgutil, cimcodec
names = [m.name for m in pkgutil.walk_packages(cimcodec.__path__, 'cimcodec.')
         if not m.name.endswith('__main__')]
for name in names:
    importlib.import_module(name)
for top in ('hw', 'golden', 'sim', 'tb'):
    try:
        __import__(top)
    except ModuleNotFoundError:
        continue
    raise SystemExit(f'top-level {top} is importable')
from cimcodec.sim.verilog import build_dir
print(cimcodec.__file__)
print(build_dir())
print(len(names))
""")
    assert done.returncode == 0, done.stderr
    where, build, count = done.stdout.split()
    assert Path(where).is_relative_to(installed["site"])
    assert not Path(build).is_relative_to(installed["site"])
    assert Path(build) == Path(installed["env"]["XDG_CACHE_HOME"]) / "cimcodec"
    assert int(count) > 60


def test_installed_cli_roundtrip_from_anywhere(installed):
    cli = str(installed["bin"] / "cimcodec")
    done = _run(installed, cli, "demo", "--help")
    assert done.returncode == 0 and "--sim" in done.stdout, done.stderr
    w = np.random.default_rng(0).normal(0, 0.1, (40, 24)).astype(np.float32)
    np.save(installed["cwd"] / "w.npy", w)
    done = _run(installed, cli, "compress", "w.npy", "-o", "w.jpg", "--quality", "95",
                "--remap", "none")
    assert done.returncode == 0, done.stderr
    done = _run(installed, cli, "decompress", "w.jpg", "-o", "back.npy")
    assert done.returncode == 0, done.stderr
    data = (installed["cwd"] / "w.jpg").read_bytes()
    # The installed tool writes the bytes the checkout's library writes, and reads them
    # back to the same weights.
    assert data == cimcodec.compress(w, quality=95, remap="none")
    back = np.load(installed["cwd"] / "back.npy")
    np.testing.assert_array_equal(back, cimcodec.decompress(data))
    assert back.dtype == np.float32 and np.abs(back - w).max() < 0.1 * np.abs(w).max()
    assert not (installed["cwd"] / "build").exists()


def test_installed_package_has_the_plain_benches(installed):
    done = _run(installed, str(installed["python"]), "-c", """
import json
from cimcodec.sim.vector_cases import BLOCKS
from cimcodec.sim.vectors import bench_path
print(json.dumps({name: [str(bench_path(name)), bench_path(name).read_text()]
                  for name in BLOCKS}))
""")
    assert done.returncode == 0, done.stderr
    benches = json.loads(done.stdout)
    assert sorted(benches) == sorted(p.name.removesuffix("_tb.v")
                                     for p in (REPO / "tb" / "vectors").glob("*_tb.v"))
    for name, (path, text) in benches.items():
        assert Path(path).is_relative_to(installed["site"]), path
        assert text == (REPO / "tb" / "vectors" / f"{name}_tb.v").read_text(), name
