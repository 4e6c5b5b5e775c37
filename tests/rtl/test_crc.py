"""The scan CRC-32 block on both simulators against the golden model (zlib)."""

import io

import numpy as np
from PIL import Image

from cimcodec.golden.blocks import crc, markers
from cimcodec.golden.codec import container
from cimcodec.golden.codec import pipeline as codec
from cimcodec.sim.cocotb_run import run_jobs
from cimcodec.tb import crc as tb


def _files():
    rng = np.random.default_rng(2)
    files = []
    for q, restart in [(50, 0), (95, 2)]:
        buf = io.BytesIO()
        img = np.clip(rng.normal(128, 50, (24, 40)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(buf, "JPEG", quality=q, restart_marker_blocks=restart)
        files.append(buf.getvalue())
    w = rng.normal(0, 0.05, (21, 37)).astype(np.float32)
    files.append(codec.compress_matrix(w, codec.Settings(quality=90)).data)
    return files


def test_crc_matches_zlib_on_scans(simulator):
    files = _files()
    jobs, golden = [], []
    for k, data in enumerate(files):
        check = crc.scan_check(data, markers.parse(data).events)
        start = container.walk(data).scan_start
        jobs.append(tb.job(data, start, stall_seed=k if k % 2 else None))
        golden.append({"end": check.end - start, "crc": check.computed, "ended": 1})
    results = run_jobs(tb.BENCH, tb.CrcShape(), jobs, simulator)
    assert [r["outputs"] for r in results] == golden
