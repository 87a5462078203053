"""The training set: snapshot dates, labels, the time split, and that nothing leaks."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from contract_frames import contracts_frame

from renewal.datadir import read_table, write_table
from renewal.errors import RenewalError
from training.config import TrainConfig
from training.dataset import (
    LABEL,
    ORACLE,
    assign_parts,
    build_training_set,
    horizon_gap_warning,
    outcome_spine,
    split_windows,
)
from training.fit import fit_models, score_all

ACCOUNTS = pd.DataFrame({
    "account_id": ["A", "B", "C"],
    "signed_at": pd.to_datetime(["2024-01-01", "2024-03-01", "2024-06-01"]),
})


def test_snapshot_is_horizon_days_before_end_and_label_is_renewed():
    contracts = contracts_frame([
        ("c1", "A", "2024-01-01", "2024-12-31", True),
        ("c2", "A", "2025-01-01", "2025-12-31", None),  # undecided: no label, no row
        ("c3", "B", "2024-03-01", "2025-02-28", False),
    ])
    rows, excluded = outcome_spine(contracts, ACCOUNTS, horizon_days=90)
    assert list(rows["contract_id"]) == ["c1", "c3"]
    assert list(rows["as_of"]) == [pd.Timestamp("2024-10-02"), pd.Timestamp("2024-11-30")]
    assert list(rows[LABEL]) == [1, 0]
    assert excluded["undecided"] == 1


def test_short_terms_snapshot_at_their_start_and_are_counted():
    contracts = contracts_frame([
        # monthly first term: end - 90 days is before signing -> snapshot at start_date
        ("m1", "C", "2024-06-01", "2024-06-30", True),
        # term exactly horizon long: end - 90 == start -> not clamped
        ("m2", "C", "2024-07-01", "2024-09-29", True),
        # one day shorter than the horizon -> clamped to its start
        ("m3", "C", "2024-09-30", "2024-12-27", False),
    ])
    rows, excluded = outcome_spine(contracts, ACCOUNTS, horizon_days=90)
    assert dict(zip(rows["contract_id"], rows["as_of"], strict=True)) == {
        "m1": pd.Timestamp("2024-06-01"),
        "m2": pd.Timestamp("2024-07-01"),
        "m3": pd.Timestamp("2024-09-30"),
    }
    assert excluded["clamped_to_start_date"] == 2


def test_snapshot_before_the_account_signed_is_excluded_and_counted():
    contracts = contracts_frame([("x", "B", "2024-01-01", "2024-12-31", True)])  # pre-signing
    rows, excluded = outcome_spine(
        contracts.assign(start_date=pd.Timestamp("2023-01-01"), end_date=pd.Timestamp(
            "2024-03-15")), ACCOUNTS, horizon_days=90)
    assert rows.empty
    assert excluded["snapshot_before_signed_at"] == 1


def test_time_split_boundaries_are_inclusive_by_contract_end_date():
    ends = pd.Series(pd.to_datetime(["2024-01-15", "2025-06-30", "2025-07-01", "2025-09-30",
                                     "2025-10-01", "2025-12-31"]))
    windows = split_windows(ends, TrainConfig(test_months=3, calibration_months=3))
    assert windows.test_start == date(2025, 10, 1)
    assert windows.test_end == date(2025, 12, 31)
    assert windows.calibration_start == date(2025, 7, 1)
    assert windows.train_end == date(2025, 6, 30)
    assert list(assign_parts(ends, windows)) == [
        "train", "train", "calibration", "calibration", "test", "test"]


def test_a_horizon_reaching_past_the_calibration_window_is_said():
    """Calibration 2025-07-01..09-30 (92 days), training outcomes known by 2025-06-30. The
    earliest test snapshot is 2025-10-01 - horizon: 93 days gives 06-30 (every training
    outcome known then), 94 gives 06-29 (one day of training outcomes still in its future)."""
    ends = pd.Series(pd.to_datetime(["2024-01-15", "2025-06-30", "2025-07-01", "2025-12-31"]))
    windows = split_windows(ends, TrainConfig(test_months=3, calibration_months=3))
    assert horizon_gap_warning(windows, 90) is None
    assert horizon_gap_warning(windows, 93) is None
    said = horizon_gap_warning(windows, 94)
    assert said == (
        "horizon_days 94 reaches back past the calibration window (2025-07-01..2025-09-30, "
        "92 days): the earliest test snapshot, 2025-06-29, comes before training outcomes known "
        "only by 2025-06-30, so the test metrics are slightly optimistic; make the calibration "
        "window at least 93 days (calibration_months) or the horizon shorter"
    )


def test_too_little_history_is_a_clear_error():
    ends = pd.Series(pd.to_datetime(["2025-11-01", "2025-12-31"]))
    with pytest.raises(RenewalError, match="too little history"):
        split_windows(ends, TrainConfig())


def test_training_set_has_parts_labels_oracle_and_registry_features(training_set):
    rows = training_set.rows
    assert set(rows["part"]) == {"train", "calibration", "test"}
    assert rows[LABEL].isin([0, 1]).all()
    assert training_set.has_oracle
    assert ORACLE not in training_set.feature_columns and LABEL not in training_set.feature_columns
    assert "activity_rate_3m" in training_set.feature_columns
    summary = {p["part"]: p for p in training_set.summary()}
    assert summary["train"]["end_date_max"] < summary["calibration"]["end_date_min"]
    assert summary["calibration"]["end_date_max"] < summary["test"]["end_date_min"]
    assert sum(p["rows"] for p in summary.values()) == len(rows)


def _scramble_after(data_dir: Path, out: Path, cutoff: pd.Timestamp) -> None:
    """Copy ``data_dir`` with every value dated after ``cutoff`` changed (outcomes flipped)."""
    shutil.copytree(data_dir, out)
    rng = np.random.default_rng(0)
    date_column = {"usage": "date", "tickets": "opened_at", "surveys": "date",
                   "health_inputs": "date", "value": "date"}
    for name, column in date_column.items():
        frame = read_table(data_dir, name)
        late = frame[column] > cutoff
        if name == "usage":
            frame.loc[late, "key_actions"] = rng.integers(0, 500, int(late.sum()))
            frame.loc[late, "logins"] = rng.integers(0, 50, int(late.sum()))
        elif name == "tickets":
            frame.loc[late, "severity"] = "high"
            frame.loc[late, "resolved_at"] = pd.NaT
        elif name == "surveys":
            frame.loc[late, "score"] = 10 - frame.loc[late, "score"]
        elif name == "health_inputs":
            frame.loc[late, "csm_score"] = 6 - frame.loc[late, "csm_score"]
        else:
            frame.loc[late, "amount"] = frame.loc[late, "amount"] * 100
        write_table(frame, out, name)
    contracts = read_table(data_dir, "contracts")
    late = contracts["end_date"] > cutoff
    contracts.loc[late, "renewed"] = ~contracts.loc[late, "renewed"]
    contracts.loc[late & contracts["next_arr"].notna(), "next_arr"] = 1.0
    write_table(contracts, out, "contracts")


def test_no_future_leaks_into_the_training_part(data_dir, training_set, tmp_path):
    """Scramble every value dated after the train cut-off and flip every later outcome: the
    training part (features and labels) must not change by a single value."""
    windows = training_set.windows
    cutoff = pd.Timestamp(windows.train_end)
    scrambled = tmp_path / "scrambled"
    _scramble_after(data_dir, scrambled, cutoff)
    same_windows = TrainConfig(test_start=windows.test_start,
                               calibration_start=windows.calibration_start)
    again = build_training_set(scrambled, same_windows)
    columns = ["contract_id", "as_of", LABEL, *training_set.feature_columns]
    before = training_set.part("train")[columns].reset_index(drop=True)
    after = again.part("train")[columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)
    # ...while the later parts did see the scrambled data (the test has teeth).
    assert (again.part("test")[LABEL].to_numpy() != training_set.part("test")[LABEL]
            .to_numpy()).all()
    # Train snapshots all precede the cut-off by at least the horizon.
    assert (training_set.part("train")["as_of"] <= cutoff).all()


def test_test_outcomes_are_never_used_to_fit(training_set, fitted, train_config):
    """Flip every test label: every fitted model must score identically."""
    flipped = training_set.rows.copy()
    test = flipped["part"] == "test"
    flipped.loc[test, LABEL] = 1 - flipped.loc[test, LABEL]
    other = type(training_set)(flipped, training_set.feature_columns, training_set.windows)
    refit = fit_models(other, train_config)
    frame = training_set.part("test")
    a, b = score_all(fitted, frame), score_all(refit, frame)
    for model in ("lightgbm", "logistic", "heuristic"):
        np.testing.assert_array_equal(a[model], b[model])


def test_calibration_outcomes_only_reach_early_stopping_and_calibrator(
    training_set, fitted, train_config
):
    flipped = training_set.rows.copy()
    calibration = flipped["part"] == "calibration"
    flipped.loc[calibration, LABEL] = 1 - flipped.loc[calibration, LABEL]
    other = type(training_set)(flipped, training_set.feature_columns, training_set.windows)
    refit = fit_models(other, train_config)
    frame = training_set.part("test")
    a, b = score_all(fitted, frame), score_all(refit, frame)
    assert refit.factor == fitted.factor
    np.testing.assert_array_equal(a["logistic"], b["logistic"])
    np.testing.assert_array_equal(a["heuristic"], b["heuristic"])
