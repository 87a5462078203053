"""The noisy side channels of the latent state: tickets, surveys and CSMs' manual inputs.

Each is drawn per account-month (vectorised over all accounts) from the latent health of that
month, never from usage, so that they add partial, independent evidence about the state.
CSMs see the state with a lag, with their own optimism, and update at their own pace: their
inputs are often stale or missing, as in real CRMs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from renewal.simulator.calendar import Calendar
from renewal.simulator.latent import sigmoid
from renewal.simulator.outcomes import Contracts
from renewal.simulator.params import SimulatorParams
from renewal.simulator.population import Population, date_column

BUG_DEADLINE_DAYS = {"high": 7, "medium": 30, "low": 90}  # features.config defaults
_GOOD_COMMENTS = ("Core to our daily work.", "Great support team.", "Reports save us hours.",
                  "Rolled out to all sites, very happy.", "Easy to use.")
_MIXED_COMMENTS = ("Fine, but the mobile app is slow.", "Needs better exports.",
                   "Onboarding of new staff takes too long.", "Missing an ERP integration.")
_BAD_COMMENTS = ("Too many bugs lately.", "We hardly use it any more.",
                 "Considering a cheaper tool.", "Support takes too long to answer.",
                 "Our team never really adopted it.")
_NOTES_GOOD = ("QBR went well", "expanding to new team", "sponsor engaged")
_NOTES_BAD = ("champion left", "budget under review", "low adoption outside pilot",
              "escalation open", "evaluating competitor")


@dataclass(frozen=True)
class AccountMonths:
    """Live (account, month) cells: the day range each account was live in each month."""

    account: np.ndarray
    month: np.ndarray
    first_day: np.ndarray
    last_day: np.ndarray
    live_share: np.ndarray  # live days / days of the month


def account_months(population: Population, contracts: Contracts, calendar: Calendar,
                   months: int) -> AccountMonths:
    starts = calendar.month_start_day[:months]
    ends = calendar.month_start_day[1:months + 1] - 1
    last = np.minimum(contracts.live_end_day, calendar.end_day)
    lo = np.maximum(starts[None, :], population.signed_day[:, None])
    hi = np.minimum(ends[None, :], last[:, None])
    account, month = np.nonzero(hi >= lo)
    lo, hi = lo[account, month], hi[account, month]
    share = (hi - lo + 1) / (ends[month] - starts[month] + 1)
    return AccountMonths(account, month, lo, hi, share)


def _day_in(rng: np.random.Generator, cells: AccountMonths, index: np.ndarray) -> np.ndarray:
    span = cells.last_day[index] - cells.first_day[index] + 1
    return cells.first_day[index] + np.floor(rng.random(index.size) * span).astype(np.int64)


def tickets_frame(rng: np.random.Generator, population: Population, health: np.ndarray,
                  cells: AccountMonths, calendar: Calendar, params: SimulatorParams
                  ) -> pd.DataFrame:
    """Support tickets; unhealthy accounts file more bugs, more severe, resolved later."""
    engaged = sigmoid(health[cells.account, cells.month])
    rate = (params.tickets_per_month * population.seats[cells.account] ** 0.45
            * cells.live_share * (0.6 + 1.2 * (1.0 - engaged)))
    cell = np.repeat(np.arange(cells.account.size), rng.poisson(rate))
    account, eng = cells.account[cell], engaged[cell]
    opened = _day_in(rng, cells, cell)
    onboarding = opened < population.activation_day[account]
    p_bug = 0.3 + 0.25 * (1.0 - eng)
    p_feature = np.where(onboarding, 0.05, 0.35 * eng)
    u = rng.random(cell.size)
    kind = np.where(u < p_bug, "bug", np.where(u < p_bug + p_feature, "feature_request",
                                                "usage_question"))
    u = rng.random(cell.size)
    p_high = 0.08 + 0.25 * (1.0 - eng)
    severity = np.where(u < p_high, "high", np.where(u < p_high + 0.35, "medium", "low"))
    severity = np.where(kind == "bug", severity, None)
    deadline = np.vectorize(BUG_DEADLINE_DAYS.get, otypes=[float])(
        np.where(kind == "bug", severity, "low"))
    late_factor = np.exp(rng.normal(np.log(0.5) + 1.2 * (1.0 - eng), 0.6))
    days_to_resolve = np.select(
        [kind == "bug", kind == "feature_request"],
        [deadline * late_factor, np.exp(rng.normal(np.log(45.0), 0.8, cell.size))],
        np.exp(rng.normal(np.log(1.5), 0.8, cell.size)))
    never = rng.random(cell.size) < np.select(
        [kind == "bug", kind == "feature_request"], [0.02 + 0.3 * (1.0 - eng) ** 2, 0.6], 0.01)
    resolved = opened + np.ceil(days_to_resolve).astype(np.int64)
    unresolved = never | (resolved > calendar.end_day)
    order = np.lexsort((opened, account))
    width = max(7, len(str(cell.size)))
    resolved_at = date_column(calendar, np.where(unresolved, opened, resolved)[order],
                         null=unresolved[order])
    return pd.DataFrame({
        "ticket_id": [f"T{i + 1:0{width}d}" for i in range(cell.size)],
        "account_id": population.account_id[account[order]],
        "opened_at": date_column(calendar, opened[order]),
        "type": kind[order],
        "severity": pd.array(severity[order], dtype="string"),
        "resolved_at": resolved_at,
    })


def surveys_frame(rng: np.random.Generator, population: Population, health: np.ndarray,
                  cells: AccountMonths, calendar: Calendar, params: SimulatorParams
                  ) -> pd.DataFrame:
    """Occasional satisfaction surveys (0-10); unhappy accounts answer less often."""
    engaged = sigmoid(health[cells.account, cells.month])
    answered = rng.random(cells.account.size) < params.survey_rate * params.survey_response * (
        0.5 + 0.5 * engaged)
    index = np.flatnonzero(answered)
    account = cells.account[index]
    day = _day_in(rng, cells, index)
    latent = health[account, cells.month[index]] - params.quality_mean
    onboarding = day < population.activation_day[account]
    score = np.clip(np.round(7.0 + 2.3 * latent - 1.5 * onboarding
                             + rng.normal(0.0, 1.8, index.size)), 0, 10)
    has_comment = rng.random(index.size) < np.where(score <= 6, 0.65, 0.35)
    pick = rng.random(index.size)
    comment = np.select(
        [score <= 6, score <= 8],
        [np.array(_BAD_COMMENTS)[(pick * len(_BAD_COMMENTS)).astype(int)],
         np.array(_MIXED_COMMENTS)[(pick * len(_MIXED_COMMENTS)).astype(int)]],
        np.array(_GOOD_COMMENTS)[(pick * len(_GOOD_COMMENTS)).astype(int)])
    return pd.DataFrame({
        "account_id": population.account_id[account],
        "date": date_column(calendar, day),
        "score": score.astype(float),
        "comment": pd.array(np.where(has_comment, comment, None), dtype="string"),
    })


def health_inputs_frame(rng: np.random.Generator, population: Population, health: np.ndarray,
                        cells: AccountMonths, calendar: Calendar, params: SimulatorParams
                        ) -> pd.DataFrame:
    """CSMs' manual judgement: lagged by a month, biased per CSM, often stale or blank."""
    csm = population.csm[cells.account]
    update_rate = np.minimum(0.95, population.csm_diligence[csm] * np.where(
        population.segment[cells.account] == "enterprise", 1.5, 1.0))
    index = np.flatnonzero(rng.random(cells.account.size) < update_rate)
    account, csm = cells.account[index], csm[index]
    day = _day_in(rng, cells, index)
    seen = health[account, np.maximum(cells.month[index] - 1, 0)] - params.quality_mean
    sponsor_affinity = rng.normal(0.0, 1.0, population.n)[account]
    n = index.size
    sponsor = rng.random(n) < sigmoid(2.0 * seen + 0.8 + sponsor_affinity)
    live = rng.random(n) < np.where(day >= population.activation_day[account],
                                    sigmoid(1.5 * seen + 1.5), 0.1)
    score = np.clip(np.round(3.4 + 0.9 * seen + population.csm_optimism[csm]
                             + rng.normal(0.0, 0.7, n)), 1, 5).astype(np.int64)
    pick = rng.random(n)
    note = np.where(score >= 4, np.array(_NOTES_GOOD)[(pick * len(_NOTES_GOOD)).astype(int)],
                    np.array(_NOTES_BAD)[(pick * len(_NOTES_BAD)).astype(int)])
    has_note = rng.random(n) < 0.3
    order = np.lexsort((day, account))
    return pd.DataFrame({
        "account_id": population.account_id[account[order]],
        "date": date_column(calendar, day[order]),
        "exec_sponsor_active": _with_blanks(rng, sponsor[order], 0.3, "boolean"),
        "core_process_live": _with_blanks(rng, live[order], 0.25, "boolean"),
        "csm_score": _with_blanks(rng, score[order], 0.15, "Int64"),
        "note": pd.array(np.where(has_note, note, None)[order], dtype="string"),
    })


def _with_blanks(rng: np.random.Generator, values: np.ndarray, blank_share: float,
                 dtype: str) -> pd.api.extensions.ExtensionArray:
    """A nullable column with a share of fields left blank, as CSMs do."""
    out = pd.array(values, dtype=dtype)
    out[rng.random(values.size) < blank_share] = pd.NA
    return out


def value_frame(population: Population, calendar: Calendar, account: np.ndarray,
                day: np.ndarray, amount: np.ndarray) -> pd.DataFrame:
    """Monthly north-star value (e.g. revenue through the product), from the usage draw."""
    return pd.DataFrame({
        "account_id": population.account_id[account],
        "date": date_column(calendar, day),
        "amount": amount.astype(float),
    })
