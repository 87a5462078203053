"""Observed days, weeks and months and zero days, counted from each account's first day.

The windows read only the days with usage; a window's zero days and how much of it could be
observed are arithmetic on the account's first day. Every figure here is counted by hand on
the calendar (T = Sunday 2024-03-31, a month end; T2 = Wednesday 2024-03-27).
"""

from __future__ import annotations

import ibis
import pandas as pd
import pytest
from conftest import contracts_for, d, write_dir

from features.config import FeatureConfig
from features.daily import accounts_as_of, daily_activity, materialized, usage_days
from features.source import open_source
from features.vectors import feature_vectors, features_as_of
from features.windows import Window
from features.windows.activity import tier_counts_30d
from features.windows.history import account_starts

T, T2 = "2024-03-31", "2024-03-27"

# (signed_at, as_of): observed days of the last 30 and 90, ISO weeks of the 12, months of 3.
CASES = {
    # As of Sunday T, its week is complete (0 days back to the last Sunday); March counts.
    ("2024-03-31", T): (1, 1, 1, 1),      # signed on T: one day, T's week and month
    ("2024-03-02", T): (30, 30, 5, 1),    # T-29: the whole 30-day window
    ("2024-03-01", T): (30, 31, 5, 1),    # T-30: outside the 30 days, inside the 90
    ("2024-01-14", T): (30, 78, 12, 3),   # Sunday ending the 12th week back: it counts
    ("2024-01-15", T): (30, 77, 11, 3),   # the Monday after: 11 weeks
    ("2024-01-01", T): (30, 90, 12, 3),   # T-90: the 90 days are (T-90, T]
    ("2023-12-31", T): (30, 90, 12, 3),
    # As of Wednesday T2: 3 days back to Sunday 03-24; the last complete month is February.
    ("2024-03-27", T2): (1, 1, 0, 0),     # signed on T2: its week and month are unfinished
    ("2024-03-25", T2): (3, 3, 0, 0),     # Monday of T2's week: still no complete week
    ("2024-03-24", T2): (4, 4, 1, 0),     # Sunday 03-24: one week
    ("2024-02-29", T2): (28, 28, 4, 1),   # last day of February: one month
    ("2024-01-01", T2): (30, 87, 12, 2),  # January and February
    ("2023-12-31", T2): (30, 88, 12, 3),  # last day of December: three months
    ("2023-12-01", T2): (30, 90, 12, 3),
}


@pytest.fixture(scope="module")
def idle_dir(tmp_path_factory):
    """One idle account per case (no usage at all), plus one busy account."""
    accounts = [{"account_id": f"{signed}@{as_of}", "signed_at": signed, "seats": 10}
                for signed, as_of in CASES]
    accounts.append({"account_id": "busy", "signed_at": "2023-01-01", "seats": 10})
    usage = [{"account_id": "busy", "date": d("2024-03-30"), "user_id": "u", "logins": 1,
              "key_actions": 1}]
    return write_dir(tmp_path_factory.mktemp("idle"), accounts=accounts, usage=usage,
                     contracts=contracts_for(accounts))


@pytest.mark.parametrize(("signed", "as_of"), list(CASES))
def test_observed_windows_count_from_the_first_day(idle_dir, signed, as_of):
    frame = features_as_of(open_source(idle_dir), d(as_of), FeatureConfig())
    row = frame.set_index("account_id").loc[f"{signed}@{as_of}"]
    days_30, days_90, weeks, months = CASES[(signed, as_of)]
    assert (row.observed_days_30d, row.observed_days_90d, row.observed_weeks_12w,
            row.observed_months_3m) == (days_30, days_90, weeks, months)
    # No usage at all: every observed day is a zero day; nothing is active or summed.
    assert row.tier_zero_days_30d == days_30
    assert (row.tier_low_days_30d, row.tier_mid_days_30d, row.tier_high_days_30d) == (0, 0, 0)
    assert (row.active_days_30d, row.active_days_90d, row.weekly_active_weeks_12w,
            row.monthly_active_months_3m) == (0, 0, 0, 0)
    assert row.active_day_share_30d == 0 and row.logged_in_seat_day_share_90d == 0
    assert pd.isna(row.key_actions_per_logged_in_seat_day_90d)
    assert pd.isna(row.key_actions_change_30d) and pd.isna(row.peak_week_key_actions_change)


def test_a_spine_of_several_as_of_dates_counts_each_from_its_own(idle_dir):
    source = open_source(idle_dir)
    spine = pd.DataFrame([{"account_id": f"{signed}@{as_of}", "as_of": as_of}
                          for signed, as_of in CASES]
                         + [{"account_id": "busy", "as_of": T}, {"account_id": "busy",
                                                                   "as_of": T2}])
    together = feature_vectors(source, spine, FeatureConfig())
    apart = pd.concat([features_as_of(source, d(t), FeatureConfig()) for t in (T, T2)])
    wanted = spine.assign(account_id=spine.account_id.astype("string"),
                          as_of=pd.to_datetime(spine.as_of).astype("datetime64[ns]"))
    apart = apart.merge(wanted, on=["account_id", "as_of"])
    apart = apart.sort_values(["account_id", "as_of"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(together, apart)


def _usage(account: str, day: str, key_actions: int, logins: int = 1) -> dict:
    return {"account_id": account, "date": d(day), "user_id": "u", "logins": logins,
            "key_actions": key_actions}


@pytest.fixture(scope="module")
def busy_dir(tmp_path_factory):
    accounts = [
        # Trends need both 30-day windows observed: first day T-59 yes, T-58 no.
        {"account_id": "t59", "signed_at": "2024-02-01", "seats": 10},
        {"account_id": "t58", "signed_at": "2024-02-02", "seats": 10},
        # Peak week needs 56 observed days: first day T-55 yes, T-54 no.
        {"account_id": "p55", "signed_at": "2024-02-05", "seats": 10},
        {"account_id": "p54", "signed_at": "2024-02-06", "seats": 10},
        # Usage 10 days before signing: the account's first day is its first usage.
        {"account_id": "early", "signed_at": "2024-03-20", "seats": 10},
        # Rows without key actions are zero days too, next to days without rows.
        {"account_id": "zeros", "signed_at": "2023-06-01", "seats": 10},
    ]
    usage = []
    for account in ("t59", "t58"):
        usage += [_usage(account, "2024-02-20", 5), _usage(account, "2024-03-30", 10)]
    for account in ("p55", "p54"):
        usage += [_usage(account, "2024-02-10", 8), _usage(account, "2024-03-28", 4)]
    usage.append(_usage("early", "2024-03-10", 3))
    usage += [_usage("zeros", day, 0) for day in ("2024-03-05", "2024-03-06", "2024-03-31")]
    usage.append(_usage("zeros", "2024-03-07", 2))
    return write_dir(tmp_path_factory.mktemp("busy"), accounts=accounts, usage=usage,
                     contracts=contracts_for(accounts))


def test_trend_and_peak_week_need_their_windows_fully_observed(busy_dir):
    frame = features_as_of(open_source(busy_dir), d(T), FeatureConfig()).set_index("account_id")
    assert frame.loc["t59"].observed_days_90d == 60
    assert frame.loc["t59"].key_actions_change_30d == pytest.approx((10 - 5) / 5)
    assert pd.isna(frame.loc["t58"].key_actions_change_30d)
    # Blocks of 7 days back from T: 03-28 is in the last block, 02-10 (T-50) in the 8th.
    assert frame.loc["p55"].peak_week_key_actions_change == pytest.approx((4 - 8) / 8)
    assert pd.isna(frame.loc["p54"].peak_week_key_actions_change)


def test_zero_days_include_rows_without_key_actions_and_days_before_signing(busy_dir):
    frame = features_as_of(open_source(busy_dir), d(T), FeatureConfig()).set_index("account_id")
    early = frame.loc["early"]  # first day 03-10: 22 days to T, one of them low
    assert (early.observed_days_30d, early.tier_low_days_30d, early.tier_zero_days_30d) == (
        22, 1, 21)
    assert early.tenure_days == 11  # tenure still counts from signing
    zeros = frame.loc["zeros"]  # 3 rows without key actions, 26 days without rows, 1 low
    assert (zeros.tier_zero_days_30d, zeros.tier_low_days_30d, zeros.active_days_30d) == (
        29, 1, 1)


def test_a_given_daily_table_gives_the_same_vectors(busy_dir, idle_dir):
    """``renewal features --daily-out`` passes its whole daily table (every calendar day)."""
    config = FeatureConfig()
    for data_dir in (busy_dir, idle_dir):
        source = open_source(data_dir)
        with materialized(source, daily_activity(source, d(T), config)) as daily:
            given = features_as_of(source, d(T), config, daily=daily)
        pd.testing.assert_frame_equal(given, features_as_of(source, d(T), config))


def test_tier_counts_alone_equal_the_vectors_tier_counts(busy_dir, idle_dir):
    """``tier_counts_30d`` (the benchmark's tier-count measurement) on its own inputs: the
    days of the last 30 only and each account's first day from one MIN(date) scan."""
    config, as_of = FeatureConfig(), d(T)
    tiers = [f"tier_{t}_days_30d" for t in ("zero", "low", "mid", "high")]
    for data_dir in (busy_dir, idle_dir):
        source = open_source(data_dir)
        spine = accounts_as_of(source, as_of).select(
            "account_id", as_of=ibis.literal(as_of, "date"))
        days = usage_days(source, as_of, config, since=d("2024-03-02"))
        window = Window(source, spine, days, account_starts(source, as_of), config, as_of,
                        as_of)
        alone = tier_counts_30d(window).to_pandas().sort_values("account_id")
        vectors = features_as_of(source, as_of, config).sort_values("account_id")
        assert alone.account_id.tolist() == vectors.account_id.tolist()
        for column in tiers:
            assert alone[column].tolist() == vectors[column].tolist(), column
