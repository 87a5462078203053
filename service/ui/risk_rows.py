"""The risk list of the web page: rows from the score cache, filtered, sorted and paged.

The rows are the API's risk list (``GET /v1/risk-list``): the same in-memory latest scores,
the same object-level rule (:meth:`~service.keys.Principal.may_see`; a CSM key asking for
another CSM's list is refused with 403, as on the API), ARR at risk = ARR × (1 − p). The page
adds filters the list's users asked for (risk tier, stale inputs, activation status, a
pending survey follow-up) and sorting on any column; the CSV export is the same rows with the
same filters.

The survey follow-up of each row comes from :mod:`service.ui.survey_status`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from service.cache import CachedScore, rounded
from service.keys import Principal
from service.problems import ProblemError, forbidden
from service.ui.survey_status import SurveyFollowUps

RISK_TIERS = ("high", "medium", "low")
#: Activation status (the keys are the filter's URL values) and its words. ``activated`` and
#: ``past_window_not_activated`` are about activation WITHIN the window (domain §2): an
#: account that activated after its window closed is ``past_window`` too, so its words must
#: not say "not activated" (its drivers may say "activated 167 days after signing").
ACTIVATION = {
    "activated": "Activated",
    "in_window": "Not yet, window open",
    "past_window": "Not activated within window",
    "unknown": "Unknown",
}
#: The survey follow-up filter's choices (``GET /v1/survey-follow-ups?status=pending``).
SURVEY = {"pending": "Pending"}
SORTS = {
    "arr_at_risk": "ARR at risk",
    "probability": "Probability",
    "change_30d": "Change 30 days",
    "arr": "ARR",
    "account_id": "Account",
    "name": "Name",
    "csm_id": "CSM",
    "segment": "Segment",
    "days_to_renewal": "Renewal",
}
#: Direction a column sorts in first (the riskiest first; the soonest renewal first).
DEFAULT_DIRECTION = {"arr_at_risk": "desc", "probability": "asc", "change_30d": "asc",
                     "arr": "desc", "account_id": "asc", "name": "asc", "csm_id": "asc",
                     "segment": "asc", "days_to_renewal": "asc"}
PAGE_SIZE = 50


@dataclass(frozen=True)
class RiskRow:
    account_id: str
    csm_id: str | None
    segment: str | None
    arr: float | None
    probability: float
    change_30d: float | None
    arr_at_risk: float | None  # None when the ARR is unknown (not "0 at risk")
    risk_tier: str
    activation: str  # a key of ACTIVATION
    inputs_stale: bool
    inputs_age_days: int | None
    #: No CSM health input was ever recorded (the API's ``inputs.never_surveyed``); nothing
    #: to do with the customer's satisfaction surveys. The page says "No CSM input".
    never_surveyed: bool
    top_risk_driver: str | None
    as_of: date
    #: Days a bad latest survey has waited for a follow-up; None when none is pending.
    survey_days_waiting: int | None = None
    #: Days from signing to activation, whenever it came (a late one too); None: not yet.
    days_to_activation: int | None = None
    #: The customer's name from the accounts snapshot; None when the data has none.
    name: str | None = None
    #: Days from as_of to the main term's last day (below 0: overdue, its renewal still
    #: open); None when unknown. The page had no renewal date at all (found by audit).
    days_to_renewal: int | None = None

    @property
    def renewal_date(self) -> date | None:
        if self.days_to_renewal is None:
            return None
        return self.as_of + timedelta(days=self.days_to_renewal)

    @property
    def activation_words(self) -> str:
        """The status in words; past the window, an account that did activate later says so
        ("Activated late, day 167"): it runs its business in the product now, which
        "not activated" would deny."""
        if self.activation == "past_window" and self.days_to_activation is not None:
            return f"Activated late, day {self.days_to_activation}"
        return ACTIVATION[self.activation]


@dataclass(frozen=True)
class PageFilters:
    """The risk-list page's form: its filters, sort and direction (the API's filters are
    ``service.risk_index.RiskFilters``)."""

    segment: str | None = None
    tier: str | None = None
    stale: bool | None = None
    activation: str | None = None
    csm: str | None = None
    sort: str = "arr_at_risk"
    direction: str = "desc"
    survey: str | None = None  # a key of SURVEY

    def query(self, **changes: Any) -> dict[str, str]:
        """The filters as query parameters (for links), with ``changes`` applied."""
        values = {"segment": self.segment, "tier": self.tier,
                  "stale": None if self.stale is None else ("yes" if self.stale else "no"),
                  "activation": self.activation, "survey": self.survey, "csm": self.csm,
                  "sort": self.sort, "dir": self.direction}
        values.update(changes)
        return {k: str(v) for k, v in values.items() if v not in (None, "")}


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _invalid(name: str, value: str, allowed: Iterable[str]) -> ProblemError:
    message = f"must be one of {', '.join(allowed)}"
    return ProblemError(422, "validation-error", f"invalid query.{name}: {message}",
                        errors=[{"field": f"query.{name}", "message": message,
                                 "type": "enum"}])


def parse_filters(principal: Principal, segment: str | None, tier: str | None,
                  stale: str | None, activation: str | None, csm: str | None,
                  sort: str | None, direction: str | None,
                  survey: str | None = None) -> PageFilters:
    """Form values (empty = any) → filters; 422 for a value no form offers, 403 for a CSM
    key asking for another CSM's accounts (the API's rule)."""
    tier, activation, csm, survey = _blank(tier), _blank(activation), _blank(csm), _blank(survey)
    stale_text, sort, direction = _blank(stale), _blank(sort), _blank(direction)
    if tier is not None and tier not in RISK_TIERS:
        raise _invalid("tier", tier, RISK_TIERS)
    if activation is not None and activation not in ACTIVATION:
        raise _invalid("activation", activation, ACTIVATION)
    if stale_text is not None and stale_text not in ("yes", "no"):
        raise _invalid("stale", stale_text, ("yes", "no"))
    if survey is not None and survey not in SURVEY:
        raise _invalid("survey", survey, SURVEY)
    sort = sort or "arr_at_risk"
    if sort not in SORTS:
        raise _invalid("sort", sort, SORTS)
    direction = direction or DEFAULT_DIRECTION[sort]
    if direction not in ("asc", "desc"):
        raise _invalid("dir", direction, ("asc", "desc"))
    if principal.role == "csm":
        if csm is not None and csm != principal.csm_id:
            raise forbidden("a CSM key lists only its own accounts")
        csm = None  # implied: a CSM sees only their own accounts
    return PageFilters(_blank(segment), tier,
                       None if stale_text is None else stale_text == "yes", activation, csm,
                       sort, direction, survey)


def inputs_status(entry: CachedScore) -> dict[str, Any]:
    """The stale-input status the API serves with the score. It used to be decoded from the
    body and kept by ``score_id``, which a health input's re-score keeps: the page then kept
    listing a just-surveyed account as stale until a restart."""
    return entry.inputs or {}


def activation_status(entry: CachedScore) -> str:
    if entry.activated:
        return "activated"
    if entry.past_window_not_activated:
        return "past_window"
    if entry.activated is False:
        return "in_window"
    return "unknown"


def _known(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def row_of(entry: CachedScore, survey_days_waiting: int | None = None) -> RiskRow:
    """One row; an unknown ARR leaves ARR at risk unknown too (the API's ``arr_at_risk``
    counts it as 0, which on the page would read as "nothing at risk" and sort as such)."""
    inputs = inputs_status(entry)
    arr = _known(entry.arr)
    return RiskRow(
        account_id=entry.account_id, csm_id=entry.csm_id, segment=entry.segment,
        # The probability as the API serves it (4 decimals): rounded down from the raw value,
        # 0.66996 read 66 % here and 67 % on the account page (found by audit).
        arr=arr, probability=rounded(entry.probability), change_30d=entry.change_30d,
        arr_at_risk=None if arr is None else entry.arr_at_risk, risk_tier=entry.risk_tier,
        activation=activation_status(entry), inputs_stale=bool(inputs.get("stale")),
        inputs_age_days=inputs.get("age_days"), never_surveyed=bool(inputs.get("never_surveyed")),
        top_risk_driver=entry.top_risk_drivers[0] if entry.top_risk_drivers else None,
        as_of=entry.as_of, survey_days_waiting=survey_days_waiting,
        days_to_activation=entry.days_to_activation, name=entry.name,
        days_to_renewal=entry.days_to_renewal,
    )


def visible_entries(order: list[CachedScore], principal: Principal) -> list[CachedScore]:
    return [e for e in order if principal.may_see(e.csm_id)]


def risk_rows(order: list[CachedScore], principal: Principal, f: PageFilters,
              follow_ups: SurveyFollowUps | None = None) -> list[RiskRow]:
    """Every visible row that passes the filters, in the chosen order. Without
    ``follow_ups`` no row has a pending survey follow-up (the survey filter keeps none)."""
    waiting = follow_ups.days_waiting() if follow_ups is not None else {}
    rows = []
    for entry in visible_entries(order, principal):
        if f.survey == "pending" and entry.account_id not in waiting:
            continue
        if f.segment is not None and entry.segment != f.segment:
            continue
        if f.tier is not None and entry.risk_tier != f.tier:
            continue
        if f.csm is not None and entry.csm_id != f.csm:
            continue
        row = row_of(entry, waiting.get(entry.account_id))
        if f.stale is not None and row.inputs_stale is not f.stale:
            continue
        if f.activation is not None and row.activation != f.activation:
            continue
        rows.append(row)
    return sort_rows(rows, f.sort, f.direction)


def _sort_value(row: RiskRow, sort: str) -> Any:
    """The value a column sorts by: names alphabetically whatever their case ("de Vries"
    beside "De Vries"), the rest as they are."""
    value = getattr(row, sort)
    return value.casefold() if sort == "name" and value is not None else value


def sort_rows(rows: list[RiskRow], sort: str, direction: str) -> list[RiskRow]:
    """Sorted on ``sort``; missing values last in either direction, ties by account id."""
    reverse = direction == "desc"
    present = [r for r in rows if getattr(r, sort) is not None]
    missing = [r for r in rows if getattr(r, sort) is None]
    present.sort(key=lambda r: r.account_id)
    present.sort(key=lambda r: _sort_value(r, sort), reverse=reverse)
    missing.sort(key=lambda r: r.account_id)
    return present + missing


def options(
    order: list[CachedScore], principal: Principal, chosen: PageFilters
) -> dict[str, list[str]]:
    """Values the filter menus offer: segments and CSMs among the visible accounts, plus the
    chosen ones. A bookmarked link may name a segment or CSM that no longer has an account;
    without it in the menu, the menu would say "All segments" over a list it filters."""
    visible = visible_entries(order, principal)
    segments = {e.segment for e in visible if e.segment}
    csms = {e.csm_id for e in visible if e.csm_id}
    if chosen.segment is not None:
        segments.add(chosen.segment)
    if chosen.csm is not None:
        csms.add(chosen.csm)
    return {"segments": sorted(segments), "csms": sorted(csms)}


CSV_COLUMNS = ("account_id", "name", "csm_id", "segment", "probability", "change_30d_points",
               "arr", "arr_at_risk", "risk_tier", "activation_status", "inputs_stale",
               "inputs_age_days", "top_risk_driver", "as_of", "survey_follow_up_days_waiting",
               "renewal_date", "days_to_renewal")


def _cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula is quoted (CSV injection): ids, names
    and drivers come from the customer's data, a name too ("=HYPERLINK(...)"). A line break
    inside a value becomes a space: quoted, it is one cell to a spreadsheet, but a tool that
    reads the file line by line would start a line with what follows it ("\n=1+1")."""
    if not isinstance(value, str):
        return value
    value = " ".join(value.splitlines())
    if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(rows: list[RiskRow], follow_ups_known: bool = True) -> str:
    """The rows as CSV; ``follow_ups_known`` False (the surveys could not be read) writes
    ``unknown`` as the days waiting, never a blank that reads "none pending"."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow([
            _cell(r.account_id), _cell(r.name or ""), _cell(r.csm_id or ""),
            _cell(r.segment or ""),
            f"{r.probability:.4f}",
            "" if r.change_30d is None else f"{100 * r.change_30d:.1f}",
            "" if r.arr is None else f"{r.arr:.2f}",
            "" if r.arr_at_risk is None else f"{r.arr_at_risk:.2f}", r.risk_tier,
            r.activation, "true" if r.inputs_stale else "false",
            "" if r.inputs_age_days is None else r.inputs_age_days,
            _cell(r.top_risk_driver or ""), r.as_of.isoformat(),
            ("unknown" if not follow_ups_known
             else "" if r.survey_days_waiting is None else r.survey_days_waiting),
            "" if r.renewal_date is None else r.renewal_date.isoformat(),
            "" if r.days_to_renewal is None else r.days_to_renewal,
        ])
    return out.getvalue()
