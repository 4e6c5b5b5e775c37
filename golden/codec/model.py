"""The model container (``.cimz``): a whole torch ``state_dict`` in one file, every
tensor through a codec chosen per tensor.

File layout (little-endian)
---------------------------
=============  ==============================================================
``4s`` magic   ``b"CIMZ"``
``<B``         format version, 1
``<I`` crc     ``zlib.crc32`` of every byte after this field
``<I`` m       length of the manifest
``m`` bytes    the manifest: UTF-8 JSON (below), ``zlib``-compressed
members        the tensors' members, back to back in manifest order; member ``i``
               is ``size_i`` bytes
=============  ==============================================================

Shared segments (``manifest["shared"]`` sizes, in order) sit between the manifest and
the members. Nothing may follow the last member. The manifest is one JSON object::

    {"tensors": [[name, shape, dtype, codec, size, options], ...],
     "shared": [size, ...], "model": {...}}

* ``name``: the state-dict key; ``shape``: a list of ints; ``dtype``: the torch dtype
  name (``float32``, ``bfloat16``, ``int64``, ...); the order is the state dict's.
* ``codec``: the name of the tensor codec that wrote the member (:data:`CODECS`);
  ``size``: member bytes; ``options``: what that codec needs to decode (``{}`` for most).
* ``model`` (optional): a description of the network, e.g. ``{"net": "mlp2"}``, for
  tools that rebuild it.
* ``shared`` (optional): JPEG header segments (APP0, DQT, DHT) that two or more ``jpeg``
  members hold byte for byte are stored once; such a member is stored without them and
  its ``options`` hold ``"splice": [[position, k], ...]``: shared segment ``k`` goes back
  at ``position`` of the rebuilt member (positions ascending, in the rebuilt member's
  coordinates). The ``splice`` key is the container's, not passed to the codec.

Tensor codecs
-------------
A codec is an object with a ``name``, ``encode(array, settings) -> (bytes, options)``
and ``decode(bytes, shape, dtype, options) -> ndarray``; :func:`register` adds one, so the set
stays open. A *family* of codecs is named ``family:rest``: the first time :func:`lookup`
meets such a name it imports the family's module (:data:`FAMILIES`), which registers
codecs when imported and builds any other member with its ``codec(name)``. Built in:

* ``raw``: lossless, for small tensors, integer buffers and anything a lossy codec
  does not take. The member is ``<B kind`` + payload: kind 0 the tensor's own bytes
  (C order, little-endian), 1 the same ``zlib``-compressed, 2 ``lzma``-compressed
  (tried up to 1 MiB; whichever is shortest), 3 a float32 tensor whose every value is
  exactly a float16, stored as float16 bytes and widened back (also exact), 4 that
  ``zlib``-compressed.
  ``bfloat16`` is stored as its 16-bit patterns.
* ``jpeg``: :func:`cimcodec.golden.codec.pipeline.compress_matrix`; the member *is* the
  baseline JPEG container of the tensor (any viewer opens it, ``rtl-decode`` decodes
  it, :func:`extract` returns it). Lossy: the decoded float32 values are within the
  codec's quantization (and quality, clusters) error, then cast to the tensor's dtype.
* ``deep``: Deep Compression's sparse, shared-weight, Huffman-coded storage
  (:mod:`cimcodec.golden.codec.deep`).
* ``lossless:<combination>`` (a family): a lossless representation and coder of the
  quantized tensor (:mod:`cimcodec.golden.lossless.codec`).

Which codec a tensor gets (:func:`save`): a floating-point tensor with two or more
dimensions and at least ``min_elements`` elements (default 256) goes through the
requested lossy codec; every other tensor (biases, BatchNorm parameters and statistics,
``num_batches_tracked``, small or integer tensors) through ``raw``. A ``codecs``
mapping overrides the choice per tensor name.

The ratio (:attr:`Inspection.ratio`) counts every byte of the file against 4 bytes per
element of every tensor in it.
"""

from __future__ import annotations

import importlib
import io
import json
import lzma
import math
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cimcodec.golden.errors import CimcodecError

MAGIC = b"CIMZ"
VERSION = 1
_HEAD = struct.Struct("<4sBII")
#: Smallest tensor the lossy codecs take by default.
MIN_ELEMENTS = 256
#: Largest raw payload also tried with lzma (slow on large tensors).
LZMA_LIMIT = 1 << 20
#: JPEG segments stored once when several members hold the same bytes: APP0, DQT, DHT.
SHARED_MARKERS = (0xE0, 0xDB, 0xC4)

#: torch dtype name -> (numpy dtype of its bytes, is floating point)
DTYPES = {
    "float64": ("<f8", True), "float32": ("<f4", True), "float16": ("<f2", True),
    "bfloat16": ("<i2", True),  # bit patterns; numpy has no bfloat16
    "int64": ("<i8", False), "int32": ("<i4", False), "int16": ("<i2", False),
    "int8": ("i1", False), "uint8": ("u1", False), "bool": ("?", False),
}


# ------------------------------------------------------------------ tensors <-> numpy


def _dtype_name(tensor) -> str:
    import torch

    name = str(tensor.dtype).removeprefix("torch.")
    if not isinstance(tensor, torch.Tensor) or name not in DTYPES:
        raise CimcodecError(
            f"A state-dict entry must be a tensor of one of {', '.join(DTYPES)}, not "
            f"{name if isinstance(tensor, torch.Tensor) else type(tensor).__name__}.")
    return name


def _to_numpy(tensor) -> np.ndarray:
    """The tensor's values as numpy (bfloat16 as its int16 bit patterns)."""
    import torch

    t = tensor.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy()


def _to_torch(array: np.ndarray, dtype: str):
    """The inverse of :func:`_to_numpy` for a tensor of ``dtype``."""
    import torch

    t = torch.from_numpy(np.array(array, order="C"))   # keeps 0-d arrays 0-d
    if dtype == "bfloat16":
        return t.view(torch.bfloat16)
    return t


# ------------------------------------------------------------------ codecs


class RawCodec:
    """Lossless storage (module docstring)."""

    name = "raw"

    def encode(self, array: np.ndarray, settings: dict) -> tuple[bytes, dict]:
        plain = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        candidates = [b"\0" + plain, b"\1" + zlib.compress(plain, 9)]
        if len(plain) <= LZMA_LIMIT:
            candidates.append(b"\2" + lzma.compress(plain, preset=6))
        if array.dtype == np.float32 and np.array_equal(
                array.astype(np.float16).astype(np.float32), array, equal_nan=True):
            half = array.astype("<f2").tobytes()
            candidates += [b"\3" + half, b"\4" + zlib.compress(half, 9)]
        return min(candidates, key=len), {}

    def decode(self, data: bytes, shape: tuple, dtype: str, options: dict) -> np.ndarray:
        if not data:
            raise CimcodecError("A raw member is empty.")
        kind, body = data[0], data[1:]
        try:
            if kind in (1, 4):
                body = zlib.decompress(body)
            elif kind == 2:
                body = lzma.decompress(body)
            elif kind not in (0, 3):
                raise CimcodecError(f"A raw member has the unknown kind {kind}.")
        except (zlib.error, lzma.LZMAError):
            raise CimcodecError("A raw member's compressed data is corrupt.") from None
        stored = np.dtype("<f2") if kind in (3, 4) else np.dtype(DTYPES[dtype][0])
        count = math.prod(shape)
        if len(body) != count * stored.itemsize:
            raise CimcodecError(
                f"A raw member holds {len(body)} bytes, not the {count * stored.itemsize} "
                f"of a {dtype} tensor of shape {tuple(shape)}.")
        array = np.frombuffer(body, stored).reshape(shape)
        return array.astype(np.float32) if kind in (3, 4) else array.copy()


class JpegCodec:
    """The JPEG weight codec (:mod:`cimcodec.golden.codec.pipeline`); ``settings`` are
    the fields of its ``Settings``."""

    name = "jpeg"

    def encode(self, array: np.ndarray, settings: dict) -> tuple[bytes, dict]:
        from cimcodec.golden.codec import pipeline

        return pipeline.compress_matrix(array, pipeline.Settings(**settings)).data, {}

    def decode(self, data: bytes, shape: tuple, dtype: str, options: dict) -> np.ndarray:
        from cimcodec.golden.codec import pipeline

        out = pipeline.decompress_matrix(data)
        if out.shape != tuple(shape):
            raise CimcodecError(
                f"A JPEG member decodes to shape {out.shape}, the manifest says "
                f"{tuple(shape)}.")
        return out


class DeepCodec:
    """Deep Compression's storage (:mod:`cimcodec.golden.codec.deep`)."""

    name = "deep"

    def encode(self, array: np.ndarray, settings: dict) -> tuple[bytes, dict]:
        from cimcodec.golden.codec import deep

        return deep.encode(array, deep.Settings(**settings)), {}

    def decode(self, data: bytes, shape: tuple, dtype: str, options: dict) -> np.ndarray:
        from cimcodec.golden.codec import deep

        return deep.decode(data, shape)


#: The tensor codecs by name (:func:`register` adds one).
CODECS: dict = {}


def register(codec) -> None:
    """Make ``codec`` (an object with ``name``, ``encode`` and ``decode``, see the module
    docstring) available to :func:`save` and :func:`load` under ``codec.name``."""
    for attribute in ("name", "encode", "decode"):
        if not hasattr(codec, attribute):
            raise CimcodecError(f"A tensor codec needs a {attribute!r} attribute.")
    CODECS[codec.name] = codec


for _codec in (RawCodec(), JpegCodec(), DeepCodec()):
    register(_codec)

#: Codec families: ``{family: module}``; the module registers codecs on import and builds
#: ``family:rest`` with its ``codec(name)`` (it depends on this module, not the reverse).
FAMILIES = {"lossless": "cimcodec.golden.lossless.codec"}


def lookup(name: str):
    """The codec called ``name``: a registered one, or a member of a family (module
    docstring); one sentence for an unknown name."""
    family, colon, _ = name.partition(":") if isinstance(name, str) else ("", "", "")
    if name not in CODECS and colon and family in FAMILIES:
        register(importlib.import_module(FAMILIES[family]).codec(name))
    if name not in CODECS:
        families = "".join(f" or {f}:<name>" for f in FAMILIES)
        raise CimcodecError(
            f"Codec must be one of {', '.join(sorted(CODECS))}{families}, not {name!r}.")
    return CODECS[name]


_codec = lookup


# ------------------------------------------------------------------ the file


@dataclass(frozen=True)
class Entry:
    """One tensor of a container, as the manifest describes it."""

    name: str
    shape: tuple
    dtype: str
    codec: str
    size: int
    options: dict = field(default_factory=dict)
    offset: int = 0

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def bits_per_weight(self) -> float:
        return 8 * self.size / max(1, self.elements)

    @property
    def ratio(self) -> float:
        """fp32 bytes of this tensor over its member bytes."""
        return 4 * self.elements / max(1, self.size)


@dataclass(frozen=True)
class Inspection:
    """What a container holds: its entries, the model description and the sizes."""

    entries: tuple
    model: dict
    file_bytes: int
    manifest_bytes: int
    shared: tuple = ()

    def member(self, data: bytes, entry: Entry) -> bytes:
        """The whole member of ``entry`` (shared segments put back) from the file's
        bytes."""
        stored = data[entry.offset:entry.offset + entry.size]
        splice = entry.options.get("splice")
        return _rebuild(stored, splice, self.shared) if splice else stored

    @property
    def fp32_bytes(self) -> int:
        return 4 * sum(e.elements for e in self.entries)

    @property
    def ratio(self) -> float:
        """fp32 bytes of every tensor over every byte of the file."""
        return self.fp32_bytes / self.file_bytes


def _choose(name: str, tensor, dtype: str, codec: str, codecs: dict | None,
            min_elements: int) -> str:
    if codecs and name in codecs:
        return codecs[name]
    lossy = DTYPES[dtype][1] and tensor.ndim >= 2 and tensor.numel() >= min_elements
    return codec if lossy else "raw"


def compress(state_dict, *, codec: str = "jpeg", settings: dict | None = None,
             codecs: dict | None = None, tensor_settings: dict | None = None,
             min_elements: int = MIN_ELEMENTS, model: dict | None = None,
             encoded: dict | None = None, share: bool = True,
             progress: bool = False) -> bytes:
    """A state dict as container bytes (module docstring).

    Parameters
    ----------
    state_dict : mapping of str to torch.Tensor
        Every entry is stored, in order, with its name, shape and dtype.
    codec : str
        The lossy codec of weight matrices and conv kernels (``jpeg``, ``deep``, or any
        registered one); ``raw`` stores everything losslessly.
    settings : dict
        That codec's settings (e.g. ``{"quality": 75}`` for ``jpeg``).
    codecs, tensor_settings : dict, optional
        Per tensor name: a codec, and settings that replace ``settings``.
    min_elements : int
        Smallest tensor the lossy codec takes.
    model : dict, optional
        A JSON-able description of the network, kept in the manifest.
    encoded : dict, optional
        ``{name: (codec, member bytes)}``: members already encoded (for example the JPEG
        files whose decoded weights a JPEG-aware fine-tuning settled on), stored as they
        are instead of encoding the tensor again. Each is decoded once here to check that
        it holds a tensor of the right shape.
    share : bool
        Store identical JPEG header segments (APP0, DQT, DHT) of several members once.
    """
    from tqdm import tqdm

    if not hasattr(state_dict, "items"):
        raise CimcodecError(f"A state dict must be a mapping of names to tensors, not "
                            f"{type(state_dict).__name__}.")
    _codec(codec)
    for name in list(codecs or {}) + list(encoded or {}):
        if name not in state_dict:
            raise CimcodecError(f"The state dict has no tensor named {name!r}.")
        _codec(codecs[name] if name in (codecs or {}) else encoded[name][0])
    rows, members = [], []
    items = list(state_dict.items())
    for name, tensor in tqdm(items, desc="compress", unit="tensor", disable=not progress):
        if not isinstance(name, str):
            raise CimcodecError(f"State-dict keys must be strings, not {name!r}.")
        dtype = _dtype_name(tensor)
        chosen = _codec(_choose(name, tensor, dtype, codec, codecs, min_elements))
        if encoded and name in encoded:
            chosen = _codec(encoded[name][0])
            data, decode_options = bytes(encoded[name][1]), {}
            got = chosen.decode(data, tuple(tensor.shape), dtype, decode_options)
            if tuple(got.shape) != tuple(tensor.shape):
                raise CimcodecError(f"The encoded member of {name} holds shape "
                                    f"{tuple(got.shape)}, not {tuple(tensor.shape)}.")
        else:
            if chosen.name != "raw" and dtype == "bfloat16":   # exact widening for numpy
                array = tensor.detach().cpu().float().numpy()
            else:
                array = _to_numpy(tensor)
            options = dict(settings or {})
            options.update((tensor_settings or {}).get(name, {}))
            data, decode_options = chosen.encode(array, options if chosen.name != "raw"
                                                 else {})
        rows.append([name, list(tensor.shape), dtype, chosen.name, len(data), decode_options])
        members.append(data)
    shared = _share(rows, members) if share else []
    manifest = {"tensors": rows}
    if shared:
        manifest["shared"] = [len(blob) for blob in shared]
    if model:
        manifest["model"] = model
    packed = zlib.compress(json.dumps(manifest, separators=(",", ":")).encode(), 9)
    body = [struct.pack("<I", len(packed)), packed, *shared, *members]
    crc = 0
    for part in body:
        crc = zlib.crc32(part, crc)
    return b"".join([MAGIC, bytes([VERSION]), struct.pack("<I", crc), *body])


def _jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """``(start, end, marker)`` of every marker segment of a JPEG file before its SOS
    (SOI has none); nothing for bytes that do not parse as one."""
    out, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xDA:
            break
        end = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if end > len(data):
            break
        out.append((pos, end, marker))
        pos = end
    return out


def _share(rows: list, members: list) -> list[bytes]:
    """Store once the JPEG members' APP0, DQT and DHT segments that two or more members
    hold byte for byte: they leave the members, and each member's options get
    ``splice = [[position, shared index], ...]``, where they go back."""
    seen, found = {}, []
    for row, data in zip(rows, members):
        segments = [data[a:b] for a, b, m in _jpeg_segments(data)
                    if m in SHARED_MARKERS] if row[3] == "jpeg" else []
        found.append(segments)
        for segment in set(segments):
            seen[segment] = seen.get(segment, 0) + 1
    shared = [segment for segment, count in seen.items() if count >= 2]
    index = {segment: k for k, segment in enumerate(shared)}
    for i, row in enumerate(rows):
        data, kept, splice, cur = members[i], [], [], 0
        for a, b, marker in _jpeg_segments(data) if row[3] == "jpeg" else ():
            if marker in SHARED_MARKERS and data[a:b] in index:
                kept.append(data[cur:a])
                splice.append([a, index[data[a:b]]])
                cur = b
        if splice:
            kept.append(data[cur:])
            members[i] = b"".join(kept)
            row[4] = len(members[i])
            row[5] = {**row[5], "splice": splice}
    return shared


def _rebuild(stored: bytes, splice, shared: list) -> bytes:
    """A member with its shared segments put back (:func:`_share`)."""
    out, cur = bytearray(), 0
    try:
        for position, k in splice:
            take = position - len(out)
            if take < 0 or cur + take > len(stored):
                raise ValueError
            out += stored[cur:cur + take]
            cur += take
            out += shared[k]
    except (ValueError, TypeError, IndexError):
        raise CimcodecError("A member's shared-segment list is corrupt.") from None
    return bytes(out + stored[cur:])


def _parse(data) -> tuple[Inspection, bytes]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CimcodecError(f"Container data must be bytes, not {type(data).__name__}.")
    data = bytes(data)
    if len(data) < _HEAD.size or data[:4] != MAGIC:
        raise CimcodecError("The file is not a cimcodec model container (no CIMZ magic).")
    magic, version, crc, m = _HEAD.unpack_from(data)
    if version != VERSION:
        raise CimcodecError(f"The model container has format version {version}; this "
                            f"cimcodec reads version {VERSION}.")
    if zlib.crc32(memoryview(data)[9:]) != crc:
        raise CimcodecError("The model container is truncated or corrupt (CRC-32 mismatch).")
    try:
        manifest = json.loads(zlib.decompress(data[_HEAD.size:_HEAD.size + m]))
        rows = manifest["tensors"]
        offset, shared = _HEAD.size + m, []
        for size in manifest.get("shared", []):
            if not isinstance(size, int) or size < 0:
                raise ValueError
            shared.append(data[offset:offset + size])
            offset += size
        entries = []
        for name, shape, dtype, codec, size, options in rows:
            if (not isinstance(name, str) or dtype not in DTYPES or not isinstance(size, int)
                    or size < 0 or not isinstance(options, dict)
                    or any(not isinstance(s, int) or s < 0 for s in shape)):
                raise ValueError
            entries.append(Entry(name, tuple(shape), dtype, codec, size, options, offset))
            offset += size
        model = manifest.get("model") or {}
    except (zlib.error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise CimcodecError("The model container's manifest is corrupt.") from None
    if offset != len(data):
        raise CimcodecError(f"The model container's members take {offset} bytes, the "
                            f"file has {len(data)}.")
    return Inspection(tuple(entries), model, len(data), m, tuple(shared)), data


def inspect(data) -> Inspection:
    """The entries and sizes of container bytes (checked: magic, version, CRC,
    manifest, member sizes); nothing is decoded."""
    return _parse(data)[0]


def decompress(data, *, names=None) -> dict:
    """The state dict in container bytes: ``{name: torch.Tensor}`` in the stored order,
    each with its stored shape and dtype (``names``: only those tensors)."""
    info, data = _parse(data)
    known = {e.name for e in info.entries}
    for name in names or ():
        if name not in known:
            raise CimcodecError(f"The container has no tensor named {name!r}; it has "
                                f"{', '.join(e.name for e in info.entries)}.")
    out = {}
    for e in info.entries:
        if names is not None and e.name not in names:
            continue
        options = {k: v for k, v in e.options.items() if k != "splice"}
        array = _codec(e.codec).decode(info.member(data, e), e.shape, e.dtype, options)
        out[e.name] = _restore(array, e)
    return out


def _restore(array: np.ndarray, e: Entry):
    """A decoded member as the tensor the manifest describes: a ``raw`` member holds the
    stored dtype itself; a lossy codec's float32 values are cast to it."""
    import torch

    if tuple(array.shape) != e.shape:
        raise CimcodecError(f"{e.name} decodes to shape {tuple(array.shape)}, the manifest "
                            f"says {e.shape}.")
    if e.codec == "raw":
        return _to_torch(array, e.dtype)
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(
        getattr(torch, e.dtype))


def extract(data, name: str) -> bytes:
    """The member of tensor ``name``: for the ``jpeg`` codec a standalone baseline JPEG
    file."""
    info, data = _parse(data)
    for e in info.entries:
        if e.name == name:
            return info.member(data, e)
    raise CimcodecError(f"The container has no tensor named {name!r}; it has "
                        f"{', '.join(e.name for e in info.entries)}.")


# ------------------------------------------------------------------ files


def _read(source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    path = Path(source)
    if not path.is_file():
        raise CimcodecError(f"{source} does not exist or is not a file.")
    return path.read_bytes()


def write_file(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory, so a
    failure leaves no half-written file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with io.FileIO(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save(state_dict, file=None, **options) -> bytes:
    """:func:`compress` ``state_dict``; write the bytes to ``file`` (a path) when given,
    atomically. Returns the bytes."""
    data = compress(state_dict, **options)
    if file is not None:
        write_file(file, data)
    return data


def load(source) -> dict:
    """The state dict of a container file (a path) or of container bytes."""
    return decompress(_read(source))
