"""Contract chains and renewal outcomes, drawn from the latent state (never from observables).

Each term's outcome is decided before its end date (90 days for yearly terms, at its start
for monthly ones): ``renewed ~ Bernoulli(p)`` with ``logit p`` a function of the latent health
over the three months before the decision, of whether and when the account activated, and of
tenure. ``p`` is written to ``truth.parquet``: the best any model could know.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from renewal.simulator.calendar import Calendar, add_months
from renewal.simulator.latent import sigmoid
from renewal.simulator.params import SimulatorParams
from renewal.simulator.population import NEVER, Population, date_column


@dataclass(frozen=True)
class Contracts:
    """All contract terms (one entry per term) and what they imply for each account."""

    account: np.ndarray  # account index
    start_day: np.ndarray
    end_day: np.ndarray
    arr: np.ndarray
    next_arr: np.ndarray  # NaN unless renewed
    renewed: np.ndarray  # the drawn outcome (also for terms ending after the window)
    decided: np.ndarray  # end date inside the observed window: outcome is recorded
    p_renew: np.ndarray
    live_end_day: np.ndarray  # per account: last day of use (NEVER while it stays)
    wind_down_start: np.ndarray  # per account: decision day of the churn (NEVER if none)

    def contracts_frame(self, population: Population, calendar: Calendar) -> pd.DataFrame:
        width = max(7, len(str(self.account.size)))
        renewed = pd.array(np.where(self.decided, self.renewed, False), dtype="boolean")
        renewed[~self.decided] = pd.NA
        return pd.DataFrame({
            "contract_id": [f"C{i + 1:0{width}d}" for i in range(self.account.size)],
            "account_id": population.account_id[self.account],
            "start_date": date_column(calendar, self.start_day),
            "end_date": date_column(calendar, self.end_day),
            "arr": self.arr,
            "renewed": renewed,
            "next_arr": np.where(self.decided & self.renewed, self.next_arr, np.nan),
        })

    def truth_frame(self, contracts: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({
            "contract_id": contracts["contract_id"],
            "account_id": contracts["account_id"],
            "end_date": contracts["end_date"],
            "p_renew": self.p_renew,
        })


def _health_before(health: np.ndarray, calendar: Calendar, accounts: np.ndarray,
                   day: np.ndarray) -> np.ndarray:
    """Mean latent health over the three months up to ``day``."""
    months = [calendar.month_of_day(day - lag) for lag in (60, 30, 0)]
    return np.mean([health[accounts, m] for m in months], axis=0)


def draw_contracts(rng: np.random.Generator, population: Population, health: np.ndarray,
                   calendar: Calendar, params: SimulatorParams) -> Contracts:
    """Chain terms from signing until a churn or until a term starts after the window."""
    p = params
    n = population.n
    activation_day = population.activation_day
    live_end = np.full(n, NEVER, dtype=np.int64)
    wind_down = np.full(n, NEVER, dtype=np.int64)
    parts: list[dict[str, np.ndarray]] = []
    accounts = np.arange(n)
    start = population.signed_day.copy()
    arr = population.first_arr.copy()
    term_number = 0
    while accounts.size:
        term = population.term_months[accounts]
        start_dates = calendar.dates(start)
        end = (add_months(start_dates, term) - calendar.start).astype(np.int64) - 1
        yearly = term == 12
        decision = np.maximum(start, end - np.where(
            yearly, p.decision_days_before_end_yearly, p.decision_days_before_end_monthly))
        health_now = _health_before(health, calendar, accounts, decision)
        act = activation_day[accounts]
        window_end = population.signed_day[accounts] + population.activation_window[accounts]
        in_window = population.activated_in_window[accounts] & (act <= decision)
        # Only what has happened by the decision day counts: a term decided while the
        # activation window is still open carries no activation penalty yet.
        activation_effect = np.where(
            in_window | (decision < window_end), 0.0,
            np.where(act <= decision, p.renewal_late_activation, p.renewal_never_activated))
        intercept = np.where(yearly, p.renewal_intercept, p.monthly_renewal_intercept)
        logit = (intercept + p.renewal_health_slope * (health_now - p.quality_mean)
                 + activation_effect + (p.renewal_tenure_bonus if term_number else 0.0))
        p_renew = sigmoid(logit)
        renewed = rng.random(accounts.size) < p_renew
        upgrade = rng.random(accounts.size) < 0.6 * sigmoid(health_now - 1.5)
        downgrade = ~upgrade & (rng.random(accounts.size) < 0.4 * sigmoid(-health_now))
        change = np.where(upgrade, rng.uniform(1.1, 1.5, accounts.size),
                          np.where(downgrade, rng.uniform(0.6, 0.9, accounts.size),
                                   np.where(yearly, rng.uniform(1.0, 1.05, accounts.size), 1.0)))
        next_arr = np.round(arr * change, 2)
        decided = end < calendar.end_day
        parts.append({"account": accounts, "start_day": start, "end_day": end, "arr": arr,
                      "next_arr": next_arr, "renewed": renewed, "decided": decided,
                      "p_renew": p_renew})
        churned = ~renewed
        live_end[accounts[churned]] = end[churned]
        wind_down[accounts[churned]] = decision[churned]
        keep = renewed & decided
        accounts, start, arr = accounts[keep], end[keep] + 1, next_arr[keep]
        term_number += 1
    columns = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    order = np.lexsort((columns["start_day"], columns["account"]))
    return Contracts(**{k: v[order] for k, v in columns.items()},
                     live_end_day=live_end, wind_down_start=wind_down)
