"""The ``survey_follow_up_needed`` webhook event: a survey that needs a call has come in.

The list (``GET /v1/survey-follow-ups``) has to be looked at; a CRM or chat channel wants
to be told. The scoring job emits the event, in the transaction that writes its scores, for
each account it scored whose latest survey on or before the run's as_of needs a follow-up
(bad score or alarming comment), is still pending, and is at most
``survey_event_max_age_days`` older than the as_of: a first run, or a subscriber added late,
does not announce every old survey. One event per account and survey day (the dedupe key),
so daily runs tell it once.

The surveys come from where the follow-up list reads them: ``RENEWAL_OUTCOMES_DATA_DIR`` when
set, else the directory the run scores. "Recent" is against the run's as_of: a backfill run
for an old as_of announces the surveys of then that are still pending today (no
intervention recorded since), which is what a subscriber needs to know; each survey is told
once whatever the runs.

The payload carries ids, dates and numbers, and ``reasons`` (score and/or comment): never the
customer's comment nor which alarm phrases it holds (fragments of what the customer wrote,
sent to an outside URL); both stay behind the API's access control.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, tzinfo
from pathlib import Path

from sqlalchemy.orm import Session

from renewal.errors import DataContractError
from service.db.workflow_models import WebhookEvent
from service.workflows.config import WorkflowSettings
from service.workflows.survey_followups import (
    FollowUpRule,
    LatestSurvey,
    first_interventions_since,
    latest_surveys_in,
)
from service.workflows.webhooks.events import NewEvent, store_events


@dataclass(frozen=True)
class ScoredNow:
    """What the event says of the account's score in this run."""

    probability: float
    risk_tier: str
    model_version: str


@dataclass(frozen=True)
class SurveyAlerts:
    """What a scoring run needs to emit the events: the judged latest surveys as of its
    as_of, and the settings of the event."""

    surveys: Mapping[str, LatestSurvey]
    max_age_days: int
    zone: tzinfo
    #: Why no event could be derived (a sentence for the run's warnings, no customer data).
    problem: str | None = None


def survey_alerts(data_dir: Path, as_of: date, settings: WorkflowSettings) -> SurveyAlerts:
    """The alerts of a scoring run on ``data_dir`` as of ``as_of``, from the surveys the
    follow-up list reads (``settings.outcomes_data_dir``, else ``data_dir``).

    A surveys table there that breaks the data contract stops the events, not the run: the
    scores matter more than the notifications, and the outcomes directory is not the one the
    run checked. The run says so in its warnings (counts only: warnings reach every role)."""
    source = Path(settings.outcomes_data_dir or data_dir)
    try:
        surveys = surveys_as_of(source, as_of, settings.survey_rule)
    except DataContractError as refused:
        problem = (f"survey_follow_up_needed events not sent: the surveys table of "
                   f"{source.name} breaks the data contract ({len(refused.problems)} "
                   "problem(s)); run `renewal validate` on that directory")
        return SurveyAlerts({}, settings.survey_event_max_age_days, settings.survey_zone,
                            problem)
    return SurveyAlerts(surveys, settings.survey_event_max_age_days, settings.survey_zone)


def surveys_as_of(data_dir: Path, as_of: date, rule: FollowUpRule) -> dict[str, LatestSurvey]:
    """Each account's latest survey on or before ``as_of``, judged; empty without a surveys
    table (it is optional). A table that breaks the data contract raises, as the scoring
    run's own check would have. The follow-up list's own reader, with as_of for today."""
    return latest_surveys_in(Path(data_dir), as_of, rule) or {}


def survey_events(
    surveys: Mapping[str, LatestSurvey],
    scores: Mapping[str, ScoredNow],
    followed_up: Collection[str],
    as_of: date,
    max_age_days: int,
) -> list[NewEvent]:
    """The events of the accounts in ``scores`` (pure): a pending survey needing a follow-up,
    dated within ``max_age_days`` before ``as_of``."""
    events: list[NewEvent] = []
    for account, score in sorted(scores.items()):
        survey = surveys.get(account)
        if survey is None or not survey.needs_follow_up or account in followed_up:
            continue
        waiting = (as_of - survey.survey_date).days
        if waiting > max_age_days:
            continue
        events.append(NewEvent(
            "survey_follow_up_needed",
            f"survey_follow_up_needed:{account}:{survey.survey_date.isoformat()}",
            {
                "account_id": account,
                "as_of": as_of.isoformat(),
                "survey_date": survey.survey_date.isoformat(),
                "score": survey.score,
                "reasons": list(survey.reasons),
                "days_waiting": waiting,
                "probability": round(score.probability, 4),
                "risk_tier": score.risk_tier,
                "model_version": score.model_version,
            },
            account,
        ))
    return events


def emit_survey_events(
    session: Session, alerts: SurveyAlerts, scores: Mapping[str, ScoredNow], as_of: date
) -> Sequence[WebhookEvent]:
    """Detect and store the events (idempotent); call in the scoring run's transaction."""
    surveys, max_age_days = alerts.surveys, alerts.max_age_days
    due = {
        account: survey.survey_date
        for account, survey in surveys.items()
        if account in scores and survey.needs_follow_up
        and (as_of - survey.survey_date).days <= max_age_days
    }
    if not due:
        return []
    followed_up = first_interventions_since(session, due, alerts.zone)
    recent = {account: surveys[account] for account in due}
    return store_events(
        session, survey_events(recent, scores, followed_up, as_of, max_age_days)
    )
