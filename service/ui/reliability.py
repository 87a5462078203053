"""The reliability diagram of the served model against the heuristic, from outcomes seen live.

The training report (``report.json`` of the champion's MLflow run) holds a test-window
reliability table, but the service does not keep it (the model card carries only the test
metrics), and it says how the model did on held-out history, not since it went live. So the
page computes the diagram from what the service stores: every stored score (its calibrated
probability and the heuristic's, ``factor × 3-month activity rate``) whose outcome is known,
the outcome being the ``renewed`` flag of the account's main term in force on the score's
as_of (:func:`service.workflows.outcomes.contract_at`'s rule, vectorised). Bins hold equal
counts of scores; a CSM key sees its own accounts only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from service.context import ServiceContext
from service.db.models import Account, Score
from service.keys import Principal

N_BINS = 10
MIN_PER_BIN = 5


@dataclass(frozen=True)
class ModelReliability:
    name: str
    bins: list[tuple[float, float, int]]  # mean predicted, observed rate, count
    n: int
    ece: float | None  # expected calibration error: count-weighted |predicted − observed|
    brier: float | None


@dataclass(frozen=True)
class Reliability:
    scores_with_outcome: int
    contracts: int
    models: list[ModelReliability] = field(default_factory=list)
    model_versions: list[str] = field(default_factory=list)


def equal_count_bins(p: np.ndarray, y: np.ndarray, n_bins: int) -> list[tuple[float, float, int]]:
    order = np.argsort(p, kind="stable")
    return [(float(p[b].mean()), float(y[b].mean()), int(b.size))
            for b in np.array_split(order, n_bins) if b.size]


def summarise(name: str, p: np.ndarray, y: np.ndarray) -> ModelReliability:
    keep = ~np.isnan(p)
    p, y = p[keep], y[keep]
    if p.size == 0:
        return ModelReliability(name, [], 0, None, None)
    n_bins = max(1, min(N_BINS, p.size // MIN_PER_BIN))
    bins = equal_count_bins(p, y, n_bins)
    ece = sum(n * abs(mp - obs) for mp, obs, n in bins) / p.size
    return ModelReliability(name, bins, int(p.size), float(ece), float(np.mean((p - y) ** 2)))


def with_outcomes(scores: pd.DataFrame, contracts: pd.DataFrame) -> pd.DataFrame:
    """Each score with the ``renewed`` flag of its account's main term in force on its as_of
    (largest ARR, then later end, then contract id: ``contract_at``'s order); scores
    without a decided contract are dropped."""
    if scores.empty:
        return scores.assign(renewed=pd.Series(dtype="boolean"))
    c = contracts[["contract_id", "account_id", "start_date", "end_date", "arr",
                   "renewed"]].copy()
    c["account_id"] = c["account_id"].astype(str)
    s = scores.assign(as_of=pd.to_datetime(scores["as_of"]), row=np.arange(len(scores)))
    merged = s.merge(c, on="account_id", how="inner")
    merged = merged[(merged["start_date"] <= merged["as_of"])
                    & (merged["end_date"] >= merged["as_of"])]
    merged = merged.sort_values(["row", "arr", "end_date", "contract_id"], na_position="first")
    merged = merged.drop_duplicates("row", keep="last")
    return merged[merged["renewed"].notna()]


def reliability(ctx: ServiceContext, principal: Principal, contracts: pd.DataFrame,
                model_label: str) -> Reliability:
    """The diagram's data for the accounts ``principal`` may see.

    Owners come from the stored account snapshots, lost accounts included: the cache serves
    customers only, and taking owners from it left out every account that churned, so each
    bin read 100 % renewed (found by audit)."""
    with ctx.sessions() as session:
        owners = {account: csm for account, csm in
                  session.execute(select(Account.account_id, Account.csm_id))}
        visible = [a for a, csm in owners.items() if principal.may_see(csm)]
        rows: list[Any] = list(session.execute(
            select(Score.account_id, Score.as_of, Score.probability,
                   Score.heuristic_probability, Score.model_version)
        ))
    frame = pd.DataFrame(rows, columns=["account_id", "as_of", "probability", "heuristic",
                                        "model_version"])
    frame = frame[frame["account_id"].isin(set(visible))]
    decided = with_outcomes(frame, contracts)
    y = decided["renewed"].astype(bool).to_numpy(dtype=float)
    models = [
        summarise(model_label, decided["probability"].to_numpy(dtype=float), y),
        summarise("heuristic",
                  pd.to_numeric(decided["heuristic"], errors="coerce").to_numpy(dtype=float), y),
    ]
    return Reliability(
        scores_with_outcome=len(decided),
        contracts=int(decided["contract_id"].nunique()) if len(decided) else 0,
        models=models,
        model_versions=sorted({str(v) for v in decided["model_version"]}),
    )
