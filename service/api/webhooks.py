"""Webhook subscriptions (admin only) and their delivery log."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response

from service.api.workflow_schemas import (
    DeliveryList,
    WebhookCreated,
    WebhookIn,
    WebhookList,
    WebhookSecretIn,
    WebhookSecretRotated,
)
from service.auth import Admin
from service.context import Ctx
from service.db.engine import transaction
from service.db.workflow_models import WebhookDelivery, WebhookSubscription
from service.problems import ProblemError, not_found, problem_responses
from service.workflows.install import Workflows
from service.workflows.webhooks import store
from service.workflows.webhooks.urls import UnsafeUrlError, validate_subscriber_url

router = APIRouter(prefix="/v1/webhooks", tags=["workflows: webhooks"])
HookPath = Annotated[str, Path(min_length=1, max_length=64, examples=["whk_0123456789abcdef"])]
#: Database ids are signed 64-bit integers: a larger one reached the driver (OverflowError,
#: a 500, found by fuzzing).
MAX_ID = 2**63 - 1
DeliveryPath = Annotated[int, Path(ge=1, le=MAX_ID, description="A delivery's id.", examples=[1])]


def _view(row: WebhookSubscription) -> dict[str, Any]:
    return {"id": row.id, "url": row.url, "events": list(row.events),
            "description": row.description, "active": row.active,
            "created_by": row.created_by, "created_at": row.created_at}


@router.post("", response_model=WebhookCreated, status_code=201,
             responses=problem_responses(401, 403, 413, 422),
             summary="Subscribe a URL to events (the signing secret is shown once)")
def create_webhook(body: WebhookIn, principal: Admin, ctx: Ctx,
                   workflows: Workflows) -> dict[str, Any]:
    """Events: risk_tier_crossed, probability_dropped (RENEWAL_PROBABILITY_DROP_POINTS),
    activation_window_missed, model_promoted, survey_follow_up_needed (the scoring job: a
    recent survey with a bad score or an alarming comment, not yet followed up). URLs on
    loopback, private, link-local or reserved addresses are refused unless
    RENEWAL_WEBHOOK_ALLOW_PRIVATE_URLS is set."""
    try:
        url = validate_subscriber_url(body.url, workflows.settings.webhook_allow_private_urls)
    except UnsafeUrlError as exc:
        raise ProblemError(422, "unsafe-url", f"invalid body.url: {exc}",
                           errors=[{"field": "body.url", "message": str(exc),
                                    "type": "unsafe_url"}]) from None
    with transaction(ctx.sessions) as session:
        row = store.create_subscription(session, url, body.events, principal.key_id,
                                        body.secret, body.description)
        return {**_view(row), "secret": row.secret}


@router.get("", response_model=WebhookList, responses=problem_responses(401, 403, 422),
            summary="Subscriptions (secrets are never listed)")
def list_webhooks(principal: Admin, ctx: Ctx,
                  include_disabled: bool = False) -> dict[str, Any]:
    with ctx.sessions() as session:
        rows = store.list_subscriptions(session, include_disabled)
    return {"data": [_view(r) for r in rows], "count": len(rows)}


@router.post("/{webhook_id}/secret", response_model=WebhookSecretRotated,
             responses=problem_responses(401, 403, 404, 409, 422),
             summary="Rotate the signing secret (the new one is shown once)")
def rotate_webhook_secret(webhook_id: HookPath, body: WebhookSecretIn, principal: Admin,
                          ctx: Ctx) -> dict[str, Any]:
    """The secret replaced keeps signing for ``keep_previous_hours`` (a second ``v1=`` in
    ``Renewal-Signature``): deploy the new secret to the receiver meanwhile. A leaked secret:
    ``keep_previous_hours: 0``. Deliveries already pending are signed when they are sent,
    so with the new secret."""
    with transaction(ctx.sessions) as session:
        # Locked: two rotations at once each kept the same old secret, and one admin was told
        # a secret that was never in effect (found by review).
        row = session.get(WebhookSubscription, webhook_id, with_for_update=True)
        if row is None:
            raise not_found(f"no webhook {webhook_id!r}")
        if not row.active:
            raise ProblemError(409, "webhook-disabled", f"webhook {webhook_id!r} is disabled")
        until = store.rotate_secret(row, timedelta(hours=body.keep_previous_hours), body.secret)
        return {"id": row.id, "secret": row.secret, "previous_secret_valid_until": until}


@router.delete("/{webhook_id}", status_code=204, response_class=Response,
               responses=problem_responses(401, 403, 404, 422),
               summary="Disable a subscription (its pending deliveries are cancelled)")
def delete_webhook(webhook_id: HookPath, principal: Admin, ctx: Ctx) -> Response:
    with transaction(ctx.sessions) as session:
        row = store.get_subscription(session, webhook_id)
        if row is None:
            raise not_found(f"no webhook {webhook_id!r}")
        store.disable_subscription(session, row)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryList,
            responses=problem_responses(401, 403, 404, 422),
            summary="Delivery log: status, attempts and each attempt's result")
def list_deliveries(
    webhook_id: HookPath, principal: Admin, ctx: Ctx,
    status: Literal["pending", "delivered", "failed", "cancelled"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="From next_before_id.")
    ] = None,
) -> dict[str, Any]:
    with ctx.sessions() as session:
        if store.get_subscription(session, webhook_id) is None:
            raise not_found(f"no webhook {webhook_id!r}")
        rows = store.deliveries(session, webhook_id, status, limit + 1, before_id)
    more = len(rows) > limit
    rows = rows[:limit]
    data = [{
        "id": d.id, "event_id": e.event_id, "event_type": e.type, "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at if d.status == "pending" else None,
        "last_status_code": d.last_status_code, "last_error": d.last_error,
        "delivered_at": d.delivered_at, "created_at": d.created_at,
        "attempt_log": list(d.attempt_log or []),
    } for d, e in rows]
    return {"data": data, "count": len(data),
            "next_before_id": rows[-1][0].id if more and rows else None}


@router.post("/{webhook_id}/deliveries/{delivery_id}/retry", status_code=202,
             response_class=Response, responses=problem_responses(401, 403, 404, 409, 422),
             summary="Send a failed or cancelled delivery again")
def retry_delivery(webhook_id: HookPath, delivery_id: DeliveryPath, principal: Admin,
                   ctx: Ctx) -> Response:
    with transaction(ctx.sessions) as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.subscription_id != webhook_id:
            raise not_found(f"no delivery {delivery_id} of webhook {webhook_id!r}")
        subscription = store.get_subscription(session, webhook_id)
        if subscription is None or not subscription.active:
            raise ProblemError(409, "webhook-disabled", "the subscription is disabled")
        store.requeue(session, delivery)
    return Response(status_code=202)
