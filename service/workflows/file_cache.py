"""A data directory's small table read once per file version, with what is derived from it.

The workflows read the contracts and the surveys on many requests; the file changes when a
new export lands. A version is the file's path, modification time and size (a quick rewrite
within one mtime tick changes the size). One version is kept per cache: the last one read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")
D = TypeVar("D")


class Kept(Generic[T]):
    """One version's value, and values derived from it (computed once per key).

    Once means once: requests asking for the same key while it is computed wait for that
    computation (one lock per key), instead of each repeating seconds of work while holding
    the interpreter; different keys compute side by side."""

    def __init__(self, value: T) -> None:
        self.value = value
        self._derived: dict[Hashable, Any] = {}
        self._lock = threading.Lock()
        self._computing: dict[Hashable, threading.Lock] = {}

    def derived(self, key: Hashable, derive: Callable[[T], D]) -> D:
        with self._lock:
            if key in self._derived:
                return self._derived[key]  # type: ignore[no-any-return]
            computing = self._computing.setdefault(key, threading.Lock())
        with computing:
            with self._lock:
                if key in self._derived:  # computed while this request waited
                    return self._derived[key]  # type: ignore[no-any-return]
            result = derive(self.value)
            with self._lock:
                self._derived[key] = result
                self._computing.pop(key, None)
        return result


class FileVersionCache(Generic[T]):
    """``read()`` of a file, kept until the file changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: tuple[str, int, int] | None = None
        self._kept: Kept[T] | None = None

    def get(self, path: Path, read: Callable[[], T]) -> Kept[T]:
        stat = path.stat()
        version = (str(path), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if version == self._version and self._kept is not None:
                return self._kept
        kept = Kept(read())
        with self._lock:
            self._version, self._kept = version, kept
        return kept
