"""Scoring as of a day after the usage ends: every account would look idle, so the run says so
and still scores. What is tested here is the in-process scoring's feature step,
``features_with_warnings``, whose warnings ``run_scoring`` passes on in its summary (the
message itself: tests/features/test_job.py; on Spark: tests/scaleout)."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from renewal.settings import Settings
from renewal.simulator import simulate
from service.scoring import features_with_warnings


def test_scoring_features_carry_a_warning_when_the_usage_ends_before_as_of(tmp_path):
    data_dir = tmp_path / "data"
    simulate(data_dir, accounts=60, seed=4, months=13)
    end = pd.Timestamp(pd.read_parquet(data_dir / "usage.parquet")["date"].max()).date()
    settings = Settings(data_dir=tmp_path, models_dir=tmp_path / "models")

    frame, warnings = features_with_warnings(data_dir, end, settings, pd.DataFrame())
    assert warnings == [] and len(frame) > 0

    later = end + timedelta(days=7)
    late_frame, warnings = features_with_warnings(data_dir, later, settings, pd.DataFrame())
    assert len(warnings) == 1
    assert warnings[0].startswith(f"usage ends {end.isoformat()}, 7 day(s) before as-of")
    # What the warning is about: the 7 days without rows count as idle days for everyone.
    both = frame.merge(late_frame, on="account_id", suffixes=("", "_late"))
    assert (both.active_days_30d_late <= both.active_days_30d).all()
    assert both.active_days_30d_late.sum() < both.active_days_30d.sum()
