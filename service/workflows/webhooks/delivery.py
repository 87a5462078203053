"""Delivery of stored webhook events: at least once, signed, with exponential backoff.

A worker pass claims due deliveries with a short lease (a conditional UPDATE, so several
app processes never send the same delivery at the same time), POSTs each one and records
the attempt. A 2xx answer delivers it; anything else (an error status, a timeout, a refused
connection) schedules the next attempt ``backoff × 2^(attempt-1)`` later (capped) until
``max_attempts``, then the delivery is 'failed' and stays in the log, ready to re-queue.
Nothing is lost while a receiver is down: the event rows were committed before any send.
Receivers deduplicate with the ``Idempotency-Key`` header (the event id, same on retries).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio.to_thread
import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import utc_now
from service.db.workflow_models import WebhookDelivery, WebhookEvent, WebhookSubscription
from service.workflows.config import WorkflowSettings
from service.workflows.webhooks.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    signature_header,
)
from service.workflows.webhooks.store import secrets_in_overlap
from service.workflows.webhooks.transport import public_only_transport
from service.workflows.webhooks.urls import (
    UnresolvableHostError,
    UnsafeUrlError,
    validate_subscriber_url,
)

log = logging.getLogger("service.webhooks")


def _environment_proxies() -> bool:
    """Whether ``HTTP(S)_PROXY``/``ALL_PROXY`` are set (what httpx would route through)."""
    import urllib.request

    return any(k in ("http", "https", "all") for k in urllib.request.getproxies())
USER_AGENT = "renewal-webhooks/1"
MAX_LOGGED_ATTEMPTS = 50


def backoff_seconds(attempts: int, settings: WorkflowSettings) -> float:
    """Wait after the ``attempts``-th failed attempt: base × 2^(attempts-1), capped."""
    return min(
        settings.webhook_backoff_seconds * 2 ** max(attempts - 1, 0),
        settings.webhook_backoff_max_seconds,
    )


def envelope(event: WebhookEvent) -> bytes:
    """The exact bytes POSTed (and signed) for an event."""
    body = {
        "id": event.event_id,
        "type": event.type,
        "created_at": event.created_at.isoformat(),
        "data": event.payload,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    milliseconds: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class DeliveryWorker:
    """Sends due deliveries; ``run_once`` is blocking, ``run_forever`` is the app's task."""

    def __init__(
        self, sessions: sessionmaker[Session], settings: WorkflowSettings,
        client: httpx.Client | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self._client = client
        self.passes = 0

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                timeout=self.settings.webhook_timeout_seconds,
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT},
                transport=self._transport(),
            )
        return self._client

    def _transport(self) -> httpx.HTTPTransport | None:
        """The checked transport (:mod:`.transport`), unless private addresses are allowed
        or the environment sets a proxy: httpx honours ``HTTPS_PROXY`` only without a
        transport of ours, and behind a proxy the proxy resolves and connects (the check
        before each send still applies)."""
        if self.settings.webhook_allow_private_urls or _environment_proxies():
            return None
        return public_only_transport()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- one pass --
    def claim(self, now: datetime) -> list[int]:
        """Ids of due deliveries this worker now holds a lease on."""
        lease_until = now + timedelta(seconds=self.settings.webhook_lease_seconds)
        free = or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now)
        with self.sessions() as session, session.begin():
            candidates = list(
                session.scalars(
                    select(WebhookDelivery.id)
                    .where(
                        WebhookDelivery.status == "pending",
                        WebhookDelivery.next_attempt_at <= now,
                        free,
                    )
                    .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                    .limit(self.settings.webhook_batch)
                )
            )
            claimed = []
            for delivery_id in candidates:
                result = session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
                           free)
                    .values(locked_until=lease_until)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(delivery_id)
        return claimed

    def renew(self, delivery_id: int, lease_until: datetime) -> bool:
        """Take a fresh lease on one claimed delivery just before sending it; False when the
        claim was lost meanwhile (the pass outlived its lease and another worker claimed the
        delivery, or an admin re-queued it). A batch of slow receivers can take longer than
        one lease (50 × a 5 s timeout > 60 s): sending on an expired claim sent the same
        delivery from two workers at once."""
        fresh = utc_now() + timedelta(seconds=self.settings.webhook_lease_seconds)
        with self.sessions() as session, session.begin():
            result = session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
                       WebhookDelivery.locked_until == lease_until)
                .values(locked_until=fresh)
            )
            return result.rowcount == 1  # type: ignore[attr-defined]

    def run_once(self, now: datetime | None = None) -> int:
        """Attempt every due delivery once; returns how many were attempted."""
        now = now or utc_now()
        claimed = self.claim(now)
        lease_until = now + timedelta(seconds=self.settings.webhook_lease_seconds)
        for delivery_id in claimed:
            try:
                if not self.renew(delivery_id, lease_until):
                    continue
                self._attempt(delivery_id)
            except Exception as exc:  # one broken row must not stop the others
                log.warning("webhook delivery %s: %s", delivery_id, type(exc).__name__)
        self.passes += 1
        return len(claimed)

    def _attempt(self, delivery_id: int) -> None:
        with self.sessions() as session:
            delivery = session.get(WebhookDelivery, delivery_id)
            if delivery is None or delivery.status != "pending":
                return
            event = session.get(WebhookEvent, delivery.event_id)
            subscription = session.get(WebhookSubscription, delivery.subscription_id)
            assert event is not None and subscription is not None
            url, secret, active = subscription.url, subscription.secret, subscription.active
            previous = secrets_in_overlap(subscription, utc_now())
            body = envelope(event)
            event_type, event_uid = event.type, event.event_id
        if not active:
            self._record(delivery_id, None, cancelled=True)
            return
        outcome = self._send(url, secret, body, event_type, event_uid, delivery_id, previous)
        self._record(delivery_id, outcome)

    def _send(
        self, url: str, secret: str, body: bytes, event_type: str, event_uid: str,
        delivery_id: int, previous_secrets: Sequence[str] = (),
    ) -> Outcome:
        started = time.perf_counter()
        try:
            validate_subscriber_url(url, self.settings.webhook_allow_private_urls)
        except UnresolvableHostError as exc:  # DNS down or flapping: retry like a timeout
            return Outcome(None, str(exc)[:500], int(1000 * (time.perf_counter() - started)))
        except UnsafeUrlError as exc:
            return Outcome(None, f"refused: {exc}"[:500], 0)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(secret, body, previous=previous_secrets),
            EVENT_HEADER: event_type,
            DELIVERY_HEADER: str(delivery_id),
            IDEMPOTENCY_HEADER: event_uid,
        }
        try:
            response = self._http().post(url, content=body, headers=headers)
            code, error = response.status_code, None
            if not 200 <= code < 300:
                error = f"HTTP {code}"
        except httpx.HTTPError as exc:
            code, error = None, type(exc).__name__
        except UnresolvableHostError as exc:  # between the check and the connection
            code, error = None, str(exc)
        except UnsafeUrlError as exc:  # re-pointed between the check and the connection
            return Outcome(None, f"refused: {exc}"[:500], 0)
        return Outcome(code, error, int(1000 * (time.perf_counter() - started)))

    def _record(self, delivery_id: int, outcome: Outcome | None, cancelled: bool = False) -> None:
        now = utc_now()
        with self.sessions() as session, session.begin():
            delivery = session.get(WebhookDelivery, delivery_id)
            if delivery is None:
                return
            delivery.locked_until = None
            if cancelled or outcome is None:
                delivery.status = "cancelled"
                return
            delivery.attempts += 1
            entry: dict[str, Any] = {
                "attempt": delivery.attempts,
                "at": now.isoformat(),
                "status_code": outcome.status_code,
                "error": outcome.error,
                "duration_ms": outcome.milliseconds,
            }
            delivery.attempt_log = [*(delivery.attempt_log or []), entry][-MAX_LOGGED_ATTEMPTS:]
            delivery.last_status_code = outcome.status_code
            delivery.last_error = outcome.error
            if outcome.ok:
                delivery.status = "delivered"
                delivery.delivered_at = now
            elif (outcome.error or "").startswith("refused:") or (
                delivery.attempts >= self.settings.webhook_max_attempts
            ):
                delivery.status = "failed"
            else:
                wait = backoff_seconds(delivery.attempts, self.settings)
                delivery.next_attempt_at = now + timedelta(seconds=wait)
        log.info(
            "webhook delivery %s attempt: %s",
            delivery_id,
            "ok" if outcome and outcome.ok else (outcome.error if outcome else "cancelled"),
        )

    # -- the app's background task --
    async def run_forever(self) -> None:
        """Poll for due deliveries until cancelled (a failing pass never stops the loop)."""
        try:
            while True:
                try:
                    await anyio.to_thread.run_sync(self.run_once)
                except Exception as exc:
                    log.warning("webhook worker pass failed: %s", type(exc).__name__)
                await asyncio.sleep(self.settings.webhook_poll_seconds)
        finally:
            self.close()
