"""Activation rate within the window, per signing month.

``activation rate = accounts activated within their window / accounts whose window has closed``
(``signed_at + window_days <= as_of``). Accounts still inside their window cannot have failed
yet; they are counted apart as ``accounts_pending`` (with how many already activated) instead of
being dropped or counted as failures. Accounts signed before the usage data begins
(``usage_history_starts``) cannot show their activation: they are ``accounts_unobserved``,
in neither count.
"""

from __future__ import annotations

from datetime import date

import ibis.expr.types as ir
import pandas as pd

from features.config import FeatureConfig
from features.metrics.frames import GroupBy, month_label, period_keys, safe_ratio
from features.metrics.pipeline import activation_per_account
from features.source import Source

PERIOD = "signing_month"
ACTIVATION_COLUMNS = (
    "accounts_signed", "accounts_window_closed", "accounts_activated", "accounts_not_activated",
    "activation_rate", "accounts_pending", "accounts_pending_activated", "accounts_unobserved",
)


def activation_table(
    source: Source, as_of: date, config: FeatureConfig, accounts: pd.DataFrame,
    by: GroupBy | None, days: ir.Table,
) -> pd.DataFrame:
    """Per signing month (and group): signed, window closed, activated, rate, pending.

    ``days`` are the pipeline's days up to ``as_of`` (``pipeline.shared_days``).
    """
    keys = period_keys(PERIOD, by)
    status = activation_per_account(source, as_of, config, days)
    frame = accounts.merge(status, on="account_id", how="left")
    window_end = frame["signed_at"] + pd.to_timedelta(frame["activation_window_days"], unit="D")
    unobserved = frame["activated"].isna().to_numpy(bool)
    ended = (window_end <= pd.Timestamp(as_of)).to_numpy(bool)
    closed, open_ = ended & ~unobserved, ~ended & ~unobserved
    activated = frame["activated"].fillna(False).to_numpy(bool)
    frame = frame.assign(
        closed=closed,
        activated_closed=closed & activated,
        not_activated=closed & ~activated,
        pending=open_,
        pending_activated=open_ & activated,
        unobserved=unobserved,
    )
    frame[PERIOD] = month_label(frame["signed_at"])
    if by is not None:
        frame[by] = frame["group"]
    table = frame.groupby(keys, sort=True).agg(
        accounts_signed=("account_id", "size"),
        accounts_window_closed=("closed", "sum"),
        accounts_activated=("activated_closed", "sum"),
        accounts_not_activated=("not_activated", "sum"),
        accounts_pending=("pending", "sum"),
        accounts_pending_activated=("pending_activated", "sum"),
        accounts_unobserved=("unobserved", "sum"),
    ).reset_index()
    table["activation_rate"] = safe_ratio(
        table["accounts_activated"], table["accounts_window_closed"]
    )
    out = table[[*keys, *ACTIVATION_COLUMNS]].copy()
    for column in ACTIVATION_COLUMNS:
        if column.startswith("accounts_"):
            out[column] = out[column].astype("int64")
    for key in keys:
        out[key] = out[key].astype("string")
    return out.reset_index(drop=True)
