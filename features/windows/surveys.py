"""Satisfaction surveys as of as_of: the last score and its change from the one before."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features.windows import KEYS, Window, days_between


def survey_features(window: Window) -> ir.Table | None:
    """last_survey_score, survey_score_change (NULL with one survey), days_since_last_survey."""
    if not window.source.has("surveys"):
        return None
    surveys, spine = window.source.tables["surveys"], window.spine
    rows = surveys.join(
        spine, [surveys.account_id == spine.account_id, surveys.date <= spine.as_of]
    ).select(spine.account_id, spine.as_of, surveys.date, surveys.score)
    ranked = rows.mutate(
        recency=ibis.row_number().over(group_by=list(KEYS), order_by=ibis.desc("date"))
    )
    top = ranked.filter(ranked.recency <= 1)
    out = top.group_by(KEYS).aggregate(
        last_survey_score=top.score.max(where=top.recency == 0),
        previous_score=top.score.max(where=top.recency == 1),
        last_survey_date=top.date.max(),
    )
    return out.select(
        *KEYS,
        last_survey_score=out.last_survey_score,
        survey_score_change=out.last_survey_score - out.previous_score,
        days_since_last_survey=days_between(out.as_of, out.last_survey_date),
    )
