"""The score history and the scoring runs: write a run's rows, read the latest per account."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from renewal.errors import RenewalError
from service.db.chunks import chunks_or_all
from service.db.models import Score, ScoringRun
from service.db.upsert import upsert


@dataclass(frozen=True)
class LatestScore:
    """An account's newest score plus the probability about ``window`` days before it."""

    score: Score
    earlier_probability: float | None


def _lock_key(name: str) -> int:
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


#: Shared by every account's read-modify-write, taken alone by a scoring run's reads of the
#: health inputs and its store (:func:`lock_all_accounts`).
_ALL_ACCOUNTS = _lock_key("renewal.all-accounts")


#: How long a re-score waits for a scoring run's store before it is answered 503: the
#: store of 200,000 accounts takes tens of seconds on PostgreSQL, and every waiting request
#: held a worker thread and a pooled connection (16 of them made /readyz time out: review).
STORE_WAIT_SECONDS = 2


class ScoresBeingStored(RenewalError):
    """A scoring run is storing its scores: the re-score would overwrite them or be hidden
    by them, so it is refused for now (retry in a few seconds)."""


def lock_account(session: Session, account_id: str) -> None:
    """Serialise read-modify-writes of one account's latest score until the transaction ends.

    PostgreSQL: a transaction-scoped advisory lock on the account (other accounts are not
    blocked), under a shared lock that a scoring run's store takes alone, so a re-score never
    commits in the middle of a run's store; waiting for a run longer than
    ``STORE_WAIT_SECONDS`` raises :class:`ScoresBeingStored`. SQLite: nothing to do,
    :func:`service.db.engine.transaction` already holds the database's write lock. Call it
    first in the transaction, before reading the score."""
    if session.get_bind().dialect.name != "postgresql":
        return
    from sqlalchemy.exc import OperationalError

    configured = session.execute(text("SELECT current_setting('lock_timeout')")).scalar_one()
    session.execute(text("SELECT set_config('lock_timeout', :wait, true)"),
                    {"wait": f"{STORE_WAIT_SECONDS}s"})
    try:
        with session.begin_nested():  # a timeout aborts the savepoint, not the transaction
            session.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"),
                            {"key": _ALL_ACCOUNTS})
    except OperationalError as exc:
        if getattr(getattr(exc, "orig", None), "sqlstate", None) != "55P03":  # lock_not_available
            raise
        raise ScoresBeingStored(
            "a scoring run is storing its scores: retry in a few seconds") from None
    # Back to the operator's own setting (options=-c lock_timeout=... in the URL), not 0.
    session.execute(text("SELECT set_config('lock_timeout', :wait, true)"), {"wait": configured})
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                    {"key": _lock_key(f"renewal.account:{account_id}")})


def lock_all_accounts(session: Session) -> None:
    """Wait for every account's read-modify-write under way, and keep new ones waiting until
    the transaction ends (a scoring run: the inputs it reads are then all committed, and no
    re-score commits while it stores). PostgreSQL only, as :func:`lock_account`."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ALL_ACCOUNTS})


def upsert_scores(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Write score rows; a row for the same account, date and model version is replaced."""
    return upsert(session, Score.__table__, rows, ("account_id", "as_of", "model_version"))


def record_run(session: Session, run: ScoringRun) -> ScoringRun:
    """Remember one scoring run (metrics default to the latest run's data and date)."""
    session.add(run)
    session.flush()
    return run


def latest_run(session: Session) -> ScoringRun | None:
    """The scoring run of the newest as_of (of those, the last stored), or None before the
    first one: the data the metrics, the forecast and the ops page read. The last stored run
    was taken before, so a backfill of an older date moved them all back to it (found by
    audit)."""
    return session.scalars(select(ScoringRun)
                           .order_by(ScoringRun.as_of.desc(), ScoringRun.id.desc())
                           .limit(1)).first()


def recent_runs(session: Session, limit: int) -> list[ScoringRun]:
    """The ``limit`` most recent scoring runs, newest first."""
    return list(session.scalars(select(ScoringRun).order_by(ScoringRun.id.desc()).limit(limit)))


def latest_run_id(session: Session) -> int | None:
    """Id of the most recent scoring run (a new one may have marked accounts lost)."""
    return session.scalar(select(func.max(ScoringRun.id)))


def scores_changed_at(session: Session) -> datetime | None:
    """When any score row was last written (the caches poll this to stay fresh)."""
    return session.scalar(select(func.max(Score.created_at)))


def changed_account_ids(session: Session, since: datetime) -> list[str]:
    """Accounts with a score row written at or after ``since``."""
    stmt = select(Score.account_id).where(Score.created_at >= since).distinct()
    return list(session.scalars(stmt))


def _ranked_latest(account_ids: Sequence[str] | None, before: date | None = None) -> Any:
    """Rows numbered per account, newest first (as_of, then write time, then id)."""
    rank = (
        func.row_number()
        .over(
            partition_by=Score.account_id,
            order_by=(Score.as_of.desc(), Score.created_at.desc(), Score.id.desc()),
        )
        .label("rank")
    )
    stmt = select(Score.id, rank)
    if account_ids is not None:
        stmt = stmt.where(Score.account_id.in_(account_ids))
    if before is not None:
        stmt = stmt.where(Score.as_of <= before)
    return stmt.subquery()


def latest_scores(
    session: Session, account_ids: Sequence[str] | None = None, window_days: int = 30
) -> list[LatestScore]:
    """The newest score of every account (or of ``account_ids``) with its ``window`` change base.

    The earlier probability is the newest score dated between ``2 × window`` and ``window``
    days before the latest one ("when known": older history does not count as 30 days ago).
    """
    if account_ids is not None and not account_ids:
        return []
    latest: list[Score] = []
    for chunk in chunks_or_all(account_ids):
        ranked = _ranked_latest(chunk)
        stmt = select(Score).join(ranked, Score.id == ranked.c.id).where(ranked.c.rank == 1)
        latest.extend(session.scalars(stmt))
    earlier = _earlier_probabilities(session, latest, window_days)
    return [LatestScore(s, earlier.get(s.account_id)) for s in latest]


def _earlier_probabilities(
    session: Session, latest: list[Score], window_days: int
) -> dict[str, float]:
    by_date: dict[date, list[str]] = {}
    for score in latest:
        by_date.setdefault(score.as_of, []).append(score.account_id)
    found: dict[str, float] = {}
    window = timedelta(days=window_days)
    for as_of, ids in by_date.items():
        newest_allowed, oldest_allowed = as_of - window, as_of - 2 * window
        for chunk in chunks_or_all(ids if len(by_date) > 1 or len(ids) < 5000 else None):
            ranked = _ranked_latest(chunk, before=newest_allowed)
            stmt = (
                select(Score.account_id, Score.as_of, Score.probability)
                .join(ranked, Score.id == ranked.c.id)
                .where(ranked.c.rank == 1, Score.as_of >= oldest_allowed)
            )
            wanted = set(ids)
            for account_id, _as_of, probability in session.execute(stmt):
                if account_id in wanted:
                    found[account_id] = probability
    return found


def scores_by_id(session: Session, ids: Iterable[int]) -> dict[int, Score]:
    """Score rows by primary key (the API reads stored feature vectors this way)."""
    out: dict[int, Score] = {}
    for chunk in chunks_or_all(list(ids)):
        out.update({s.id: s for s in session.scalars(select(Score).where(Score.id.in_(chunk)))})
    return out


def features_by_id(session: Session, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Stored feature vectors by score id (plain rows: no ORM objects on the request path)."""
    out: dict[int, dict[str, Any]] = {}
    for chunk in chunks_or_all(list(ids)):
        stmt = select(Score.id, Score.features).where(Score.id.in_(chunk))
        out.update({score_id: features for score_id, features in session.execute(stmt)})
    return out


def history(session: Session, account_id: str, limit: int = 100) -> list[Score]:
    """An account's scores, newest first."""
    stmt = (
        select(Score)
        .where(Score.account_id == account_id)
        .order_by(Score.as_of.desc(), Score.created_at.desc(), Score.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))
