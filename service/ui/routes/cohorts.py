"""Cohorts: activation, activity, renewal and NDR by month, reliability, renewal forecast.

The metrics and the forecast are the API's (``GET /v1/metrics/{metric}``, ``GET
/v1/forecast``: same code, same cache, same scope: a CSM key sees its own accounts). A
section whose data is missing says why instead of failing the page.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from service.api.forecast import get_forecast
from service.api.metrics import get_metric, kept_or_computed
from service.auth import Reader
from service.context import Ctx, ServiceContext
from service.data_dirs import outcomes_dir
from service.keys import Principal
from service.ui import charts
from service.ui.api_calls import attempt, call_route
from service.ui.reliability import Reliability, reliability
from service.ui.routes import signed_in_router
from service.ui.templating import render
from service.workflows.install import WorkflowContext, Workflows
from service.workflows.outcomes import load_contracts

router = signed_in_router()
FORECAST_MONTHS = 12


def _rates(rows: list[dict[str, Any]], key: str) -> list[float | None]:
    return [r.get(key) for r in rows]


def metric_charts(metrics: dict[str, list[dict[str, Any]] | None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    activation = metrics.get("activation")
    if activation:
        labels = [r["signing_month"] for r in activation]
        closed = sum(r["accounts_window_closed"] for r in activation)
        done = sum(r["accounts_activated"] for r in activation)
        overall = f"{done / closed:.0%} of {closed} accounts" if closed else "n/a"
        out["activation"] = charts.bar_chart(
            labels, _rates(activation, "activation_rate"), name="activation rate",
            title="Activation rate by signing month",
            desc=f"Activated within the window, over accounts whose window has closed; "
                 f"overall {overall}.", y_max=1.0, colour=charts.BLUE)
    activity = metrics.get("activity")
    if activity:
        labels = [r["month"] for r in activity]
        out["activity"] = charts.line_chart(
            labels, [charts.Series("monthly activity rate",
                                   _rates(activity, "monthly_activity_rate"),
                                   charts.GREEN, "circle")],
            title="Monthly activity rate", width=540,
            desc="Monthly-active paying accounts over paying accounts, per month.")
    renewal = metrics.get("renewal")
    if renewal:
        labels = [r["renewal_month"] for r in renewal]
        out["renewal"] = charts.bar_chart(
            labels, _rates(renewal, "renewal_rate"), name="logo renewal rate",
            title="Renewal rate by month of contract end",
            desc="Renewed accounts over accounts with a decided term ending that month.",
            y_max=1.0,
            colour=charts.SKY)
    ndr = metrics.get("ndr")
    if ndr:
        labels = [r["renewal_month"] for r in ndr]
        values = _rates(ndr, "ndr")
        top = charts.nice_max(max([v for v in values if v is not None] + [1.2]))
        out["ndr"] = charts.line_chart(
            labels, [charts.Series("net dollar retention", values, charts.VERMILLION,
                                   "diamond")],
            title="Net dollar retention by month of contract end", y_max=top,
            desc="(beginning ARR + expansion − contraction − churned ARR) / beginning ARR of "
                 "contracts ending that month.", thresholds=[(1.0, "100%")])
    return out


def reliability_chart(data: Reliability) -> Any:
    model, heuristic = data.models
    series = [
        charts.ReliabilitySeries(model.name, model.bins, charts.BLUE, "circle"),
        charts.ReliabilitySeries(heuristic.name, heuristic.bins, charts.ORANGE, "triangle",
                                 dashed=True),
    ]
    desc = "; ".join(
        f"{m.name}: expected calibration error {m.ece:.3f} over {m.n} scores"
        for m in data.models if m.ece is not None)
    return charts.reliability_diagram(
        series, title="Reliability: predicted probability against observed renewal",
        desc=desc or "No scores with a known outcome yet.")


def forecast_chart(forecast: dict[str, Any]) -> Any:
    groups = forecast["data"]
    level = forecast["level"]
    return charts.bar_chart(
        [g["key"] for g in groups], [g["expected_renewed_arr"] for g in groups],
        name="expected renewed ARR", title="Renewal forecast by month",
        desc=f"Expected renewed ARR per month of contract end with {level:.0%} prediction "
             f"intervals; total {forecast['total']['expected_renewed_arr']:,.0f} of "
             f"{forecast['total']['arr_up_for_renewal']:,.0f} up for renewal.",
        y_format=charts.compact_number,
        intervals=[tuple(g["renewed_arr_interval"]) for g in groups],
        interval_name=f"{level:.0%} interval",
        outlines=[g["arr_up_for_renewal"] for g in groups], outline_name="ARR up for renewal",
        colour=charts.GREEN, width=540)


def _reliability(ctx: ServiceContext, principal: Principal,
                 workflows: WorkflowContext) -> Reliability:
    contracts = load_contracts(outcomes_dir(ctx, workflows.settings.outcomes_data_dir))
    model = ctx.models.current
    label = f"model v{model.version}" if model is not None else "model"
    scope = principal.csm_id if principal.role == "csm" else None
    key = ("ui-reliability", label, scope, ctx.cache.loaded_at, len(contracts))
    return kept_or_computed(
        ctx, key, lambda: reliability(ctx, principal, contracts, "model (as scored)"))


@router.get("/cohorts")
def cohorts_page(request: Request, principal: Reader, ctx: Ctx,
                 workflows: Workflows) -> Response:
    who = {"principal": principal, "ctx": ctx, "workflows": workflows}
    metrics: dict[str, Any] = {}
    errors: dict[str, str | None] = {}
    for name in ("activation", "activity", "renewal", "ndr"):
        metrics[name], errors[name] = attempt(
            lambda name=name: call_route(get_metric, metric=name, by=None, as_of=None,
                                         **who)["rows"])
    forecast, errors["forecast"] = attempt(
        lambda: call_route(get_forecast, by="month", months=FORECAST_MONTHS, level=None,
                           **who))
    calibration, errors["reliability"] = attempt(
        lambda: _reliability(ctx, principal, workflows))
    return render(
        request, "cohorts.html", active="cohorts", metrics=metrics, errors=errors,
        charts=metric_charts(metrics), forecast=forecast,
        forecast_chart=forecast_chart(forecast) if forecast and forecast["data"] else None,
        reliability=calibration,
        reliability_chart=reliability_chart(calibration)
        if calibration and calibration.scores_with_outcome else None,
        forecast_months=FORECAST_MONTHS,
    )
