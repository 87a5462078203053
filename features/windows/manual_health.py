"""The CSM's manual judgement as of as_of: the latest known value of each input, and its age.

Each input is taken from the latest row on or before as_of where it is filled in, so a later
row that leaves csm_score empty does not erase an earlier score. Two rows of one date that
disagree (two CSMs, a double export) take the more worrying value: the minimum (no sponsor,
the lower score), so both engines agree and a conflict never makes an account look safer
than one of its judgements says (it took the maximum: found by audit).
"""

from __future__ import annotations

import ibis.expr.types as ir

from features.windows import KEYS, Window, days_between

INPUTS = ("exec_sponsor_active", "core_process_live", "csm_score")


def _visible(window: Window) -> ir.Table:
    inputs, spine = window.source.tables["health_inputs"], window.spine
    rows = inputs.join(
        spine, [inputs.account_id == spine.account_id, inputs.date <= spine.as_of]
    )
    return rows.select(spine.account_id, spine.as_of, inputs.date, *[inputs[c] for c in INPUTS])


def _latest(rows: ir.Table, column: str) -> ir.Table:
    filled = rows.filter(rows[column].notnull())
    latest = filled.group_by(KEYS).aggregate(latest_date=filled.date.max())
    on_latest = filled.join(
        latest,
        [filled.account_id == latest.account_id, filled.as_of == latest.as_of,
         filled.date == latest.latest_date],
    ).select(filled.account_id, filled.as_of, value=filled[column].cast("int64"))
    out = on_latest.group_by(KEYS).aggregate(value=on_latest.value.min())
    dtype = "boolean" if rows[column].type().is_boolean() else "int64"
    return out.select(*KEYS, **{column: out.value.cast(dtype)})


def manual_health_features(window: Window) -> ir.Table | None:
    """exec_sponsor_active, core_process_live, csm_score, health_input_age_days, stale flag."""
    if not window.source.has("health_inputs"):
        return None
    rows = _visible(window)
    # A row without any input (a note alone) is no judgement: it does not make the inputs
    # look fresh, as a note recorded through the API does not (found by review).
    judged = rows.filter(rows.exec_sponsor_active.notnull() | rows.core_process_live.notnull()
                         | rows.csm_score.notnull())
    out = judged.group_by(KEYS).aggregate(last_input=judged.date.max())
    out = out.select(*KEYS, health_input_age_days=days_between(out.as_of, out.last_input))
    for column in INPUTS:
        latest = _latest(rows, column)
        out = out.left_join(latest, list(KEYS)).select(out, latest[column])
    return out.mutate(
        health_input_stale=out.health_input_age_days > window.config.stale_input_days
    )
