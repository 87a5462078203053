"""The ops page's reliability diagram (Cohorts) counts every decided score its reader may see,
the accounts that churned included (found by audit: owners were taken from the live cache,
which serves customers only, so every bin read 100 % renewed)."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
from service_harness import LATEST
from sqlalchemy import func, select, update

from service.db.engine import transaction
from service.db.models import Account, Score
from service.keys import Principal
from service.ui.reliability import reliability


def contracts_for(frame: pd.DataFrame, lost: set[str]) -> pd.DataFrame:
    """One term per account in force on every seeded score's day, renewed unless lost."""
    return pd.DataFrame({
        "contract_id": [f"c-{a}" for a in frame["account_id"]],
        "account_id": frame["account_id"].astype(str),
        "start_date": pd.Timestamp(LATEST - timedelta(days=300)),
        "end_date": pd.Timestamp(LATEST + timedelta(days=60)),
        "arr": 10_000.0,
        "renewed": pd.array([a not in lost for a in frame["account_id"]], dtype="boolean"),
    })


def test_churned_accounts_count_in_the_reliability_diagram(service):
    ctx = service.client.app.state.context
    frame = service.frame
    churned = frame.loc[frame["csm_id"] == "csm-a", "account_id"].astype(str).tolist()[:5]
    with transaction(service.factory) as session:
        session.execute(update(Account).where(Account.account_id.in_(churned))
                        .values(lost_on=date(2025, 6, 1)))
    ctx.cache.load()
    assert not {e.account_id for e in ctx.cache.risk_order} & set(churned)  # gone from lists
    contracts = contracts_for(frame, set(churned))

    admin = Principal("key_admin", "admin", None, "admin")
    everyone = reliability(ctx, admin, contracts, "model")
    with ctx.sessions() as session:
        stored = session.execute(select(func.count()).select_from(Score)).scalar_one()
    assert everyone.scores_with_outcome == stored  # every score has a decided term here
    assert everyone.contracts == len(frame)
    observed = sum(n * obs for _, obs, n in everyone.models[0].bins) / stored
    assert observed < 1.0  # the churned accounts' scores are in

    theirs = reliability(ctx, Principal("key_b", "csm", "csm-b", "b"), contracts, "model")
    mine = reliability(ctx, Principal("key_a", "csm", "csm-a", "a"), contracts, "model")
    assert sum(n * obs for _, obs, n in theirs.models[0].bins) == theirs.scores_with_outcome
    assert sum(n * obs for _, obs, n in mine.models[0].bins) < mine.scores_with_outcome


def test_the_outcome_is_the_main_term_s_not_a_later_add_on_s():
    """A score's outcome is its account's main term in force (largest ARR), as the features
    and the save rate read it: a small add-on started later and dropped is no churn."""
    from service.ui.reliability import with_outcomes

    scores = pd.DataFrame({"account_id": ["a"], "as_of": [pd.Timestamp("2025-06-30")],
                           "probability": [0.8]})
    book = pd.DataFrame({
        "contract_id": ["main", "addon"], "account_id": ["a", "a"],
        "start_date": pd.to_datetime(["2025-01-01", "2025-05-01"]),
        "end_date": pd.to_datetime(["2025-12-31", "2025-12-31"]),
        "arr": [100_000.0, 1_000.0], "renewed": pd.array([True, False], dtype="boolean")})
    decided = with_outcomes(scores, book)
    assert decided["contract_id"].tolist() == ["main"] and bool(decided["renewed"].iloc[0])

