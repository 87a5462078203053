"""Extra snapshot horizons: one row per contract and horizon, metrics per horizon.

The served scores cover every day of a term (days_to_renewal 0..361 on the demo) while the
default training rows sit 29..90 days before the end; ``extra_horizons_days`` trains and
measures the model at longer lead times too. Without it, nothing changes.
"""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd
import pytest
from contract_frames import contracts_frame

from renewal.datadir import read_table
from renewal.errors import ConfigError
from training.config import LightGBMParams, TrainConfig, load_train_config
from training.dataset import (
    LABEL,
    assign_parts,
    build_training_set,
    outcome_spine,
    split_windows,
)
from training.evaluate import horizon_metric_names, horizon_metrics

EXTRA = [180, 270]
QUICK_EXTRA = TrainConfig(extra_horizons_days=EXTRA,
                          lightgbm=LightGBMParams(max_rounds=20, early_stopping_rounds=5))


ACCOUNTS = pd.DataFrame({
    "account_id": ["A", "B", "C", "D"],
    "signed_at": pd.to_datetime(["2024-01-01", "2024-06-01", "2024-07-01", "2024-03-01"]),
})


def _as_of(rows: pd.DataFrame) -> dict[tuple[str, int], pd.Timestamp]:
    return {(c, int(h)): a for c, h, a in
            zip(rows["contract_id"], rows["horizon_days"], rows["as_of"], strict=True)}


def test_one_row_per_contract_and_horizon():
    # 2024-12-31 is day 366 of 2024: minus 90, 180, 270 days = days 276, 186, 96.
    contracts = contracts_frame([("y1", "A", "2024-01-01", "2024-12-31", True),
                            ("u1", "A", "2025-01-01", "2025-12-31", None)])
    rows, excluded = outcome_spine(contracts, ACCOUNTS, 90, EXTRA)
    assert _as_of(rows) == {("y1", 90): pd.Timestamp("2024-10-02"),
                            ("y1", 180): pd.Timestamp("2024-07-04"),
                            ("y1", 270): pd.Timestamp("2024-04-05")}
    assert list(rows[LABEL]) == [1, 1, 1]
    assert excluded == {"undecided": 1, "clamped_to_start_date": 0,
                        "snapshot_before_signed_at": 0, "same_snapshot_after_clamping": 0}


def test_horizons_that_clamp_to_the_same_start_are_one_row_kept_at_the_shortest():
    contracts = contracts_frame([
        # monthly: every horizon clamps to the start -> one row (90), two repeats
        ("m1", "B", "2024-06-01", "2024-06-30", True),
        # 200 days (06-01..12-18, days 153..353): 90 -> 09-19, 180 -> 06-21, 270 clamps
        ("s1", "B", "2024-06-01", "2024-12-18", False),
        # exactly 180 days (07-01..12-28): 180 lands on the start unclamped, 270 clamps onto
        # the same day -> the 270 row is a repeat of the 180 one
        ("b1", "C", "2024-07-01", "2024-12-28", True),
    ])
    rows, excluded = outcome_spine(contracts, ACCOUNTS, 90, EXTRA)
    assert _as_of(rows) == {
        ("m1", 90): pd.Timestamp("2024-06-01"),
        ("s1", 90): pd.Timestamp("2024-09-19"),
        ("s1", 180): pd.Timestamp("2024-06-21"),
        ("s1", 270): pd.Timestamp("2024-06-01"),
        ("b1", 90): pd.Timestamp("2024-09-29"),
        ("b1", 180): pd.Timestamp("2024-07-01"),
    }
    # clamped and kept: m1@90, s1@270; repeats: m1@180, m1@270, b1@270
    assert excluded["clamped_to_start_date"] == 2
    assert excluded["same_snapshot_after_clamping"] == 3
    assert not rows.duplicated(["contract_id", "as_of"]).any()


def test_snapshots_before_signing_are_counted_per_horizon():
    # Starts before D signed (2024-03-01); ends 2024-06-30 (day 182): 90 -> 04-01 (kept),
    # 180 -> 01-03 and 270 -> 2023-10-04, both before signing.
    contracts = contracts_frame([("x", "D", "2023-06-01", "2024-06-30", False)])
    rows, excluded = outcome_spine(contracts, ACCOUNTS, 90, EXTRA)
    assert _as_of(rows) == {("x", 90): pd.Timestamp("2024-04-01")}
    assert excluded["snapshot_before_signed_at"] == 2


def test_the_time_split_keeps_every_snapshot_of_a_contract_together():
    # The test contract ends 2025-11-30 (day 334): its 180- and 270-day snapshots (06-03,
    # 03-05) fall in the calibration and train calendar windows, its rows all stay in test.
    contracts = contracts_frame([("tr", "A", "2024-04-01", "2025-03-31", True),
                            ("ca", "A", "2024-08-16", "2025-08-15", False),
                            ("te", "A", "2024-12-01", "2025-11-30", True)])
    rows, _ = outcome_spine(contracts, ACCOUNTS, 90, EXTRA)
    windows = split_windows(rows["end_date"], TrainConfig(
        test_start=date(2025, 10, 1), calibration_start=date(2025, 7, 1)))
    rows["part"] = assign_parts(rows["end_date"], windows)
    assert rows.groupby("contract_id")["part"].agg(set).to_dict() == {
        "tr": {"train"}, "ca": {"calibration"}, "te": {"test"}}
    assert sorted(rows.loc[rows["contract_id"] == "te", "as_of"]) == [
        pd.Timestamp("2025-03-05"), pd.Timestamp("2025-06-03"), pd.Timestamp("2025-09-01")]


def _spine_before_extra_horizons(contracts, accounts, horizon_days):
    """outcome_spine as it was before extra horizons (verbatim), the reference for the default."""
    decided = contracts[contracts[LABEL].notna()].copy()
    excluded = {"undecided": int(len(contracts) - len(decided))}
    snapshot = decided["end_date"] - pd.Timedelta(days=horizon_days)
    clamped = snapshot < decided["start_date"]
    excluded["clamped_to_start_date"] = int(clamped.sum())  # kept, but counted
    decided["as_of"] = snapshot.where(~clamped, decided["start_date"])
    signed = decided["account_id"].map(accounts.set_index("account_id")["signed_at"])
    before_signing = signed.isna() | (decided["as_of"] < signed)
    excluded["snapshot_before_signed_at"] = int(before_signing.sum())
    rows = decided.loc[~before_signing, ["contract_id", "account_id", "start_date", "end_date",
                                         "as_of", LABEL]]
    rows[LABEL] = rows[LABEL].astype(bool).astype(int)
    rows = rows.sort_values(["end_date", "contract_id"], kind="stable").reset_index(drop=True)
    return rows, excluded


def test_the_default_config_gives_exactly_the_previous_spine(data_dir):
    contracts, accounts = read_table(data_dir, "contracts"), read_table(data_dir, "accounts")
    config = TrainConfig()
    assert config.extra_horizons_days == [] and config.horizons_days == [90]
    before, excluded_before = _spine_before_extra_horizons(contracts, accounts, 90)
    rows, excluded = outcome_spine(contracts, accounts, config.horizon_days,
                                   config.extra_horizons_days)
    assert (rows["horizon_days"] == 90).all()
    pd.testing.assert_frame_equal(rows.drop(columns="horizon_days"), before)
    assert excluded == {**excluded_before, "same_snapshot_after_clamping": 0}
    assert excluded["clamped_to_start_date"] > 0  # the simulation has monthly terms


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"extra_horizons_days": [0]}, "extra_horizons_days: 0 is not a horizon"),
    ({"extra_horizons_days": [-30]}, "-30 is not a horizon: each must be at least 1 day"),
    ({"extra_horizons_days": [180, 270, 180]}, "180 is listed twice"),
    ({"extra_horizons_days": [90]}, "90 is horizon_days itself"),
    ({"horizon_days": 180, "extra_horizons_days": [180]}, "180 is horizon_days itself"),
    ({"extra_horizons_days": [True]}, "true/false is not a valid value"),
    ({"extra_horizons_days": ["180"]}, "without quotes"),
    ({"extra_horizons_days": 180}, "extra_horizons_days: Input should be a valid list"),
])
def test_extra_horizons_are_validated(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        load_train_config(None, **kwargs)


def test_extra_horizons_from_toml_and_the_cli_option(tmp_path):
    from renewal.commands.train import parse_horizons

    path = tmp_path / "train.toml"
    path.write_text("[training]\nextra_horizons_days = [270, 180]\n", encoding="utf-8")
    config = load_train_config(path)
    assert config.extra_horizons_days == [270, 180] and config.horizons_days == [90, 180, 270]
    assert load_train_config(path, extra_horizons_days=parse_horizons("")).horizons_days == [90]
    assert load_train_config(path, extra_horizons_days=parse_horizons(None)) == config
    assert parse_horizons(" 180, 270 ") == [180, 270]


@pytest.mark.parametrize(("args", "message"), [
    (["--extra-horizons-days", "180,x"], "whole days separated by commas"),
    (["--extra-horizons-days", "90"], "90 is horizon_days itself"),
    (["--horizon-days", "60", "--extra-horizons-days", "60,180"], "60 is horizon_days itself"),
])
def test_the_cli_refuses_bad_extra_horizons(data_dir, tmp_path, capsys, args, message):
    from renewal.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["train", "--data", str(data_dir), "--out", str(tmp_path / "o"), "--no-validate",
              *args])
    assert exited.value.code == 2
    said = capsys.readouterr()
    assert message in re.sub(r"[│\s]+", " ", said.out + said.err)  # rich may box it
    assert not (tmp_path / "o").exists()


def test_per_horizon_metrics_by_hand():
    frame = pd.DataFrame({"horizon_days": [90, 90, 90, 90, 180, 180, 180]})
    y = np.array([1, 0, 1, 1, 1, 0, 1])
    p = {"lightgbm": np.array([0.9, 0.2, 0.8, 0.6, 0.7, 0.4, 0.5]),
         "oracle": np.array([0.8, 0.3, 0.7, 0.7, 0.9, 0.1, 0.9])}
    out = horizon_metrics(frame, y, p, primary_horizon_days=90)
    assert list(out) == ["90", "180"]
    assert sum(h["n"] for h in out.values()) == len(frame)  # every row once
    at90, at180 = out["90"], out["180"]
    assert (at90["n"], at90["observed_rate"]) == (4, 0.75)
    lgbm = at90["models"]["lightgbm"]
    assert list(lgbm) == ["auc", "log_loss", "brier", "ece", "mean_probability"]
    assert lgbm["auc"] == 1.0
    assert lgbm["brier"] == pytest.approx((0.01 + 0.04 + 0.04 + 0.16) / 4)
    assert lgbm["ece"] == pytest.approx((0.1 + 0.2 + 0.2 + 0.4) / 4)  # 4 rows: 4 bins of one
    assert lgbm["log_loss"] == pytest.approx(-np.log([0.9, 0.8, 0.8, 0.6]).mean())
    assert lgbm["mean_probability"] == pytest.approx(0.625)
    assert at90["models"]["oracle"]["brier"] == pytest.approx((0.04 + 0.09 * 3) / 4)
    assert at180["n"] == 3 and at180["observed_rate"] == pytest.approx(2 / 3)
    assert at180["models"]["lightgbm"]["brier"] == pytest.approx((0.09 + 0.16 + 0.25) / 3)
    assert "oracle" not in at180["models"]  # knows the 90-day decision day: primary only

    names = horizon_metric_names(out)
    assert names["horizon.90.n"] == 4 and names["horizon.180.observed_rate"] == at180[
        "observed_rate"]
    assert names["horizon.180.lightgbm.ece"] == at180["models"]["lightgbm"]["ece"]
    assert "horizon.90.oracle.brier" in names
    assert not any(k.startswith("horizon.180.oracle") for k in names)


def test_a_frame_without_horizons_is_all_primary_and_one_outcome_has_no_auc():
    out = horizon_metrics(pd.DataFrame(index=range(3)), np.array([1, 1, 1]),
                          {"lightgbm": np.array([0.9, 0.8, 0.7])}, primary_horizon_days=60)
    assert list(out) == ["60"] and out["60"]["n"] == 3
    assert out["60"]["models"]["lightgbm"]["auc"] is None
    assert "horizon.60.lightgbm.auc" not in horizon_metric_names(out)


@pytest.fixture(scope="module")
def multi(data_dir, tmp_path_factory):
    """One run with extra horizons (no MLflow): training set, report, scorer."""
    from training.train import run_training

    out = tmp_path_factory.mktemp("horizons") / "out"
    training_set = build_training_set(data_dir, QUICK_EXTRA)
    return run_training(data_dir, out, QUICK_EXTRA, training_set=training_set)


def test_primary_rows_of_a_multi_horizon_set_are_the_default_set(multi, training_set):
    rows = multi.training_set.rows
    primary = rows[rows["horizon_days"] == 90].reset_index(drop=True)
    pd.testing.assert_frame_equal(primary, training_set.rows)
    assert set(rows["horizon_days"]) == {90, 180, 270}
    assert rows.groupby("contract_id")["part"].nunique().max() == 1
    predictions = pd.read_parquet(multi.out_dir / "test_predictions.parquet")
    assert set(predictions["horizon_days"]) == {90, 180, 270}
    excluded = multi.training_set.excluded
    assert excluded["same_snapshot_after_clamping"] > 0  # monthly terms collapse
    assert (len(rows) + excluded["same_snapshot_after_clamping"]
            + excluded["snapshot_before_signed_at"]) == 3 * (
        len(training_set.rows) + training_set.excluded["snapshot_before_signed_at"])


def test_the_report_has_metrics_per_horizon_counting_every_test_row_once(multi):
    report = multi.report
    test = multi.training_set.part("test")
    assert list(report["horizons"]) == ["90", "180", "270"]
    assert sum(h["n"] for h in report["horizons"].values()) == report["n_test"] == len(test)
    for days, values in report["horizons"].items():
        assert values["n"] == int((test["horizon_days"] == int(days)).sum())
        models = set(values["models"])
        assert models == ({"lightgbm", "logistic", "heuristic", "oracle"} if days == "90"
                          else {"lightgbm", "logistic", "heuristic"})
    assert "oracle" not in report["models"]  # overall = all test rows: no oracle there
    assert report["vs_oracle"]["computed_on"] == "primary horizon rows (horizon_days 90)"
    assert report["vs_oracle"]["n"] == report["horizons"]["90"]["n"]
    assert report["horizons_days"] == [90, 180, 270]
    assert multi.scorer.metadata["horizons_days"] == [90, 180, 270]
    # the gap warning is about the longest horizon: 270 days reach past a 3-month calibration
    assert any(w.startswith("extra horizon 270 reaches back") for w in report["warnings"])


def test_the_default_report_keeps_its_oracle_and_says_where_it_was_compared(training_set,
                                                                           fitted):
    from training.fit import score_all
    from training.train import build_report

    config = TrainConfig()
    report = build_report(training_set, fitted, config,
                          score_all(fitted, training_set.part("test")))
    assert list(report["horizons"]) == ["90"] and report["horizons_days"] == [90]
    assert "oracle" in report["models"]
    at90 = report["horizons"]["90"]["models"]
    for name, metrics in report["models"].items():
        for key in ("auc", "log_loss", "brier", "ece"):
            assert at90[name][key] == pytest.approx(metrics[key], rel=1e-12)
    assert report["vs_oracle"]["brier_ratio"] == (
        report["models"]["lightgbm"]["brier"] / report["models"]["oracle"]["brier"])
    assert not report["warnings"]
