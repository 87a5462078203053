"""The latest score of every account, held in memory: the hot path never touches the database.

Each account's GET response body is rendered once, when its score is loaded; the risk list
walks a list pre-sorted by ARR at risk. The cache is rebuilt at start-up and after a scoring
run or model reload, and refreshed incrementally when another process writes scores (the
scoring job, a health-input re-score in another worker): see :meth:`ScoreCache.refresh`.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from service.config import ServiceSettings
from service.db import accounts as accounts_db
from service.db import scores as scores_db
from service.db.models import Account, Score
from service.workflows.stale_inputs import stale_status

#: An incremental refresh touching more accounts than this reloads everything instead.
FULL_RELOAD_ABOVE = 5000
#: Re-read rows written this long before the last watermark (clocks of writers may differ).
WATERMARK_OVERLAP = timedelta(seconds=5)
#: The feature config's default ``stale_input_days`` (the app passes the configured value).
DEFAULT_STALE_INPUT_DAYS = 90


@dataclass(slots=True)
class CachedScore:
    """What the API needs about one account's latest score, ready to serve."""

    account_id: str
    csm_id: str | None
    segment: str | None
    arr: float | None
    activated: bool | None
    past_window_not_activated: bool | None
    probability: float
    heuristic_probability: float | None
    risk_tier: str
    as_of: date
    model_name: str
    model_version: str
    change_30d: float | None
    earlier_probability: float | None
    score_id: int
    top_risk_drivers: tuple[str, ...]
    body: bytes
    #: The stored vector encoded for the served model, filled on first POST /v1/score
    #: (:mod:`service.encoded`); a re-loaded score is a new entry, so it never goes stale.
    encoded: Any = None
    #: The body's ``inputs`` (stale manual inputs), kept decoded: the risk list's filter and
    #: the ops page read it for every account, and a re-score is a new entry.
    inputs: dict[str, Any] | None = None
    #: Days from as_of to the end of the account's main term (negative: the term ended and
    #: its renewal is still open), from the scored vector; None when unknown.
    days_to_renewal: int | None = None
    #: Days from signing to activation, whenever it came (None: not activated, or unknown).
    days_to_activation: int | None = None
    #: The customer's display name from the accounts snapshot (PII: served to the account's
    #: readers, never logged); None when the data has none.
    name: str | None = None

    @property
    def renewal_date(self) -> date | None:
        """The main term's last day: the renewal the CS team has to win."""
        if self.days_to_renewal is None:
            return None
        return self.as_of + timedelta(days=self.days_to_renewal)

    @property
    def inputs_stale(self) -> bool:
        """The CSM's manual inputs are stale or were never given (``inputs.stale``)."""
        return bool((self.inputs or {}).get("stale"))

    @property
    def arr_at_risk(self) -> float:
        """ARR × (1 − renewal probability): the money the risk list is sorted by."""
        return (self.arr or 0.0) * (1.0 - self.probability)

    @property
    def drop_points(self) -> float | None:
        """Percentage points lost over the change window (positive = fell)."""
        return None if self.change_30d is None else -100.0 * self.change_30d


def _lost(account: Account | None) -> bool:
    """Whether the latest run found the account lost (service.lost_accounts): its earlier
    scores stay in the history but are no longer served or listed."""
    return account is not None and account.lost_on is not None


def rounded(value: float | None, digits: int = 4) -> float | None:
    """JSON-safe rounding (NaN becomes null)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), digits)


#: The keys of a driver in the order the API documents and POST /v1/score writes them.
DRIVER_KEYS = ("feature", "description", "value", "contribution")


def _in_order(drivers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drivers with their keys in one order: PostgreSQL's JSONB stores keys sorted by length,
    so GET renewal said value, feature, description, contribution there (found by audit).
    Every driver of a list has one layout: when the first starts with "feature" (SQLite, and
    any store keeping the order), the list is taken as it is, at no cost per driver."""
    if not drivers or next(iter(drivers[0])) == DRIVER_KEYS[0]:
        return drivers
    return [{**{k: d[k] for k in DRIVER_KEYS if k in d}, **d} for d in drivers]


def renewal_view(
    score: Score,
    earlier_probability: float | None,
    stale_days: int = DEFAULT_STALE_INPUT_DAYS,
    name: str | None = None,
) -> dict[str, Any]:
    """The public body of GET /v1/accounts/{id}/renewal for one stored score.

    ``inputs`` says whether the CSM's judgement behind the score is older than ``stale_days``
    (issue 8: stale manual inputs are marked in responses), by the pipeline's own rule;
    ``name`` is the customer's name in the accounts snapshot (null when unknown)."""
    change = None if earlier_probability is None else score.probability - earlier_probability
    return {
        "account_id": score.account_id,
        "name": name,
        "probability": rounded(score.probability),
        "risk_tier": score.risk_tier,
        "heuristic_probability": rounded(score.heuristic_probability),
        "as_of": score.as_of.isoformat(),
        "model": {"name": score.model_name, "version": score.model_version},
        "change_30d": rounded(change),
        "drivers": {
            "risk_drivers": _in_order(score.drivers.get("risk_drivers", [])),
            "protective_factors": _in_order(score.drivers.get("protective_factors", [])),
        },
        "scored_at": score.created_at.isoformat(),
        "inputs": stale_status(score.features or {}, score.as_of, stale_days),
    }


def cached_score(
    latest: scores_db.LatestScore,
    account: Account | None,
    stale_days: int = DEFAULT_STALE_INPUT_DAYS,
) -> CachedScore:
    """One cache entry from a stored score and the account's snapshot."""
    score = latest.score
    name = account.name if account else None
    view = renewal_view(score, latest.earlier_probability, stale_days, name)
    return CachedScore(
        account_id=score.account_id,
        csm_id=account.csm_id if account else None,
        segment=account.segment if account else None,
        arr=account.arr if account else None,
        activated=account.activated if account else None,
        past_window_not_activated=account.past_window_not_activated if account else None,
        probability=score.probability,
        heuristic_probability=score.heuristic_probability,
        risk_tier=score.risk_tier,
        as_of=score.as_of,
        model_name=score.model_name,
        model_version=score.model_version,
        change_30d=view["change_30d"],
        earlier_probability=latest.earlier_probability,
        score_id=score.id,
        top_risk_drivers=tuple(d.get("description", "") for d in view["drivers"]["risk_drivers"]),
        body=json.dumps(view, separators=(",", ":")).encode(),
        inputs=view["inputs"],
        days_to_renewal=_whole_days((score.features or {}).get("days_to_renewal")),
        days_to_activation=_whole_days((score.features or {}).get("days_to_activation")),
        name=name,
    )


def _whole_days(value: Any) -> int | None:
    """A stored feature's day count as an int (JSON may hold 41.0), None when unknown."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else int(round(number))


def _risk_order(entries: dict[str, CachedScore]) -> list[CachedScore]:
    return sorted(entries.values(), key=lambda e: (-e.arr_at_risk, e.account_id))


class ScoreCache:
    """Latest scores by account id, plus the risk-list order. Readers never lock."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: ServiceSettings,
        stale_input_days: int = DEFAULT_STALE_INPUT_DAYS,
    ):
        self._factory = session_factory
        self._settings = settings
        self.stale_input_days = stale_input_days
        self._entries: dict[str, CachedScore] = {}
        self._order: list[CachedScore] = []
        self._watermark: datetime | None = None
        self._run_id: int | None = None
        self._write_lock = threading.Lock()
        self.loaded_at: datetime | None = None

    # -- reads (lock-free: each reference is swapped whole) --
    def get(self, account_id: str) -> CachedScore | None:
        return self._entries.get(account_id)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def risk_order(self) -> list[CachedScore]:
        return self._order

    @property
    def latest_as_of(self) -> date | None:
        return max((e.as_of for e in self._order), default=None)

    # -- writes --
    def load(self) -> int:
        """Rebuild everything from the database; returns the number of accounts cached."""
        with self._write_lock, self._factory() as session:
            watermark = scores_db.scores_changed_at(session)
            run_id = scores_db.latest_run_id(session)
            latest = scores_db.latest_scores(session, window_days=self._settings.change_window_days)
            accounts = {a.account_id: a for a in accounts_db.all_accounts(session)}
        entries = {
            item.score.account_id: cached_score(
                item, accounts.get(item.score.account_id), self.stale_input_days
            )
            for item in latest
            if not _lost(accounts.get(item.score.account_id))
        }
        order = _risk_order(entries)
        self._entries, self._order = entries, order
        self._watermark, self._run_id = watermark, run_id
        self.loaded_at = datetime.now().astimezone()
        return len(entries)

    def refresh(self) -> int:
        """Pick up scores written since the last look; returns how many accounts changed."""
        with self._factory() as session:
            # A new run first, whatever the watermark says: it may have marked accounts lost
            # (no score row), and its rows may be no newer than a re-score already seen.
            new_run = scores_db.latest_run_id(session) != self._run_id
            newest = scores_db.scores_changed_at(session)
            if newest is None or (not new_run and self._watermark is not None
                                  and newest <= self._watermark):
                return 0
            if self._watermark is None or new_run:
                changed = None
            else:
                changed = scores_db.changed_account_ids(
                    session, self._watermark - WATERMARK_OVERLAP
                )
        if changed is None or len(changed) > FULL_RELOAD_ABOVE:
            return self.load()
        self.reload_accounts(changed, watermark=newest)
        return len(changed)

    def reload_accounts(self, account_ids: list[str], watermark: datetime | None = None) -> None:
        """Re-read the latest score of some accounts (after a re-score) and re-sort."""
        if not account_ids:
            return
        with self._write_lock:
            with self._factory() as session:
                latest = scores_db.latest_scores(
                    session, account_ids, window_days=self._settings.change_window_days
                )
                accounts = accounts_db.accounts_by_id(session, account_ids)
            entries = dict(self._entries)
            for item in latest:
                account = accounts.get(item.score.account_id)
                if _lost(account):
                    entries.pop(item.score.account_id, None)
                    continue
                entries[item.score.account_id] = cached_score(
                    item, account, self.stale_input_days
                )
            order = _risk_order(entries)
            self._entries, self._order = entries, order
            if watermark is not None and (self._watermark is None or watermark > self._watermark):
                self._watermark = watermark
