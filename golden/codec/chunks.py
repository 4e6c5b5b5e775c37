"""Pieces of large arrays: the codec walks a weight tensor a bounded number of elements
at a time, so its temporaries (int64 indices, float64 sums, bit planes) stay a small
fixed size however large the tensor is. Every step that runs piece by piece gives
exactly the result of running it on the whole array at once.
"""

from __future__ import annotations

#: Elements per piece (a float32 piece is 1 MiB, a float64 one 2 MiB).
ELEMENTS = 1 << 18


def spans(n: int, size: int | None = None) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive pieces of ``size`` (default :data:`ELEMENTS`)
    covering ``0..n-1``."""
    size = max(1, int(ELEMENTS if size is None else size))
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def row_spans(rows: int, cols: int) -> list[tuple[int, int]]:
    """Row ranges of a ``rows x cols`` matrix of about :data:`ELEMENTS` elements each (at
    least one row)."""
    return spans(rows, ELEMENTS // max(1, cols))
