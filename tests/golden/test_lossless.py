"""The lossless framework (seed 002): every coder and representation round-trips
exactly on any integer array, corrupt or truncated frames raise one CimcodecError and
never hang, the sparse formats take the bytes their documented formulas say, the
entropy coders meet their bounds, and the registry enumerates the combinations and
picks up a new coder."""

import math
import sys
import time
import zlib

import numpy as np
import pytest
import scipy.sparse
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cimcodec.golden.codec import entropy
from cimcodec.golden.errors import CimcodecError
from cimcodec.golden.lossless import base, combination, combinations, registry, symbols
from cimcodec.golden.lossless.coders import ans
from cimcodec.golden.lossless.formats import relative

CODERS = sorted(registry.coders())
REPRESENTATIONS = sorted(registry.representations())
INT32 = st.integers(base.INT_MIN, base.INT_MAX)


def _values():
    """1-D integer arrays: full range, small and sparse, int8-like, all equal, empty."""
    small = hnp.arrays(np.int64, st.integers(0, 300),
                       elements=st.sampled_from([0, 0, 0, 0, 1, -1, 2, -3, 7]))
    return st.one_of(
        hnp.arrays(np.int64, st.integers(0, 200), elements=INT32),
        small,
        hnp.arrays(np.int8, st.integers(0, 300)),
        hnp.arrays(np.int64, st.integers(1, 200), elements=st.integers(0, 600)),
        st.builds(lambda n, v: np.full(n, v, dtype=np.int64), st.integers(0, 300), INT32),
    )


FULL = np.array([base.INT_MIN, base.INT_MAX, 0, -1, 1, base.INT_MIN + 1], dtype=np.int64)


@pytest.mark.parametrize("name", CODERS)
@settings(max_examples=40, deadline=None)
@given(values=_values())
@example(values=np.zeros(0, dtype=np.int64))
@example(values=np.zeros(1, dtype=np.int64))
@example(values=np.array([5]))
@example(values=np.zeros(257, dtype=np.int64))
@example(values=np.full(40, -7, dtype=np.int64))
@example(values=FULL)
@example(values=np.array([0, base.INT_MAX]))
@example(values=np.array([base.INT_MIN, base.INT_MIN]))
def test_every_coder_round_trips_any_array(name, values):
    coder = registry.coders()[name]
    data = coder.encode(values)
    back = coder.decode(data)
    assert back.dtype == np.int64
    np.testing.assert_array_equal(back, values.astype(np.int64))


@pytest.mark.parametrize("name", CODERS)
def test_every_coder_round_trips_a_million_values(name):
    rng = np.random.default_rng(7)
    values = rng.integers(-40, 40, 1 << 20)
    values[rng.random(values.size) < 0.8] = 0
    coder = registry.coders()[name]
    np.testing.assert_array_equal(coder.decode(coder.encode(values)), values)


@pytest.mark.parametrize("name", CODERS)
@pytest.mark.parametrize("bad", [np.array([0.5, 1.0]), np.array([1 << 31]),
                                 np.array([-(1 << 31) - 1]), np.array(["a"])])
def test_coders_refuse_what_is_not_in_the_domain(name, bad):
    with pytest.raises(CimcodecError, match="integers|32-bit"):
        registry.coders()[name].encode(bad)


def _matrices():
    shape = st.tuples(st.integers(0, 9), st.integers(0, 23))
    density = st.sampled_from([0.0, 0.1, 0.5, 1.0])
    return st.builds(_sparse, shape, density, st.integers(0, 2**32 - 1),
                     st.sampled_from([(-128, 128), (1, 16), (base.INT_MIN, base.INT_MAX)]))


def _sparse(shape, density, seed, span):
    rng = np.random.default_rng(seed)
    m = rng.integers(span[0], span[1], shape, dtype=np.int64, endpoint=False)
    m[rng.random(shape) >= density] = 0
    return m


@pytest.mark.parametrize("name", REPRESENTATIONS)
@settings(max_examples=40, deadline=None)
@given(matrix=_matrices(), delta=st.booleans())
@example(matrix=np.zeros((1, 1), dtype=np.int64), delta=False)
@example(matrix=np.zeros((3, 5), dtype=np.int64), delta=True)
@example(matrix=np.full((4, 6), base.INT_MIN, dtype=np.int64), delta=True)
@example(matrix=np.full((4, 6), 9, dtype=np.int64), delta=False)
@example(matrix=np.array([[base.INT_MAX, base.INT_MIN, 0]]), delta=True)
def test_every_representation_round_trips_any_matrix(name, matrix, delta):
    combo = combination(f"{'delta-' if delta else ''}{name}+fixed")
    header, streams = combo.split(matrix)
    assert set(streams) == set(combo.representation.streams)
    back = combo.representation.join(header, streams, matrix.shape)
    if delta:
        back = combo.transforms[0].inverse(back)
    np.testing.assert_array_equal(back, matrix)
    np.testing.assert_array_equal(combo.decode(combo.encode(matrix)), matrix)


@settings(max_examples=30, deadline=None)
@given(matrix=_matrices())
def test_csr_csc_coo_streams_are_scipy_s(matrix):
    """The streams are the textbook formats: scipy's CSR and CSC (sorted indices) and
    the row-major COO."""
    csr, csc = scipy.sparse.csr_array(matrix), scipy.sparse.csc_array(matrix)
    csr.sort_indices()
    csc.sort_indices()
    _, s = combination("csr+fixed").split(matrix)
    np.testing.assert_array_equal(s["values"], csr.data)
    np.testing.assert_array_equal(s["cols"], csr.indices)
    np.testing.assert_array_equal(s["rowptr"], csr.indptr)
    _, s = combination("csc+fixed").split(matrix)
    np.testing.assert_array_equal(s["values"], csc.data)
    np.testing.assert_array_equal(s["rows"], csc.indices)
    np.testing.assert_array_equal(s["colptr"], csc.indptr)
    _, s = combination("coo+fixed").split(matrix)
    rows, cols = np.nonzero(matrix)
    np.testing.assert_array_equal(s["rows"], rows)
    np.testing.assert_array_equal(s["cols"], cols)


def test_delta_and_relative_forms_by_value():
    m = np.array([[0, 0, 5, 5, 0, -3], [0] * 5 + [2]], dtype=np.int64)
    _, s = combination("delta-dense+fixed").split(m)
    np.testing.assert_array_equal(s["values"], [0, 0, 5, 0, -5, -3, 3, 0, 0, 0, 0, 2])
    # Relative form with r = 2: gaps above 3 get a filler (value 0, gap 3).
    flat = m.reshape(-1)
    header, s = relative.Relative().split(m)
    r = header[0]
    assert r == 3   # entries * (r + w) over r = 1..16 is smallest at 3 for this matrix
    np.testing.assert_array_equal(s["values"], [5, 5, -3, 2])
    np.testing.assert_array_equal(s["gaps"], [2, 0, 1, 5])
    values, gaps = relative.deep.sparse_indices(flat, 2)
    np.testing.assert_array_equal(values, [5, 5, -3, 0, 2])
    np.testing.assert_array_equal(gaps, [2, 0, 1, 3, 1])
    # Gaps wider than a byte (r up to 16) and values beyond int8 keep their values.
    far = np.zeros((1, 200_000), dtype=np.int64)
    far[0, [5, 70_000, 150_000]] = [300, -2, 7]
    values, gaps = relative.deep.sparse_indices(far, 16)
    np.testing.assert_array_equal(values, [300, 0, -2, 0, 7])
    np.testing.assert_array_equal(gaps, [5, 65535, 4458, 65535, 14463])
    header, s = relative.Relative().split(far)
    np.testing.assert_array_equal(relative.Relative().join(header, s, far.shape), far)


# ------------------------------------------------------------------ corruption


def _mutations(data: bytes, rng, count: int):
    """``count`` damaged copies: flipped bits, replaced, inserted and deleted bytes,
    truncations."""
    for i in range(count):
        kind, b = i % 5, bytearray(data)
        at = int(rng.integers(len(b)))
        if kind == 0:
            b[at] ^= 1 << int(rng.integers(8))
        elif kind == 1:
            b[at] = (b[at] + int(rng.integers(1, 256))) % 256
        elif kind == 2:
            b.insert(at, int(rng.integers(256)))
        elif kind == 3:
            del b[at]
        else:
            del b[at:]
        yield bytes(b)


@pytest.mark.parametrize("name", CODERS)
def test_a_thousand_corruptions_raise_one_clear_error(name):
    """Every damaged frame raises CimcodecError, or (a flip in padding bits) decodes to
    exactly the original; nothing else, and never slowly."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))    # the same damage every run
    matrix = _sparse((12, 21), 0.4, 3, (-60, 60))
    raised = 0
    for rep in ("bitmap", "dense"):
        combo = combination(f"{rep}+{name}")
        data = combo.encode(matrix)
        for bad in _mutations(data, rng, 500):
            t0 = time.perf_counter()
            try:
                back = combo.decode(bad, matrix.shape)
            except CimcodecError as e:
                raised += 1
                assert str(e).endswith(".") and "\n" not in str(e)
            else:
                np.testing.assert_array_equal(back, matrix)
            assert time.perf_counter() - t0 < 2.0
    assert raised >= 900


@pytest.mark.parametrize("name", CODERS)
def test_every_truncation_of_a_stream_raises(name):
    coder = registry.coders()[name]
    values = _sparse((1, 300), 0.5, 11, (-300, 300)).reshape(-1)
    data = coder.encode(values)
    for end in range(len(data)):
        with pytest.raises(CimcodecError):
            coder.decode(data[:end])


@pytest.mark.parametrize("name", CODERS)
def test_a_count_above_the_limit_is_refused_before_decoding(name):
    coder = registry.coders()[name]
    data = coder.encode(np.zeros(5000, dtype=np.int64))
    with pytest.raises(CimcodecError, match="more than"):
        coder.decode(data, limit=4999)


# ------------------------------------------------------------------ closed forms


def _varint_len(x: int) -> int:
    return max(1, math.ceil(x.bit_length() / 7))


def _svarint_len(m: int) -> int:
    return _varint_len(2 * m if m >= 0 else -2 * m - 1)


def _fixed_bytes(count: int, lo: int = 0, hi: int = 0) -> int:
    """The fixed coder's documented size of ``count`` values in ``lo..hi``."""
    if not count:
        return 1
    return _varint_len(count) + 1 + _svarint_len(lo) + math.ceil(
        count * (hi - lo).bit_length() / 8)


def _frame_bytes(shape, streams) -> int:
    """Frame overhead of the registry docstring around streams of the given sizes."""
    return (_varint_len(len(shape)) + sum(_varint_len(s) for s in shape) + 1
            + sum(_varint_len(s) + s for s in streams) + 4)


def _constructed():
    """Matrices with known nonzero count, index ranges and value range."""
    out = []
    m = np.zeros((37, 53), dtype=np.int64)
    m[0, 0], m[36, 52], m[5, 7], m[20, 30] = -100, 27, 3, -1
    out.append(m)
    m = np.zeros((64, 200), dtype=np.int64)
    m[::3, 1::7] = 5
    m[1::4, ::9] = -7
    out.append(m)
    out.append(np.zeros((16, 9), dtype=np.int64))
    out.append(np.arange(1, 1 + 12 * 300, dtype=np.int64).reshape(12, 300))
    m = np.zeros((300, 5), dtype=np.int64)
    m[299, 4] = 1 << 20
    out.append(m)
    return out


@pytest.mark.parametrize("matrix", _constructed(), ids=lambda m: "x".join(map(str, m.shape)))
def test_csc_csr_bitmap_sizes_are_their_closed_forms(matrix):
    rows, cols = matrix.shape
    z = int(np.count_nonzero(matrix))
    nz = matrix[matrix != 0]
    vlo, vhi = (int(nz.min()), int(nz.max())) if z else (0, 0)
    values = _fixed_bytes(z, vlo, vhi)
    r, c = np.nonzero(matrix)
    csr = [values, _fixed_bytes(z, int(c.min()) if z else 0, int(c.max()) if z else 0),
           _varint_len(rows + 1) + 2 + math.ceil((rows + 1) * z.bit_length() / 8)]
    csc = [values, _fixed_bytes(z, int(r.min()) if z else 0, int(r.max()) if z else 0),
           _varint_len(cols + 1) + 2 + math.ceil((cols + 1) * z.bit_length() / 8)]
    n = rows * cols
    bitmap = [_varint_len(n) + 2 + math.ceil(n * (0 < z < n) / 8), values]
    for name, streams in (("csr", csr), ("csc", csc), ("bitmap", bitmap)):
        assert len(combination(f"{name}+fixed").encode(matrix)) == \
            _frame_bytes(matrix.shape, streams), name


def test_fixed_coder_size_formula_by_hand():
    # 1000 values in -3..4: 3 bits each, base -3 (svarint 5: one byte), n = 1000 (2 bytes).
    values = np.resize(np.arange(-3, 5), 1000)
    assert len(registry.coders()["fixed"].encode(values)) == 2 + 1 + 1 + 375


# ------------------------------------------------------------------ bounds


def _laplace_symbols(n, scale, seed):
    rng = np.random.default_rng(seed)
    return np.clip(np.round(rng.laplace(0, scale, n)), -100, 100).astype(np.int64)


def _entropy(s):
    p = np.bincount(s) / s.size
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


@pytest.mark.parametrize("scale", [0.3, 2.0, 15.0])
def test_huffman_mean_length_is_within_its_bound(scale):
    _, s, _ = symbols.to_symbols(_laplace_symbols(50_000, scale, 1))
    h, length = _entropy(s), entropy.mean_code_length(s)
    assert h <= length < h + 1


def test_ans_payload_is_within_one_percent_of_the_entropy():
    for scale in (0.7, 4.0, 30.0):
        _, s, _ = symbols.to_symbols(_laplace_symbols(1 << 16, scale, 2))
        words = ans.code(s)[0]
        assert 32 * words.size <= 1.01 * s.size * _entropy(s)


# ------------------------------------------------------------------ registry


def test_the_registry_enumerates_every_combination():
    names = combinations()
    assert len(names) >= 36 and len(set(names)) == len(names)
    assert len(names) == (1 + len(registry.transforms())) * len(REPRESENTATIONS) * len(CODERS)
    for name in ("csc+fixed", "delta-bitmap+fixed", "delta-dense+huffman", "rel+ans"):
        assert name in names
    assert combination("dense+huffman+zstd").name == "dense+huffman+zstd"


@pytest.mark.parametrize("name", ["bitmap", "bitmap+nope", "nope+fixed", "zig-dense+fixed",
                                  "dense+", 7])
def test_unknown_combinations_are_one_sentence(name):
    with pytest.raises(CimcodecError, match="lossless combination|named by a string") as e:
        combination(name)
    assert "\n" not in str(e.value)


class _Bytes32(base.Coder):
    """A coder for the registry test: little-endian int32 after the count."""

    name = "raw32"
    cost = base.Cost(0, "1", "none")

    def encode_values(self, v):
        return v.astype("<i4").tobytes()

    def decode_values(self, r, n):
        return np.frombuffer(r.take(4 * n), "<i4").astype(np.int64)


def test_a_registered_coder_joins_every_combination():
    before = combinations()
    registry.register(_Bytes32())
    try:
        names = combinations()
        new = [n for n in names if n.endswith("+raw32")]
        assert len(new) == (1 + len(registry.transforms())) * len(REPRESENTATIONS)
        assert sorted(set(names) - set(before)) == sorted(new)
        m = _sparse((5, 7), 0.5, 1, (-9, 9))
        for name in new:
            np.testing.assert_array_equal(combination(name).decode(combination(name).encode(m)),
                                          m)
    finally:
        registry.unregister("coder", "raw32")
    assert combinations() == before


MODULE = '''
import numpy as np
from cimcodec.golden.lossless import base

class Int64s(base.Coder):
    name = "int64s"
    cost = base.Cost(0, "1", "none")

    def encode_values(self, v):
        return v.astype("<i8").tobytes()

    def decode_values(self, r, n):
        return np.frombuffer(r.take(8 * n), "<i8").astype(np.int64)

ALGORITHMS = (Int64s(),)
'''


def test_a_new_module_in_the_coders_package_is_discovered(tmp_path, monkeypatch):
    from cimcodec.golden.lossless import coders

    (tmp_path / "int64s.py").write_text(MODULE)
    monkeypatch.setattr(coders, "__path__", [*coders.__path__, str(tmp_path)])
    assert "int64s" not in registry.coders()
    try:
        registry.discover()
        assert "int64s" in registry.coders()
        assert "delta-rel+int64s" in combinations()
        m = _sparse((6, 6), 0.3, 2, (-5, 5))
        combo = combination("rel+int64s")
        np.testing.assert_array_equal(combo.decode(combo.encode(m)), m)
    finally:
        registry.unregister("coder", "int64s")
        sys.modules.pop("cimcodec.golden.lossless.coders.int64s", None)


def test_every_algorithm_has_a_cost_note():
    for kind in (registry.coders(), registry.representations(), registry.transforms()):
        for algorithm in kind.values():
            assert 0 <= algorithm.cost.rank < len(base.CLASSES)
            assert algorithm.cost.symbols_per_clock and algorithm.cost.state
    assert combination("delta-bitmap+fixed").cost_class == "1 counter"
    assert combination("bitmap+huffman").cost_class == "2 table"
    assert combination("dense+huffman+zstd").cost_class == "4 dictionary"


# ------------------------------------------------------------------ frames


def test_frames_keep_shape_and_check_their_crc():
    t = _sparse((3, 4), 0.5, 5, (-9, 9)).reshape(3, 2, 2)
    combo = combination("coo+huffman")
    data = combo.encode(t)
    back = combo.decode(data)
    assert back.shape == (3, 2, 2)
    np.testing.assert_array_equal(back, t)
    crc = zlib.crc32(t.astype("<i4").tobytes())
    assert data[-4:] == crc.to_bytes(4, "little")
    with pytest.raises(CimcodecError, match="shape"):
        combo.decode(data, (3, 4))
    with pytest.raises(CimcodecError, match="CRC-32"):
        combo.decode(data[:-4] + (crc ^ 1).to_bytes(4, "little"))
    for scalar in (np.int64(-5), np.zeros((0, 3), dtype=np.int8)):
        np.testing.assert_array_equal(combo.decode(combo.encode(scalar)), scalar)
