"""The marker / segment parser: the golden parser against the golden decoder on Pillow
and golden-encoder files and on corrupted ones, the Amaranth fast path, and the RTL on
Icarus and Verilator against the golden parser."""

import functools
import io

import numpy as np
import pytest
from PIL import Image

from cimcodec.golden.blocks.markers import Error, Kind, MarkerShape, parse, payload
from cimcodec.golden.codec import container
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg import reference as jpeg
from cimcodec.golden.jpeg.zigzag import ZIGZAG
from cimcodec.hw.markers import MarkerParser
from cimcodec.sim.amaranth_sim import run_streams, run_testbench
from cimcodec.sim.cocotb_run import run_jobs
from cimcodec.sim.verilog import elaborate, lint
from cimcodec.tb import markers as tb
from cimcodec.tb.markers import BENCH
from cimcodec.tb.payload import to_python

#: decode_full messages about the entropy-coded data, which the parser leaves to the
#: Huffman stages.
ENTROPY_ERRORS = ("Entropy-coded data ends", "is not in its table", "AC symbol",
                  "zero run", "DC difference category", "AC coefficient size",
                  "bytes of entropy-coded data, too few")


def _image(rows, cols, seed):
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(128, 40, (rows, cols)), 0, 255).astype(np.uint8)


def _pillow(image, **options):
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", **options)
    return buf.getvalue()


@functools.cache
def corpus() -> dict:
    """Small grayscale files: Pillow at several qualities, optimized tables, restart
    markers, a 16-bit table; the golden encoder with CIMCODEC and other APP segments."""
    files = {}
    for quality in (1, 50, 95, 100):
        for optimize in (False, True):
            files[f"q{quality}-opt{int(optimize)}"] = _pillow(
                _image(16, 16, quality), quality=quality, optimize=optimize)
    files["restart1"] = _pillow(_image(24, 16, 1), quality=70, restart_marker_blocks=1)
    files["restart3"] = _pillow(_image(17, 30, 2), quality=40, optimize=True,
                                restart_marker_blocks=3)
    files["wide-table"] = _pillow(_image(16, 8, 3), qtables=[list(range(250, 314))])
    block = bytes(range(40)) + b"\xff\x00\xff"
    apps = container.app_segments(block) + [(11, b"NOTOURS\x00xyz"), (2, b"\x01\x02")]
    files["golden-app"] = jpeg.encode(_image(9, 13, 4), quality=60, restart_interval=2,
                                      app_segments=apps)
    files["golden-wide"] = jpeg.encode(_image(8, 16, 5), qtable=np.arange(1000, 1064),
                                       optimize=False)
    return files


def _events(data, kind):
    return [e[1:] for e in parse(data).events if e[0] is kind]


@pytest.mark.parametrize("name", list(corpus()))
def test_golden_parse_agrees_with_the_decoder(name):
    data = corpus()[name]
    parsed = parse(data)
    decoded = jpeg.decode_full(data)
    assert parsed.error is Error.NONE and parsed.consumed == len(data)
    assert parsed.events[-1] == (Kind.EOI,)
    # Tables, frame and restart interval as the decoder read them.
    qtable = np.zeros(64, np.int64)
    for _tq, k, q in _events(data, Kind.DQT):
        qtable[ZIGZAG[k]] = q
    np.testing.assert_array_equal(qtable, decoded.qtable)
    for tc, table in ((0, decoded.dc_table), (1, decoded.ac_table)):
        bits = [c for c_, _, _, c in _events(data, Kind.DHT_BITS) if c_ == tc]
        vals = [v for c_, _, _, v in _events(data, Kind.DHT_VAL) if c_ == tc]
        assert (tuple(bits), tuple(vals)) == (table.bits, table.huffval)
    assert _events(data, Kind.HEIGHT) == [(decoded.samples.shape[0],)]
    assert _events(data, Kind.WIDTH) == [(decoded.samples.shape[1],)]
    assert _events(data, Kind.DRI) == ([(decoded.restart_interval,)]
                                       if decoded.restart_interval else [])
    # Entropy-coded bytes un-stuffed, RSTn in order, as the decoder's reader sees them.
    layout = container.walk(data)
    segments, rsts, _ = jpeg._read_entropy(data, layout.scan_start)
    assert bytes(b for (b,) in _events(data, Kind.ECS)) == b"".join(segments)
    assert [m for (m,) in _events(data, Kind.RST)] == rsts
    # Our APP11 payloads after the signature, nothing from the others.
    ours = [p[len(container.SIGNATURE):] for n, p in decoded.app_segments
            if n == container.APP_NUMBER and p.startswith(container.SIGNATURE)]
    assert bytes(b for _, b in _events(data, Kind.APP)) == b"".join(ours)
    assert [k for k, _ in _events(data, Kind.APP)] == [
        k for p in ours for k in range(len(p))]


def _decoder_verdict(data):
    """None when decode_full accepts ``data``, else its message."""
    try:
        jpeg.decode_full(data)
    except CimcodecError as e:
        return str(e)
    return None


def _corruptions(data):
    """Truncations, bit flips in every header byte and the first scan bytes, and
    segment lengths off by one."""
    scan = container.walk(data).scan_start
    out = [data[:n] for n in range(1, len(data))]
    for i in range(min(scan + 8, len(data))):
        for bit in (0, 4, 7):
            out.append(data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1:])
    pos = 2
    while pos < scan:
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        for delta in (-1, 1):
            out.append(data[:pos + 2] + (length + delta).to_bytes(2, "big") + data[pos + 4:])
        pos += 2 + length
    return out


@pytest.mark.parametrize("name", ["q50-opt1", "restart3", "golden-app"])
def test_golden_parse_rejects_what_the_decoder_rejects(name):
    """Header, marker and restart errors: parse fails exactly when decode_full does; a
    file the parser accepts and the decoder rejects is damaged in its Huffman codes."""
    for bad in _corruptions(corpus()[name]):
        parsed, verdict = parse(bad), _decoder_verdict(bad)
        if parsed.error is not Error.NONE:
            assert verdict is not None, bad
            assert parsed.events[-1] == (Kind.ERROR, parsed.error)
        elif verdict is not None:
            assert any(s in verdict for s in ENTROPY_ERRORS), verdict
        assert parsed.consumed <= len(bad)


def _segment(marker, body):
    return bytes((0xFF, marker)) + (len(body) + 2).to_bytes(2, "big") + body


def _edit(data, old, new):
    assert old in data
    return data.replace(old, new, 1)


def test_error_codes_name_the_fault():
    good = corpus()["golden-app"]
    sof = bytes((0xFF, 0xC0, 0, 11, 8, 0, 9, 0, 13, 1, 1, 0x11, 0))
    cases = {
        Error.MARKER: [b"\xff\xd9", good[:2] + b"\x00" + good[3:],
                       _edit(good, sof, b"\xff\xd0" + sof)],
        Error.ORDER: [good[:2] + b"\xff\xd9",
                      _edit(good, sof, sof + sof)],
        Error.UNSUPPORTED: [_edit(good, sof, b"\xff\xc2" + sof[2:]),
                            _edit(good, sof, sof[:9] + b"\x03" + sof[10:])],
        Error.TRUNCATED: [good[:-1], good[:40]],
        Error.LENGTH: [_edit(good, b"\xff\xdd\x00\x04", b"\xff\xdd\x00\x05")],
        Error.DIMENSIONS: [_edit(good, sof, sof[:5] + b"\x00\x00" + sof[7:]),
                           _edit(good, sof, sof[:5] + b"\xff\xff" + sof[7:])],
        Error.HUFFMAN: [_edit(good, b"\xff\xc4\x00", b"\xff\xc4\x00\x15\x00\x03")],
        Error.QUANTIZER: [_edit(corpus()["golden-wide"], b"\x03\xe8", b"\x83\xe8")],
        Error.RESTART: [_edit(good, b"\xff\xd0", b"\xff\xd1")],
    }
    for code, files in cases.items():
        for data in files:
            assert parse(data).error is code, code
            assert _decoder_verdict(data) is not None, code


def test_golden_parse_limits_and_bad_input():
    data = corpus()["q50-opt0"]
    assert parse(data, MarkerShape(max_dimension=15)).error is Error.DIMENSIONS
    assert parse(data, MarkerShape(max_pixels=255)).error is Error.DIMENSIONS
    assert parse(data, MarkerShape(max_pixels=256)).error is Error.NONE
    assert parse(data + b"trailing").consumed == len(data)
    with pytest.raises(CimcodecError, match=r"JPEG data must be bytes, not str"):
        parse("abc")


def test_bad_shape_names_the_parameter():
    with pytest.raises(CimcodecError, match=r"Parser max dimension must be an integer 1..65535"):
        MarkerParser(MarkerShape(max_dimension=0))
    with pytest.raises(CimcodecError, match=r"Parser max pixels must be an integer"):
        MarkerShape(max_pixels=1 << 32)
    with pytest.raises(CimcodecError, match=r"Parser shape must be a MarkerShape"):
        MarkerParser(65500)


@pytest.mark.parametrize("stall_seed", [None, 3])
def test_parser_in_amaranth_sim(stall_seed):
    data = corpus()["restart1"]
    for file in (data, data[:150], data[:20] + b"\xff" + data[21:]):
        job = tb.job(file, stall_seed=stall_seed)
        dut = MarkerParser()
        out = run_streams(dut, [(dut.i, job["inputs"][0][1])],
                          {"o": (dut.o, len(job["expected"]["o"]))},
                          stall_seed=stall_seed)
        assert out["o"] == job["expected"]["o"]


def _feed_whole_file(dut, data, pause_seed=3):
    """Offer every byte of ``data`` (``last`` on the final one), pausing at random, with
    ``o`` always ready, for ``2 * len(data) + 40`` clocks: the bytes taken as ``(index,
    scan)`` and the events (payload dicts), whatever the parser does after the byte
    that ended its parse."""
    taken, events = [], []

    async def bench(ctx):
        rng = np.random.default_rng(pause_seed)
        ctx.set(dut.o.ready, 1)
        k = 0
        for _ in range(2 * len(data) + 40):
            offer = k < len(data) and rng.random() >= 0.3
            ctx.set(dut.i.valid, offer)
            if k < len(data):
                ctx.set(dut.i.payload, {"data": data[k], "last": int(k == len(data) - 1)})
            await ctx.delay(1e-9)
            if ctx.get(dut.o.valid):
                events.append(to_python(ctx.get(dut.o.payload)))
            if offer and ctx.get(dut.i.ready):
                taken.append((k, ctx.get(dut.scan)))
                k += 1
            await ctx.tick()

    run_testbench(dut, bench)
    return taken, events


def test_scan_flag_marks_the_entropy_coded_bytes():
    """``scan`` is high for exactly the bytes taken after the SOS segment's last one,
    on a file with restart markers, with random pauses in the input."""
    data = corpus()["restart1"]
    sos = data.index(b"\xff\xda")
    first_ecs = sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big")
    taken, _ = _feed_whole_file(MarkerParser(), data)
    assert [k for k, _ in taken] == list(range(len(data)))
    assert [k for k, scan in taken if scan] == list(range(first_ecs, len(data)))


def test_parser_takes_nothing_after_the_byte_that_ends_it():
    """Fed whole files (not cut where the golden parse ends), the parser takes exactly
    the golden parse's bytes and gives exactly its events: a frame over the pixel
    limit (the count checked a clock after the width byte, whose next byte is a bad
    one), a damaged marker, bytes after EOI."""
    data = corpus()["q50-opt0"]
    sof = data.index(b"\xff\xc0")
    bad_components = data[:sof + 9] + b"\x07" + data[sof + 10:]
    cases = [(data, 255), (bad_components, 255), (bad_components, 256),
             (data[:40] + b"\xff\x01" + data[42:], 256), (data + b"\xff\xd9\x00", 256)]
    for k, (file, limit) in enumerate(cases):
        shape = MarkerShape(max_pixels=limit)
        want = parse(file, shape)
        taken, events = _feed_whole_file(MarkerParser(shape), file, pause_seed=k)
        assert [i for i, _ in taken] == list(range(want.consumed)), k
        assert events == [payload(e) for e in want.events], k


@pytest.mark.parametrize("stall_seed", [None, 4])
def test_parser_pixel_limit_in_amaranth_sim(stall_seed):
    """The frame's pixel count is checked a clock after its width byte: at the limit
    the file parses, one pixel over it is ``DIMENSIONS``, and a file cut at the width
    byte is ``TRUNCATED`` only when the count is within the limit."""
    data = corpus()["q50-opt0"]
    sof = data.index(b"\xff\xc0")
    cut = data[:sof + 9]                    # ends with the width's low byte
    cases = [(data, 256, Error.NONE), (data, 255, Error.DIMENSIONS),
             (cut, 256, Error.TRUNCATED), (cut, 255, Error.DIMENSIONS)]
    for file, limit, code in cases:
        shape = MarkerShape(max_pixels=limit)
        job = tb.job(file, shape, stall_seed=stall_seed)
        assert parse(file, shape).error is code
        dut = MarkerParser(shape)
        out = run_streams(dut, [(dut.i, job["inputs"][0][1])],
                          {"o": (dut.o, len(job["expected"]["o"]))},
                          stall_seed=stall_seed)
        assert out["o"] == job["expected"]["o"]
        assert out["o"][-1]["value"] == code or code is Error.NONE


def _rtl_files():
    files = corpus()
    good = [files[n] for n in ("q1-opt0", "q95-opt1", "restart1", "restart3", "wide-table",
                               "golden-app")]
    rng = np.random.default_rng(5)
    bad = [b for b in _corruptions(files["golden-app"]) if parse(b).error]
    picks = rng.choice(len(bad), 24, replace=False)
    return good, [bad[i] for i in sorted(picks)]


def test_rtl_matches_golden(simulator):
    good, bad = _rtl_files()
    jobs = [tb.job(f) for f in good] + [tb.job(f, stall_seed=7 + i) for i, f in enumerate(good)]
    # Every corrupted file is followed by a good one: the parser recovers after reset.
    for i, f in enumerate(bad):
        jobs.append(tb.job(f, stall_seed=None if i % 2 else i))
        jobs.append(tb.job(good[i % len(good)]))
    results = run_jobs(BENCH, MarkerShape(), jobs, simulator)
    for job, result in zip(jobs, results, strict=True):
        assert result["outputs"]["o"] == job["expected"]["o"]
    # One byte per clock without stalls: the last event (EOI or the error) two clocks
    # after the last byte's transfer, and one more once the frame's width byte passed
    # (the next byte waits while its pixel count is checked).
    for job, result in zip(jobs, results):
        if job["stall_seed"] is None:
            kinds = [event["kind"] for event in job["expected"]["o"]]
            assert result["clocks"] == len(job["inputs"][0][1]) + 2 + (Kind.WIDTH in kinds)
        assert result["outputs"]["o"][-1]["kind"] in (Kind.EOI, Kind.ERROR)


def test_verilog_lints():
    """Verilator finds nothing beyond the project's two width waivers."""
    lint(elaborate("markers", MarkerParser, MarkerShape()), "markers")
