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

What a data directory says about itself whatever the date (how far its usage reaches, the
data contract's warnings) is kept apart, a few entries at most (one per scoring run is
needed): it is one scan of the data shared by every metric, grouping and date, computed
through the same slots, and it does not count among the results.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

#: Data-directory facts kept (one per scoring run is needed; a few cover a run replaced).
FACTS_KEPT = 4


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
        self._facts: OrderedDict[Hashable, Any] = OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrency)

    def __len__(self) -> int:
        return len(self._results)

    def get(self, key: Hashable) -> Any | None:
        return self._kept(self._results, key)

    def put(self, key: Hashable, value: Any) -> None:
        self._put(self._results, self.capacity, key, value)

    def clear(self) -> None:
        """Forget every result (a new scoring run); computations under way still finish."""
        with self._lock:
            self._results.clear()
            self._facts.clear()

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The kept result, else the one being computed for ``key``, else ``compute()`` once a
        slot is free. Raises :class:`MetricsBusy` when no slot frees up within
        ``wait_seconds`` (for whoever computes ``key``: its waiters get the same), and whatever
        ``compute`` raised."""
        return self._get_or_compute(self._results, self.capacity, key, compute)

    def kept_facts(self, key: Hashable) -> Any | None:
        """The kept data-directory facts of ``key`` (see the module), or None."""
        return self._kept(self._facts, key)

    def facts_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """:meth:`get_or_compute` for data-directory facts (kept apart from the results; use
        keys that no result has)."""
        return self._get_or_compute(self._facts, FACTS_KEPT, key, compute)

    def _kept(self, store: OrderedDict[Hashable, Any], key: Hashable) -> Any | None:
        with self._lock:
            if key not in store:
                return None
            store.move_to_end(key)
            return store[key]

    def _put(self, store: OrderedDict[Hashable, Any], capacity: int, key: Hashable,
             value: Any) -> None:
        with self._lock:
            store[key] = value
            store.move_to_end(key)
            while len(store) > capacity:
                store.popitem(last=False)

    def _get_or_compute(self, store: OrderedDict[Hashable, Any], capacity: int, key: Hashable,
                        compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key in store:
                store.move_to_end(key)
                return store[key]
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
            self._put(store, capacity, key, flight.result)
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
