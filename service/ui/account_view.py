"""Everything the account page shows, gathered through the API's own route functions.

Each call goes through the API's object-level check (another CSM's account is a 404) and
the page's routes declare the same role dependencies as the API routes they call, so the
page shows exactly what the key could read through the API. Blocking (database, model):
call from a worker thread.
"""

from __future__ import annotations

import json
import math
from typing import Any

from service.api.health_inputs import get_health_inputs
from service.api.interventions import list_interventions
from service.api.renewal_history import get_history
from service.auth import visible_account
from service.context import ServiceContext
from service.db import scores as scores_db
from service.health_vectors import INPUT_FEATURES
from service.keys import Principal
from service.model_inputs import reads_judgement
from service.ui import charts
from service.ui.activity import activity_year
from service.ui.api_calls import attempt, call_route
from service.ui.authors import Author, key_authors
from service.ui.risk_rows import row_of
from service.ui.survey_status import survey_follow_ups
from service.ui.templating import chance
from service.workflows.install import WorkflowContext

WRITERS = ("csm", "admin")
HISTORY_SCORES = 24
#: Where a numeric lever's slider starts when the lever declares no default.
SLIDER_START = 0.8


def lever_controls(vector: dict[str, Any]) -> list[dict[str, Any]]:
    """The what-if form's controls, from the levers declared in :mod:`features.levers`."""
    from features.levers import LEVERS, RaiseTo

    controls = []
    for lever in LEVERS:
        spec = lever.value
        current = None
        for change in lever.changes:
            if isinstance(change, RaiseTo):
                value = vector.get(change.feature)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    current = float(value) if math.isfinite(value) else None
        start = spec.default if spec.default is not None else SLIDER_START
        controls.append({
            "name": lever.name, "description": lever.description, "kind": spec.kind,
            "minimum": spec.minimum, "maximum": spec.maximum, "start": start,
            "unit": spec.unit, "value_description": spec.description, "current": current,
            "features": list(lever.features),
        })
    return controls


def history_chart(history: list[dict[str, Any]], high_below: float,
                  medium_below: float) -> Any:
    """The score history, oldest first, with the risk-tier cut-offs as reference lines."""
    points = list(reversed(history))
    labels = [str(h["as_of"])[:10] for h in points]
    # chance(): rounded down, as the summary beside the chart (it said 82 % next to 81 %).
    tips = [f"{str(h['as_of'])[:10]}: {chance(h['probability'])} ({h['risk_tier']} risk, "
            f"model v{h['model']['version']})" for h in points]
    return charts.line_chart(
        labels,
        [charts.Series("renewal probability", [h["probability"] for h in points],
                       charts.BLUE, "circle", tips=tips)],
        title="Renewal probability over time",
        desc=f"{len(points)} scores from {labels[0]} to {labels[-1]}; latest "
             f"{chance(points[-1]['probability'])}. Dashed lines: below {high_below:.0%} is high "
             f"risk, below {medium_below:.0%} medium risk.",
        thresholds=[(high_below, "high risk"), (medium_below, "medium risk")],
        width=540,
    )


def driver_items(renewal: dict[str, Any]) -> list[tuple[str, float]]:
    """Risk drivers (most harmful first), then protective factors (strongest first), as
    (words, signed probability points)."""
    drivers = renewal.get("drivers") or {}
    risk = sorted(drivers.get("risk_drivers", []), key=lambda d: d["contribution"])
    protective = sorted(drivers.get("protective_factors", []), key=lambda d: -d["contribution"])
    return [(d["description"], 100 * d["contribution"]) for d in [*risk, *protective]]


def log_authors(ctx: ServiceContext, *logs: list[dict[str, Any]]) -> dict[str, Author]:
    """The authors of the inputs and interventions shown, by key id (one look-up; none
    when the logs are empty)."""
    key_ids = {item["author"] for log in logs for item in log}
    if not key_ids:
        return {}
    with ctx.sessions() as session:
        return key_authors(session, key_ids)


def account_context(ctx: ServiceContext, principal: Principal, workflows: WorkflowContext,
                    account_id: str) -> dict[str, Any]:
    """The account page's data (404 for an account this key may not see)."""
    entry = visible_account(ctx.cache, principal, account_id)
    renewal = json.loads(entry.body)
    settings = ctx.service_settings
    who = {"principal": principal, "ctx": ctx, "workflows": workflows,
           "account_id": entry.account_id}
    found, history_error = attempt(
        lambda: call_route(get_history, **who, limit=HISTORY_SCORES, top=3)["data"])
    history = found or []
    with ctx.sessions() as session:
        vector = scores_db.features_by_id(session, [entry.score_id]).get(entry.score_id) or {}
    can_write = principal.role in WRITERS
    inputs_history = (call_route(get_health_inputs, **who, limit=10)["data"]
                      if can_write else [])
    interventions = (call_route(list_interventions, **who, limit=50)["data"]
                     if can_write else [])
    authors = log_authors(ctx, inputs_history, interventions)
    activity = activity_year(ctx, entry.account_id, entry.as_of)
    surveys = survey_follow_ups(ctx, workflows, [entry.account_id])
    survey = surveys.by_account.get(entry.account_id)
    items = driver_items(renewal)
    calendar = None
    if activity.days:
        counts = activity.recent(30)
        calendar = charts.tier_calendar(
            activity.days, title="Daily activity tier, last 12 months",
            desc="Last 30 days: " + ", ".join(f"{n} {t}" for t, n in counts.items()) + ".")
    model = ctx.models.current
    return {
        "entry": entry,
        "heuristic_factor": getattr(model.scorer, "heuristic_factor", None) if model else None,
        "model_reads_inputs": model is None or reads_judgement(model.feature_names),
        "row": row_of(entry, survey.days_waiting if survey else None),
        "renewal": renewal,
        "inputs_status": renewal.get("inputs") or {},
        "history": history,
        "history_error": history_error,
        "history_chart": history_chart(history, settings.risk_high_below,
                                       settings.risk_medium_below) if history else None,
        "driver_items": items,
        "drivers_chart": charts.signed_bars(
            items, title="What moves this account's renewal probability", width=540,
            desc="; ".join(f"{w}: {v:+.1f} points" for w, v in items) or "No drivers.",
        ) if items else None,
        "surveys": surveys,
        "survey": survey,
        "activity": activity,
        "activity_recent": activity.recent(30),
        "calendar": calendar,
        "can_write": can_write,
        "current_inputs": {name: vector.get(name) for name in INPUT_FEATURES},
        "inputs_history": inputs_history,
        "interventions": interventions,
        "authors": authors,
        "levers": lever_controls(vector),
    }
