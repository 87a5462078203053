"""Point-in-time window features: 30-day, ISO-week and calendar-month boundaries by hand."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from conftest import d, days

from features.config import FeatureConfig
from features.source import open_source
from features.vectors import feature_vectors, features_as_of


def _usage(account: str, active_dates: list[date], key_actions: int = 1) -> list[dict]:
    return [{"account_id": account, "date": day, "user_id": "u", "logins": 1,
             "key_actions": key_actions} for day in active_dates]


def _vector(data_dir, as_of: str, config=None):
    frame = features_as_of(open_source(data_dir), d(as_of), config or FeatureConfig())
    return frame.set_index("account_id")


def test_30_day_window_is_t_minus_30_exclusive_to_t_inclusive(make_dir):
    accounts = [{"account_id": "a", "signed_at": "2024-01-01", "seats": 10}]
    # T = 2024-03-31; T-30 = 03-01 (outside), 03-02 (inside), T (inside), T+1 (future).
    usage = _usage("a", [d("2024-03-01"), d("2024-03-02"), d("2024-03-31"), d("2024-04-01")])
    usage[1]["key_actions"] = 13  # a mid day
    row = _vector(make_dir(accounts, usage), "2024-03-31").loc["a"]
    assert row.active_days_30d == 2
    assert (row.tier_low_days_30d, row.tier_mid_days_30d, row.tier_zero_days_30d) == (1, 1, 28)
    assert row.observed_days_30d == 30 and row.active_day_share_30d == pytest.approx(2 / 30)


def test_weekly_active_weeks_use_iso_weeks_across_a_year_end(make_dir):
    accounts = [{"account_id": "a", "signed_at": "2020-10-01", "seats": 10}]
    # ISO week 2020-W53 runs Mon 2020-12-28 .. Sun 2021-01-03: 3 active days spanning the year.
    # The week before (12-21 .. 12-27) has only 2.
    active = [d("2020-12-22"), d("2020-12-27"), d("2020-12-30"), d("2021-01-01"),
              d("2021-01-03")]
    data_dir = make_dir(accounts, _usage("a", active))
    assert _vector(data_dir, "2021-01-03").loc["a"].weekly_active_weeks_12w == 1  # Sunday
    assert _vector(data_dir, "2021-01-02").loc["a"].weekly_active_weeks_12w == 0  # week open
    # Twelve weeks back from Sunday 2021-03-21 the first counted week starts Mon 2020-12-28;
    # from 2021-03-28 that week has dropped out.
    assert _vector(data_dir, "2021-03-21").loc["a"].weekly_active_weeks_12w == 1
    assert _vector(data_dir, "2021-03-28").loc["a"].weekly_active_weeks_12w == 0
    assert _vector(data_dir, "2021-03-28").loc["a"].observed_weeks_12w == 12


def test_weekly_threshold_is_three_active_days(make_dir):
    accounts = [{"account_id": "a", "signed_at": "2024-01-01", "seats": 10}]
    # Mon 2024-01-08 week: 3 days; Mon 2024-01-15 week: 2 days.
    active = [d("2024-01-08"), d("2024-01-09"), d("2024-01-14"), d("2024-01-15"), d("2024-01-21")]
    row = _vector(make_dir(accounts, _usage("a", active)), "2024-01-21").loc["a"]
    assert (row.weekly_active_weeks_12w, row.observed_weeks_12w) == (1, 3)


def test_monthly_active_months_count_complete_calendar_months(make_dir):
    accounts = [{"account_id": "a", "signed_at": "2023-12-01", "seats": 10}]
    # January 12 active days (active), February 11 (not), March 12 (active).
    active = days("2024-01-10", 12) + days("2024-02-01", 11) + days("2024-03-20", 12)
    data_dir = make_dir(accounts, _usage("a", active))
    # T = March 31 is a month end: Jan..Mar count.
    row = _vector(data_dir, "2024-03-31").loc["a"]
    assert (row.monthly_active_months_3m, row.observed_months_3m) == (2, 3)
    assert row.activity_rate_3m == pytest.approx(2 / 3)
    # T = March 30: March is not over, so Dec..Feb count (December: nothing).
    row = _vector(data_dir, "2024-03-30").loc["a"]
    assert (row.monthly_active_months_3m, row.observed_months_3m) == (1, 3)


def test_working_days_rule_uses_ceil_of_share_minus_holidays(make_dir):
    accounts = [{"account_id": "a", "signed_at": "2021-01-01", "seats": 10}]
    # Feb 2021: 20 working days -> 12 needed; March 2021: 23 -> ceil(13.8) = 14 needed.
    active = days("2021-02-01", 12) + days("2021-03-01", 13)
    data_dir = make_dir(accounts, _usage("a", active))
    by_days = _vector(data_dir, "2021-03-31").loc["a"]
    rule = FeatureConfig(monthly_rule="working_days")
    by_working_days = _vector(data_dir, "2021-03-31", rule).loc["a"]
    assert by_days.monthly_active_months_3m == 2
    assert by_working_days.monthly_active_months_3m == 1  # February only
    # Five holidays in March leave 18 working days -> ceil(10.8) = 11 needed: March counts.
    holidays = [d("2021-03-01"), d("2021-03-02"), d("2021-03-03"), d("2021-03-04"),
                d("2021-03-05")]
    rule = FeatureConfig(monthly_rule="working_days", holidays=holidays)
    assert _vector(data_dir, "2021-03-31", rule).loc["a"].monthly_active_months_3m == 2


def test_trends_compare_last_30_days_with_the_30_before(make_dir):
    accounts = [{"account_id": "a", "signed_at": "2023-01-01", "seats": 10},
                {"account_id": "young", "signed_at": "2024-03-01", "seats": 10}]
    usage = _usage("a", days("2024-02-01", 30), key_actions=4) + _usage(
        "a", days("2024-03-02", 30), key_actions=1
    ) + _usage("young", days("2024-03-02", 30))
    frame = _vector(make_dir(accounts, usage), "2024-03-31")
    row = frame.loc["a"]
    assert row.key_actions_change_30d == pytest.approx((30 - 120) / 120)
    assert row.logins_change_30d == pytest.approx(0.0)
    assert row.peak_week_key_actions_change == pytest.approx((7 - 28) / 28)
    assert frame.loc["young"][["key_actions_change_30d", "logins_change_30d"]].isna().all()


@pytest.mark.parametrize(
    ("seats", "active_start", "as_of", "days_to", "activated", "past_window"),
    [
        # signed Mon 2024-01-01; activation = 3rd active day of the first ISO week with three.
        (50, "2024-01-29", "2024-03-31", 30, True, False),   # day 30, small window: in
        (50, "2024-01-30", "2024-03-31", 31, False, True),   # day 31, small window: out
        (51, "2024-01-30", "2024-03-31", 31, True, False),   # day 31, large window: in
        (51, "2024-02-13", "2024-03-31", 45, True, False),   # day 45, large window: in
        (51, "2024-02-14", "2024-03-31", 46, False, True),   # day 46, large window: out
        (50, "2024-01-29", "2024-01-30", None, False, False),  # not yet known at T
        (50, "2024-01-29", "2024-01-31", 30, True, False),   # activated on day 30, T = day 30
        # As of T the data of day T counts: not activated by the end of day 30, a 30-day
        # window is closed (the cohort metrics' signed_at + window <= T).
        (50, "2024-02-05", "2024-01-30", None, False, False),  # T - signed = 29: inside
        (50, "2024-02-05", "2024-01-31", None, False, True),   # T - signed = 30: past
        (50, "2024-02-05", "2024-02-01", None, False, True),   # T - signed = 31: past
        (51, "2024-02-20", "2024-02-14", None, False, False),  # T - signed = 44: inside
        (51, "2024-02-20", "2024-02-15", None, False, True),   # T - signed = 45: past
    ],
)
def test_activation_window_boundaries(make_dir, seats, active_start, as_of, days_to,
                                      activated, past_window):
    accounts = [{"account_id": "a", "signed_at": "2024-01-01", "seats": seats}]
    # Two active days in the first week never activate; then three consecutive days.
    active = [d("2024-01-01"), d("2024-01-02")] + days(active_start, 3)
    row = _vector(make_dir(accounts, _usage("a", active)), as_of).loc["a"]
    assert row.activation_window_days == (30 if seats <= 50 else 45)
    if days_to is None:
        assert row.days_to_activation != row.days_to_activation  # NaN
    else:
        assert row.days_to_activation == days_to
    assert bool(row.activated) is activated
    assert bool(row.past_window_not_activated) is past_window


def test_activation_ignores_days_before_signing_and_segment_override(make_dir):
    accounts = [{"account_id": "a", "signed_at": "2024-01-03", "seats": 10, "segment": "ENT"}]
    # Mon 01-01 and Tue 01-02 are before signing: the week has only 2 countable days.
    active = days("2024-01-01", 4) + days("2024-01-08", 3)
    data_dir = make_dir(accounts, _usage("a", active))
    row = _vector(data_dir, "2024-03-01").loc["a"]
    assert row.days_to_activation == 7  # Wed 01-10 - Wed 01-03
    row = _vector(data_dir, "2024-03-01",
                  FeatureConfig(activation_window_by_segment={"ENT": 5})).loc["a"]
    assert (row.activation_window_days, bool(row.activated)) == (5, False)


def test_spine_rows_each_use_their_own_as_of(make_dir):
    accounts = [{"account_id": "a", "signed_at": "2024-01-01", "seats": 10}]
    data_dir = make_dir(accounts, _usage("a", days("2024-01-01", 60)))
    import pandas as pd

    spine = pd.DataFrame({"account_id": ["a", "a", "a"],
                          "as_of": ["2024-02-15", "2024-01-10", "2024-02-15"]})
    frame = feature_vectors(open_source(data_dir), spine, FeatureConfig())
    assert frame.as_of.dt.strftime("%Y-%m-%d").tolist() == ["2024-01-10", "2024-02-15",
                                                            "2024-02-15"]
    assert frame.active_days_30d.tolist() == [10, 30, 30]
    assert frame.tenure_days.tolist() == [9, 45, 45]


def _user_day(account: str, day: str, user: str, logins: int, key_actions: int) -> dict:
    return {"account_id": account, "date": d(day), "user_id": user, "logins": logins,
            "key_actions": key_actions}


def test_90_day_window_per_seat_volumes_and_logged_in_seat_days(make_dir):
    accounts = [{"account_id": "a", "signed_at": "2023-10-01", "seats": 4},
                {"account_id": "young", "signed_at": "2024-03-12", "seats": 2},
                {"account_id": "idle", "signed_at": "2023-10-01", "seats": 3}]
    # T = 2024-03-31: T-90 = 01-01 (outside), T-89 = 01-02 (inside), T (inside), T+1 (future).
    usage = [
        _user_day("a", "2024-01-01", "u1", 5, 100),
        _user_day("a", "2024-01-02", "u1", 1, 3), _user_day("a", "2024-01-02", "u2", 2, 5),
        _user_day("a", "2024-03-01", "u1", 1, 0),  # logged in, no key action: not active
        _user_day("a", "2024-03-31", "u1", 2, 2), _user_day("a", "2024-03-31", "u2", 1, 1),
        _user_day("a", "2024-03-31", "u3", 1, 0),
        _user_day("a", "2024-04-01", "u1", 9, 50),
        _user_day("young", "2024-03-12", "u1", 1, 2),
    ]
    frame = _vector(make_dir(accounts, usage), "2024-03-31")
    a = frame.loc["a"]
    assert (a.observed_days_90d, a.active_days_90d) == (90, 2)
    assert a.active_day_share_90d == pytest.approx(2 / 90)
    assert a.key_actions_per_seat_90d == pytest.approx((3 + 5 + 0 + 2 + 1 + 0) / 4)
    assert a.logins_per_seat_90d == pytest.approx((1 + 2 + 1 + 2 + 1 + 1) / 4)
    assert a.logged_in_seat_days_90d == 2 + 1 + 3
    assert a.logged_in_seat_day_share_90d == pytest.approx(6 / (4 * 90))
    assert a.key_actions_per_logged_in_seat_day_90d == pytest.approx(11 / 6)
    # The last 30 days, (03-01, 03-31], hold only T itself.
    assert a.key_actions_per_seat_30d == pytest.approx(3 / 4)
    assert a.logins_per_seat_30d == pytest.approx(4 / 4)

    young = frame.loc["young"]  # 20 days old: shares are over what could be observed
    assert (young.observed_days_90d, young.active_days_90d) == (20, 1)
    assert young.active_day_share_90d == pytest.approx(1 / 20)
    assert young.logged_in_seat_day_share_90d == pytest.approx(1 / (2 * 20))
    assert young.key_actions_per_logged_in_seat_day_90d == pytest.approx(2.0)

    idle = frame.loc["idle"]  # no usage at all: zero volumes, intensity unknown (not zero)
    assert (idle.active_days_90d, idle.logged_in_seat_days_90d) == (0, 0)
    assert idle.key_actions_per_seat_90d == 0 and idle.logged_in_seat_day_share_90d == 0
    assert pd.isna(idle.key_actions_per_logged_in_seat_day_90d)


def test_90_day_seat_days_sum_active_users_of_account_grain_sites(make_dir):
    accounts = [{"account_id": "a", "signed_at": "2024-01-01", "seats": 5}]
    usage = [
        {"account_id": "a", "date": d("2024-03-30"), "site_id": "S1", "logins": 3,
         "key_actions": 4, "active_users": 2},
        {"account_id": "a", "date": d("2024-03-30"), "site_id": "S2", "logins": 1,
         "key_actions": 0, "active_users": 1},
    ]
    row = _vector(make_dir(accounts, usage), "2024-03-31").loc["a"]
    assert row.logged_in_seat_days_90d == 3
    assert row.observed_days_90d == 90  # signed on T-90: (T-90, T] is fully observed
    assert row.logged_in_seat_day_share_90d == pytest.approx(3 / (5 * 90))
    assert row.key_actions_per_logged_in_seat_day_90d == pytest.approx(4 / 3)


def test_activation_far_from_the_first_key_action_is_found(make_dir):
    """The vectors read a few months of daily rows; activation may lie anywhere before."""
    accounts = [{"account_id": "late", "signed_at": "2023-01-02", "seats": 10},
                {"account_id": "early", "signed_at": "2023-01-02", "seats": 10},
                {"account_id": "before", "signed_at": "2023-03-06", "seats": 10},
                {"account_id": "never", "signed_at": "2023-01-02", "seats": 10}]
    # late: one active day a week for 20 weeks, then three in the week of Mon 2023-06-05.
    late = [d("2023-01-02") + pd.Timedelta(weeks=w) for w in range(20)]
    late = [day.date() if hasattr(day, "date") else day for day in late]
    # before: key actions long before signing (not counted), then three days in its 2nd week.
    usage = (_usage("late", late + days("2023-06-05", 3)) + _usage("early", days("2023-01-04", 3))
             + _usage("before", days("2022-11-01", 5) + days("2023-03-14", 3))
             + [{"account_id": "never", "date": d("2023-01-03"), "user_id": "u", "logins": 1,
                 "key_actions": 0}])
    frame = _vector(make_dir(accounts, usage), "2024-06-30")
    assert frame.loc["late"].days_to_activation == 156  # Wed 2023-06-07 - Mon 2023-01-02
    assert not frame.loc["late"].activated and frame.loc["late"].past_window_not_activated
    assert frame.loc["early"].days_to_activation == 4 and frame.loc["early"].activated
    assert frame.loc["before"].days_to_activation == 10
    assert pd.isna(frame.loc["never"].days_to_activation)
    assert frame.loc["never"].past_window_not_activated
