"""The daily table: every domain tier boundary, computed by hand, and its calendar."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest
from conftest import d, days

from features.config import FeatureConfig
from features.daily import DAILY_COLUMNS, daily_activity
from features.source import open_source

T = d("2024-01-10")


def _user_rows(account: str, day: str, key_actions: int, logged_in_users: int) -> list[dict]:
    """One day of user-grain usage: the first user does every key action."""
    return [
        {"account_id": account, "date": day, "user_id": f"u{i}", "logins": 1,
         "key_actions": key_actions if i == 0 else 0}
        for i in range(logged_in_users)
    ]


def _daily(data_dir, as_of=T, config=None) -> pd.DataFrame:
    table = daily_activity(open_source(data_dir), as_of, config or FeatureConfig())
    return table.to_pandas().sort_values(["account_id", "date"]).reset_index(drop=True)


@pytest.fixture
def boundaries(make_dir):
    accounts = [{"account_id": "a", "signed_at": "2024-01-01", "seats": 10}]
    usage = []
    # seats 10: low cap 10*0.6*2 = 12, mid cap 10*0.6*4 = 24, high needs >= 6 logged-in seats.
    for day, key_actions, users in [
        ("2024-01-01", 12, 1), ("2024-01-02", 13, 1), ("2024-01-03", 24, 6),
        ("2024-01-04", 25, 6), ("2024-01-05", 25, 5), ("2024-01-06", 0, 3),
        ("2024-01-07", 1, 1),
    ]:
        usage += _user_rows("a", day, key_actions, users)
    return make_dir(accounts, usage)


def test_tier_boundaries_follow_the_domain_rule(boundaries):
    daily = _daily(boundaries)
    assert list(daily.columns) == list(DAILY_COLUMNS)
    first_week = daily.iloc[:7]
    assert first_week.tier.tolist() == ["low", "mid", "mid", "high", "mid", "zero", "low"]
    assert first_week.active.tolist() == [True, True, True, True, True, False, True]
    assert first_week.active_users.tolist() == [1, 1, 6, 6, 5, 3, 1]
    assert (daily.seats == 10).all()


def test_zero_usage_days_run_to_as_of(boundaries):
    daily = _daily(boundaries)
    assert daily.date.dt.date.tolist() == days("2024-01-01", 10)
    tail = daily.iloc[7:]
    assert (tail.key_actions == 0).all() and (tail.tier == "zero").all() and not tail.active.any()


def test_minimum_active_tier_is_configurable(boundaries):
    daily = _daily(boundaries, config=FeatureConfig(active_min_tier="mid"))
    assert daily.active.iloc[:7].tolist() == [False, True, True, True, True, False, False]


def test_distinct_users_with_a_login_count_once_per_day(make_dir):
    accounts = [{"account_id": "a", "signed_at": "2024-01-01", "seats": 10}]
    usage = [
        # u1 on two sites counts once; u2 did actions without a login: not a logged-in seat.
        {"account_id": "a", "date": "2024-01-02", "user_id": "u1", "site_id": "s1", "logins": 1,
         "key_actions": 20},
        {"account_id": "a", "date": "2024-01-02", "user_id": "u1", "site_id": "s2", "logins": 2,
         "key_actions": 5},
        {"account_id": "a", "date": "2024-01-02", "user_id": "u2", "site_id": "s1", "logins": 0,
         "key_actions": 3},
    ]
    daily = _daily(make_dir(accounts, usage))
    day = daily[daily.date == pd.Timestamp("2024-01-02")].iloc[0]
    assert (day.key_actions, day.logins, day.active_users, day.tier) == (28, 3, 1, "mid")


def test_account_grain_sums_active_users_over_sites(make_dir):
    accounts = [{"account_id": "a", "signed_at": "2024-01-01", "seats": 10}]
    usage = [
        {"account_id": "a", "date": "2024-01-02", "site_id": "s1", "logins": 4,
         "key_actions": 20, "active_users": 3},
        {"account_id": "a", "date": "2024-01-02", "site_id": "s2", "logins": 4,
         "key_actions": 5, "active_users": 3},
    ]
    daily = _daily(make_dir(accounts, usage))
    day = daily[daily.date == pd.Timestamp("2024-01-02")].iloc[0]
    assert (day.key_actions, day.active_users, day.tier) == (25, 6, "high")


def test_calendar_starts_at_first_usage_and_ignores_the_future(make_dir):
    accounts = [
        {"account_id": "early", "signed_at": "2024-01-05", "seats": 5},
        {"account_id": "later", "signed_at": "2024-01-11", "seats": 5},
    ]
    usage = [
        {"account_id": "early", "date": "2024-01-03", "user_id": "u", "logins": 1,
         "key_actions": 1},
        {"account_id": "early", "date": "2024-01-11", "user_id": "u", "logins": 1,
         "key_actions": 99},
        {"account_id": "later", "date": "2024-01-11", "user_id": "u", "logins": 1,
         "key_actions": 1},
    ]
    daily = _daily(make_dir(accounts, usage))
    assert set(daily.account_id) == {"early"}
    assert daily.date.dt.date.tolist() == days("2024-01-03", 8)
    assert daily.key_actions.sum() == 1


def test_csv_directory_gives_the_same_table(make_dir, boundaries, tmp_path):
    from renewal.datadir import read_table

    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    for name in ("accounts", "contracts", "usage"):
        read_table(boundaries, name).to_csv(csv_dir / f"{name}.csv", index=False,
                                            date_format="%Y-%m-%d")
    pd.testing.assert_frame_equal(_daily(csv_dir), _daily(boundaries))


def test_bounded_table_has_the_same_rows_from_since(make_dir):
    accounts = [
        {"account_id": "old", "signed_at": "2023-12-01", "seats": 10},
        {"account_id": "young", "signed_at": "2024-01-08", "seats": 10},
        {"account_id": "used_early", "signed_at": "2024-01-09", "seats": 10},
    ]
    usage = _user_rows("old", "2023-12-03", 5, 2) + _user_rows("old", "2024-01-06", 30, 9)
    usage += _user_rows("young", "2024-01-09", 1, 1)
    # Usage before signing and before the bound: the calendar still starts at the bound.
    usage += _user_rows("used_early", "2024-01-02", 1, 1)
    source = open_source(make_dir(accounts, usage))
    full = daily_activity(source, T, FeatureConfig()).to_pandas()
    since = d("2024-01-05")
    bounded = daily_activity(source, T, FeatureConfig(), since=since).to_pandas()
    expected = full[full.date >= pd.Timestamp(since)]
    key = ["account_id", "date"]
    pd.testing.assert_frame_equal(
        bounded.sort_values(key).reset_index(drop=True),
        expected.sort_values(key).reset_index(drop=True),
    )
    assert bounded.groupby("account_id").date.min().dt.date.to_dict() == {
        "old": since, "young": d("2024-01-08"), "used_early": since,
    }


def test_date_column_is_a_date_in_the_engine(boundaries):
    source = open_source(boundaries)
    daily = daily_activity(source, T, FeatureConfig())
    types = source.backend.con.execute(
        f"DESCRIBE {ibis.to_sql(daily, dialect='duckdb')}"
    ).df().set_index("column_name").column_type
    assert types["date"] == "DATE"


def test_temporary_tables_are_dropped_and_no_progress_bar(boundaries):
    from features.vectors import features_as_of

    source = open_source(boundaries)
    con = source.backend.con
    assert con.execute("SELECT current_setting('enable_progress_bar')").fetchall() == [(False,)]
    before = con.execute("SELECT count(*) FROM duckdb_tables()").fetchall()
    for _ in range(3):  # a scoring job or service re-scoring calls it again and again
        features_as_of(source, T, FeatureConfig())
    assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchall() == before
