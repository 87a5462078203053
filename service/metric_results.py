"""Cohort-metric results kept between requests, and the gate in front of computing them.

A cohort metric reads the whole data directory (seconds of both cores and up to ~1 GB on
50 M usage rows), and every distinct ``as_of``, grouping and CSM scope is a new computation.
Unguarded, a dashboard that asks for twelve month-ends at once ran twelve of them side by side
in the server's thread pool: each slower than alone, together enough to exhaust memory. So:

- at most ``concurrency`` computations run at once; a request that cannot start one within
  ``wait_seconds`` is answered 503 with ``Retry-After`` instead of queueing without bound;
- the same key asked for while it is being computed waits for that computation (one
  computation, many answers);
- results are kept per key, the least recently used dropped past ``capacity`` (clearing
  everything at once made a 65th date recompute the 64 others).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any


class MetricsBusy(Exception):
    """No computation slot freed up within the wait."""


@dataclass
class _Flight:
    started: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class MetricResults:
    """Results by key (thread-safe), computed at most once at a time per key."""

    def __init__(self, capacity: int = 64, concurrency: int = 1,
                 wait_seconds: float = 30.0) -> None:
        self.capacity = capacity
        self.wait_seconds = wait_seconds
        self._results: OrderedDict[Hashable, Any] = OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrency)

    def __len__(self) -> int:
        return len(self._results)

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            if key not in self._results:
                return None
            self._results.move_to_end(key)
            return self._results[key]

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._results[key] = value
            self._results.move_to_end(key)
            while len(self._results) > self.capacity:
                self._results.popitem(last=False)

    def clear(self) -> None:
        """Forget every result (a new scoring run); computations under way still finish."""
        with self._lock:
            self._results.clear()

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The kept result, else the one being computed for ``key``, else ``compute()`` once a
        slot is free. Raises :class:`MetricsBusy` when no slot frees up within
        ``wait_seconds`` (for whoever computes ``key``: its waiters get the same), and whatever
        ``compute`` raised."""
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key]
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            return self._follow(flight)
        try:
            if not self._slots.acquire(timeout=self.wait_seconds):
                raise MetricsBusy
            flight.started.set()
            try:
                flight.result = compute()
            finally:
                self._slots.release()
            self.put(key, flight.result)
            return flight.result
        except BaseException as error:
            flight.error = error
            raise
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()

    def _follow(self, flight: _Flight) -> Any:
        """Wait as the leader does for a slot (it gives up after ``wait_seconds``: then
        ``done`` is set with :class:`MetricsBusy`), then for as long as its computation
        takes: the result is moments away, and answering 503 meanwhile would make the
        caller compute it again."""
        flight.started.wait(self.wait_seconds)
        flight.done.wait()
        if flight.error is not None:
            raise flight.error
        return flight.result
