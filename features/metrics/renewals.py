"""Logo renewal rate and net dollar retention per renewal month (month of the contract's end).

Only contracts that ended on or before ``as_of`` count. A contract whose outcome is still
null is reported as ``contracts_undecided`` and kept out of the rates: it is neither renewed
nor churned yet, and counting it either way would bias the rate.

The logo renewal rate counts accounts, NDR counts money (``../shared/domain.md``): an account
with several terms ending in one month is one logo, *kept* (counted renewed) when any of them
renewed or when another of its terms, already started, runs past the last of them (an add-on
lapsing while the main term runs on: it is still a customer), churned when all of them are
decided and none of that holds, undecided otherwise. So a logo with an add-on ending in March
and a main term ending (not renewed) in May churns once, in May, not in both months.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from features.metrics.frames import (
    GroupBy,
    attach_group,
    month_label,
    period_keys,
    safe_ratio,
)

PERIOD = "renewal_month"
RENEWAL_COLUMNS = (
    "accounts_due", "accounts_renewed", "accounts_churned", "renewal_rate",
    "accounts_undecided", "contracts_due", "contracts_renewed", "contracts_churned",
    "contracts_undecided",
)
NDR_COLUMNS = (
    "contracts_due", "contracts_renewed", "contracts_churned", "beginning_arr", "expansion_arr",
    "contraction_arr", "churned_arr", "ending_arr", "ndr", "renewed_next_arr_assumed",
    "contracts_undecided",
)


def ended_contracts(
    contracts: pd.DataFrame, accounts: pd.DataFrame, as_of: date, by: GroupBy | None
) -> pd.DataFrame:
    """Contracts ending on or before ``as_of``, with their renewal month and group."""
    ended = contracts[contracts["end_date"] <= pd.Timestamp(as_of)].copy()
    ended[PERIOD] = month_label(ended["end_date"])
    ended["runs_on"] = runs_on(ended, contracts)
    return attach_group(ended, accounts, by)


def runs_on(ended: pd.DataFrame, contracts: pd.DataFrame) -> pd.Series:
    """Whether another term of the account, started on or before this term's end, is still in
    force the day after it (``start <= end < other end``): the account stays a customer.

    Only terms started by that day count (a later win-back is a new start, not a kept logo),
    and since they started on or before ``end <= as_of``, nothing dated after T is read.
    """
    if ended.empty:
        return pd.Series(False, index=ended.index, dtype=bool)
    # Per account, the latest end among the terms started by each day (a running maximum in
    # order of start), looked up as of each term's end: linear, not every pair of terms (an
    # account on monthly terms has hundreds).
    started = contracts[["account_id", "start_date", "end_date"]].sort_values(
        ["start_date", "account_id"], kind="stable")
    started["reach"] = started.groupby("account_id", sort=False)["end_date"].cummax()
    terms = ended[["account_id", "end_date"]].assign(term=ended.index).sort_values(
        "end_date", kind="stable")
    found = pd.merge_asof(terms, started[["account_id", "start_date", "reach"]],
                          left_on="end_date", right_on="start_date", by="account_id")
    covered = found.loc[found["reach"] > found["end_date"], "term"]
    return pd.Series(ended.index.isin(covered), index=ended.index)


def renewal_table(ended: pd.DataFrame, by: GroupBy | None) -> pd.DataFrame:
    """Per renewal month: accounts and contracts due (outcome known), renewed, churned,
    undecided, and the logo renewal rate (renewed accounts / accounts due)."""
    keys = period_keys(PERIOD, by)
    flags = ended.assign(
        due=ended["renewed"].notna(),
        renewed_=ended["renewed"].fillna(False).astype(bool),
        churned=(~ended["renewed"].fillna(True)).astype(bool),
        undecided=ended["renewed"].isna(),
    )
    table = flags.groupby(keys, sort=True).agg(
        contracts_due=("due", "sum"),
        contracts_renewed=("renewed_", "sum"),
        contracts_churned=("churned", "sum"),
        contracts_undecided=("undecided", "sum"),
    )
    # A term running on past the account's last term end of the month keeps the logo; one
    # running past an earlier term only (both ending this month) does not.
    last_end = flags.groupby([*keys, "account_id"], sort=False, dropna=False)[
        "end_date"].transform("max")
    flags["kept"] = flags["renewed_"] | (flags["runs_on"] & (flags["end_date"] == last_end))
    logos = flags.groupby([*keys, "account_id"], sort=True, dropna=False).agg(
        renewed_=("kept", "any"), undecided=("undecided", "any")
    )
    logos["undecided"] &= ~logos["renewed_"]
    logos["churned"] = ~logos["renewed_"] & ~logos["undecided"]
    accounts = logos.groupby(level=keys, sort=True).agg(
        accounts_renewed=("renewed_", "sum"),
        accounts_churned=("churned", "sum"),
        accounts_undecided=("undecided", "sum"),
    )
    table = table.join(accounts).reset_index()
    table["accounts_due"] = table["accounts_renewed"] + table["accounts_churned"]
    table["renewal_rate"] = safe_ratio(table["accounts_renewed"], table["accounts_due"])
    return _typed(table, keys, RENEWAL_COLUMNS)


def ndr_table(ended: pd.DataFrame, by: GroupBy | None) -> pd.DataFrame:
    """Per renewal month: beginning ARR, expansion, contraction, churned ARR and NDR.

    A renewed contract without ``next_arr`` is counted flat (next = arr) and reported in
    ``renewed_next_arr_assumed``; ``next_arr`` of a churned contract is ignored.
    """
    keys = period_keys(PERIOD, by)
    decided = ended["renewed"].notna()
    renewed = ended["renewed"].fillna(False).astype(bool)
    assumed = renewed & ended["next_arr"].isna()
    next_arr = ended["next_arr"].fillna(ended["arr"]).astype("float64")
    change = (next_arr - ended["arr"]).where(renewed, 0.0)
    flags = pd.DataFrame({
        **{k: ended[k] for k in keys},
        "due": decided,
        "renewed": renewed,
        "churned": decided & ~renewed,
        "undecided": ~decided,
        "beginning_arr": ended["arr"].where(decided, 0.0),
        "expansion_arr": change.clip(lower=0),
        "contraction_arr": (-change).clip(lower=0),
        "churned_arr": ended["arr"].where(decided & ~renewed, 0.0),
        "assumed": assumed,
    })
    table = flags.groupby(keys, sort=True).agg(
        contracts_due=("due", "sum"),
        contracts_renewed=("renewed", "sum"),
        contracts_churned=("churned", "sum"),
        contracts_undecided=("undecided", "sum"),
        beginning_arr=("beginning_arr", "sum"),
        expansion_arr=("expansion_arr", "sum"),
        contraction_arr=("contraction_arr", "sum"),
        churned_arr=("churned_arr", "sum"),
        renewed_next_arr_assumed=("assumed", "sum"),
    ).reset_index()
    table["ending_arr"] = (
        table["beginning_arr"] + table["expansion_arr"] - table["contraction_arr"]
        - table["churned_arr"]
    )
    table["ndr"] = safe_ratio(table["ending_arr"], table["beginning_arr"])
    return _typed(table, keys, NDR_COLUMNS)


def _typed(table: pd.DataFrame, keys: list[str], columns: tuple[str, ...]) -> pd.DataFrame:
    """Fixed column order; counts as int64, money as float64, rates nullable Float64."""
    out = table[[*keys, *columns]].copy()
    for column in columns:
        if column.startswith(("contracts_", "accounts_")) or column == "renewed_next_arr_assumed":
            out[column] = out[column].astype("int64")
        elif column.endswith("_arr"):  # sums of float money: to the cent, not 0.590000000004
            # + 0.0: a flat renewal's contraction is -(0.0) = -0.0, shown as "-0".
            out[column] = out[column].astype("float64").round(2) + 0.0
    for key in keys:
        out[key] = out[key].astype("string")
    return out.reset_index(drop=True)
