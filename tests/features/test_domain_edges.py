"""Edge cases of the domain rules (../shared/domain.md, issue #3) that the other feature tests
do not cover: fractional tier caps, minimum tiers, calendar edges, spines, breadth, and the
cohort metrics' paying months and logo counting. Every expected value is worked out by hand
in a comment."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from conftest import d, days

from features.config import FeatureConfig
from features.daily import daily_activity
from features.metrics import cohort_metrics
from features.source import open_source
from features.vectors import feature_vectors, features_as_of


def _user_rows(account: str, day, key_actions: int, logged_in: int) -> list[dict]:
    """One user-grain day: ``logged_in`` users with a login, the first does every action."""
    return [{"account_id": account, "date": day, "user_id": f"u{i}", "logins": 1,
             "key_actions": key_actions if i == 0 else 0} for i in range(logged_in)]


def _active(account: str, dates, key_actions: int = 1) -> list[dict]:
    return [{"account_id": account, "date": day, "user_id": "u", "logins": 1,
             "key_actions": key_actions} for day in dates]


def _tiers(data_dir, as_of: date, config=None) -> dict[date, tuple[str, bool]]:
    table = daily_activity(open_source(data_dir), as_of, config or FeatureConfig()).to_pandas()
    return {row.date.date(): (row.tier, bool(row.active)) for row in table.itertuples()}


def _vector(data_dir, as_of: str, config=None) -> pd.DataFrame:
    return features_as_of(open_source(data_dir), d(as_of), config or FeatureConfig()).set_index(
        "account_id")


# ------------------------------------------------------------------------------------------
# daily tiers
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("seats", "cases"), [
    # S = 7: low cap 7*0.6*2 = 8.4, mid cap 7*0.6*4 = 16.8, high needs >= 0.6*7 = 4.2 -> 5 users.
    (7, [(8, 1, "low"), (9, 1, "mid"), (16, 5, "mid"), (17, 5, "high"), (17, 4, "mid")]),
    # S = 5: low cap 6, mid cap 12 (exact), high needs >= 3 users (exact).
    (5, [(6, 1, "low"), (7, 1, "mid"), (12, 3, "mid"), (13, 3, "high"), (13, 2, "mid")]),
    # S = 1: low cap 1.2, mid cap 2.4, high needs >= 0.6 -> 1 user.
    (1, [(1, 1, "low"), (2, 1, "mid"), (3, 1, "high"), (3, 0, "mid"), (0, 1, "zero")]),
])
def test_tier_boundaries_with_fractional_caps(make_dir, seats, cases):
    accounts = [{"account_id": "a", "signed_at": "2024-01-01", "seats": seats}]
    usage = []
    for offset, (key_actions, users, _) in enumerate(cases):
        day = d("2024-01-01") + timedelta(days=offset)
        rows = _user_rows("a", day, key_actions, max(users, 1))
        if users == 0:  # actions by a user without a login: 0 logged-in seats
            rows[0]["logins"] = 0
        usage += rows
    tiers = _tiers(make_dir(accounts, usage), d("2024-01-10"))
    got = [tiers[d("2024-01-01") + timedelta(days=i)][0] for i in range(len(cases))]
    assert got == [tier for _, _, tier in cases]


def test_tier_parameters_come_from_the_config(make_dir):
    # active_share 0.5, low x3, mid x5, login share 0.8, S = 10: low cap 15, mid cap 25,
    # high needs >= 8 users. The defaults would give 15 -> mid (cap 12) and 26/7 -> high.
    config = FeatureConfig(active_share=0.5, low_multiplier=3, mid_multiplier=5,
                           high_login_share=0.8)
    accounts = [{"account_id": "a", "signed_at": "2024-01-01", "seats": 10}]
    cases = [(15, 1, "low"), (16, 1, "mid"), (25, 8, "mid"), (26, 8, "high"), (26, 7, "mid")]
    usage = []
    for offset, (key_actions, users, _) in enumerate(cases):
        usage += _user_rows("a", d("2024-01-01") + timedelta(days=offset), key_actions, users)
    tiers = _tiers(make_dir(accounts, usage), d("2024-01-10"), config)
    got = [tiers[d("2024-01-01") + timedelta(days=i)][0] for i in range(len(cases))]
    assert got == [tier for _, _, tier in cases]


@pytest.fixture
def mixed_tiers(make_dir):
    """S = 10 (low <= 12, mid <= 24, high > 24 with >= 6 users), T = Sunday 2024-03-31.

    Week Mar 25-31: high Mon-Wed (25 actions, 6 users), mid Thu-Fri (13 actions, 1 user).
    Week Mar 18-24: high Mon-Tue, low Wed-Thu (5 actions).
    """
    accounts = [{"account_id": "a", "signed_at": "2023-01-01", "seats": 10}]
    usage = []
    for day in ("2024-03-25", "2024-03-26", "2024-03-27", "2024-03-18", "2024-03-19"):
        usage += _user_rows("a", d(day), 25, 6)
    for day in ("2024-03-28", "2024-03-29"):
        usage += _user_rows("a", d(day), 13, 1)
    for day in ("2024-03-20", "2024-03-21"):
        usage += _user_rows("a", d(day), 5, 1)
    return make_dir(accounts, usage)


@pytest.mark.parametrize(("minimum", "active_30d", "weeks"), [
    ("low", 9, 2),   # 5 high + 2 mid + 2 low; both weeks have >= 3 active days
    ("mid", 7, 1),   # 5 high + 2 mid; week Mar 18-24 has only 2 (high) active days
    ("high", 5, 1),  # 5 high; week Mar 25-31 has 3 high days, Mar 18-24 only 2
])
def test_minimum_tier_drives_active_days_and_weeks(mixed_tiers, minimum, active_30d, weeks):
    row = _vector(mixed_tiers, "2024-03-31", FeatureConfig(active_min_tier=minimum)).loc["a"]
    assert (row.active_days_30d, row.weekly_active_weeks_12w) == (active_30d, weeks)
    # Tier counts do not depend on the minimum tier: 5 high, 2 mid, 2 low, 30 - 9 = 21 zero.
    assert (row.tier_high_days_30d, row.tier_mid_days_30d, row.tier_low_days_30d,
            row.tier_zero_days_30d) == (5, 2, 2, 21)


# ------------------------------------------------------------------------------------------
# activation under a non-default minimum tier (vectors and metrics must agree)
# ------------------------------------------------------------------------------------------

@pytest.fixture
def low_then_mid(make_dir):
    # Signed Mon 2024-01-01, S = 10. Low days (5 actions) Mon-Wed Jan 1-3; mid days (13 actions)
    # Mon-Wed Feb 5-7. Minimum "low": activation Wed Jan 3 = day 2 (in the 30-day window).
    # Minimum "mid": the low week does not count; activation Wed Feb 7 = day 37 (> 30: out).
    accounts = [{"account_id": "a", "signed_at": "2024-01-01", "seats": 10}]
    usage = _active("a", days("2024-01-01", 3), 5) + _active("a", days("2024-02-05", 3), 13)
    return make_dir(accounts, usage)


@pytest.mark.parametrize("as_of", ["2024-02-29", "2024-06-30"])  # history inside / before the
def test_activation_counts_only_days_of_the_minimum_tier(low_then_mid, as_of):  # look-back
    low = _vector(low_then_mid, as_of).loc["a"]
    assert (low.days_to_activation, bool(low.activated)) == (2, True)
    mid = _vector(low_then_mid, as_of, FeatureConfig(active_min_tier="mid")).loc["a"]
    assert (mid.days_to_activation, bool(mid.activated)) == (37, False)
    assert bool(mid.past_window_not_activated)


def test_activation_metric_follows_the_minimum_tier(low_then_mid):
    source = open_source(low_then_mid)
    for minimum, activated in (("low", 1), ("mid", 0)):
        table = cohort_metrics(source, d("2024-06-30"), FeatureConfig(active_min_tier=minimum),
                               "activation")
        row = table[table.signing_month == "2024-01"].iloc[0]
        assert (row.accounts_window_closed, row.accounts_activated) == (1, activated)


# ------------------------------------------------------------------------------------------
# weeks and months
# ------------------------------------------------------------------------------------------

def test_iso_week_is_not_a_rolling_seven_days(make_dir):
    # T = Monday 2024-04-01. Active Sat Mar 30, Sun Mar 31, Mon Apr 1: three days in the last
    # 7, but the ISO week Mar 25-31 has only 2 and Apr 1's week is unfinished -> 0 weeks.
    accounts = [{"account_id": "a", "signed_at": "2024-01-01", "seats": 10}]
    data_dir = make_dir(accounts, _active("a", days("2024-03-30", 3) + [d("2024-04-02")]))
    assert _vector(data_dir, "2024-04-01").loc["a"].weekly_active_weeks_12w == 0
    # Sunday 2024-04-07: week Apr 1-7 has Apr 1, 2 (2 days) -> still 0.
    assert _vector(data_dir, "2024-04-07").loc["a"].weekly_active_weeks_12w == 0


def test_leap_day_as_of_closes_february(make_dir):
    # Signed 2023-11-01. Dec 2023: 12 active days (Dec 1-12) -> active; Jan 2024: 11 (Jan 1-11)
    # -> not; Feb 2024: 12 (Feb 18-29) -> active.
    accounts = [{"account_id": "a", "signed_at": "2023-11-01", "seats": 10}]
    active = days("2023-12-01", 12) + days("2024-01-01", 11) + days("2024-02-18", 12)
    data_dir = make_dir(accounts, _active("a", active))
    # T = Thu 2024-02-29 is February's last day: Dec, Jan, Feb -> 2 of 3.
    row = _vector(data_dir, "2024-02-29").loc["a"]
    assert (row.monthly_active_months_3m, row.observed_months_3m) == (2, 3)
    assert row.activity_rate_3m == pytest.approx(2 / 3)
    # T = 2024-02-28: February is open; Nov (0 days), Dec (12), Jan (11) -> 1 of 3.
    row = _vector(data_dir, "2024-02-28").loc["a"]
    assert (row.monthly_active_months_3m, row.observed_months_3m) == (1, 3)


def test_working_days_rule_across_a_year_end_in_one_spine(make_dir):
    # Working days (Mon-Fri): Oct 2024 23 -> ceil(13.8) = 14; Nov 2024 21 -> ceil(12.6) = 13;
    # Dec 2024 22 -> ceil(13.2) = 14; Jan 2025 23 -> ceil(13.8) = 14.
    # Active: Nov 1-13 (13), Dec 1-13 (13), Jan 1-14 (14); nothing in October.
    accounts = [{"account_id": "a", "signed_at": "2024-09-01", "seats": 10}]
    active = days("2024-11-01", 13) + days("2024-12-01", 13) + days("2025-01-01", 14)
    source = open_source(make_dir(accounts, _active("a", active)))
    spine = pd.DataFrame({"account_id": ["a", "a"], "as_of": ["2024-12-31", "2025-01-31"]})
    rule = FeatureConfig(monthly_rule="working_days")
    frame = feature_vectors(source, spine, rule)
    # As of 2024-12-31: Oct (0 < 14), Nov (13 >= 13), Dec (13 < 14) -> 1.
    # As of 2025-01-31: Nov yes, Dec no, Jan (14 >= 14) yes -> 2.
    assert frame.monthly_active_months_3m.tolist() == [1, 2]
    # Rule "days" (>= 12): as of Dec 31 Nov, Dec -> 2; as of Jan 31 all three -> 3.
    assert feature_vectors(source, spine, FeatureConfig()).monthly_active_months_3m.tolist() == [
        2, 3]


def test_spine_rows_do_not_see_the_rest_of_an_unfinished_week_or_month(make_dir):
    # Active every day of March 2024, signed 2023-01-01. T1 = Wed 2024-03-27, T2 = Sun 03-31.
    accounts = [{"account_id": "a", "signed_at": "2023-01-01", "seats": 10}]
    source = open_source(make_dir(accounts, _active("a", days("2024-03-01", 31))))
    spine = pd.DataFrame({"account_id": ["a", "a"], "as_of": ["2024-03-27", "2024-03-31"]})
    frame = feature_vectors(source, spine, FeatureConfig())
    # T1: complete weeks up to Sun 03-24: Mar 18-24, 11-17, 4-10 (7 days each) and
    # Feb 26-Mar 3 (Mar 1-3 = 3 days) -> 4; months Dec, Jan, Feb -> 0; (Feb 26, Mar 27] holds
    # Mar 1-27 -> 27 active days.
    # T2: + week Mar 25-31 -> 5; months Jan, Feb, Mar (31 days) -> 1; (Mar 1, Mar 31] -> 30.
    assert frame.weekly_active_weeks_12w.tolist() == [4, 5]
    assert frame.monthly_active_months_3m.tolist() == [0, 1]
    assert frame.active_days_30d.tolist() == [27, 30]


# ------------------------------------------------------------------------------------------
# activation across a spine, trends
# ------------------------------------------------------------------------------------------

def test_activation_in_one_spine_is_revealed_only_from_its_day(make_dir):
    # Signed Mon 2024-01-01 (S = 10, 30-day window); active Mon Jan 29 (day 28), Tue 30,
    # Wed 31 (day 30): activation on day 30.
    accounts = [{"account_id": "a", "signed_at": "2024-01-01", "seats": 10}]
    source = open_source(make_dir(accounts, _active("a", days("2024-01-29", 3))))
    spine = pd.DataFrame({"account_id": ["a"] * 3,
                          "as_of": ["2024-01-30", "2024-01-31", "2024-02-01"]})
    frame = feature_vectors(source, spine, FeatureConfig())
    # T = Jan 30 (day 29): not known yet, window open. Jan 31 (day 30): activated, in.
    assert frame.activated.astype(bool).tolist() == [False, True, True]
    assert frame.days_to_activation.isna().tolist() == [True, False, False]
    assert frame.past_window_not_activated.astype(bool).tolist() == [False, False, False]


def test_trends_of_logins_and_active_users_and_a_zero_base(make_dir):
    # T = 2024-03-31; last 30 = (Mar 1, Mar 31], the 30 before = (Jan 31, Mar 1].
    # Before: Feb 10, 2 users logged in, no key action. Now: Mar 10 and Mar 11, 3 users each,
    # 2 key actions each day.
    accounts = [{"account_id": "a", "signed_at": "2023-01-01", "seats": 10}]
    usage = _user_rows("a", d("2024-02-10"), 0, 2)
    usage += _user_rows("a", d("2024-03-10"), 2, 3) + _user_rows("a", d("2024-03-11"), 2, 3)
    # Mar 1 is T-30: it belongs to the prior window. 1 login by one user.
    usage += _user_rows("a", d("2024-03-01"), 0, 1)
    row = _vector(make_dir(accounts, usage), "2024-03-31").loc["a"]
    # logins: now 6, before 2 + 1 = 3 -> (6 - 3) / 3 = 1.0; user-days the same: 1.0.
    assert row.logins_change_30d == pytest.approx(1.0)
    assert row.active_users_change_30d == pytest.approx(1.0)
    # key actions before: 0 -> change unknown (null), not inf.
    assert pd.isna(row.key_actions_change_30d)


# ------------------------------------------------------------------------------------------
# cohort metrics edges
# ------------------------------------------------------------------------------------------

def test_renewal_month_includes_a_contract_ending_on_t_and_not_one_ending_after(make_dir):
    accounts = [{"account_id": x, "signed_at": "2023-04-01", "seats": 10}
                for x in ("a", "b", "c")]
    contracts = [
        # a ends on T (renewed 1000 -> 1100), b ends T+1 (not yet due), c ended Mar 31 churned.
        {"contract_id": "ca", "account_id": "a", "start_date": "2023-04-15",
         "end_date": "2024-04-15", "arr": 1000.0, "renewed": True, "next_arr": 1100.0},
        {"contract_id": "cb", "account_id": "b", "start_date": "2023-04-16",
         "end_date": "2024-04-16", "arr": 500.0, "renewed": False, "next_arr": None},
        {"contract_id": "cc", "account_id": "c", "start_date": "2023-04-01",
         "end_date": "2024-03-31", "arr": 400.0, "renewed": False, "next_arr": None},
    ]
    source = open_source(make_dir(accounts, _active("a", [d("2023-05-02")]), contracts=contracts))
    renewal = cohort_metrics(source, d("2024-04-15"), FeatureConfig(), "renewal")
    got = {r.renewal_month: (r.contracts_due, r.contracts_renewed) for r in renewal.itertuples()}
    assert got == {"2024-03": (1, 0), "2024-04": (1, 1)}
    ndr = cohort_metrics(source, d("2024-04-15"), FeatureConfig(), "ndr")
    april = ndr[ndr.renewal_month == "2024-04"].iloc[0]
    # April: beginning 1000, expansion 100 -> ending 1100, NDR 1.1 (b's 500 not yet counted).
    assert (april.beginning_arr, april.ending_arr) == (1000.0, 1100.0)
    assert april.ndr == pytest.approx(1.1)


def test_month_ending_on_t_is_in_the_activity_metric(make_dir):
    # One paying account active Mar 1-12 2024 (12 days): as of Sun 2024-03-31 March has ended
    # and is active (12 >= 12); as of 03-30 it is not reported.
    accounts = [{"account_id": "a", "signed_at": "2024-01-01", "seats": 10}]
    source = open_source(make_dir(accounts, _active("a", days("2024-03-01", 12))))
    table = cohort_metrics(source, d("2024-03-31"), FeatureConfig(), "activity")
    march = table[table.month == "2024-03"].iloc[0]
    assert (march.paying_accounts, march.monthly_active_accounts) == (1, 1)
    earlier = cohort_metrics(source, d("2024-03-30"), FeatureConfig(), "activity")
    assert "2024-03" not in set(earlier.month)


@pytest.mark.parametrize(("terms", "paying", "partial"), [
    # A term ending Mar 10 and the next starting Mar 20: nothing paid Mar 11-19 -> partial
    # (an account that lapsed during the month is not a paying account that month).
    ([("2023-03-11", "2024-03-10"), ("2024-03-20", "2025-03-19")], 0, 1),
    # Chained terms, Mar 15 then Mar 16: every day of March is paid -> paying.
    ([("2023-03-16", "2024-03-15"), ("2024-03-16", "2025-03-15")], 1, 0),
    # The renewal starting the day the old term ends (overlap of one day) -> paying.
    ([("2023-03-15", "2024-03-15"), ("2024-03-15", "2025-03-14")], 1, 0),
    # A short term inside a long one, out of order in the file -> paying.
    ([("2024-03-05", "2024-03-08"), ("2023-01-01", "2024-12-31")], 1, 0),
    # Two terms leaving Mar 31 unpaid -> partial.
    ([("2023-01-01", "2024-03-10"), ("2024-03-11", "2024-03-30")], 0, 1),
])
def test_a_month_is_paying_when_the_terms_together_cover_every_day(make_dir, terms, paying,
                                                                    partial):
    accounts = [{"account_id": "a", "signed_at": "2023-01-01", "seats": 10}]
    contracts = [
        {"contract_id": f"c{i}", "account_id": "a", "start_date": start, "end_date": end,
         "arr": 1000.0, "renewed": None, "next_arr": None}
        for i, (start, end) in enumerate(terms)
    ]
    source = open_source(make_dir(accounts, _active("a", [d("2023-05-02")]), contracts=contracts))
    table = cohort_metrics(source, d("2024-04-15"), FeatureConfig(), "activity")
    march = table[table.month == "2024-03"].iloc[0]
    assert (march.paying_accounts, march.partial_month_accounts) == (paying, partial)


# ------------------------------------------------------------------------------------------
# breadth: seats and sites
# ------------------------------------------------------------------------------------------

def test_account_grain_sites_tiers_and_breadth(make_dir):
    # S = 10, T = 2024-03-31, account-grain usage with sites.
    accounts = [{"account_id": "a", "signed_at": "2023-01-01", "seats": 10}]
    usage = [
        # Mar 30: 20 + 5 = 25 actions (> 24), 4 + 2 = 6 logged-in seats (>= 6) -> high.
        {"account_id": "a", "date": d("2024-03-30"), "site_id": "S1", "logins": 4,
         "key_actions": 20, "active_users": 4},
        {"account_id": "a", "date": d("2024-03-30"), "site_id": "S2", "logins": 2,
         "key_actions": 5, "active_users": 2},
        # Mar 31: logins only -> zero tier; S1 only.
        {"account_id": "a", "date": d("2024-03-31"), "site_id": "S1", "logins": 3,
         "key_actions": 0, "active_users": 3},
        # Feb 15: outside (Mar 1, Mar 31]; S3 is seen before T but not active in the 30 days.
        {"account_id": "a", "date": d("2024-02-15"), "site_id": "S3", "logins": 1,
         "key_actions": 3, "active_users": 1},
        # After T: a fourth site that must not be "seen".
        {"account_id": "a", "date": d("2024-04-01"), "site_id": "S4", "logins": 1,
         "key_actions": 3, "active_users": 1},
    ]
    row = _vector(make_dir(accounts, usage), "2024-03-31").loc["a"]
    assert (row.tier_high_days_30d, row.tier_zero_days_30d, row.active_days_30d) == (1, 29, 1)
    # Account grain: busiest day's logged-in seats / seats = 6 / 10.
    assert row.seat_utilization_30d == pytest.approx(0.6)
    # Sites with a key action in the 30 days: S1, S2 -> 2 of the 3 seen on or before T.
    assert row.active_sites_30d == 2
    assert row.active_site_share_30d == pytest.approx(2 / 3)


def test_user_grain_seat_utilization_counts_distinct_logged_in_users(make_dir):
    # S = 4, T = 2024-03-31. u1 logs in on Mar 5 and Mar 20 (counts once), u2 acts without a
    # login (not a logged-in seat), u3 logged in on Mar 1 = T-30 (outside) -> 1 / 4.
    accounts = [{"account_id": "a", "signed_at": "2023-01-01", "seats": 4}]
    usage = [
        {"account_id": "a", "date": d("2024-03-05"), "user_id": "u1", "logins": 1,
         "key_actions": 1},
        {"account_id": "a", "date": d("2024-03-20"), "user_id": "u1", "logins": 2,
         "key_actions": 0},
        {"account_id": "a", "date": d("2024-03-20"), "user_id": "u2", "logins": 0,
         "key_actions": 4},
        {"account_id": "a", "date": d("2024-03-01"), "user_id": "u3", "logins": 1,
         "key_actions": 1},
    ]
    row = _vector(make_dir(accounts, usage), "2024-03-31").loc["a"]
    assert row.seat_utilization_30d == pytest.approx(1 / 4)


def test_logo_renewal_rate_counts_accounts_not_contract_lines(make_dir):
    """Logo renewal counts accounts, NDR counts money (domain.md section 1)."""
    # x has two terms ending in April 2024, both renewed; y one, churned. Accounts: 2 due,
    # 1 renewed -> 1 / 2 (per contract it would be 2 / 3). NDR over the three terms:
    # (1000 + 500 + 0) / (1000 + 500 + 500) = 0.75.
    accounts = [{"account_id": x, "signed_at": "2023-04-01", "seats": 10} for x in ("x", "y")]
    contracts = [
        {"contract_id": "x1", "account_id": "x", "start_date": "2023-04-01",
         "end_date": "2024-04-02", "arr": 1000.0, "renewed": True, "next_arr": 1000.0},
        {"contract_id": "x2", "account_id": "x", "start_date": "2023-04-10",
         "end_date": "2024-04-09", "arr": 500.0, "renewed": True, "next_arr": 500.0},
        {"contract_id": "y1", "account_id": "y", "start_date": "2023-04-05",
         "end_date": "2024-04-04", "arr": 500.0, "renewed": False, "next_arr": None},
    ]
    source = open_source(make_dir(accounts, _active("x", [d("2023-05-02")]), contracts=contracts))
    ndr = cohort_metrics(source, d("2024-04-30"), FeatureConfig(), "ndr").iloc[0]
    assert ndr.ndr == pytest.approx(0.75)
    renewal = cohort_metrics(source, d("2024-04-30"), FeatureConfig(), "renewal").iloc[0]
    assert (renewal.accounts_due, renewal.accounts_renewed, renewal.accounts_churned) == (2, 1, 1)
    assert (renewal.contracts_due, renewal.contracts_renewed) == (3, 2)
    assert renewal.renewal_rate == pytest.approx(1 / 2)


@pytest.mark.parametrize(("outcomes", "expected"), [
    # (renewed, churned, undecided) accounts for one account's two terms ending in April.
    ((True, False), (1, 0, 0)),    # one term kept: still a customer -> renewed
    ((False, False), (0, 1, 0)),   # both decided, none renewed -> churned
    ((False, None), (0, 0, 1)),    # one still open, none renewed -> undecided, not churned
    ((True, None), (1, 0, 0)),     # one renewed is enough
    ((None, None), (0, 0, 1)),
])
def test_an_account_with_several_terms_in_a_month_is_one_logo(make_dir, outcomes, expected):
    accounts = [{"account_id": "x", "signed_at": "2023-04-01", "seats": 10}]
    contracts = [
        {"contract_id": f"x{i}", "account_id": "x", "start_date": "2023-04-01",
         "end_date": f"2024-04-0{i + 1}", "arr": 100.0, "renewed": outcome, "next_arr": None}
        for i, outcome in enumerate(outcomes)
    ]
    source = open_source(make_dir(accounts, _active("x", [d("2023-05-02")]), contracts=contracts))
    row = cohort_metrics(source, d("2024-04-30"), FeatureConfig(), "renewal").iloc[0]
    assert (row.accounts_renewed, row.accounts_churned, row.accounts_undecided) == expected
    assert row.accounts_due == expected[0] + expected[1]
    assert row.contracts_due == sum(o is not None for o in outcomes)
