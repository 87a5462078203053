"""The simulation's day and month grids, month arithmetic and the working-day calendar.

Days are integer offsets from the simulation start (day 0 = ``start``), which keeps every
per-day array a plain numpy index. Months are calendar-free steps of ``start + k months``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from renewal.simulator.params import SimulatorParams

REGIONS: tuple[str, ...] = ("north_america", "europe", "apac", "latam")


def add_months(days: np.ndarray, months: int | np.ndarray) -> np.ndarray:
    """``datetime64[D]`` dates plus whole months, the day clamped to the target month's length."""
    month = days.astype("datetime64[M]")
    day_of_month = (days - month.astype("datetime64[D]")).astype(np.int64)
    target = month + np.asarray(months).astype("timedelta64[M]")
    month_length = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(
        np.int64
    )
    return target.astype("datetime64[D]") + np.minimum(day_of_month, month_length - 1)


def easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month = (h + ell - 7 * m + 114) // 31
    day = (h + ell - 7 * m + 114) % 31 + 1
    return date(year, month, day)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1-based; -1 = last) given weekday (Monday = 0) of a month."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def public_holidays(region: str, year: int) -> list[date]:
    """A small, plausible public-holiday list per region (not any country's official one)."""
    new_year, christmas = date(year, 1, 1), date(year, 12, 25)
    if region == "north_america":
        return [new_year, _nth_weekday(year, 5, 0, -1), date(year, 7, 4),
                _nth_weekday(year, 9, 0, 1), _nth_weekday(year, 11, 3, 4), christmas]
    sunday = easter(year)
    if region == "europe":
        return [new_year, sunday - timedelta(days=2), sunday + timedelta(days=1), date(year, 5, 1),
                christmas, date(year, 12, 26)]
    if region == "latam":
        return [new_year, sunday - timedelta(days=48), sunday - timedelta(days=47),
                sunday - timedelta(days=2), date(year, 5, 1), christmas]
    # apac
    return [new_year, date(year, 5, 1), date(year, 10, 1), date(year, 10, 2), date(year, 10, 3),
            christmas]


@dataclass(frozen=True)
class Calendar:
    """Everything indexed by day or month that the generators share."""

    start: np.datetime64  # day 0
    n_days: int  # days of observed data: [0, n_days)
    month_start_day: np.ndarray  # day offset of ``start + k months``, k over the latent horizon
    day_factor: np.ndarray  # (regions, n_days) multiplier of logins: weekends, holidays
    calendar_month: np.ndarray  # (n_days,) index of the calendar month of each day
    calendar_month_last_day: np.ndarray  # (calendar months,) day offset of each month's last day

    @property
    def end_day(self) -> int:
        """Last observed day offset."""
        return self.n_days - 1

    def month_of_day(self, days: np.ndarray) -> np.ndarray:
        """Index of the latent month containing each day offset."""
        index = np.searchsorted(self.month_start_day, days, side="right") - 1
        return np.clip(index, 0, self.month_start_day.size - 2)

    def dates(self, days: np.ndarray) -> np.ndarray:
        """Day offsets as ``datetime64[D]``."""
        return self.start + np.asarray(days).astype("timedelta64[D]")


def build_calendar(start: date, months: int, latent_months: int,
                   params: SimulatorParams) -> Calendar:
    """The grids for a simulation of ``months`` observed months; latent state runs longer."""
    start64 = np.datetime64(start, "D")
    month_starts = add_months(np.full(latent_months + 1, start64), np.arange(latent_months + 1))
    month_start_day = (month_starts - start64).astype(np.int64)
    n_days = int(month_start_day[months])
    dates = start64 + np.arange(n_days).astype("timedelta64[D]")
    weekday = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    base = np.ones(n_days)
    base[weekday == 5] = params.weekend_factor[0]
    base[weekday == 6] = params.weekend_factor[1]
    month_index = dates.astype("datetime64[M]").astype(np.int64)
    day_of_month = (dates - dates.astype("datetime64[M]").astype("datetime64[D]")).astype(int) + 1
    year_end = (month_index % 12 == 11) & (day_of_month >= 24)
    base[year_end] *= params.year_end_factor
    years = range(start.year, int(dates[-1].astype("datetime64[Y]").astype(int)) + 1971)
    factor = np.empty((len(REGIONS), n_days))
    for r, region in enumerate(REGIONS):
        holidays = [np.datetime64(d, "D") for y in years for d in public_holidays(region, y)]
        factor[r] = base * np.where(np.isin(dates, holidays), params.holiday_factor, 1.0)
    calendar_month = month_index - month_index[0]
    last_day = np.flatnonzero(np.diff(np.append(calendar_month, calendar_month[-1] + 1)))
    return Calendar(start64, n_days, month_start_day, factor, calendar_month, last_day)
