"""GET /v1/metrics when every computation slot is taken, on the real app and data."""

from __future__ import annotations

import threading

import pytest

from renewal.simulator import simulate
from service.db import scores as scores_db
from service.db.engine import transaction
from service.metric_results import MetricResults


@pytest.fixture
def simulated_run(stack, tmp_path):
    """The latest scoring run reads a small simulated data directory (the stack's seeded run
    names none that exists), put back afterwards."""
    simulate(tmp_path / "data", accounts=40, seed=3, months=6)
    with transaction(stack.factory) as session:
        run = scores_db.latest_run(session)
        before, run.data_dir = run.data_dir, str(tmp_path / "data")
    yield
    with transaction(stack.factory) as session:
        scores_db.latest_run(session).data_dir = before


def test_a_metrics_request_without_a_free_slot_is_told_to_retry(stack, simulated_run):
    """Over HTTP: while another computation holds the only slot, a new as_of is answered 503
    ``metrics-busy`` with Retry-After at once (not queued without bound); afterwards it is
    computed, and asked again it is answered from the kept result."""
    ctx = stack.app.state.context
    kept = ctx.metric_results
    ctx.metric_results = MetricResults(concurrency=1, wait_seconds=0.2)
    started, release = threading.Event(), threading.Event()

    def holding() -> str:
        started.set()
        release.wait(10)
        return "held"

    holder = threading.Thread(target=ctx.metric_results.get_or_compute,
                              args=("someone-else", holding))
    holder.start()
    try:
        assert started.wait(5)
        with stack.client(stack.keys.crm) as client:
            busy = client.get("/v1/metrics/renewal")
        assert busy.status_code == 503, busy.text
        assert busy.json()["type"].endswith("metrics-busy")
        assert busy.headers["retry-after"].isdigit()
    finally:
        release.set()
        holder.join(10)
    try:
        with stack.client(stack.keys.crm) as client:
            answer = client.get("/v1/metrics/renewal")
            assert answer.status_code == 200, answer.text
            assert len(ctx.metric_results) == 2
            assert client.get("/v1/metrics/renewal").json() == answer.json()
    finally:
        ctx.metric_results = kept
