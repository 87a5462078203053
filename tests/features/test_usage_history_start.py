"""Usage that begins after some accounts signed (an export of the last year): their activation
is unknown with ``usage_history_starts`` set, and the commands warn when it is left out."""

from __future__ import annotations

import pandas as pd
from conftest import d, days

from features.config import FeatureConfig, load_feature_config
from features.freshness import usage_start_warning
from features.metrics import cohort_metrics
from features.source import open_source
from features.vectors import features_as_of

STARTS = "2024-03-01"  # a Friday: the first day of the usage export
# Signed 30 days before it and earlier (day 30 before is 2024-01-31), the day before it, on it.
ACCOUNTS = [
    {"account_id": "old", "signed_at": "2024-01-30", "seats": 10},
    {"account_id": "edge", "signed_at": "2024-01-31", "seats": 10},
    {"account_id": "eve", "signed_at": "2024-02-29", "seats": 10},
    {"account_id": "new", "signed_at": STARTS, "seats": 10},
]


def active(account: str, start: str, count: int) -> list[dict]:
    return [{"account_id": account, "date": day, "user_id": "u", "logins": 1, "key_actions": 1}
            for day in days(start, count)]


def usage() -> list[dict]:
    # Every account is active every day from the export's start: Fri Mar 1 to Sun Mar 3 is a
    # week with 3 active days (Mar 1, 2, 3), so activation is found on Sun Mar 3.
    return [row for a in ACCOUNTS for row in active(a["account_id"], STARTS, 60)]


def vectors(make_dir, config: FeatureConfig) -> pd.DataFrame:
    source = open_source(make_dir(ACCOUNTS, usage()))
    return features_as_of(source, d("2024-04-15"), config).set_index("account_id")


def test_accounts_signed_before_the_usage_begins_have_unknown_activation(make_dir):
    """With the setting: null for old (Jan 30), edge (Jan 31) and eve (Feb 29, one day
    before); new (signed Mar 1, activation Sun Mar 3 = day 2) is read as before."""
    frame = vectors(make_dir, FeatureConfig(usage_history_starts=d(STARTS)))
    for account in ("old", "edge", "eve"):
        row = frame.loc[account]
        assert pd.isna(row.activated) and pd.isna(row.days_to_activation), account
        assert pd.isna(row.past_window_not_activated), account
        assert row.activation_window_days == 30
    assert bool(frame.loc["new", "activated"]) is True
    assert frame.loc["new", "days_to_activation"] == 2
    assert bool(frame.loc["new", "past_window_not_activated"]) is False


def test_without_the_setting_they_look_like_they_missed_their_window(make_dir):
    """What the setting is for: old's first active week found is Mar 1-3, day 33 after
    signing (> 30), so it reads as "past its window, not activated", a risk driver;
    eve's (day 3) reads as activated."""
    frame = vectors(make_dir, FeatureConfig())
    assert bool(frame.loc["old", "activated"]) is False
    assert bool(frame.loc["old", "past_window_not_activated"]) is True
    assert frame.loc["old", "days_to_activation"] == 33
    assert bool(frame.loc["eve", "activated"]) is True


def test_the_warning_counts_accounts_signed_more_than_a_window_before(make_dir):
    """Usage begins Mar 1; the shortest window is 30 days, so only accounts signed before
    Jan 31 count: old (Jan 30), not edge (Jan 31, exactly 30 days) nor eve. With the
    setting, or with a 20-day segment window moving the cut-off to Feb 10, it changes."""
    source = open_source(make_dir(ACCOUNTS, usage()))
    said = usage_start_warning(source, FeatureConfig())
    assert said is not None
    assert said.startswith("usage begins 2024-03-01, more than 30 days after 1 account(s)")
    assert "usage_history_starts = 2024-03-01" in said
    assert "old" not in said  # a count, never an account id
    assert usage_start_warning(source, FeatureConfig(usage_history_starts=d(STARTS))) is None
    shorter = FeatureConfig(activation_window_by_segment={"smb": 20})
    assert "after 2 account(s)" in usage_start_warning(source, shorter)


def test_the_cohort_metrics_count_them_apart(make_dir):
    """Signing months Jan (old, edge), Feb (eve): unobserved, in no other count. Mar (new):
    window closed Mar 31 <= Apr 15, activated on day 2."""
    source = open_source(make_dir(ACCOUNTS, usage()))
    config = FeatureConfig(usage_history_starts=d(STARTS))
    table = cohort_metrics(source, d("2024-04-15"), config, "activation").set_index(
        "signing_month")
    assert table.loc["2024-01", ["accounts_signed", "accounts_unobserved",
                                 "accounts_window_closed", "accounts_pending"]].tolist() == [
        2, 2, 0, 0]
    assert table.loc["2024-02", "accounts_unobserved"] == 1
    march = table.loc["2024-03"]
    assert (march.accounts_unobserved, march.accounts_activated, march.activation_rate) == (
        0, 1, 1.0)
    default = cohort_metrics(source, d("2024-04-15"), FeatureConfig(), "activation")
    assert default["accounts_unobserved"].sum() == 0


def test_the_setting_is_read_from_the_config_file(tmp_path):
    path = tmp_path / "features.toml"
    path.write_text(f"usage_history_starts = {STARTS}\n")
    assert load_feature_config(path).usage_history_starts == d(STARTS)
