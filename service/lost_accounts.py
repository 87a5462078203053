"""Accounts already lost at the as-of date: their last contract ended, not renewed.

A renewal probability answers "will this customer renew?"; for an account whose last term
ended before the as-of date with ``renewed = false`` the answer is already known, and its ARR
is no longer at risk. Scoring it anyway put lost accounts at the top of the risk list (their
ARR x (1 - p) is large) and sent tier webhooks for customers who had left. The model never
saw such rows either: training snapshots are taken inside a term.

An account is *lost* at T when no contract covers T (``start_date <= T <= end_date``) and every
contract with its latest ``end_date`` (before T) has ``renewed = false``. An ended term whose
outcome is still null is a renewal under way, and one marked renewed whose next term is not in
the data yet is a late export: both stay customers and are scored.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import pandas as pd

from renewal.errors import DataContractError, Problem

if TYPE_CHECKING:
    from features.source import Source


def lost_accounts(contracts: pd.DataFrame, as_of: date) -> pd.Series:
    """``lost_on`` (the last term's end date) per lost account id, from a contracts frame
    with account_id, start_date, end_date and renewed; terms starting after T are unseen."""
    day = pd.Timestamp(as_of)
    start = pd.to_datetime(contracts["start_date"])
    end = pd.to_datetime(contracts["end_date"])
    seen = pd.DataFrame({
        "account_id": contracts["account_id"].astype("string"),
        "end_date": end,
        "renewed": contracts["renewed"].astype("boolean"),
        "in_force": (start <= day) & (end >= day),
    })[start <= day]
    if seen.empty:
        return pd.Series(dtype="datetime64[ns]", name="lost_on")
    latest_end = seen.groupby("account_id")["end_date"].transform("max")
    last_terms = seen[seen["end_date"] == latest_end]
    per_account = last_terms.groupby("account_id").agg(
        lost_on=("end_date", "max"),
        # A null outcome is not "false": the renewal may still happen.
        not_renewed=("renewed", lambda r: bool(r.eq(False).fillna(False).all())),
    )
    in_force = seen.groupby("account_id")["in_force"].any()
    lost = per_account[per_account["not_renewed"] & ~in_force.reindex(per_account.index)]
    return lost["lost_on"].astype("datetime64[ns]")


def lost_accounts_of(source: Source, as_of: date) -> pd.Series:
    """:func:`lost_accounts` of a data directory's contracts table (a few rows per account)."""
    contracts = source.tables["contracts"]
    frame = source.backend.execute(
        contracts.select("account_id", "start_date", "end_date", "renewed")
    )
    return lost_accounts(frame, as_of)


def split_lost(
    frame: pd.DataFrame, lost_on: pd.Series, as_of: date
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """(customers to score, lost accounts' rows, their lost_on); refuses a run with no
    customer left, which would otherwise "succeed" with nothing scored."""
    is_lost = frame["account_id"].astype(str).isin(lost_on.index.astype(str))
    customers = frame[~is_lost].reset_index(drop=True)
    if customers.empty:
        raise DataContractError([Problem(
            "contracts", "renewed",
            f"every account signed by {as_of} was lost before it (its last contract ended "
            "with renewed = false): nothing to score",
            rows=len(frame),
        )])
    return customers, frame[is_lost].reset_index(drop=True), lost_on
