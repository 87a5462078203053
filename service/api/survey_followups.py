"""GET /v1/survey-follow-ups: accounts whose latest satisfaction survey was bad (by its score or
its comment), and whether someone has followed up (docs/workflows.md §8)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from service.api.workflow_schemas import SurveyFollowUpList
from service.auth import Reader, listable_accounts, shown_path
from service.context import Ctx
from service.data_dirs import outcomes_dir
from service.problems import problem_responses
from service.workflows.install import Workflows
from service.workflows.survey_followups import (
    StatusFilter,
    first_interventions_since,
    latest_surveys_in,
    survey_follow_ups,
    surveys_needing_follow_up,
    today_in,
)

router = APIRouter(prefix="/v1", tags=["workflows: survey follow-ups"])
STATUS = (
    "pending: no intervention recorded since the bad survey; followed_up: one was; "
    "all: both, pending first."
)


@router.get(
    "/survey-follow-ups",
    response_model=SurveyFollowUpList,
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="Accounts whose latest survey was bad (score or comment): pending or followed up",
)
def get_survey_follow_ups(
    principal: Reader,
    ctx: Ctx,
    workflows: Workflows,
    status: Annotated[StatusFilter, Query(description=STATUS)] = "pending",
    csm_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Per scored account, its latest survey dated on or before today (in
    RENEWAL_SURVEY_TIMEZONE, UTC by default). It needs a follow-up when its score is <=
    RENEWAL_SURVEY_BAD_SCORE_AT_MOST or its comment holds one of RENEWAL_SURVEY_ALARM_PHRASES
    (any score; ``reasons`` says which). Followed up = an intervention recorded on or after the
    survey's day. Pending first, lowest renewal probability then oldest survey first. The
    surveys come from the data directory of RENEWAL_OUTCOMES_DATA_DIR or of the latest
    scoring run; without a surveys table the list is empty and ``surveys_available`` false.
    CSM keys see their own accounts."""
    rule = workflows.settings.survey_rule
    zone = workflows.settings.survey_zone
    today = today_in(zone)
    entries = listable_accounts(ctx.cache, principal, csm_id)
    data_dir = outcomes_dir(ctx, workflows.settings.outcomes_data_dir)
    latest = latest_surveys_in(data_dir, today, rule)
    found: list[dict[str, Any]] = []
    if latest is not None:
        bad = surveys_needing_follow_up(entries, latest)
        with ctx.sessions() as session:
            first = first_interventions_since(
                session, {entry.account_id: survey.survey_date for entry, survey in bad}, zone
            )
        found = survey_follow_ups(bad, first, today, status)
    page = found[offset : offset + limit]
    return {
        "status": status,
        "bad_score_at_most": rule.bad_score_at_most,
        "alarm_phrases": list(rule.alarm.phrases),
        "today": today,
        "survey_timezone": workflows.settings.survey_timezone,
        "surveys_available": latest is not None,
        "surveys_from": shown_path(principal, data_dir),
        "total": len(found),
        "data": page,
        "count": len(page),
    }
