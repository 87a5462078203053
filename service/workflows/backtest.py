"""Forecast backtest: forecast past months as they would have been forecast, then compare.

For a month M the forecast is made on ``T = first day of M − lead_days``: features as of T
(point in time, from the data directory), scored with the given model, for the contracts
in force on T that end in M. Actual = the ARR (and count) of those contracts that renewed.
A month is only backtested when every one of its contracts is decided. The headline figure
is the share of months whose actual renewed ARR fell inside the forecast's interval, over the
*held-out* months only: a month whose contracts end on or before the end of the model's
calibration window had its outcomes seen in fitting (training or calibration), and a forecast
that covers them says nothing about the next month. Such months are still shown, marked
in-sample, when asked for; by default only held-out months are backtested.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from renewal.errors import RenewalError
from service.workflows.forecast import forecast_group, upcoming_renewals
from service.workflows.outcomes import load_contracts

Progress = Callable[[str, int, int], None]


@dataclass
class MonthResult:
    month: str
    forecast_on: date
    contracts: int
    arr_up_for_renewal: float
    expected_renewed_arr: float
    arr_interval: tuple[float, float]
    actual_renewed_arr: float
    expected_logos: float
    logos_interval: tuple[int, int]
    actual_logos: int
    in_sample: bool = False  # its contracts' outcomes were seen when fitting the model
    # Due contracts of accounts not yet signed on the forecast day (a term backdated before
    # signed_at): that day's forecast could not know them, so they are left out, counted here.
    contracts_before_signing: int = 0

    @property
    def arr_covered(self) -> bool:
        return self.arr_interval[0] <= self.actual_renewed_arr <= self.arr_interval[1]

    @property
    def logos_covered(self) -> bool:
        return self.logos_interval[0] <= self.actual_logos <= self.logos_interval[1]

    def as_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "forecast_on": self.forecast_on.isoformat(),
            "contracts": self.contracts,
            "arr_up_for_renewal": round(self.arr_up_for_renewal, 2),
            "expected_renewed_arr": round(self.expected_renewed_arr, 2),
            "renewed_arr_interval": [round(v, 2) for v in self.arr_interval],
            "actual_renewed_arr": round(self.actual_renewed_arr, 2),
            "arr_covered": self.arr_covered,
            "expected_logos": round(self.expected_logos, 2),
            "logos_interval": list(self.logos_interval),
            "actual_logos": self.actual_logos,
            "logos_covered": self.logos_covered,
            "in_sample": self.in_sample,
            "contracts_before_signing": self.contracts_before_signing,
        }


@dataclass
class BacktestResult:
    level: float
    lead_days: int
    months: list[MonthResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    # The model saw the outcomes of contracts ending up to this day (None: not recorded).
    fitted_until: date | None = None

    @property
    def held_out(self) -> list[MonthResult]:
        return [m for m in self.months if not m.in_sample]

    def coverage(self, what: str = "arr") -> float | None:
        """Share of held-out months whose actual fell in the interval (None without any)."""
        if not self.held_out:
            return None
        hits = [m.arr_covered if what == "arr" else m.logos_covered for m in self.held_out]
        return float(np.mean(hits))

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "lead_days": self.lead_days,
            "fitted_until": None if self.fitted_until is None else self.fitted_until.isoformat(),
            "months_backtested": len(self.months),
            "months_held_out": len(self.held_out),
            "arr_coverage": self.coverage("arr"),
            "logo_coverage": self.coverage("logos"),
            "months": [m.as_dict() for m in self.months],
            "skipped": self.skipped,
        }


def month_start(label: str) -> pd.Timestamp:
    """The first day of month ``YYYY-MM`` (exactly that form: months are compared as labels)."""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}", label):
            raise ValueError(label)
        return pd.Timestamp(f"{label}-01")
    except ValueError:
        raise RenewalError(f"{label!r} is not a month YYYY-MM") from None


def fitted_until(scorer: Any) -> date | None:
    """The end of the model's calibration window: the last contract end whose outcome the
    model was fitted on (``training.fit`` records it in the scorer's metadata)."""
    windows = (getattr(scorer, "metadata", None) or {}).get("windows") or {}
    end = windows.get("calibration_end")
    return None if end is None else date.fromisoformat(end)


def held_out_months(months: list[str], until: date | None) -> list[str]:
    """The months starting after ``until`` (all of them when it is unknown)."""
    if until is None:
        return list(months)
    return [m for m in months if month_start(m).date() > until]


def decided_months(contracts: pd.DataFrame) -> list[str]:
    """Months whose every contract ending in them has a known outcome."""
    months = contracts["end_date"].dt.strftime("%Y-%m")
    undecided = set(months[contracts["renewed"].isna()])
    return sorted(set(months) - undecided)


def months_to_backtest(
    contracts: pd.DataFrame,
    until: date | None,
    months: list[str] | None = None,
    since: str | None = None,
) -> list[str]:
    """The months ``renewal report`` backtests: those asked for with ``--month`` (from
    ``since`` on, when given); else with ``since`` every decided month from it on (in-sample
    ones included, marked as such); else, by default, the decided held-out months only."""
    first = None if since is None else month_start(since)
    if months:
        for label in months:
            month_start(label)  # a clear error for a bad label, before any work
        return [m for m in months if first is None or month_start(m) >= first]
    decided = decided_months(contracts)
    if first is not None:
        return [m for m in decided if month_start(m) >= first]
    return held_out_months(decided, until)


def backtest_forecast(
    data_dir: Path,
    scorer: Any,
    months: list[str] | None = None,
    lead_days: int = 90,
    level: float = 0.9,
    draws: int = 10_000,
    seed: int = 0,
    feature_config: Any = None,
    progress: Progress | None = None,
) -> BacktestResult:
    """Backtest the forecast over ``months`` (default: every fully decided month after the
    model's calibration window); months within it are marked in-sample."""
    from features.config import load_feature_config
    from features.source import open_source
    from features.vectors import features_as_of

    config = feature_config or load_feature_config(None)
    contracts = load_contracts(Path(data_dir))
    contracts = contracts.assign(account_id=contracts["account_id"].astype(str))
    until = fitted_until(scorer)
    # An empty list asked for stays empty (e.g. --since after every decided month).
    candidates = held_out_months(decided_months(contracts), until) if months is None else months
    decided = set(decided_months(contracts))
    ending = set(contracts["end_date"].dt.strftime("%Y-%m"))
    result = BacktestResult(level, lead_days, fitted_until=until)
    source = open_source(Path(data_dir))
    first_signed = None
    signed_at: pd.Series | None = None  # accounts.signed_at by id, read when first needed
    say = progress or (lambda _stage, _done, _total: None)
    for done, label in enumerate(candidates):
        say(f"backtesting {label}", done, len(candidates))
        start = month_start(label)
        if label not in ending:
            result.skipped[label] = "no contract ends this month"
            continue
        if label not in decided:
            result.skipped[label] = "some contracts ending this month are undecided"
            continue
        forecast_on = start - pd.Timedelta(days=lead_days)
        end = start + pd.offsets.MonthEnd(0)
        due = upcoming_renewals(contracts, forecast_on, end)
        due = due[due["end_date"] >= start]
        if due.empty:
            result.skipped[label] = "no contract in force on the forecast day ends this month"
            continue
        vectors = features_as_of(source, forecast_on.date(), config)
        if first_signed is None and vectors.empty:
            result.skipped[label] = "no account signed by the forecast day"
            continue
        X = scorer.prepare(vectors)
        scored = pd.DataFrame({
            "account_id": vectors["account_id"].astype(str).to_numpy(),
            "probability": scorer.predict(X),
        })
        rows = due.merge(scored, on="account_id", how="left")
        # Every account signed by the forecast day has a vector: the others signed later.
        # A missing vector of any other account is a fault, not a count (found by review).
        missing = rows["probability"].isna()
        if signed_at is None:
            accounts = source.tables["accounts"]
            frame = source.backend.execute(accounts.select("account_id", "signed_at"))
            signed_at = pd.Series(pd.to_datetime(frame["signed_at"]).to_numpy(),
                                  index=frame["account_id"].astype(str))
        later = rows["account_id"].map(signed_at) > forecast_on
        unexplained = missing & ~later.fillna(False).astype(bool)
        if unexplained.any():
            examples = ", ".join(rows.loc[unexplained, "contract_id"].astype(str).head(3))
            raise RenewalError(
                f"{label}: {int(unexplained.sum())} contract(s) have no feature vector on "
                f"{forecast_on.date()} (e.g. {examples})")
        rows = rows[~missing]
        if rows.empty:
            result.skipped[label] = (f"the {int(missing.sum())} contract(s) in force on the "
                                     "forecast day belong to accounts signed after it")
            continue
        group = forecast_group(label, rows["probability"].to_numpy(), rows["arr"].to_numpy(),
                               level, draws, seed, rows["account_id"].to_numpy())
        renewed = rows["renewed"].astype(bool).to_numpy()
        # A logo renewed when any of its terms ending this month renewed (docs/metrics.md).
        renewed_logos = int(rows.assign(renewed_=renewed).groupby("account_id")["renewed_"]
                            .any().sum())
        result.months.append(MonthResult(
            month=label,
            forecast_on=forecast_on.date(),
            contracts=group.contracts,
            arr_up_for_renewal=group.arr_up_for_renewal,
            expected_renewed_arr=group.expected_renewed_arr,
            arr_interval=group.renewed_arr_interval,
            actual_renewed_arr=float(rows["arr"].to_numpy()[renewed].sum()),
            expected_logos=group.expected_logos,
            logos_interval=group.logos_interval,
            actual_logos=renewed_logos,
            in_sample=until is not None and start.date() <= until,
            contracts_before_signing=int(missing.sum()),
        ))
    say("done", len(candidates), len(candidates))
    return result
