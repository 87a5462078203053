"""Announce a promoted model to webhook subscribers after a reload swapped it in.

Shared by the admin reload route and the app's registry poll, so both say it the same way.
Every worker of a multi-worker server swaps on its own; the event's dedupe key (one per
model name and version) makes that one event.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from service.db.engine import transaction
from service.workflows.webhooks.events import emit_model_promoted

if TYPE_CHECKING:
    from service.context import ServiceContext
    from service.model_store import ReloadOutcome

log = logging.getLogger("service.workflows")


def announce_promotion(ctx: ServiceContext, outcome: ReloadOutcome) -> bool:
    """Store a ``model_promoted`` event when ``outcome`` swapped models; True if stored.

    The swap already happened: a database failure here is logged, never raised (the model
    serves either way, and the reload's answer must say what really happened)."""
    model = ctx.models.current
    if outcome.outcome != "swapped" or outcome.version is None or model is None:
        return False
    try:
        with transaction(ctx.sessions) as session:
            stored = emit_model_promoted(
                session, model.name, outcome.version, outcome.previous_version, model.alias
            )
    except SQLAlchemyError as exc:
        log.error("model_promoted event not stored: %s", type(exc).__name__)
        return False
    return bool(stored)
