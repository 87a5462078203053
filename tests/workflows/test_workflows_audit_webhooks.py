"""Webhook delivery as a receiver and an operator live it: a DNS outage is retried, two
workers never send one delivery at once, a re-queue never steals an in-flight send, and a
rollback to an earlier model is announced."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx
import pytest
from sqlalchemy import select
from workflow_factories import Receiver

from service.db.engine import make_engine, make_session_factory, transaction
from service.db.migrate import upgrade
from service.db.workflow_models import WebhookDelivery, WebhookEvent
from service.workflows.config import WorkflowSettings
from service.workflows.webhooks import store
from service.workflows.webhooks.delivery import DeliveryWorker
from service.workflows.webhooks.events import emit_model_promoted

PG = "host=127.0.0.1 port=5432 user=postgres dbname=test"


@contextmanager
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    import psycopg

    try:
        admin = psycopg.connect(PG, autocommit=True, connect_timeout=2)
    except psycopg.Error:
        pytest.skip("no PostgreSQL server answers at 127.0.0.1:5432 (database test)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield ("postgresql+psycopg://postgres@127.0.0.1:5432/test"
               f"?options=-csearch_path%3D{schema}")
    finally:
        with psycopg.connect(PG, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sessions(request, tmp_path):
    """A store of its own (migrated as the app migrates it) with no in-app worker on it; the
    lease compares stored timestamps, so both backends."""
    with ExitStack() as stack:
        url = (f"sqlite:///{tmp_path / 'hooks.db'}" if request.param == "sqlite"
               else stack.enter_context(pg_schema_url()))
        engine = make_engine(url)
        upgrade(engine)
        yield make_session_factory(engine)
        engine.dispose()


def subscribe_and_emit(sessions, url: str, versions: list[str]) -> str:
    with transaction(sessions) as session:
        hook = store.create_subscription(session, url, ["model_promoted"], "test").id
        previous = None
        for version in versions:
            emit_model_promoted(session, "renewal", version, previous)
            previous = version
    return hook


def deliveries(sessions) -> list[WebhookDelivery]:
    with sessions() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_a_receiver_whose_dns_is_down_is_retried_not_failed_at_once(sessions):
    """A host that does not resolve at send time (the receiver's DNS outage) used to end the
    delivery 'failed' on its first attempt, without any retry."""
    settings = WorkflowSettings(webhook_allow_private_urls=False, webhook_backoff_seconds=0.05,
                                webhook_backoff_max_seconds=0.2, webhook_max_attempts=3)
    subscribe_and_emit(sessions, "https://renewal-hooks.invalid/hook", ["1"])
    worker = DeliveryWorker(sessions, settings)
    try:
        assert worker.run_once() == 1
        [delivery] = deliveries(sessions)
        assert delivery.status == "pending" and delivery.attempts == 1
        assert "does not resolve" in (delivery.last_error or "")
        for _ in range(2):
            time.sleep(0.25)
            worker.run_once()
        [delivery] = deliveries(sessions)
        assert (delivery.status, delivery.attempts) == ("failed", 3)  # then gives up
    finally:
        worker.close()


def test_two_workers_never_send_one_delivery_twice_when_a_pass_outlives_its_lease(sessions):
    """A slow receiver makes one pass longer than the lease: the second worker claims what
    the first has not sent yet, and the first must then leave those alone."""
    # A pass of 8 x 0.3 s outlives the 1 s lease; each send stays well inside its timeout
    # (0.9 s, under the lease as in production), even on a busy machine.
    settings = WorkflowSettings(webhook_allow_private_urls=True, webhook_lease_seconds=1.0,
                                webhook_timeout_seconds=0.9, webhook_batch=50)
    receiver = Receiver(delay=0.3).start()
    subscribe_and_emit(sessions, receiver.url, [str(v) for v in range(1, 9)])
    first, second = DeliveryWorker(sessions, settings), DeliveryWorker(sessions, settings)
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            second.run_once()
            time.sleep(0.03)

    thread = threading.Thread(target=poll, daemon=True)
    try:
        first_pass = threading.Thread(target=first.run_once)
        first_pass.start()
        time.sleep(0.05)  # the first worker has claimed the whole batch
        thread.start()
        first_pass.join(10)
        deadline = time.monotonic() + 10
        while any(d.status == "pending" for d in deliveries(sessions)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        stop.set()
        thread.join(5)
        counts = Counter(receiver.keys())
        assert len(counts) == 8
        assert max(counts.values()) == 1, counts
        assert all(d.status == "delivered" and d.attempts == 1 for d in deliveries(sessions))
    finally:
        stop.set()
        first.close()
        second.close()
        receiver.stop()


def test_retry_of_a_delivery_being_sent_does_not_send_it_a_second_time(stack):
    """POST .../retry on a delivery a worker is sending right now cleared its lease, so any
    other worker sent it again while the first send was still in flight."""
    receiver = Receiver(hold=True).start()
    try:
        with stack.client(stack.keys.admin) as client:
            hook = client.post("/v1/webhooks", json={"url": receiver.url,
                                                     "events": ["model_promoted"]}).json()["id"]
        with transaction(stack.factory) as session:
            emit_model_promoted(session, "renewal", "audit-retry", None)
        assert receiver.first_arrived.wait(10)  # the app's worker is sending it now
        with stack.client(stack.keys.admin) as client:
            [delivery] = client.get(f"/v1/webhooks/{hook}/deliveries").json()["data"]
            retry = client.post(f"/v1/webhooks/{hook}/deliveries/{delivery['id']}/retry")
            assert retry.status_code == 202
        other = DeliveryWorker(stack.factory, stack.settings)  # a second app worker
        try:
            other.run_once()
        finally:
            other.close()
        assert len(receiver.keys()) == 1
        receiver.release.set()
        deadline = time.monotonic() + 10
        with stack.client(stack.keys.admin) as client:
            while True:
                [row] = client.get(f"/v1/webhooks/{hook}/deliveries").json()["data"]
                if row["status"] == "delivered":
                    break
                assert time.monotonic() < deadline
                time.sleep(0.05)
            client.delete(f"/v1/webhooks/{hook}")
    finally:
        receiver.stop()


def test_a_rollback_to_an_earlier_model_is_announced(sessions):
    """v6 → v7 → back to v6: the rollback is a swap subscribers must hear about; keyed on
    the version alone, the second promotion of v6 was dropped as a duplicate."""
    with transaction(sessions) as session:
        assert emit_model_promoted(session, "renewal", "6", "5")
        assert emit_model_promoted(session, "renewal", "7", "6")
        rollback = emit_model_promoted(session, "renewal", "6", "7")
        assert len(rollback) == 1 and rollback[0].payload["previous_version"] == "7"
        # Every worker of a server makes the same swap: still one event.
        assert emit_model_promoted(session, "renewal", "6", "7") == []
        # v7 again, then v6 again: swaps made before, announced again (they were dropped as
        # duplicates of the first v6 → v7 and v7 → v6), each once however many workers.
        again = emit_model_promoted(session, "renewal", "7", "6")
        assert emit_model_promoted(session, "renewal", "7", "6") == []
        assert emit_model_promoted(session, "renewal", "7", None) == []  # a late worker
        back = emit_model_promoted(session, "renewal", "6", "7")
        assert [e.payload["version"] for e in again + back] == ["7", "6"]
    with sessions() as session:
        keys = [e.dedupe_key for e in session.scalars(
            select(WebhookEvent).order_by(WebhookEvent.id))]
    assert keys == ["model_promoted:renewal:5>6", "model_promoted:renewal:6>7",
                    "model_promoted:renewal:7>6", "model_promoted:renewal:6>7#1",
                    "model_promoted:renewal:7>6#1"]


def test_a_lease_no_longer_than_the_timeout_is_refused():
    """A send lasting the whole timeout would outlive such a lease: another worker could
    claim the delivery mid-send and send it again."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="webhook_lease_seconds .* must be >"):
        WorkflowSettings(webhook_lease_seconds=5.0, webhook_timeout_seconds=5.0)
    assert WorkflowSettings().webhook_lease_seconds > WorkflowSettings().webhook_timeout_seconds


def rebinding_resolver(monkeypatch, name: str, first: str, then: str) -> list[str]:
    """``name`` resolves to ``first`` on its first look-up and to ``then`` afterwards, as a
    rebinding attacker's DNS server answers (no such server runs here, so the resolver is
    replaced); every other name resolves as usual. Returns the answers given, in order."""
    real = socket.getaddrinfo
    answers: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host != name:
            return real(host, port, *args, **kwargs)
        answers.append(first if not answers else then)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[-1], int(port or 0)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def test_a_name_that_rebinds_to_loopback_after_the_check_is_not_called(sessions, monkeypatch):
    """The check before a send resolved the name to a public address, then the HTTP client
    resolved it again, to 127.0.0.1 here, and posted the event to the loopback receiver.
    The connection now uses the addresses it checks itself."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)  # a direct connection is what is checked
    receiver = Receiver().start()
    port = receiver.httpd.server_address[1]
    answers = rebinding_resolver(monkeypatch, "hooks.rebind.test", "93.184.215.14", "127.0.0.1")
    settings = WorkflowSettings(webhook_allow_private_urls=False, webhook_max_attempts=1)
    subscribe_and_emit(sessions, f"http://hooks.rebind.test:{port}/hook", ["1"])
    worker = DeliveryWorker(sessions, settings)
    try:
        assert worker.run_once() == 1
        [delivery] = deliveries(sessions)
        assert answers == ["93.184.215.14", "127.0.0.1"]  # checked, then connected
        assert receiver.requests == []
        assert delivery.status == "failed" and delivery.attempts == 1
        assert "refused" in delivery.last_error and "loopback" in delivery.last_error
    finally:
        worker.close()
        receiver.stop()


def test_the_checked_connection_keeps_the_host_name(monkeypatch):
    """Connecting to the address it checked, the transport still sends the URL's host name
    (virtual hosts, TLS certificates); the receiver stands in for a public server."""
    from service.workflows.webhooks import transport

    receiver = Receiver().start()
    port = receiver.httpd.server_address[1]
    checked: list[tuple[str, int]] = []

    def public_addresses(host: str, port: int) -> list[str]:
        checked.append((host, port))
        return ["127.0.0.1"]

    monkeypatch.setattr(transport, "public_addresses", public_addresses)
    try:
        with httpx.Client(transport=transport.public_only_transport(), timeout=5) as client:
            answer = client.post(f"http://hooks.example.test:{port}/hook", content=b"{}")
        assert answer.status_code == 200
        assert checked == [("hooks.example.test", port)]
        assert receiver.requests[0]["headers"]["host"] == f"hooks.example.test:{port}"
    finally:
        receiver.stop()


def test_a_proxy_set_in_the_environment_still_carries_the_deliveries(sessions, monkeypatch):
    """Review finding: passing the checked transport made httpx ignore HTTP(S)_PROXY, so a
    deployment whose only way out is an egress proxy lost every delivery. The proxy (here
    the loopback receiver) gets the request for the subscriber's URL."""
    proxy = Receiver().start()
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.httpd.server_address[1]}")
    rebinding_resolver(monkeypatch, "hooks.proxied.test", "93.184.215.14", "93.184.215.14")
    settings = WorkflowSettings(webhook_allow_private_urls=False, webhook_max_attempts=1,
                                webhook_timeout_seconds=2.0, webhook_lease_seconds=10.0)
    subscribe_and_emit(sessions, "http://hooks.proxied.test/hook", ["1"])
    worker = DeliveryWorker(sessions, settings)
    try:
        assert worker.run_once() == 1
        [delivery] = deliveries(sessions)
        assert delivery.status == "delivered", delivery.last_error
        assert [r["headers"]["host"] for r in proxy.requests] == ["hooks.proxied.test"]
    finally:
        worker.close()
        proxy.stop()


def test_connecting_to_several_addresses_takes_one_timeout_in_all(monkeypatch):
    """A name with several addresses that do not answer: each attempt had the whole connect
    timeout, so a send could outlast the delivery's lease (longer than one timeout only)
    and another worker send it again. The attempts now share one timeout."""
    import httpcore

    from service.workflows.webhooks import transport

    given: list[float | None] = []

    def hanging(self, host, port, timeout=None, local_address=None, socket_options=None):
        given.append(timeout)
        time.sleep(timeout)
        raise httpcore.ConnectTimeout("no answer")

    monkeypatch.setattr(transport, "public_addresses",
                        lambda host, port: ["192.0.2.1", "192.0.2.2", "192.0.2.3"])
    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", hanging)
    with pytest.raises(httpcore.ConnectTimeout):
        transport.PublicOnlyBackend().connect_tcp("hooks.example.test", 443, timeout=0.3)
    # The first address used up the timeout: the others got none left, not 0.3 s each.
    assert len(given) == 1 and 0 < given[0] <= 0.3
