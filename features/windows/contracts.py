"""Who the account is and where its contract stands at as_of: seats, tenure, ARR, history.

Only contracts that started on or before as_of are visible; ``renewed`` and ``next_arr`` are
outcomes known only later and are never read here.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features.windows import KEYS, Window, days_between

CATEGORICAL_CONTEXT = ("segment", "csm_id", "industry", "region", "acquisition_channel")


def account_context(window: Window) -> ir.Table:
    """seats, tenure_days and the categorical context columns the accounts table has."""
    accounts, spine = window.source.tables["accounts"], window.spine
    present = [c for c in CATEGORICAL_CONTEXT if c in accounts.columns]
    rows = spine.join(accounts, "account_id")
    return rows.select(
        spine.account_id,
        spine.as_of,
        seats=accounts.seats,
        tenure_days=days_between(spine.as_of, accounts.signed_at),
        **{c: accounts[c] for c in present},
    )


def contract_features(window: Window) -> ir.Table:
    """Current contract (latest start on or before as_of): arr, days_to_renewal, history."""
    contracts, spine = window.source.tables["contracts"], window.spine
    rows = contracts.join(
        spine,
        [contracts.account_id == spine.account_id, contracts.start_date <= spine.as_of],
    ).select(
        spine.account_id, spine.as_of, contracts.contract_id, contracts.start_date,
        contracts.end_date, contracts.arr,
    )
    ranked = rows.mutate(
        recency=ibis.row_number().over(
            group_by=list(KEYS),
            order_by=[
                ibis.desc("start_date"), ibis.desc("end_date"), ibis.desc("contract_id"),
            ],
        )
    )
    current = ranked.filter(ranked.recency == 0)
    previous = ranked.filter(ranked.recency == 1)
    counts = rows.group_by(KEYS).aggregate(contracts_so_far=rows.count())
    out = current.join(counts, list(KEYS)).left_join(previous, list(KEYS))
    out = out.select(
        current.account_id,
        current.as_of,
        arr=current.arr,
        days_to_renewal=days_between(current.end_date, current.as_of),
        renewals_so_far=(counts.contracts_so_far - 1).cast("int64"),
        last_arr_change_pct=(current.arr - previous.arr) / previous.arr.nullif(0.0),
    )
    return out
