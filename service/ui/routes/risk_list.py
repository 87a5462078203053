"""The risk list per CSM: sortable, filterable, exportable to CSV."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Query, Request
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import RedirectResponse, Response

from service.api.scoring_runs import get_scoring_runs
from service.auth import Reader
from service.context import Ctx, ServiceContext
from service.keys import Principal
from service.problems import ProblemError
from service.ui.api_calls import attempt, call_route
from service.ui.risk_rows import (
    ACTIVATION,
    DEFAULT_DIRECTION,
    PAGE_SIZE,
    RISK_TIERS,
    SORTS,
    SURVEY,
    options,
    parse_filters,
    risk_rows,
    to_csv,
    visible_entries,
)
from service.ui.routes import signed_in_router
from service.ui.survey_status import survey_follow_ups
from service.ui.templating import render, ui_base
from service.workflows.install import Workflows

router = signed_in_router()
Text = Annotated[str | None, Query(max_length=200)]


@router.get("/")
def home(request: Request, principal: Reader) -> Response:
    return RedirectResponse(f"{ui_base(request)}/risk-list", status_code=303)


@router.get("/risk-list")
def risk_list(
    request: Request, principal: Reader, ctx: Ctx, workflows: Workflows,
    segment: Text = None, tier: Text = None, stale: Text = None, activation: Text = None,
    survey: Text = None, csm: Text = None, sort: Text = None, dir: Text = None,  # noqa: A002
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    filters = parse_filters(principal, segment, tier, stale, activation, csm, sort, dir, survey)
    order = ctx.cache.risk_order
    follow_ups = survey_follow_ups(
        ctx, workflows, [e.account_id for e in visible_entries(order, principal)])
    rows = risk_rows(order, principal, filters, follow_ups)
    pages = max(1, math.ceil(len(rows) / PAGE_SIZE))
    page = min(page, pages)
    shown = rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    tiers = {t: sum(1 for r in rows if r.risk_tier == t) for t in RISK_TIERS}
    visible = len(visible_entries(order, principal))
    return render(
        request, "risk_list.html", active="risk",
        rows=shown, count=len(rows), scored=len(order), visible=visible, page=page,
        pages=pages, first=(page - 1) * PAGE_SIZE + 1,
        filters=filters, options=options(order, principal, filters), tiers=tiers,
        total_at_risk=sum(r.arr_at_risk for r in rows if r.arr_at_risk is not None),
        as_of=ctx.cache.latest_as_of, sorts=SORTS, default_direction=DEFAULT_DIRECTION,
        activation_choices=ACTIVATION, survey_choices=SURVEY, risk_tiers=RISK_TIERS,
        follow_ups=follow_ups, run_warnings=latest_run_warnings(principal, ctx),
    )


def latest_run_warnings(principal: Principal, ctx: ServiceContext) -> list[str]:
    """What the run behind the listed scores said about its data (``GET /v1/scoring-runs``):
    shown above the list, so nobody acts on scores without their caveats. Nothing when the
    newest run is not the one whose date the list shows, or when it cannot be read: the list
    itself is served from memory and stays up while the database is down."""
    try:
        runs, _why = attempt(lambda: call_route(get_scoring_runs, principal=principal, ctx=ctx,
                                                limit=1))
    except SQLAlchemyError:
        return []
    if not runs or not runs["data"] or runs["data"][0]["as_of"] != ctx.cache.latest_as_of:
        return []
    return list(runs["data"][0]["warnings"] or [])


@router.get("/risk-list.csv")
def risk_list_csv(
    principal: Reader, ctx: Ctx, workflows: Workflows,
    segment: Text = None, tier: Text = None, stale: Text = None, activation: Text = None,
    survey: Text = None, csm: Text = None, sort: Text = None, dir: Text = None,  # noqa: A002
) -> Response:
    """Every row of the filtered list (all pages), in the page's order. Filtered on survey
    follow-ups that cannot be read, it is a 503 rather than a file that looks complete.

    The body starts with the UTF-8 byte-order mark: without it Excel reads the file in the
    local code page and garbles non-ASCII names (é, 東京); CSV readers given "utf-8-sig"
    drop it."""
    filters = parse_filters(principal, segment, tier, stale, activation, csm, sort, dir, survey)
    order = ctx.cache.risk_order
    follow_ups = survey_follow_ups(
        ctx, workflows, [e.account_id for e in visible_entries(order, principal)])
    if filters.survey is not None and follow_ups.problem is not None:
        raise ProblemError(503, "data-unavailable",
                           f"survey follow-ups cannot be read: {follow_ups.problem}")
    rows = risk_rows(order, principal, filters, follow_ups)
    as_of = ctx.cache.latest_as_of
    name = f"risk-list-{as_of.isoformat() if as_of else 'empty'}.csv"
    return Response(
        to_csv(rows, follow_ups_known=follow_ups.problem is None).encode("utf-8-sig"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
