"""The cohort-metric gate, with real threads: one computation per key however many ask,
a bounded number at once, 503-worthy ``MetricsBusy`` instead of an unbounded queue, and the
least recently used result dropped first."""

from __future__ import annotations

import threading
import time

import pytest

from service.metric_results import MetricResults, MetricsBusy


def run_in_threads(n: int, target) -> tuple[list, list]:
    results, errors = [], []

    def call() -> None:
        try:
            results.append(target())
        except Exception as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(n)]
    for thread in threads:
        thread.start()
    return threads, (results, errors)


def test_the_same_key_asked_at_once_is_computed_once():
    results = MetricResults(concurrency=1, wait_seconds=5)
    started, release, calls = threading.Event(), threading.Event(), []

    def compute() -> str:
        calls.append(1)
        started.set()
        release.wait(5)
        return "rows"

    threads, (answers, errors) = run_in_threads(
        4, lambda: results.get_or_compute(("renewal", "2026-06-30"), compute))
    assert started.wait(5)
    time.sleep(0.1)  # the other three are waiting on the first one's computation
    release.set()
    for thread in threads:
        thread.join(5)
    assert errors == [] and answers == ["rows"] * 4
    assert len(calls) == 1
    assert results.get(("renewal", "2026-06-30")) == "rows"


def test_a_second_computation_waits_for_the_slot_and_gives_up_busy():
    results = MetricResults(concurrency=1, wait_seconds=0.2)
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(5)
        return "slow"

    threads, (answers, errors) = run_in_threads(1, lambda: results.get_or_compute("a", slow))
    assert started.wait(5)
    with pytest.raises(MetricsBusy):
        results.get_or_compute("b", lambda: "fast")
    release.set()
    threads[0].join(5)
    assert answers == ["slow"] and errors == []
    # The slot is free again: the refused key computes now.
    assert results.get_or_compute("b", lambda: "fast") == "fast"


def test_two_slots_run_two_computations_side_by_side():
    results = MetricResults(concurrency=2, wait_seconds=2)
    both = threading.Barrier(2, timeout=2)

    def together(name: str):
        def compute() -> str:
            both.wait()  # raises BrokenBarrierError unless both run at once
            return name
        return compute

    threads = [threading.Thread(target=results.get_or_compute, args=(k, together(k)))
               for k in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert results.get("a") == "a" and results.get("b") == "b"


def test_an_error_reaches_every_waiter_and_is_not_kept():
    results = MetricResults(concurrency=1, wait_seconds=5)
    started, release = threading.Event(), threading.Event()

    def failing() -> str:
        started.set()
        release.wait(5)
        raise ValueError("bad data")

    threads, (answers, errors) = run_in_threads(
        3, lambda: results.get_or_compute("k", failing))
    assert started.wait(5)
    time.sleep(0.1)
    release.set()
    for thread in threads:
        thread.join(5)
    assert answers == [] and [str(e) for e in errors] == ["bad data"] * 3
    assert results.get("k") is None
    assert results.get_or_compute("k", lambda: "fixed") == "fixed"


def test_the_least_recently_used_result_is_dropped_first():
    results = MetricResults(capacity=3)
    for key in ("jan", "feb", "mar"):
        results.put(key, key.upper())
    assert results.get("jan") == "JAN"  # used: now the most recent
    results.put("apr", "APR")
    assert results.get("feb") is None
    assert [results.get(k) for k in ("jan", "mar", "apr")] == ["JAN", "MAR", "APR"]
    assert len(results) == 3
    results.clear()
    assert len(results) == 0



def test_a_waiter_gets_the_result_of_a_computation_longer_than_the_wait():
    """The slot wait bounds how long a request waits to START a computation, not how long
    a computation may take: asking for a question being computed returns its result."""
    results = MetricResults(concurrency=1, wait_seconds=0.2)
    started = threading.Event()

    def long() -> str:
        started.set()
        time.sleep(0.8)  # four times the wait
        return "rows"

    threads, (answers, errors) = run_in_threads(2, lambda: results.get_or_compute("k", long))
    for thread in threads:
        thread.join(5)
    assert errors == [] and answers == ["rows", "rows"]


def test_waiters_on_a_leader_that_found_no_slot_are_busy_too():
    results = MetricResults(concurrency=1, wait_seconds=0.2)
    release = threading.Event()
    holder = threading.Thread(target=results.get_or_compute,
                              args=("other", lambda: release.wait(5)))
    holder.start()
    time.sleep(0.05)
    threads, (answers, errors) = run_in_threads(3, lambda: results.get_or_compute("k", str))
    for thread in threads:
        thread.join(5)
    release.set()
    holder.join(5)
    assert answers == [] and len(errors) == 3
    assert all(isinstance(e, MetricsBusy) for e in errors)
