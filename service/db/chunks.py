"""Long lists in SQL a slice at a time: an ``IN (...)`` look-up or a multi-row insert binds
one parameter per item, and SQLite's older builds refuse more than 999 of them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

#: Ids per ``IN (...)`` look-up (under SQLite's old limit of 999 parameters).
IN_LIST_CHUNK = 900


def chunks(items: Sequence[T], size: int = IN_LIST_CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size``."""
    return (items[i : i + size] for i in range(0, len(items), size))


def chunks_or_all(items: Sequence[T] | None, size: int = IN_LIST_CHUNK) -> Iterator[list[T] | None]:
    """``None`` once when ``items`` is None (a look-up without filter: every row), else the
    slices of :func:`chunks` as lists, for ``IN (...)``."""
    if items is None:
        yield None
        return
    for part in chunks(items, size):
        yield list(part)
