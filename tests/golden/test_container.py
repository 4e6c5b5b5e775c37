"""The container: metadata round trip, validation, CRC, chunking over APP11 segments,
and a hypothesis fuzz test on real container files (CimcodecError or success)."""

import io
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from cimcodec.golden.blocks.remap import RemapParams
from cimcodec.golden.codec import container
from cimcodec.golden.codec import pipeline as codec
from cimcodec.golden.codec.quant import QScheme, QuantParams
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.jpeg import reference as jpeg


def _file(**options):
    w = np.random.default_rng(11).normal(0, 0.05, (37, 21)).astype(np.float32)
    return w, codec.compress_matrix(w, **options).data


SMALL = _file(clusters=8, remap="split", seeds=(3, 5))[1]


def test_header_round_trip_and_pillow_opens_the_file():
    header = container.read_header(SMALL)
    assert header.shape == (37, 21) and header.levels.size == 8 and header.snap is not None
    assert header.remap.scheme.value == "split" and header.remap.seeds == (3, 5)
    assert container.unpack(container.pack(header)).describe() == header.describe()
    image = Image.open(io.BytesIO(SMALL))
    assert image.size == (24, 40) and image.mode == "L"
    assert (np.asarray(image) == jpeg.decode(SMALL)).all()


def test_metadata_split_over_several_app11_segments():
    rows = 12000  # per-channel parameters: 6 bytes per row, more than one segment
    quant = QuantParams(QScheme.PER_CHANNEL_SYMMETRIC, np.full(rows, 0.5), np.zeros(rows))
    header = container.Header((rows, 3), quant, RemapParams(rows, 3, "none"))
    coded = np.full((rows, 8), 128, np.uint8)
    data = container.write(coded, header, quality=50)
    layout = container.walk(data)
    assert sum(n == 11 for n, _ in layout.app) == 2
    assert container.read_header(data).quant.scale.size == rows


def test_crc_mismatch_is_detected():
    layout = container.walk(SMALL)
    bad = bytearray(SMALL)
    bad[layout.scan_start + 3] ^= 0x01
    with pytest.raises(CimcodecError, match="CRC-32 mismatch"):
        container.read_header(bytes(bad))


def _patch_block(data, edit):
    layout = container.walk(data)
    block = container.metadata_block(layout.app)
    new = container.app_segments(edit(block))
    seg = b"".join(b"\xff\xeb" + (len(p) + 2).to_bytes(2, "big") + p for _, p in new)
    start = data.index(b"\xff\xeb")
    old_len = int.from_bytes(data[start + 2:start + 4], "big")
    return data[:start] + seg + data[start + 2 + old_len:]


@pytest.mark.parametrize("edit, message", [
    (lambda b: struct.pack("<H", 2) + b[2:], "version 2 is not supported"),
    (lambda b: b[:2] + struct.pack("<H", 8) + b[4:], "flags 0x0008 are not valid"),
    (lambda b: b[:4] + struct.pack("<I", 45) + b[8:], "does not flatten"),
    (lambda b: b[:4] + struct.pack("<II", 99999, 21) + b[12:], "out of range"),
    (lambda b: b[:-6], "ends inside"),
    (lambda b: b + b"\x00", "bytes after its CRC-32"),
])
def test_bad_metadata_one_sentence(edit, message):
    with pytest.raises(CimcodecError, match=message):
        container.read_header(_patch_block(SMALL, edit))


def test_frame_that_disagrees_with_the_metadata():
    def grow(b):
        rows, cols = struct.unpack_from("<II", b, 4)
        return b[:4] + struct.pack("<II", 60, cols) + b[12:13] + struct.pack("<I", 60) + b[17:]
    with pytest.raises(CimcodecError, match="JPEG frame is 24x40 but"):
        container.read_header(_patch_block(SMALL, grow))


def test_plain_jpeg_is_not_a_container():
    with pytest.raises(CimcodecError, match="not a cimcodec container"):
        container.read_header(jpeg.encode(np.zeros((8, 8), np.uint8)))
    with pytest.raises(CimcodecError, match="does not start with SOI"):
        container.read_header(b"GIF89a")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_containers(data):
    blob = bytearray(SMALL)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = data.draw(st.integers(0, len(blob) - 1))
        if kind == "flip":
            blob[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "cut":
            del blob[pos:pos + data.draw(st.integers(1, 40))]
        else:
            blob[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        if len(blob) < 2:
            break
    try:
        w = codec.decompress_matrix(bytes(blob))
    except CimcodecError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert w.shape == (37, 21) and w.dtype == np.float32
