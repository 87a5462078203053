"""End to end on the simulator's data (200 accounts, 8 months): invariants that must hold."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from features.config import FeatureConfig
from features.daily import daily_activity
from features.registry import model_features
from features.source import open_source
from features.vectors import features_as_of

T = date(2024, 8, 15)


@pytest.fixture(scope="module", params=["user", "account"])
def source(request, tmp_path_factory):
    from renewal.simulator import simulate

    out = tmp_path_factory.mktemp(f"sim_{request.param}")
    simulate(out, accounts=200, seed=3, start=date(2024, 1, 1), months=8, grain=request.param)
    return open_source(out)


def test_vectors_are_consistent_with_the_daily_table(source):
    config = FeatureConfig()
    daily = daily_activity(source, T, config).to_pandas()
    vectors = features_as_of(source, T, config)
    signed = source.tables["accounts"].to_pandas()
    signed_by_t = signed[pd.to_datetime(signed.signed_at) <= pd.Timestamp(T)]
    assert set(vectors.account_id) == set(signed_by_t.account_id)
    assert not vectors.duplicated(["account_id", "as_of"]).any()
    tiers = vectors[[f"tier_{t}_days_30d" for t in ("zero", "low", "mid", "high")]].sum(axis=1)
    assert (tiers == vectors.observed_days_30d).all()
    recent = daily[pd.to_datetime(daily.date) > pd.Timestamp(T) - pd.Timedelta(days=30)]
    expected = recent.groupby("account_id").active.sum()
    got = vectors.set_index("account_id").active_days_30d
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False,
                                   check_dtype=False, check_index_type=False)
    assert (vectors.weekly_active_weeks_12w <= vectors.observed_weeks_12w).all()
    assert vectors.activated.notna().all()
    assert not (vectors.activated & vectors.past_window_not_activated).any()
    assert len(model_features(vectors.columns)) >= 45
