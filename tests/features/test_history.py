"""The pieces behind the one-pass history and the one-aggregation windows, checked by hand."""

from __future__ import annotations

import itertools

import ibis
import pandas as pd
import pytest
from conftest import d, days

from features.config import FeatureConfig
from features.daily import active_expression, is_active, tier_expression, usage_days
from features.source import open_source
from features.vectors import features_as_of
from features.windows import PackedCounts
from features.windows.history import account_history, nth_active_weekday


@pytest.mark.parametrize("n", range(1, 8))
def test_nth_active_weekday_reads_the_mask_bits_from_monday(n):
    masks = ibis.memtable(pd.DataFrame({"mask": range(128)}))
    got = masks.select("mask", weekday=nth_active_weekday(masks.mask, n)).to_pandas()
    for mask, weekday in zip(got["mask"], got["weekday"], strict=True):
        bits = [i for i in range(7) if mask >> i & 1]  # Monday = bit 0
        if len(bits) >= n:
            assert weekday == bits[n - 1], (mask, n)
    if n == 3:  # by hand: Mon, Thu, Fri, Sun -> Friday; Mon, Tue, Wed -> Wednesday
        by_mask = got.set_index("mask").weekday
        assert (by_mask[0b1011001], by_mask[0b0000111]) == (4, 2)


@pytest.mark.parametrize(("needed", "days_to"), [(1, 2), (2, 8), (3, 13), (7, None)])
def test_activation_date_for_every_required_count(make_dir, needed, days_to):
    accounts = [{"account_id": "a", "signed_at": "2024-01-01", "seats": 10}]
    # Wed 01-03 alone in its week; then Mon 01-08, Tue 01-09 and Sun 01-14; never seven.
    active = [d("2024-01-03"), d("2024-01-08"), d("2024-01-09"), d("2024-01-14")]
    usage = [{"account_id": "a", "date": day, "user_id": "u", "logins": 1, "key_actions": 1}
             for day in active]
    source = open_source(make_dir(accounts, usage))
    config = FeatureConfig(activation_week_active_days=needed)
    row = features_as_of(source, d("2024-03-01"), config).iloc[0]
    if days_to is None:
        assert pd.isna(row.days_to_activation)
    else:
        assert row.days_to_activation == days_to


def test_history_split_at_since_equals_the_whole_history(make_dir):
    """The vectors pass the days from ``since`` on and read only older usage themselves."""
    accounts = [{"account_id": "straddle", "signed_at": "2024-01-01", "seats": 10},
                {"account_id": "before", "signed_at": "2023-06-05", "seats": 10},
                {"account_id": "after", "signed_at": "2024-03-18", "seats": 10},
                {"account_id": "unused", "signed_at": "2024-02-01", "seats": 10}]
    # since = Wed 03-13: Mon 03-11 and Tue 03-12 are read from usage, Wed 03-13 from the days.
    active = {"straddle": days("2024-03-11", 3), "before": days("2023-06-05", 3),
              "after": [d("2024-03-15")] + days("2024-03-18", 3)}
    usage = [{"account_id": account, "date": day, "user_id": "u", "logins": 1,
              "key_actions": 2} for account, dates in active.items() for day in dates]
    source = open_source(make_dir(accounts, usage))
    config, as_of, since = FeatureConfig(), d("2024-03-31"), d("2024-03-13")
    whole = account_history(source, as_of, config).to_pandas()
    split = account_history(source, as_of, config, usage_days(source, as_of, config, since),
                            since).to_pandas()
    key = "account_id"
    whole, split = (f.sort_values(key).reset_index(drop=True) for f in (whole, split))
    pd.testing.assert_frame_equal(split, whole)
    by_account = whole.set_index(key)
    assert pd.isna(by_account.activation_date["unused"])
    assert by_account.activation_date.dropna().dt.date.to_dict() == {
        "straddle": d("2024-03-13"), "before": d("2023-06-07"), "after": d("2024-03-20")}
    assert by_account.start.dt.date.to_dict() == {
        "straddle": d("2024-01-01"), "before": d("2023-06-05"), "after": d("2024-03-15"),
        "unused": d("2024-02-01")}


def test_packed_counts_unpack_to_the_separate_counts_at_their_maxima():
    packed = PackedCounts({"three": 7, "many": 31, "flag": 1, "last": 90})
    frame = pd.DataFrame({"i": range(90)})
    rows = ibis.memtable(frame)
    conditions = {"three": rows.i < 7, "many": rows.i < 31, "flag": rows.i == 5,
                  "last": rows.i >= 0}
    total = sum(packed.one(name, condition) for name, condition in conditions.items())
    week = rows.i % 3
    other = PackedCounts({"w0": 31, "w1": 31, "w2": 31})
    spread = other.one_of(["w0", "w1", "w2"], week - (rows.i >= 87).ifelse(5, 0), rows.i < 93)
    out = rows.aggregate(total=total.sum(), spread=spread.sum())
    out = out.select(**packed.unpack(out.total), **other.unpack(out.spread)).to_pandas()
    assert out.iloc[0].to_dict() == {"three": 7, "many": 31, "flag": 1, "last": 90,
                                     "w0": 29, "w1": 29, "w2": 29}  # 87..89: index < 0
    with pytest.raises(ValueError, match="bits"):
        PackedCounts(dict.fromkeys("abcdefghi", 127))


@pytest.mark.parametrize("minimum", ["low", "mid", "high"])
def test_active_expression_is_the_tier_rule(minimum):
    """Every boundary of the caps (seats 10: 12 and 24; 6 logged-in seats) and odd seats."""
    grid = list(itertools.product(range(-1, 30), range(8), [0, 1, 3, 10]))
    frame = pd.DataFrame(grid, columns=["key_actions", "active_users", "seats"])
    rows = ibis.memtable(frame)
    config = FeatureConfig(active_min_tier=minimum)
    tier = tier_expression(rows.key_actions, rows.active_users, rows.seats, config)
    out = rows.select(
        expected=is_active(tier, config),
        got=active_expression(rows.key_actions, rows.active_users, rows.seats, config),
    ).to_pandas()
    assert (out.expected == out.got).all()
    assert out.got.any() and not out.got.all()


@pytest.mark.parametrize("split", [False, True], ids=["whole", "split-at-since"])
def test_weeks_straight_from_usage_rows_equal_the_per_day_route(make_dir, monkeypatch, split):
    """DuckDB reads the default rule's weeks straight from usage rows (any key action makes
    the day active); Spark and other tiers sum each day first. Same history, by hand."""
    accounts = [{"account_id": "midweek", "signed_at": "2024-01-10", "seats": 10},
                {"account_id": "logins", "signed_at": "2024-01-01", "seats": 10},
                {"account_id": "two_users", "signed_at": "2024-01-01", "seats": 10}]

    def row(account, day, key_actions, user="u"):
        return {"account_id": account, "date": d(day) if isinstance(day, str) else day,
                "user_id": user, "logins": 1,
                "key_actions": key_actions}

    usage = [
        # Signed Wed 01-10: Mon and Tue of its week are active but before signing (not
        # counted); Wed, Thu, Fri are the three counted days: activation Fri 01-12.
        *(row("midweek", day, 5) for day in ("2024-01-08", "2024-01-09", "2024-01-10",
                                             "2024-01-11", "2024-01-12")),
        # Logins without key actions are usage (the first day) but never active days.
        row("logins", "2023-12-28", 0), row("logins", "2024-01-02", 0),
        *(row("logins", day, 1) for day in ("2024-01-03", "2024-01-04", "2024-01-05")),
        # Two users a day, only one with key actions: the day is active (Mon-Wed 01-15..17).
        *(row("two_users", day, 0, user="a") for day in days("2024-01-15", 3)),
        *(row("two_users", day, 2, user="b") for day in days("2024-01-15", 3)),
    ]
    source = open_source(make_dir(accounts, usage))
    config, as_of, since = FeatureConfig(), d("2024-03-31"), d("2024-01-11")

    def history() -> pd.DataFrame:
        if split:
            out = account_history(source, as_of, config,
                                  usage_days(source, as_of, config, since), since)
        else:
            out = account_history(source, as_of, config)
        return out.to_pandas().sort_values("account_id").reset_index(drop=True)

    straight = history()
    monkeypatch.setattr("features.windows.history.is_duckdb", lambda _: False)
    per_day = history()
    pd.testing.assert_frame_equal(straight, per_day)
    by_account = straight.set_index("account_id")
    assert by_account.activation_date.dt.date.to_dict() == {
        "midweek": d("2024-01-12"), "logins": d("2024-01-05"), "two_users": d("2024-01-17")}
    assert by_account.start.dt.date.to_dict() == {
        "midweek": d("2024-01-08"), "logins": d("2023-12-28"), "two_users": d("2024-01-01")}
