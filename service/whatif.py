"""On-the-fly scoring for POST /v1/score: latest stored vectors, or what-if vectors.

Feature names and value types are checked against the served model, and every account id
goes through the one object-level check (:func:`service.auth.check_visible_ids`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.api.schemas import WhatIfVector
from service.auth import check_visible_ids
from service.cache import CachedScore, rounded
from service.context import ServiceContext
from service.db import scores as scores_db
from service.keys import Principal
from service.model_store import LoadedModel
from service.predict import ScoredVector, score_records
from service.problems import ProblemError, not_found


def renewal_body(
    entry: CachedScore | None, scored: ScoredVector, model: LoadedModel, scored_at: datetime
) -> dict[str, Any]:
    """The Renewal shape for a freshly computed score (change vs the stored earlier score)."""
    earlier = entry.earlier_probability if entry is not None else None
    return {
        "account_id": entry.account_id if entry is not None else None,
        "probability": rounded(scored.probability),
        "risk_tier": scored.risk_tier,
        "heuristic_probability": rounded(scored.heuristic_probability),
        "as_of": entry.as_of if entry is not None else None,
        "model": {"name": model.name, "version": model.version},
        "change_30d": None if earlier is None else rounded(scored.probability - earlier),
        "drivers": scored.drivers,
        "scored_at": scored_at,
    }


def stored_vectors(ctx: ServiceContext, entries: list[CachedScore]) -> list[dict[str, Any]]:
    """The latest stored feature vector of each entry (one query)."""
    with ctx.sessions() as session:
        rows = scores_db.features_by_id(session, [e.score_id for e in entries])
    missing = [e.account_id for e in entries if e.score_id not in rows]
    if missing:
        raise not_found(
            "stored features are gone for some accounts; retry", missing_account_ids=missing[:100]
        )
    return [dict(rows[e.score_id]) for e in entries]


def score_account_ids(
    ctx: ServiceContext, principal: Principal, account_ids: list[str], top_k: int
) -> list[dict[str, Any]]:
    """Score accounts on their latest stored features with the model served now."""
    entries = check_visible_ids(ctx.cache, principal, account_ids)
    model = ctx.models.require()
    scored = score_records(model, stored_vectors(ctx, entries), ctx.service_settings, top_k)
    now = datetime.now(UTC)
    return [renewal_body(e, s, model, now) for e, s in zip(entries, scored, strict=True)]


def _type_errors(model: LoadedModel, index: int, features: dict[str, Any]) -> list[dict[str, str]]:
    kinds = {spec.name: spec.kind for spec in model.scorer.features}
    errors = []
    for name, value in features.items():
        field = f"body.accounts[{index}].features.{name}"
        kind = kinds.get(name)
        if kind is None:
            errors.append(
                {
                    "field": field,
                    "type": "unknown_feature",
                    "message": f"the served model has no feature {name!r}",
                }
            )
        elif value is None:
            continue
        elif kind == "bool" and not isinstance(value, bool):
            errors.append(
                {"field": field, "type": "bool_type", "message": "must be true, false or null"}
            )
        elif kind == "category" and not isinstance(value, str):
            errors.append(
                {"field": field, "type": "string_type", "message": "must be a string or null"}
            )
        elif kind == "numeric" and (isinstance(value, bool) or not isinstance(value, int | float)):
            errors.append(
                {"field": field, "type": "float_type", "message": "must be a number or null"}
            )
    return errors


def score_what_if(
    ctx: ServiceContext, principal: Principal, vectors: list[WhatIfVector], top_k: int
) -> list[dict[str, Any]]:
    """Score what-if vectors; with an account id, on top of its latest stored vector."""
    model = ctx.models.require()
    errors = [e for i, v in enumerate(vectors) for e in _type_errors(model, i, v.features)]
    if errors:
        fields = ", ".join(e["field"] for e in errors[:5])
        raise ProblemError(
            422,
            "validation-error",
            f"invalid {fields}: {errors[0]['message']}",
            errors=errors[:100],
        )
    with_id = [v.account_id for v in vectors if v.account_id is not None]
    entries = {e.account_id: e for e in check_visible_ids(ctx.cache, principal, with_id)}
    base = (
        dict(
            zip(
                [e.account_id for e in entries.values()],
                stored_vectors(ctx, list(entries.values())),
                strict=True,
            )
        )
        if entries
        else {}
    )
    merged: list[dict[str, Any]] = []
    for v in vectors:
        start = dict(base[v.account_id]) if v.account_id is not None else {}
        start.update(v.features)
        merged.append(start)
    scored = score_records(model, merged, ctx.service_settings, top_k)
    now = datetime.now(UTC)
    return [
        renewal_body(entries.get(v.account_id) if v.account_id else None, s, model, now)
        for v, s in zip(vectors, scored, strict=True)
    ]
