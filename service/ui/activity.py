"""An account's daily activity tiers for the calendar: the feature pipeline's own daily table.

:func:`features.daily.daily_activity` (zero / low / mid / high per day, the domain's rule with
the configured thresholds) runs on the data directory of the latest scoring run, narrowed to
one account before the engine reads anything, over the year up to the score's as_of. Results
are kept per (data directory, as_of, account) in a small in-process LRU.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from service.context import ServiceContext
from service.db import scores as scores_db

log = logging.getLogger("service.ui")
CALENDAR_DAYS = 364
_CACHE_SIZE = 256
_lock = threading.Lock()
_cache: OrderedDict[tuple[str, date, str], ActivityYear] = OrderedDict()


@dataclass(frozen=True)
class ActivityYear:
    """The calendar's days, or why there are none (``reason``)."""

    days: tuple[tuple[date, str, int], ...] = ()
    reason: str | None = None

    @property
    def tier_days(self) -> dict[str, int]:
        counts = {"zero": 0, "low": 0, "mid": 0, "high": 0}
        for _day, tier, _actions in self.days:
            counts[tier] = counts.get(tier, 0) + 1
        return counts

    def recent(self, days: int) -> dict[str, int]:
        """Tier counts over the last ``days`` days of the calendar."""
        if not self.days:
            return {}
        cut = self.days[-1][0] - timedelta(days=days - 1)
        counts = {"zero": 0, "low": 0, "mid": 0, "high": 0}
        for day, tier, _actions in self.days:
            if day >= cut:
                counts[tier] = counts.get(tier, 0) + 1
        return counts


def _account_source(data_dir: Path, account_id: str):  # noqa: ANN202 - features.source.Source
    from features.source import open_source

    source = open_source(data_dir)
    tables = {
        name: table.filter(table.account_id == account_id) if "account_id" in table.columns
        else table
        for name, table in source.tables.items()
    }
    return dataclasses.replace(source, tables=tables)


def _compute(ctx: ServiceContext, data_dir: Path, account_id: str, as_of: date) -> ActivityYear:
    from features.config import load_feature_config
    from features.daily import daily_activity

    config = load_feature_config(ctx.settings.feature_config)
    source = _account_source(data_dir, account_id)
    if "usage" not in source.tables:
        return ActivityYear(reason="the data directory has no usage table")
    since = as_of - timedelta(days=CALENDAR_DAYS)
    frame = daily_activity(source, as_of, config, since=since).to_pandas()
    if frame.empty or int(frame["key_actions"].sum()) == 0 and int(frame["logins"].sum()) == 0:
        return ActivityYear(reason=f"no usage recorded for this account since {since}")
    frame = frame.sort_values("date")
    days = tuple(
        (d.date() if hasattr(d, "date") else d, str(t), int(k))
        for d, t, k in zip(frame["date"], frame["tier"], frame["key_actions"], strict=True)
    )
    return ActivityYear(days=days)


def activity_year(ctx: ServiceContext, account_id: str, as_of: date) -> ActivityYear:
    """The account's daily tiers over the year to ``as_of`` (or the reason there are none)."""
    with ctx.sessions() as session:
        run = scores_db.latest_run(session)
    if run is None:
        return ActivityYear(reason="no scoring run yet")
    data_dir = Path(run.data_dir)
    if not data_dir.is_dir():
        return ActivityYear(reason="the data directory of the latest scoring run is not "
                                   "readable by this server")
    key = (str(data_dir), as_of, account_id)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    try:
        result = _compute(ctx, data_dir, account_id, as_of)
    except Exception as exc:  # an auxiliary panel: say why, never fail the account page
        log.warning("activity calendar not computed: %s", type(exc).__name__)
        return ActivityYear(reason=f"the usage data cannot be read ({type(exc).__name__})")
    with _lock:
        _cache[key] = result
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return result
