"""On-the-fly scoring for POST /v1/score: latest stored vectors, or what-if vectors.

Feature names and value types are checked against the served model, and every account id
goes through the one object-level check (:func:`service.auth.check_visible_ids`).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from features.registry import FEATURES
from service.auth import check_visible_ids
from service.cache import CachedScore, rounded
from service.context import ServiceContext
from service.db import scores as scores_db
from service.encoded import EncodedRow, encode_entries, remembered
from service.keys import Principal
from service.model_store import LoadedModel
from service.predict import ScoredVector, score_matrix, score_records
from service.problems import ProblemError, not_found
from service.workflows.stale_inputs import stale_status

if TYPE_CHECKING:  # the API package imports this module: no import of it at run time
    from service.api.schemas import WhatIfVector


def renewal_body(
    entry: CachedScore | None,
    scored: ScoredVector,
    model: LoadedModel,
    scored_at: datetime,
    inputs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Renewal shape for a freshly computed score (change vs the stored earlier score);
    ``inputs``: staleness of the manual inputs in the scored vector (None without an as_of)."""
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
        "inputs": inputs,
    }


def inputs_of(ctx: ServiceContext, entry: CachedScore | None, vector: dict[str, Any]) -> Any:
    """Stale-input status of a scored vector, by the pipeline's rule (needs the account's
    as_of; a free-standing what-if vector has none)."""
    if entry is None:
        return None
    return stale_status(vector, entry.as_of, ctx.stale_input_days)


def json_bytes(payload: Any) -> bytes:
    """Compact JSON of a response built from plain values, dates as ISO 8601 (as the cache
    renders stored scores). orjson: the standard library's encoder took 2.4 ms of a 100-account
    ``POST /v1/score`` (issue 5: within 1.5× of raw contributions)."""
    return orjson.dumps(payload)


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
    """Score accounts on their latest stored features with the model served now (encoded
    rows are kept on the cache entries: the database is read only for entries not yet
    encoded for this model)."""
    entries = check_visible_ids(ctx.cache, principal, account_ids)
    model = ctx.models.require()
    rows: list[EncodedRow | None] = remembered(model, entries)
    missing = [i for i, r in enumerate(rows) if r is None]
    if missing:
        todo = [entries[i] for i in missing]
        fresh = encode_entries(model, todo, stored_vectors(ctx, todo), ctx.stale_input_days)
        for i, row in zip(missing, fresh, strict=True):
            rows[i] = row
    done = [r for r in rows if r is not None]
    scored = score_matrix(
        model,
        np.stack([r.row for r in done]),
        np.array([r.heuristic for r in done]),
        ctx.service_settings,
        top_k,
        np.stack([r.hidden for r in done]),
    )
    now = datetime.now(UTC)
    return [
        renewal_body(e, s, model, now, r.inputs)
        for e, s, r in zip(entries, scored, done, strict=True)
    ]


#: Each registry feature's (minimum, maximum): built once, not per request.
_RANGES = {f.name: (f.minimum, f.maximum) for f in FEATURES}


def _in_range(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _type_errors(model: LoadedModel, index: int, features: dict[str, Any]) -> list[dict[str, str]]:
    # Any registry feature is accepted (one the served model does not read cannot move the
    # probability): the documented names do not change when a model is retrained.
    kinds = {f.name: f.kind for f in FEATURES} | {s.name: s.kind for s in model.scorer.features}
    errors = []
    for name, value in features.items():
        field = f"body.accounts[{index}].features.{name}"
        kind = kinds.get(name)
        if kind is None:
            errors.append(
                {
                    "field": field,
                    "type": "unknown_feature",
                    "message": f"unknown feature {name!r} (not in the feature registry)",
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
        elif kind == "numeric" and not math.isfinite(value):
            # Python's JSON reader takes NaN, Infinity and 1e999: scored, they read as
            # "inf active days in the last 30 days" (NaN: silently missing).
            errors.append(
                {"field": field, "type": "finite_number", "message": "must be a finite number "
                 f"or null, not {value!r}"}
            )
        elif kind == "numeric" and not _in_range(value, *_RANGES.get(name, (None, None))):
            # Valid data never gives it: "-5 active days in the last 30 days" would be
            # explained to the CSM as if it could happen.
            low, high = _RANGES[name]
            bounds = " and ".join(([f">= {low:g}"] if low is not None else [])
                                  + ([f"<= {high:g}"] if high is not None else []))
            errors.append(
                {"field": field, "type": "out_of_range",
                 "message": f"must be {bounds} (what valid data gives), not {value!r}"}
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
    out = []
    for v, s, vector in zip(vectors, scored, merged, strict=True):
        entry = entries.get(v.account_id) if v.account_id else None
        out.append(renewal_body(entry, s, model, now, inputs_of(ctx, entry, vector)))
    return out
