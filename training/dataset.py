"""The training set: one row per contract with a known outcome (and horizon), split by time.

Snapshot rule: the features of a contract are computed as of ``end_date - horizon_days`` (the
domain's "3 months before expiry") and, with ``extra_horizons_days``, also as of ``end_date``
minus each extra horizon: one row per contract and horizon, so the model is fitted and measured
at the lead times it is served at (the scoring job scores every account on every day of its
term). A contract shorter than the horizon (a monthly term) would get a snapshot that describes
an earlier contract — or, for a first term, a date before the account even signed. Those
snapshots are clamped to the contract's ``start_date``: the row then describes the contract
being predicted, with its whole (short) term left, which is exactly what the scoring job sees
for such an account. Two horizons of one contract that clamp to the same start are one row (the
shortest horizon's). Rows whose snapshot would still precede the account's ``signed_at`` (a
contract starting before its account signed) are excluded and counted.

Time split on ``end_date`` (when the outcome becomes known), never at random, so every snapshot
of a contract lands in the same part: train on contracts ending before the calibration window,
calibrate (early stopping + calibrator) on the next window, test on the last. With
calibration_months * 30 >= the longest horizon, every training label is known before the
earliest test snapshot, as it would be in production.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from renewal.datadir import read_table
from renewal.errors import DataContractError, Problem, RenewalError
from training.config import TrainConfig

PARTS = ("train", "calibration", "test")
ID_COLUMNS = ("contract_id", "account_id", "start_date", "end_date", "as_of",
              "horizon_days")
LABEL = "renewed"
ORACLE = "oracle_probability"


@dataclass(frozen=True)
class SplitWindows:
    """Date boundaries of the three parts, by contract end date (all inclusive)."""

    train_start: date
    train_end: date
    calibration_start: date
    calibration_end: date
    test_start: date
    test_end: date

    def as_dict(self) -> dict[str, str]:
        return {k: v.isoformat() for k, v in self.__dict__.items()}


@dataclass
class TrainingSet:
    """Rows (ids, snapshot date, label, part, oracle, features) and how they were cut."""

    rows: pd.DataFrame
    feature_columns: list[str]
    windows: SplitWindows
    excluded: dict[str, int] = field(default_factory=dict)

    def part(self, name: str) -> pd.DataFrame:
        return self.rows[self.rows["part"] == name]

    @property
    def has_oracle(self) -> bool:
        return ORACLE in self.rows.columns and self.rows[ORACLE].notna().all()

    def summary(self) -> list[dict[str, Any]]:
        """Per part: rows, renewal rate, end-date range and snapshot range (printed and logged)."""
        out = []
        for name in PARTS:
            part = self.part(name)
            out.append({
                "part": name,
                "rows": int(len(part)),
                "renewal_rate": round(float(part[LABEL].mean()), 4) if len(part) else None,
                "end_date_min": _iso(part["end_date"].min()),
                "end_date_max": _iso(part["end_date"].max()),
                "as_of_min": _iso(part["as_of"].min()),
                "as_of_max": _iso(part["as_of"].max()),
            })
        return out


def _iso(value: Any) -> str | None:
    return None if pd.isna(value) else pd.Timestamp(value).date().isoformat()


def outcome_spine(
    contracts: pd.DataFrame, accounts: pd.DataFrame, horizon_days: int,
    extra_horizons_days: Sequence[int] = (),
) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per decided contract and horizon, with its snapshot date ``as_of``, the
    ``horizon_days`` it was taken at and the 0/1 label.

    Returns the rows and the counts of rows left out, by reason (never silently); with extra
    horizons the counts are of (contract, horizon) rows. Two horizons of one contract that clamp
    to the same ``as_of`` (its start) are one snapshot: the shortest horizon keeps it, the others
    are counted as ``same_snapshot_after_clamping``.
    """
    decided = contracts[contracts[LABEL].notna()].copy()
    excluded = {"undecided": int(len(contracts) - len(decided))}
    contract = np.arange(len(decided))  # by position: two rows sharing an id stay two
    decided = pd.concat(
        [decided.assign(horizon_days=days, _contract=contract,
                        as_of=decided["end_date"] - pd.Timedelta(days=days))
         for days in sorted({horizon_days, *extra_horizons_days})],  # shortest horizon first
        ignore_index=True,
    )
    clamped = decided["as_of"] < decided["start_date"]
    decided["as_of"] = decided["as_of"].where(~clamped, decided["start_date"])
    repeated = decided.duplicated(["_contract", "as_of"])
    excluded["clamped_to_start_date"] = int((clamped & ~repeated).sum())  # kept, but counted
    decided = decided[~repeated]
    signed = decided["account_id"].map(accounts.set_index("account_id")["signed_at"])
    before_signing = signed.isna() | (decided["as_of"] < signed)
    excluded["snapshot_before_signed_at"] = int(before_signing.sum())
    excluded["same_snapshot_after_clamping"] = int(repeated.sum())
    rows = decided.loc[~before_signing, ["contract_id", "account_id", "start_date", "end_date",
                                         "as_of", "horizon_days", LABEL]]
    rows[LABEL] = rows[LABEL].astype(bool).astype(int)
    rows = rows.sort_values(["end_date", "contract_id", "horizon_days"],
                            kind="stable").reset_index(drop=True)
    return rows, excluded


def split_windows(end_dates: pd.Series, config: TrainConfig) -> SplitWindows:
    """Test = the last ``test_months`` of contract ends, calibration = the months before."""
    if end_dates.empty:
        raise RenewalError("no contract has a known outcome (contracts.renewed is null for all)")
    first, last = pd.Timestamp(end_dates.min()), pd.Timestamp(end_dates.max())
    test_start = (pd.Timestamp(config.test_start) if config.test_start
                  else last - pd.DateOffset(months=config.test_months) + pd.Timedelta(days=1))
    calibration_start = (
        pd.Timestamp(config.calibration_start) if config.calibration_start
        else test_start - pd.DateOffset(months=config.calibration_months)
    )
    if not first < calibration_start < test_start <= last:
        raise RenewalError(
            f"cannot split contract ends {first.date()}..{last.date()} into train < "
            f"{calibration_start.date()} <= calibration < {test_start.date()} <= test: "
            "too little history for these windows (adjust test_months / calibration_months)"
        )
    day = pd.Timedelta(days=1)
    return SplitWindows(
        train_start=first.date(),
        train_end=(calibration_start - day).date(),
        calibration_start=calibration_start.date(),
        calibration_end=(test_start - day).date(),
        test_start=test_start.date(),
        test_end=last.date(),
    )


def horizon_gap_warning(
    windows: SplitWindows, horizon_days: int, name: str = "horizon_days"
) -> str | None:
    """A sentence when the horizon reaches back past the calibration window, else None.

    With extra horizons, call it with the longest one (``name`` says which setting it is):
    the earliest test snapshot is the one taken furthest before its contract's end.

    The earliest test row is scored as of ``test_start - horizon_days``; in production only
    the outcomes of contracts ended by then would be known. When that day falls before the
    last training outcome, the model learned from outcomes still in the future of some test
    snapshots, and the test metrics flatter it a little. Legitimate with a short history, so
    said rather than refused.
    """
    earliest_snapshot = windows.test_start - timedelta(days=horizon_days)
    if earliest_snapshot >= windows.train_end:
        return None
    gap = (windows.test_start - windows.calibration_start).days
    return (
        f"{name} {horizon_days} reaches back past the calibration window "
        f"({windows.calibration_start}..{windows.calibration_end}, {gap} days): the earliest "
        f"test snapshot, {earliest_snapshot}, comes before training outcomes known only by "
        f"{windows.train_end}, so the test metrics are slightly optimistic; make the "
        f"calibration window at least {horizon_days - 1} days (calibration_months) or the "
        "horizon shorter"
    )


def assign_parts(end_dates: pd.Series, windows: SplitWindows) -> pd.Series:
    """"train" / "calibration" / "test" per row, from its contract end date."""
    end = pd.to_datetime(end_dates)
    part = np.where(end >= pd.Timestamp(windows.test_start), "test",
                    np.where(end >= pd.Timestamp(windows.calibration_start), "calibration",
                             "train"))
    return pd.Series(part, index=end_dates.index, name="part")


def _window(part: str, windows: SplitWindows) -> str:
    """The contract-end window of ``part``, as the user can move it."""
    start, end = {"train": (windows.train_start, windows.train_end),
                  "calibration": (windows.calibration_start, windows.calibration_end),
                  "test": (windows.test_start, windows.test_end)}[part]
    return f"contract ends {start.isoformat()}..{end.isoformat()}"


def check_parts(rows: pd.DataFrame, windows: SplitWindows, min_rows: int = 1) -> None:
    """Refuse parts too small or with one outcome, before any feature or model work.

    A train part where every contract renewed (or none did) leaves the logistic baseline and
    the heuristic factor nothing to learn; scikit-learn would stop with a bare traceback.
    """
    for part in PARTS:
        labels = rows.loc[rows["part"] == part, LABEL]
        where = f"the {part} part ({_window(part, windows)})"
        if len(labels) < min_rows:
            counts = ", ".join(f"{name} {int((rows['part'] == name).sum())}" for name in PARTS)
            raise RenewalError(
                f"{where} has {len(labels)} rows (< min_rows_per_part {min_rows}); rows per "
                f"part: {counts}. Add data (more accounts or a longer history), move the "
                "windows (test_months, calibration_months, test_start, calibration_start) or "
                "lower min_rows_per_part in --train-config; windows "
                + ", ".join(f"{k} {v}" for k, v in windows.as_dict().items())
            )
        renewed = int(labels.sum())
        if renewed in (0, len(labels)):
            outcome = "renewed" if renewed else "did not renew"
            raise RenewalError(
                f"{where} has {len(labels)} rows but only one outcome (every contract "
                f"{outcome}); a model needs both: move the windows (test_months, "
                "calibration_months, test_start, calibration_start) or add data"
            )


def read_oracle(data_dir: Path) -> pd.DataFrame | None:
    """truth.parquet (simulated data only): the probability each outcome was drawn from."""
    path = Path(data_dir) / "truth.parquet"
    if not path.exists():
        return None
    truth = pd.read_parquet(path, columns=["contract_id", "p_renew"])
    truth["contract_id"] = truth["contract_id"].astype("string")
    return truth.rename(columns={"p_renew": ORACLE})


def attach_features(spine: pd.DataFrame, vectors: pd.DataFrame) -> pd.DataFrame:
    """Join feature vectors back onto the spine by (account_id, as_of); every row must match."""
    vectors = vectors.copy()
    vectors["as_of"] = pd.to_datetime(vectors["as_of"]).astype("datetime64[ns]")
    vectors["account_id"] = vectors["account_id"].astype("string")
    spine = spine.copy()
    spine["account_id"] = spine["account_id"].astype("string")
    clash = [c for c in vectors.columns if c in spine.columns and c not in ("account_id", "as_of")]
    vectors = vectors.drop(columns=clash)
    out = spine.merge(vectors, on=["account_id", "as_of"], how="left", validate="many_to_one",
                      indicator=True)
    lost = out["_merge"] != "both"
    if lost.any():
        examples = tuple(out.loc[lost, "contract_id"].astype(str).head(3))
        raise DataContractError([Problem(
            "contracts", "contract_id",
            "no feature vector for the snapshot date of these contracts", int(lost.sum()), examples,
        )])
    return out.drop(columns="_merge")


def build_training_set(
    data_dir: Path, config: TrainConfig, feature_config: Any = None, source: Any = None
) -> TrainingSet:
    """Spine → point-in-time feature vectors (features pipeline) → labels, parts, oracle."""
    from features.config import load_feature_config
    from features.registry import model_features
    from features.source import open_source
    from features.vectors import feature_vectors

    if feature_config is None:
        feature_config = load_feature_config(None)

    contracts = read_table(Path(data_dir), "contracts")
    accounts = read_table(Path(data_dir), "accounts")
    if contracts is None or accounts is None:
        missing = [n for n, t in (("contracts", contracts), ("accounts", accounts)) if t is None]
        raise DataContractError([Problem(n, None, "required table is missing") for n in missing])
    spine, excluded = outcome_spine(contracts, accounts, config.horizon_days,
                                    config.extra_horizons_days)
    windows = split_windows(spine["end_date"], config)
    spine["part"] = assign_parts(spine["end_date"], windows)
    check_parts(spine, windows, config.min_rows_per_part)  # before the costly feature vectors

    if source is None:
        source = open_source(Path(data_dir))
    points = spine[["account_id", "as_of"]].drop_duplicates().reset_index(drop=True)
    points_for_features = points.assign(as_of=points["as_of"].dt.date)
    vectors = feature_vectors(source, points_for_features, feature_config)
    rows = attach_features(spine, vectors)

    oracle = read_oracle(Path(data_dir))
    if oracle is not None:
        rows["contract_id"] = rows["contract_id"].astype("string")
        rows = rows.merge(oracle, on="contract_id", how="left")
    features = model_features(list(vectors.columns))
    return TrainingSet(rows=rows, feature_columns=list(features), windows=windows,
                       excluded=excluded)
