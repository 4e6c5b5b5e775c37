"""CRC-32 of a container's entropy-coded data, as the RTL decompressor checks it: the
reference of :class:`hw.crc.ScanCrc`.

The checksum is zlib's CRC-32 (polynomial ``0x04C11DB7`` reflected, ``0xEDB88320``;
initial value and final XOR ``0xFFFFFFFF``) over exactly the bytes
:func:`golden.codec.container.write` covers: every byte after the SOS segment up to the
marker that ends the scan, stuffing, fill bytes before a stuffed zero or an ``RSTn``,
and the ``RSTn`` markers included; the fill bytes before the ending marker excluded.

The stored value is the last four bytes (little-endian) of the ``APP`` events of the
last ``CIMCODEC`` segment (:func:`golden.blocks.markers.parse`, ``index >= 2``: after the
chunk index and count), which for a one-chunk container is the metadata's ``crc``
field. The check applies to every file with at least one ``APP`` event.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from cimcodec.golden.blocks import markers

#: zlib's CRC-32, reflected polynomial.
POLYNOMIAL = 0xEDB88320
#: Initial value and final XOR.
XOR = 0xFFFFFFFF

_SCAN_END = re.compile(rb"\xff+[^\x00\xd0-\xd7\xff]")


def update(crc: int, byte: int) -> int:
    """One byte into the raw (not yet XORed) register: what the hardware does per clock."""
    crc ^= byte
    for _ in range(8):
        crc = (crc >> 1) ^ (POLYNOMIAL if crc & 1 else 0)
    return crc


@dataclass(frozen=True)
class ScanCheck:
    """The CRC check of one file.

    Attributes
    ----------
    stored : int or None
        The stored CRC, ``None`` without ``APP`` events (no check).
    computed : int or None
        CRC-32 of the entropy-coded data, ``None`` when the scan does not end.
    end : int
        Index of the byte that ends the scan (the ending marker's code byte), -1 if none.
    """

    stored: int | None
    computed: int | None
    end: int

    @property
    def mismatch(self) -> bool:
        return self.stored is not None and self.computed is not None \
            and self.stored != self.computed


def stored_crc(events) -> int | None:
    """The stored CRC from the parser's events (module docstring)."""
    value = None
    for event in events:
        if event[0] == markers.Kind.APP:
            index, byte = event[1], event[2]
            if index == 0 or value is None:
                value = 0
            if index >= 2:
                value = (value >> 8) | (byte << 24)
    return value


def scan_check(data: bytes, events) -> ScanCheck:
    """:class:`ScanCheck` of ``data`` given its :func:`golden.blocks.markers.parse` events."""
    from cimcodec.golden.codec.container import walk
    from cimcodec.golden.errors import CimcodecError

    stored = stored_crc(events)
    try:
        start = walk(data).scan_start
    except CimcodecError:
        return ScanCheck(stored, None, -1)
    found = _SCAN_END.search(data, start)
    if found is None:
        return ScanCheck(stored, None, -1)
    return ScanCheck(stored, zlib.crc32(data[start:found.start()]), found.end() - 1)
