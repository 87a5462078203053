"""Renewal forecast: expected renewed ARR and logo count of upcoming renewals, with
prediction intervals for the sum of independent Bernoulli outcomes.

- Logo count: the EXACT Poisson-binomial distribution of Σ Bernoulli(p_i), by dynamic
  programming (O(n²), vectorised; a normal approximation with continuity correction above
  ``EXACT_MAX`` contracts per group, where it is accurate to well under one logo).
- Renewed ARR: Σ arr_i · Bernoulli(p_i) is not a count, so it is SIMULATED (seeded Monte
  Carlo, ``draws`` samples, in chunks); ARR is heavy-tailed (a few enterprise contracts
  dominate a month), which a normal approximation would hide.
- Intervals are central: [q((1-level)/2), q((1+level)/2)], taking the outer sample/count
  at each end, so a discrete distribution is covered at least ``level``.

The probabilities must be calibrated (the served model's are) and the outcomes independent
given them; the backtest (``renewal report``) measures how often the interval held.
The service keeps what it derives from the contracts per file version (:func:`renewals_due_in`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from features.metrics.renewals import runs_on
from service.workflows.outcomes import kept_contracts

EXACT_MAX = 5000
DRAW_CHUNK_CELLS = 4_000_000  # draws × contracts simulated at once (~32 MB of float64)

def poisson_binomial_pmf(probabilities: np.ndarray) -> np.ndarray:
    """P(Σ Bernoulli(p_i) = k) for k = 0..n, exactly (one convolution per contract)."""
    pmf = np.zeros(len(probabilities) + 1)
    pmf[0] = 1.0
    for i, p in enumerate(np.asarray(probabilities, dtype=float), start=1):
        pmf[1 : i + 1] = pmf[1 : i + 1] * (1 - p) + pmf[0:i] * p
        pmf[0] *= 1 - p
    return pmf


def count_interval(probabilities: np.ndarray, level: float) -> tuple[int, int]:
    """Central ``level`` interval of the number of renewals."""
    n = len(probabilities)
    if n == 0:
        return 0, 0
    tail = (1 - level) / 2
    if n <= EXACT_MAX:
        cdf = np.cumsum(poisson_binomial_pmf(probabilities))
        low = int(np.searchsorted(cdf, tail, side="right"))
        high = int(np.searchsorted(cdf, 1 - tail - 1e-12, side="left"))
        return low, min(high, n)
    mean = float(np.sum(probabilities))
    sd = float(np.sqrt(np.sum(probabilities * (1 - probabilities))))
    z = NormalDist().inv_cdf(1 - tail)
    return max(0, int(np.floor(mean - z * sd - 0.5))), min(n, int(np.ceil(mean + z * sd + 0.5)))


def arr_interval(
    probabilities: np.ndarray, arr: np.ndarray, level: float, draws: int, seed: int
) -> tuple[float, float]:
    """Central ``level`` interval of the renewed ARR, by simulation."""
    n = len(probabilities)
    if n == 0:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    p = np.asarray(probabilities, dtype=float)
    w = np.asarray(arr, dtype=float)
    chunk = max(1, DRAW_CHUNK_CELLS // n)
    sums = np.empty(draws)
    for start in range(0, draws, chunk):
        size = min(chunk, draws - start)
        sums[start : start + size] = (rng.random((size, n)) < p) @ w
    tail = (1 - level) / 2
    low = float(np.quantile(sums, tail, method="lower"))
    high = float(np.quantile(sums, 1 - tail, method="higher"))
    return low, high


@dataclass(frozen=True)
class GroupForecast:
    key: str
    contracts: int
    arr_up_for_renewal: float
    expected_renewed_arr: float
    renewed_arr_interval: tuple[float, float]
    expected_logos: float
    logos_interval: tuple[int, int]
    contracts_decided: int = 0
    accounts: int = 0
    contracts_overdue: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "contracts": self.contracts,
            "contracts_decided": self.contracts_decided,
            "contracts_overdue": self.contracts_overdue,
            "accounts": self.accounts,
            "arr_up_for_renewal": round(self.arr_up_for_renewal, 2),
            "expected_renewed_arr": round(self.expected_renewed_arr, 2),
            "renewed_arr_interval": [round(v, 2) for v in self.renewed_arr_interval],
            "expected_logos": round(self.expected_logos, 2),
            "logos_interval": list(self.logos_interval),
        }


@dataclass(frozen=True)
class AccountOutcomes:
    """One row per account of a group: its random part is ONE Bernoulli(``probability``)
    over the ARR of its undecided terms (``open_arr``); ``renewed_arr`` is already known to
    renew; its logo renews with ``logo_probability`` (1 or 0 once known)."""

    probability: np.ndarray
    open_arr: np.ndarray
    renewed_arr: np.ndarray
    logo_probability: np.ndarray


def per_account(
    accounts: np.ndarray, probabilities: np.ndarray, arr: np.ndarray,
    renewed: np.ndarray | None = None, runs_on: np.ndarray | None = None,
    end_dates: np.ndarray | None = None,
) -> AccountOutcomes:
    """An account's terms ending in one group renew or churn together (one probability, one
    decision) and make ONE logo, as the logo renewal rate counts them (docs/metrics.md).
    Treating them as independent contracts counted the logo twice and narrowed the ARR
    interval.

    A term whose outcome is already recorded (``renewed`` not null before its end: an early
    renewal, a notice of cancellation) is not forecast: its ARR renews or not for certain, and
    a term renewed keeps the logo, as in the logo renewal rate. Only the account's undecided
    terms are left to its probability; its logo is lost for certain only when every term is
    decided and none renewed.

    ``runs_on`` (with ``end_dates``): another term of the account, started by this term's end,
    runs past it. When that holds for the account's last term in the group, the account stays
    a customer whatever these terms do (an add-on lapsing under a running main term), and the
    logo renewal rate counts it kept: so does the forecast. Its ARR is still forecast."""
    frame = pd.DataFrame({
        "account": np.asarray(accounts),
        "p": np.asarray(probabilities, dtype=float),
        "arr": np.asarray(arr, dtype=float),
        "renewed": pd.array([pd.NA] * len(arr) if renewed is None else renewed,
                            dtype="boolean"),
    })
    open_term = frame["renewed"].isna().to_numpy()
    renewed_term = frame["renewed"].fillna(False).to_numpy(dtype=bool)
    frame["open_arr"] = np.where(open_term, frame["arr"], 0.0)
    frame["renewed_arr"] = np.where(renewed_term, frame["arr"], 0.0)
    frame["open"] = open_term
    frame["kept"] = renewed_term
    if runs_on is not None and end_dates is not None:
        frame["end"] = pd.to_datetime(np.asarray(end_dates))
        last = frame.groupby("account", sort=False)["end"].transform("max")
        frame["kept"] |= np.asarray(runs_on, dtype=bool) & (frame["end"] == last).to_numpy()
    grouped = frame.groupby("account", sort=True).agg(
        p=("p", "first"), open_arr=("open_arr", "sum"), renewed_arr=("renewed_arr", "sum"),
        open=("open", "any"), kept=("kept", "any"))
    p = grouped["p"].to_numpy()
    logo = np.where(grouped["kept"], 1.0, np.where(grouped["open"], p, 0.0))
    return AccountOutcomes(p, grouped["open_arr"].to_numpy(), grouped["renewed_arr"].to_numpy(),
                           logo)


def forecast_group(
    key: str, probabilities: np.ndarray, arr: np.ndarray, level: float, draws: int, seed: int,
    accounts: np.ndarray | None = None, renewed: np.ndarray | None = None,
    runs_on: np.ndarray | None = None, end_dates: np.ndarray | None = None,
    overdue: np.ndarray | None = None,
) -> GroupForecast:
    """The forecast of one group of contracts (``accounts``: each contract's account; its
    contracts then renew together and count as one logo; ``renewed``: outcomes already
    recorded, null where undecided; the backtest passes none, as its outcomes are what it
    measures)."""
    p = np.asarray(probabilities, dtype=float)
    w = np.asarray(arr, dtype=float)
    contracts = len(p)
    if accounts is None:
        accounts = np.arange(contracts)
    outcomes = per_account(accounts, p, w, renewed, runs_on, end_dates)
    known = float(outcomes.renewed_arr.sum())
    low, high = arr_interval(outcomes.probability, outcomes.open_arr, level, draws, seed)
    decided = 0 if renewed is None else int((~pd.array(renewed, dtype="boolean").isna()).sum())
    return GroupForecast(
        key=key,
        contracts=contracts,
        contracts_decided=decided,
        accounts=len(outcomes.probability),
        contracts_overdue=0 if overdue is None else int(np.asarray(overdue, dtype=bool).sum()),
        arr_up_for_renewal=float(w.sum()),
        expected_renewed_arr=known + float(outcomes.probability @ outcomes.open_arr),
        renewed_arr_interval=(known + low, known + high),
        expected_logos=float(outcomes.logo_probability.sum()),
        logos_interval=count_interval(outcomes.logo_probability, level),
    )


def forecast_table(
    rows: pd.DataFrame, by: str, level: float, draws: int, seed: int
) -> tuple[list[GroupForecast], GroupForecast]:
    """Per group of ``rows[by]`` and in total; ``rows`` has ``account_id``, ``probability``,
    ``arr``, ``renewed``, ``end_date`` and ``runs_on`` (one row per contract, as
    :func:`upcoming_renewals` gives them; logos count accounts)."""

    def forecast(label: str, part: pd.DataFrame) -> GroupForecast:
        return forecast_group(label, part["probability"].to_numpy(), part["arr"].to_numpy(),
                              level, draws, seed, part["account_id"].to_numpy(),
                              part["renewed"].array, part["runs_on"].to_numpy(),
                              part["end_date"].to_numpy(),
                              part["overdue"].to_numpy() if "overdue" in part else None)

    groups = [forecast("(none)" if pd.isna(key) else str(key), part)
              for key, part in rows.groupby(by, sort=True, dropna=False)]
    return groups, forecast("total", rows)


def renewals_due_in(data_dir: Path, as_of: pd.Timestamp, until: pd.Timestamp) -> pd.DataFrame:
    """:func:`upcoming_renewals` of the data directory's contracts, account ids as text (as the
    scores have them). The forecast asks on every request, and :func:`runs_on_as_of` reads the
    whole table (~0.5 s at 2 million contracts) for an answer that changes only with the file
    and ``as_of``: both the text ids and the flags are kept with the file version
    (:func:`~service.workflows.outcomes.kept_contracts`), the flags per ``as_of``, whatever
    the horizon."""
    kept = kept_contracts(data_dir)
    contracts = kept.derived("account_id as text", lambda frame: frame.assign(
        account_id=frame["account_id"].astype(str)))
    flags = kept.derived(("runs_on", as_of), lambda _: runs_on_as_of(contracts, as_of))
    overdue = kept.derived(("overdue", as_of), lambda _: overdue_renewals(contracts, as_of))
    return upcoming_renewals(contracts, as_of, until, flags, overdue)


def _in_force(contracts: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    """``start_date <= as_of <= end_date``, the end date being the term's last day."""
    return (contracts["start_date"] <= as_of) & (contracts["end_date"] >= as_of)


def runs_on_as_of(contracts: pd.DataFrame, as_of: pd.Timestamp) -> np.ndarray:
    """Per row of ``contracts``: in force on ``as_of`` and another term of the account runs on
    past its end (:func:`~features.metrics.renewals.runs_on`), the logo rule of the metrics.

    Only terms in force by ``as_of`` are known to keep the account; one starting later is not
    in force now, and if it ends in the horizon it is not among the renewals due to decide the
    group either. Each term is judged on its own, so the answer for the terms in force serves
    every horizon. Positional (rows, not index labels): a table read with a repeated index
    label must not mix two terms' answers."""
    in_force = _in_force(contracts, as_of).to_numpy()
    started = contracts[contracts["start_date"] <= as_of]
    flags = np.zeros(len(contracts), dtype=bool)
    flags[in_force] = runs_on(contracts[in_force].reset_index(drop=True), started).to_numpy()
    return flags


def overdue_renewals(contracts: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Renewals running late: an account's last term ended before ``as_of``, its outcome not
    recorded, and no term of the account in force on ``as_of``. The account is still scored
    (not lost: its renewal is open), and leaving the term out made its ARR vanish from the
    forecast while the risk list still showed the account (found by audit)."""
    in_force = set(contracts.loc[_in_force(contracts, as_of), "account_id"])
    ended = contracts[(contracts["end_date"] < as_of) & ~contracts["account_id"].isin(in_force)]
    # The terms ending on the account's last end day, as the lost-accounts rule reads them:
    # lost only when all of them are decided not renewed; any still open is late.
    last_end = ended.groupby("account_id")["end_date"].transform("max")
    last = ended[ended["end_date"] == last_end]
    late = last[last["renewed"].isna()].sort_values(["account_id", "end_date", "contract_id"])
    return late[["contract_id", "account_id", "end_date", "arr", "renewed"]]


def upcoming_renewals(contracts: pd.DataFrame, as_of: pd.Timestamp,
                      until: pd.Timestamp | None = None,
                      runs_on_flags: np.ndarray | None = None,
                      overdue: pd.DataFrame | None = None) -> pd.DataFrame:
    """Contracts in force on ``as_of`` (``start_date <= as_of <= end_date``, the end date being
    the term's last day) and ending by ``until``: the renewals ahead, a term ending on
    ``as_of`` included (its account is scored as a customer that day). A contract starting
    later is not forecast: its account renews it only after the current one, which is the
    one in question now.

    ``runs_on_flags``: :func:`runs_on_as_of` of these ``contracts`` and ``as_of``, when it is
    already known (:func:`renewals_due_in` keeps it); computed here otherwise. ``overdue``:
    :func:`overdue_renewals` to add (flagged ``overdue``, grouped under their past end month);
    the backtest leaves them out, its outcomes being what it measures."""
    mask = _in_force(contracts, as_of)
    if until is not None:
        mask &= contracts["end_date"] <= until
    out = contracts.loc[mask, ["contract_id", "account_id", "end_date", "arr", "renewed"]].copy()
    out["month"] = out["end_date"].dt.strftime("%Y-%m")
    if runs_on_flags is None:
        runs_on_flags = runs_on_as_of(contracts, as_of)
    out["runs_on"] = runs_on_flags[mask.to_numpy()]
    out["overdue"] = False
    if overdue is not None and len(overdue):
        late = overdue.assign(month=overdue["end_date"].dt.strftime("%Y-%m"), runs_on=False,
                              overdue=True)
        out = pd.concat([out, late[out.columns]], ignore_index=True)
    return out.reset_index(drop=True)
