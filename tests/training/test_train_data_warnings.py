"""``renewal train`` says in report.json when the usage begins after accounts signed (their
activation looks missed), as the scoring job does."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pandas as pd

from training.train import run_training


def test_usage_starting_after_signings_is_a_report_warning(data_dir: Path, train_config,
                                                           tmp_path: Path):
    late = tmp_path / "late-usage"
    shutil.copytree(data_dir, late)
    usage = pd.read_parquet(late / "usage.parquet")
    starts = usage["date"].min() + timedelta(days=120)  # an export missing the first months
    usage[usage["date"] >= starts].to_parquet(late / "usage.parquet", index=False)
    accounts = pd.read_parquet(late / "accounts.parquet")
    signed_before = int((pd.to_datetime(accounts["signed_at"])
                         < pd.Timestamp(starts) - timedelta(days=30)).sum())
    assert signed_before > 0

    result = run_training(late, tmp_path / "out", train_config)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    said = [w for w in report["warnings"] if w.startswith("usage begins")]
    assert said == [w for w in result.report["warnings"] if w.startswith("usage begins")]
    assert len(said) == 1
    assert f"after {signed_before} account(s) signed" in said[0]
    assert f"usage_history_starts = {pd.Timestamp(starts).date().isoformat()}" in said[0]


def test_the_contract_s_warnings_are_report_warnings(data_dir: Path, train_config,
                                                     tmp_path: Path):
    """A next term starting on a term's last day is accepted but said, as `renewal score`
    says it: a count, no account id."""
    shared = tmp_path / "shared-day"
    shutil.copytree(data_dir, shared)
    contracts = pd.read_parquet(shared / "contracts.parquet")
    first = contracts.sort_values(["end_date", "contract_id"]).iloc[0]
    extra = first.copy()
    extra["contract_id"] = "starts-on-the-last-day"
    extra["start_date"] = first["end_date"]
    extra["end_date"] = pd.Timestamp(first["end_date"]) + timedelta(days=364)
    pd.concat([contracts, extra.to_frame().T.astype(contracts.dtypes.to_dict())]).to_parquet(
        shared / "contracts.parquet", index=False)

    run_training(shared, tmp_path / "out", train_config)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    said = [w for w in report["warnings"] if w.startswith("contracts.end_date:")]
    assert len(said) == 1 and "(1 row;" in said[0]
    assert str(first["account_id"]) not in said[0]
