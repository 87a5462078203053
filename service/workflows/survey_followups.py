"""Survey follow-ups: an account whose latest satisfaction survey was bad (by its score or its
comment) must be called back.

The domain (docs/workflows.md §8): the free-text answer matters more than the score, and a
bad score must get a follow-up. Per account only the latest survey dated on or before today
counts, so a later good answer supersedes an earlier bad one. A survey *needs a follow-up*
when its score is at or below ``survey_bad_score_at_most`` or its comment holds one of the
alarm phrases (:mod:`service.workflows.survey_comments`), whatever its score; it is
*followed up* once a save attempt (an intervention) was recorded for the account on or
after the survey's day, else it is *pending*. Survey
dates are calendar days of ``survey_timezone`` (UTC by default): today and an intervention's
day are taken in that zone.

The comment is customer data: it is returned to the account's readers and never logged.
The surveys table is read once per file version (:mod:`service.workflows.file_cache`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, tzinfo
from pathlib import Path
from typing import Any, Literal, Protocol

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from renewal.contract import load_valid_table
from renewal.datadir import find_table
from service.cache import rounded
from service.db.chunks import chunks
from service.db.workflow_models import Intervention
from service.workflows.file_cache import FileVersionCache, Kept
from service.workflows.survey_comments import DEFAULT_ALARM_PHRASES, CommentAlarm

FollowUpStatus = Literal["pending", "followed_up"]
StatusFilter = Literal["pending", "followed_up", "all"]
FollowUpReason = Literal["score", "comment"]

_surveys: FileVersionCache[pd.DataFrame | None] = FileVersionCache()


class ScoredAccount(Protocol):
    """What the list needs of an account's latest score (a :class:`service.cache.CachedScore`)."""

    account_id: str
    csm_id: str | None
    segment: str | None
    arr: float | None
    probability: float
    risk_tier: str


@dataclass(frozen=True)
class LatestSurvey:
    """An account's latest survey answer on or before today."""

    account_id: str
    survey_date: date
    score: float
    comment: str | None
    #: Why it needs a follow-up (empty: it does not), set by :meth:`FollowUpRule.judge`.
    reasons: tuple[FollowUpReason, ...] = ()
    #: The configured alarm phrases its comment holds.
    alarm_phrases: tuple[str, ...] = ()

    @property
    def needs_follow_up(self) -> bool:
        return bool(self.reasons)


@dataclass(frozen=True)
class FollowUpRule:
    """When a survey needs a follow-up: a bad score, or an alarming comment at any score."""

    bad_score_at_most: float = 6.0
    alarm: CommentAlarm = CommentAlarm(DEFAULT_ALARM_PHRASES)

    def judge(self, survey: LatestSurvey,
              alarms: Mapping[str, tuple[str, ...]] | None = None) -> LatestSurvey:
        """``survey`` with its reasons. ``alarms``: :meth:`CommentAlarm.index` of the table's
        comments, when already computed (a comment missing from it holds no phrase)."""
        if alarms is None:
            phrases = self.alarm.matches(survey.comment)
        else:
            phrases = alarms.get(survey.comment, ()) if survey.comment else ()
        reasons: tuple[FollowUpReason, ...] = (
            *(("score",) if is_bad(survey.score, self.bad_score_at_most) else ()),
            *(("comment",) if phrases else ()),
        )
        return replace(survey, reasons=reasons, alarm_phrases=phrases)


def load_surveys(data_dir: Path) -> pd.DataFrame | None:
    """The surveys table, checked against its own rules of the data contract (columns,
    types, nulls, the 0-10 range, one answer per account and day: a refused table is a
    :class:`~renewal.errors.DataContractError`), or None when the data directory has none:
    the table is optional, a product may not run surveys."""
    kept = _kept_surveys(data_dir)
    return None if kept is None else kept.value


def latest_surveys_in(
    data_dir: Path, today: date, rule: FollowUpRule
) -> dict[str, LatestSurvey] | None:
    """:func:`latest_surveys` of the data directory's table, judged by ``rule``, kept per
    file version, day and rule: the risk list asks on every render, and selecting the latest
    answers of a 200,000-row table took ~150 ms each time. The comments' alarm phrases are
    found once per file version and rule (the phrases do not depend on the day; matching
    them again each day took ~8 s for 200,000 comments). None when there is no surveys
    table."""
    kept = _kept_surveys(data_dir)
    if kept is None or kept.value is None:
        return None
    alarms = kept.derived(("alarms", rule.alarm), lambda surveys: rule.alarm.index(
        surveys["comment"].tolist() if "comment" in surveys.columns else []))
    return kept.derived((today, rule), lambda surveys: {
        account: rule.judge(survey, alarms)
        for account, survey in latest_surveys(surveys, today).items()
    })


def _kept_surveys(data_dir: Path) -> Kept[pd.DataFrame | None] | None:
    path = find_table(Path(data_dir), "surveys")
    if path is None:
        return None
    return _surveys.get(path, lambda: load_valid_table(Path(data_dir), "surveys"))


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def latest_surveys(surveys: pd.DataFrame, today: date) -> dict[str, LatestSurvey]:
    """Each account's latest answer dated on or before ``today``.

    Rows without a date or a score say nothing the rule can judge and are skipped. Two
    answers on the same latest day break the table's key; the lower score is kept, because
    missing a needed follow-up costs more than an extra call."""
    frame = surveys.dropna(subset=["date", "score"])
    frame = frame[frame["date"] <= pd.Timestamp(today)]
    if frame.empty:
        return {}
    frame = frame.assign(account_id=frame["account_id"].astype(str))
    order = frame.sort_values(["account_id", "date", "score"], ascending=[True, False, True])
    latest = order.drop_duplicates("account_id", keep="first")
    comments = latest["comment"] if "comment" in latest.columns else [None] * len(latest)
    return {
        account: LatestSurvey(account, pd.Timestamp(day).date(), float(score), _text(comment))
        for account, day, score, comment in zip(
            latest["account_id"], latest["date"], latest["score"], comments, strict=True
        )
    }


def is_bad(score: float, bad_score_at_most: float) -> bool:
    """Bad = at or below the threshold (6 by default: the detractor range of 0-10)."""
    return score <= bad_score_at_most


def first_interventions_since(
    session: Session, since: Mapping[str, date], zone: tzinfo = UTC
) -> dict[str, datetime]:
    """Per account, its first intervention recorded on or after the day ``since[account]``
    began in ``zone`` (the surveys' time zone).

    Only ids and times are read: an intervention's private note never leaves the table."""
    first: dict[str, datetime] = {}
    for chunk in chunks(sorted(since)):
        earliest = datetime.combine(min(since[a] for a in chunk), time.min, zone)
        stmt = (
            select(Intervention.account_id, Intervention.assigned_at)
            .where(Intervention.account_id.in_(chunk), Intervention.assigned_at >= earliest)
            .order_by(Intervention.assigned_at, Intervention.id)
        )
        for account_id, assigned_at in session.execute(stmt):
            if account_id not in first and local_day(assigned_at, zone) >= since[account_id]:
                first[account_id] = assigned_at
    return first


def local_day(moment: datetime, zone: tzinfo) -> date:
    """The calendar day ``moment`` (stored in UTC) falls on in ``zone``."""
    return moment.astimezone(zone).date()


def today_in(zone: tzinfo) -> date:
    return datetime.now(zone).date()


def follow_up_item(
    entry: ScoredAccount, survey: LatestSurvey, followed_up_at: datetime | None, today: date
) -> dict[str, Any]:
    """One row of the list: the survey, the account's latest score and where the follow-up is."""
    pending = followed_up_at is None
    return {
        "account_id": entry.account_id,
        "csm_id": entry.csm_id,
        "segment": entry.segment,
        "survey_date": survey.survey_date,
        "score": survey.score,
        "comment": survey.comment,
        "reasons": list(survey.reasons),
        "alarm_phrases": list(survey.alarm_phrases),
        "probability": rounded(entry.probability),
        "risk_tier": entry.risk_tier,
        "arr": entry.arr,
        "status": "pending" if pending else "followed_up",
        "followed_up_at": followed_up_at,
        "days_waiting": (today - survey.survey_date).days if pending else None,
    }


def _order(item: dict[str, Any]) -> tuple[Any, ...]:
    """Pending first; then lowest renewal probability (as shown: 4 digits), oldest survey,
    account id."""
    probability = item["probability"]
    return (
        item["status"] != "pending",
        probability is None,
        probability or 0.0,
        item["survey_date"],
        item["account_id"],
    )


def surveys_needing_follow_up(
    entries: Iterable[ScoredAccount], latest: Mapping[str, LatestSurvey]
) -> list[tuple[ScoredAccount, LatestSurvey]]:
    """The scored accounts given whose latest (judged) survey needs a follow-up
    (surveyed-only accounts, lost or unknown to the scores, are not in ``entries`` and so
    never listed)."""
    return [
        (e, latest[e.account_id])
        for e in entries
        if e.account_id in latest and latest[e.account_id].needs_follow_up
    ]


def survey_follow_ups(
    bad: Sequence[tuple[ScoredAccount, LatestSurvey]],
    first_interventions: Mapping[str, datetime],
    today: date,
    status: StatusFilter,
) -> list[dict[str, Any]]:
    """The follow-up list in the documented order, filtered by ``status``."""
    items = [
        follow_up_item(entry, survey, first_interventions.get(entry.account_id), today)
        for entry, survey in bad
    ]
    if status != "all":
        items = [i for i in items if i["status"] == status]
    return sorted(items, key=_order)
