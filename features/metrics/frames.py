"""The small tables behind the cohort metrics, as pandas frames, and the grouping rule.

Accounts and contracts hold one row per account or contract term, so they are executed once
and handled in pandas; the large usage table stays in the engine (see ``activity.py``).
Grouping follows one rule for every metric: the group is an attribute of the account, and a
missing value (null attribute, or a contract whose account is unknown) becomes ``"unknown"``,
so no row ever disappears from a total.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

import pandas as pd

from features.daily import accounts_as_of
from features.source import Source
from renewal.errors import DataContractError, Problem

GroupBy = Literal["segment", "csm_id", "cohort"]
GROUP_BYS: tuple[GroupBy, ...] = ("segment", "csm_id", "cohort")
UNKNOWN_GROUP = "unknown"


def month_label(dates: pd.Series) -> pd.Series:
    """Calendar month of each date as ``YYYY-MM`` (null stays null)."""
    return pd.to_datetime(dates).dt.strftime("%Y-%m").astype("string")


def accounts_frame(source: Source, as_of: date, by: GroupBy | None) -> pd.DataFrame:
    """Accounts signed on or before ``as_of``: id, signed_at, seats, segment, cohort, group.

    ``group`` is the value of the ``by`` attribute ("unknown" when null), absent when ``by`` is
    None. Grouping by a column the accounts table does not have is an error, not a silent
    "everything unknown".
    """
    require_columns(source, "accounts", ("account_id", "signed_at", "seats"))
    accounts = accounts_as_of(source, as_of)
    if by in ("segment", "csm_id") and by not in accounts.columns:
        raise DataContractError([Problem(
            "accounts", by, f"grouping by {by} needs this optional column, which is absent",
            rows=int(source.backend.execute(accounts.count())),
        )])
    keep = ["account_id", "signed_at", "seats"] + [
        c for c in ("segment", "csm_id") if c in accounts.columns
    ]
    frame = source.backend.execute(accounts.select(*keep))
    frame["account_id"] = frame["account_id"].astype("string")
    frame["signed_at"] = pd.to_datetime(frame["signed_at"]).astype("datetime64[ns]")
    frame["seats"] = frame["seats"].astype("int64")
    if "segment" not in frame.columns:
        frame["segment"] = pd.Series(pd.NA, index=frame.index, dtype="string")
    frame["cohort"] = month_label(frame["signed_at"])
    if by is not None:
        frame["group"] = frame[by].astype("string").fillna(UNKNOWN_GROUP)
    return frame


def contracts_frame(source: Source, accounts: pd.DataFrame) -> pd.DataFrame:
    """The contract terms of ``accounts`` (:func:`accounts_frame`: signed on or before T) with
    typed dates, nullable ``renewed`` and ``next_arr`` (may be absent from the file: then every
    value is null).

    A contract can start before its account's ``signed_at`` (a backdated or migrated term):
    for an account signed after T it would otherwise count as paying, due or churned in
    months before the account exists at T, while its usage is left out."""
    require_columns(
        source, "contracts", ("account_id", "start_date", "end_date", "arr", "renewed")
    )
    contracts = source.tables["contracts"]
    frame = source.backend.execute(contracts)
    frame["account_id"] = frame["account_id"].astype("string")
    frame = frame[frame["account_id"].isin(accounts["account_id"])].reset_index(drop=True)
    for column in ("start_date", "end_date"):
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ns]")
    frame["arr"] = frame["arr"].astype("float64")
    frame["renewed"] = frame["renewed"].astype("boolean")
    if "next_arr" in frame.columns:
        frame["next_arr"] = frame["next_arr"].astype("Float64")
    else:
        frame["next_arr"] = pd.Series(pd.NA, index=frame.index, dtype="Float64")
    return frame


def require_columns(source: Source, table: str, columns: tuple[str, ...]) -> None:
    """A clear contract error, not a KeyError, when a table lacks a column the metrics read."""
    present = set(source.tables[table].columns)
    missing = [c for c in columns if c not in present]
    if missing:
        rows = int(source.backend.execute(source.tables[table].count()))
        raise DataContractError([
            Problem(table, c, "required column is missing (needed by the cohort metrics)", rows)
            for c in missing
        ])


def attach_group(frame: pd.DataFrame, accounts: pd.DataFrame, by: GroupBy | None) -> pd.DataFrame:
    """Add the ``by`` column from the account of each row; unknown accounts get "unknown"."""
    if by is None:
        return frame
    groups = accounts.set_index("account_id")["group"]
    out = frame.copy()
    out[by] = out["account_id"].map(groups).astype("string").fillna(UNKNOWN_GROUP)
    return out


def period_keys(period: str, by: GroupBy | None) -> list[str]:
    """The columns one output row is keyed by: the period, then the group (when asked)."""
    return [period, by] if by is not None else [period]


def safe_ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """numerator / denominator as float, null (not NaN, not inf) where the denominator is 0."""
    num = numerator.astype("Float64")
    den = denominator.astype("Float64")
    return (num / den.where(den != 0)).astype("Float64")
