"""Record a CSM's health input and re-score the account on the spot.

The new score starts from the account's latest stored feature vector and applies the input
exactly as the feature pipeline will in the next scoring run: each given input replaces the
stored value (a null leaves it), ``health_input_age_days`` becomes the days from the input's
effective date to the vector's as_of, and the stale flag follows. The input takes effect on
``min(today, latest as_of)``, so the next run for that as_of (or any later one) uses it too.
The new score's webhook events (tier crossed, probability dropped) are stored in the same
transaction, like the scoring job's.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from service.cache import CachedScore
from service.context import ServiceContext
from service.db import scores as scores_db
from service.db.engine import transaction
from service.db.health_inputs import add_health_input
from service.db.models import HealthInput
from service.health_vectors import apply_input
from service.keys import Principal
from service.predict import score_records
from service.problems import not_found
from service.workflows.config import get_workflow_settings
from service.workflows.webhooks.events import emit_score_events

if TYPE_CHECKING:  # the API package imports this module: no import of it at run time
    from service.api.schemas import HealthInputIn


def record_and_rescore(
    ctx: ServiceContext,
    principal: Principal,
    entry: CachedScore,
    health: HealthInputIn,
    drop_points: float | None = None,
) -> tuple[HealthInput, dict[str, Any]]:
    """Store the input (audit: author key id, time) and store a fresh score of the account.

    ``drop_points``: the ``probability_dropped`` threshold (default: the process's
    ``RENEWAL_PROBABILITY_DROP_POINTS``, the settings the app's workflows read)."""
    model = ctx.models.require()
    if drop_points is None:
        drop_points = get_workflow_settings().probability_drop_points
    with transaction(ctx.sessions) as session:
        # One writer per account at a time, and its clock read under the lock: the newest
        # input of the history is then the one the stored score reflects.
        scores_db.lock_account(session, entry.account_id)
        now = datetime.now(UTC)
        latest = scores_db.latest_scores(
            session, [entry.account_id], window_days=ctx.service_settings.change_window_days
        )
        if not latest:
            raise not_found(f"no scored account {entry.account_id!r} is visible to this key")
        stored = latest[0].score
        effective = min(now.date(), stored.as_of)
        record = add_health_input(
            session,
            HealthInput(
                account_id=entry.account_id,
                effective_date=effective,
                exec_sponsor_active=health.exec_sponsor_active,
                core_process_live=health.core_process_live,
                csm_score=health.csm_score,
                note=health.note,
                author=principal.key_id,
                created_at=now,
            ),
        )
        vector = apply_input(
            dict(stored.features), health, effective, stored.as_of, ctx.stale_input_days
        )
        scored = score_records(
            model, [vector], ctx.service_settings, ctx.service_settings.top_k_drivers
        )[0]
        scores_db.upsert_scores(
            session,
            [
                {
                    "account_id": entry.account_id,
                    "as_of": stored.as_of,
                    "model_name": model.name,
                    "model_version": model.version,
                    "probability": scored.probability,
                    "heuristic_probability": scored.heuristic_probability,
                    "risk_tier": scored.risk_tier,
                    "drivers": scored.drivers,
                    "features": vector,
                    "trigger": "health_input",
                    "created_at": now,
                }
            ],
        )
        emit_score_events(session, drop_points, [entry.account_id])
        session.flush()
        record_view = input_view(record)
    ctx.cache.reload_accounts([entry.account_id])
    fresh = ctx.cache.get(entry.account_id)
    renewal = json.loads(fresh.body) if fresh is not None else {}
    return record_view, renewal


def input_view(record: HealthInput) -> Any:
    return {
        "id": record.id,
        "account_id": record.account_id,
        "effective_date": record.effective_date,
        "exec_sponsor_active": record.exec_sponsor_active,
        "core_process_live": record.core_process_live,
        "csm_score": record.csm_score,
        "note": record.note,
        "author": record.author,
        "created_at": record.created_at,
    }
