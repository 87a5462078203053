"""The survey follow-up of accounts on the ops page: the rule of ``GET /v1/survey-follow-ups``
(its workflow module's functions, on the same data directory), for the risk list's filter and
badge and the account page's survey part."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo

from sqlalchemy.exc import SQLAlchemyError

from service.context import ServiceContext
from service.data_dirs import outcomes_dir
from service.ui.api_calls import attempt
from service.workflows.install import WorkflowContext
from service.workflows.survey_followups import (
    LatestSurvey,
    first_interventions_since,
    latest_surveys_in,
    local_day,
    today_in,
)


@dataclass(frozen=True)
class SurveyFollowUp:
    """An account's latest survey on or before ``today`` and, when it needs a follow-up (a bad
    score or an alarming comment), its first intervention since the survey's day (None: the
    follow-up is pending)."""

    survey: LatestSurvey
    followed_up_at: datetime | None
    today: date
    zone: tzinfo = UTC

    @property
    def bad(self) -> bool:
        """Needs a follow-up (by its score, its comment or both)."""
        return self.survey.needs_follow_up

    @property
    def pending(self) -> bool:
        return self.bad and self.followed_up_at is None

    @property
    def days_waiting(self) -> int | None:
        return (self.today - self.survey.survey_date).days if self.pending else None

    @property
    def followed_up_on(self) -> date | None:
        """The day of the first intervention since the survey in the surveys' time zone
        (the rule's day)."""
        at = self.followed_up_at
        return None if at is None else local_day(at, self.zone)


@dataclass(frozen=True)
class SurveyFollowUps:
    """The survey follow-ups of some accounts, or why there are none: ``available`` is False
    when the data directory has no surveys table (optional: a product may not run surveys),
    ``problem`` says why the surveys or interventions could not be read."""

    by_account: dict[str, SurveyFollowUp] = field(default_factory=dict)
    available: bool = False
    bad_score_at_most: float | None = None
    problem: str | None = None
    zone_name: str = "UTC"

    def days_waiting(self) -> dict[str, int]:
        """Accounts whose follow-up is pending, with the days since their bad survey."""
        return {a: f.days_waiting for a, f in self.by_account.items()
                if f.days_waiting is not None}


def survey_follow_ups(ctx: ServiceContext, workflows: WorkflowContext,
                      account_ids: Collection[str]) -> SurveyFollowUps:
    """The follow-up status of ``account_ids`` (accounts the caller may see), by the rule and
    from the data directory of ``GET /v1/survey-follow-ups``. Never raises for missing or
    unreadable data: the risk list stays up without it (blocking: database, files)."""
    rule = workflows.settings.survey_rule
    threshold = rule.bad_score_at_most
    zone = workflows.settings.survey_zone

    def read() -> SurveyFollowUps:
        today = today_in(zone)
        every = latest_surveys_in(outcomes_dir(ctx, workflows.settings.outcomes_data_dir), today,
                                  rule)
        if every is None:
            return SurveyFollowUps(bad_score_at_most=threshold)
        latest = {a: every[a] for a in account_ids if a in every}
        bad = {a: s.survey_date for a, s in latest.items() if s.needs_follow_up}
        first: dict[str, datetime] = {}
        if bad:
            with ctx.sessions() as session:
                first = first_interventions_since(session, bad, zone)
        return SurveyFollowUps(
            {a: SurveyFollowUp(s, first.get(a), today, zone)
             for a, s in latest.items()},
            available=True, bad_score_at_most=threshold, zone_name=str(zone))

    try:
        found, why = attempt(read)
    except SQLAlchemyError:
        found, why = None, "the score database is not reachable"
    return found or SurveyFollowUps(bad_score_at_most=threshold, problem=why)
