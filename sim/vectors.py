"""Golden vectors: portable stimulus and expected-response files for every hardware block,
read by the plain Verilog benches ``tb/vectors/<block>_tb.v`` on any simulator.

A block is one :class:`~cimcodec.sim.vector_block.Block` in
:data:`~cimcodec.sim.vector_cases.BLOCKS` (its bench, its parameter object and the
function that builds its cases); :func:`write` turns the cases into files, and
:func:`check` verifies a directory against its manifest and the Verilog built today.

Files of one block (``DIR/<block>/``)
-------------------------------------
Every ``.hex`` file is ``$readmemh`` text, one value a line in hexadecimal, its first
lines ``//`` comments naming the fields. A stream transfer is its payload packed as the
port's ``data.Layout`` packs it (the first field in the lowest bits), the same integer
the hardware sees on ``<port>__payload``; ``manifest.json`` lists every field's offset
and width.

``counts.hex``
    32-bit counts: jobs, input segments, then the transfers of each stream file, input
    ports first, in the order of ``manifest["ports"]``.
``jobs.hex``
    One line per job, packed as :func:`job_layout`: the clock limit, the number of
    input segments, the stall mode (0: none; 1: random idle clocks on the sources and
    backpressure on the sinks; 2: the same with the backpressure in runs of 1..256
    clocks), ``partial`` (the job ends once its outputs are complete, input not yet
    taken is dropped: a decoder stops taking bytes after an error), the number of
    expected transfers and the compare mode of each output stream (0: every transfer
    in order; 1: transfers without the terminator bit are skipped, the terminator is
    compared; 2: the same comparing only the fields of ``manifest["terminator"]
    ["loose"]``), the value of every plain input (held through the job) and the value
    every watched plain output must reach before the job ends.
``segments.hex``
    The input of the jobs, job after job: a line per run of transfers on one input
    stream (:data:`SEGMENT_LAYOUT`: port index, count). Runs go one after the other.
``<port>.in.hex`` / ``<port>.out.hex``
    The payloads driven into input stream ``port`` / expected from output stream
    ``port``, all jobs in order.
``<block>.v``, ``<block>_tb.v``
    The Verilog the vectors were made for and its bench.
``manifest.json``
    Block, parameter object, ports and widths, counts, seed, the package version, the
    jobs' labels, and the sha256 of the Verilog and of every file.

The bench resets the block before every job (``rst`` high for two clocks, plain inputs
set), drives the segments in order and compares what comes out; see
:mod:`cimcodec.sim.plain_bench`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data

import cimcodec
from cimcodec.golden.errors import CimcodecError
from cimcodec.sim.vector_block import CLOCKS_PER_TRANSFER, EXACT, SEGMENT_LAYOUT, Block, Job
from cimcodec.sim.vector_cases import BLOCKS
from cimcodec.tb.payload import pack

#: Version of the directory format (``manifest["format"]``).
FORMAT = 1
#: Random cases per block unless ``--count`` says otherwise.
DEFAULT_COUNT = 12
COUNT_BITS = 32


def fields(layout, prefix="") -> list[dict]:
    """The leaf fields of a layout, ``[{"name", "offset", "width", "signed"}]``, names
    dotted and indexed (``fields[1].seed``)."""
    if not isinstance(layout, data.Layout):
        shape = Shape.cast(layout)
        return [{"name": prefix or "value", "offset": 0, "width": shape.width,
                 "signed": shape.signed}]
    out = []
    for key, f in layout:
        name = f"{prefix}[{key}]" if isinstance(key, int) else (
            f"{prefix}.{key}" if prefix else key)
        for leaf in fields(f.shape, name):
            out.append(dict(leaf, offset=leaf["offset"] + f.offset))
    return out


def describe(layout) -> str:
    """``name[hi:lo]`` of every field, lowest first (a file's header comment)."""
    out = []
    for f in fields(layout):
        lo, hi = f["offset"], f["offset"] + f["width"] - 1
        out.append(f"{f['name']}[{hi}:{lo}]" if hi > lo else f"{f['name']}[{lo}]")
    return " ".join(out)


def _hex(values, width: int, header: list[str]) -> bytes:
    digits = max(1, -(-width // 4))
    lines = [f"// {h}" for h in header] + [format(v, f"0{digits}x") for v in values]
    return ("\n".join(lines) + "\n").encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def params_record(params) -> dict:
    return {"type": type(params).__name__, "module": type(params).__module__,
            "fields": dataclasses.asdict(params)}


def encode(block: Block, jobs: list[Job]) -> tuple[dict, dict]:
    """The ``.hex`` files of ``jobs`` (``{name: bytes}``) and their counts."""
    sources = {p.name: i for i, p in enumerate(block.by_kind("in"))}
    streams = {p.name: [] for p in block.streams}
    layouts = {p.name: p.shape for p in block.ports}
    job_lines, segments = [], []
    for number, job in enumerate(jobs):
        unknown = ({p for p, _ in job.inputs} - set(sources)) | (
            set(job.expected) - {p.name for p in block.by_kind("out")})
        if unknown:
            raise CimcodecError(f"Job {number} of {block.name} names ports it does not "
                                f"have: {', '.join(sorted(unknown))}.")
        n_in = 0
        for port, payloads in job.inputs:
            segments.append(pack(SEGMENT_LAYOUT, {"port": sources[port],
                                                  "count": len(payloads)}))
            streams[port] += [pack(layouts[port], v) for v in payloads]
            n_in += len(payloads)
        line = {"segments": len(job.inputs), "stall": job.stall,
                "partial": int(job.partial)}
        n_out = 0
        for port in block.by_kind("out"):
            payloads = job.expected.get(port.name, [])
            streams[port.name] += [pack(port.shape, v) for v in payloads]
            line[f"count_{port.name}"] = len(payloads)
            line[f"mode_{port.name}"] = job.modes.get(port.name, EXACT)
            n_out += len(payloads)
        for port in block.by_kind("setup"):
            line[f"setup_{port.name}"] = pack(port.shape, job.setup.get(port.name, 0))
        for port in block.watched:
            line[f"watch_{port.name}"] = pack(port.shape, job.watch.get(port.name, 0))
        line["limit"] = block.base_clocks + CLOCKS_PER_TRANSFER * (n_in + n_out) + job.slack
        job_lines.append(pack(block.job_layout, line))
    counts = {"jobs": len(job_lines), "segments": len(segments)}
    counts.update({p.name: len(streams[p.name]) for p in block.streams})
    files = {
        "counts.hex": _hex(list(counts.values()), COUNT_BITS,
                           ["counts: " + " ".join(counts)]),
        "jobs.hex": _hex(job_lines, block.job_layout.size,
                         ["job: " + describe(block.job_layout)]),
        "segments.hex": _hex(segments, SEGMENT_LAYOUT.size,
                             ["segment: " + describe(SEGMENT_LAYOUT)]),
    }
    for port in block.streams:
        files[port.file] = _hex(streams[port.name], port.width,
                                [f"{block.name} {port.name} ({port.kind}put stream): "
                                 + describe(port.shape)])
    return files, counts


def bench_path(name: str) -> Path:
    """The plain bench of block ``name`` as installed (``cimcodec/tb/vectors/``)."""
    import cimcodec.tb
    return Path(cimcodec.tb.__path__[0]) / "vectors" / f"{name}_tb.v"


def verilog(block: Block, params=None) -> Path:
    """The block's Verilog for ``params`` (default its registered ones), cached."""
    from cimcodec.sim.verilog import elaborate
    return elaborate(block.name, block.bench.factory,
                     block.params if params is None else params)


def manifest(block: Block, jobs: list[Job], counts: dict, files: dict, *, seed: int,
             count: int, verilog_text: bytes) -> dict:
    stream_counts = {p.name: counts[p.name] for p in block.streams}
    term = None
    if block.terminator is not None:
        bit, mask = block.terminator_bits()
        term = {"port": block.terminator[0], "field": block.terminator[1], "bit": bit,
                "loose": list(block.terminator[2]), "loose_mask": format(mask, "x")}
    return {
        "format": FORMAT,
        "block": block.name,
        "top": block.name,
        "bench_top": f"{block.name}_tb",
        "params": params_record(block.params),
        "cimcodec": cimcodec.__version__,
        "seed": seed,
        "count": count,
        "jobs": counts["jobs"],
        "segments": counts["segments"],
        "transfers": stream_counts,
        "clock_limit": {"base": block.base_clocks, "per_transfer": CLOCKS_PER_TRANSFER},
        "ports": [{"name": p.name, "kind": p.kind, "width": p.width, "file": p.file,
                   "fields": fields(p.shape)} for p in block.ports],
        "layouts": {"jobs.hex": fields(block.job_layout),
                    "segments.hex": fields(SEGMENT_LAYOUT)},
        "terminator": term,
        "labels": [job.label for job in jobs],
        "verilog": {"file": f"{block.name}.v", "sha256": _sha256(verilog_text)},
        "files": {name: _sha256(body) for name, body in sorted(files.items())},
    }


def block_named(name: str) -> Block:
    if name not in BLOCKS:
        raise CimcodecError(f"No vectors for block {name!r}; the blocks are "
                            f"{', '.join(BLOCKS)}.")
    return BLOCKS[name]


def generate(name: str, count: int = DEFAULT_COUNT, seed: int = 1) -> tuple[dict, dict]:
    """``(files, manifest)`` of block ``name``: ``{file name: bytes}`` for every file of
    its directory (Verilog and bench included)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise CimcodecError(f"The vector count must be an integer of at least 0, "
                            f"not {count!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 1 << 32:
        raise CimcodecError(f"The seed must be an integer 0..4294967295, not {seed!r}.")
    block = block_named(name)
    bench = bench_path(block.name)
    if not bench.is_file():
        raise CimcodecError(f"Block {block.name} has no plain bench at {bench}; write it "
                            "with 'python -m cimcodec.sim.plain_bench'.")
    jobs = block.cases(block.params, np.random.default_rng([seed, _name_key(name)]), count)
    files, counts = encode(block, jobs)
    files[bench.name] = bench.read_bytes()
    text = verilog(block).read_bytes()
    record = manifest(block, jobs, counts, files, seed=seed, count=count,
                      verilog_text=text)
    files[f"{block.name}.v"] = text
    return files, record


def _name_key(name: str) -> int:
    """A per-block part of the random seed, so blocks draw independent streams."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def write(directory, names=None, count: int = DEFAULT_COUNT, seed: int = 1) -> list[Path]:
    """Write the vectors of the blocks ``names`` (default all) under ``directory``, one
    subdirectory each, every one written to a temporary directory and renamed into
    place. Returns the block directories."""
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise CimcodecError(f"{directory} is a file, not a directory.")
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names or list(BLOCKS):
        files, record = generate(name, count, seed)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
        try:
            for file_name, body in files.items():
                (tmp / file_name).write_bytes(body)
            (tmp / "manifest.json").write_text(json.dumps(record, indent=1) + "\n")
            target = root / name
            old = None
            if target.exists():
                old = root / f".{name}.old-{os.getpid()}"
                target.rename(old)
            tmp.rename(target)
            if old is not None:
                shutil.rmtree(old)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
        out.append(root / name)
    return out


def read_manifest(directory) -> dict:
    path = Path(directory) / "manifest.json"
    if not path.is_file():
        raise CimcodecError(f"{directory} has no manifest.json; write the vectors with "
                            "'cimcodec vectors -o DIR'.")
    try:
        record = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise CimcodecError(f"{path} is not valid JSON.") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CimcodecError(f"{path} is not a cimcodec vector manifest of format {FORMAT}.")
    return record


def check(directory, *, new_rtl: bool = False) -> tuple[dict, Path]:
    """``(manifest, Verilog to simulate)`` of a block's vector directory, after checking
    that every file's sha256 is the manifest's and that the Verilog built today for its
    parameters is the one the vectors were captured from; :class:`CimcodecError` (one
    sentence) otherwise. ``new_rtl``: Verilog built today that differs is simulated
    instead of refused (the captured files must still match)."""
    directory = Path(directory)
    record = read_manifest(directory)
    try:
        block = block_named(record["block"])
        params = type(block.params)(**record["params"]["fields"])
        listed = dict(record["files"])
        listed[record["verilog"]["file"]] = record["verilog"]["sha256"]
    except (KeyError, TypeError):
        raise CimcodecError(f"{directory / 'manifest.json'} lacks the block, its "
                            "parameters or its file hashes.") from None
    for name, digest in sorted(listed.items()):
        path = directory / name
        if not path.is_file():
            raise CimcodecError(f"{path} is missing: the manifest lists it.")
        if _sha256(path.read_bytes()) != digest:
            raise CimcodecError(f"Stale vectors: the sha256 of {path} differs from its "
                                "manifest's, so the file changed after the capture.")
    today = verilog(block, params)
    built = _sha256(today.read_bytes())
    if built == record["verilog"]["sha256"]:
        return record, directory / record["verilog"]["file"]
    if new_rtl:
        return record, today
    raise CimcodecError(
        f"Stale vectors: {directory} was captured from {block.name} Verilog of sha256 "
        f"{record['verilog']['sha256'][:12]}, the Verilog built today is {built[:12]}; "
        "capture new vectors with 'cimcodec vectors', or run today's Verilog on these "
        "with 'cimcodec regress --new-rtl'.")
