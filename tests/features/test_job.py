"""The `renewal features` command end to end: validate, compute, write atomically."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import days

from renewal.cli import main

ACCOUNTS = [{"account_id": "a", "signed_at": "2024-01-01", "seats": 10},
            {"account_id": "later", "signed_at": "2024-03-01", "seats": 10}]


def _run(args: list[str], capsys) -> tuple[int, str]:
    """Run the console script in-process; return its exit code and everything it printed."""
    with pytest.raises(SystemExit) as exit_info:
        main(["features", *args])
    captured = capsys.readouterr()
    return exit_info.value.code or 0, captured.out + captured.err


def _usage() -> list[dict]:
    return [{"account_id": "a", "date": day, "user_id": "u", "logins": 1, "key_actions": 2}
            for day in days("2024-01-01", 40)]


def test_command_writes_vectors_and_daily_table(make_dir, tmp_path, capsys):
    data_dir = make_dir(ACCOUNTS, _usage())
    out, daily_out = tmp_path / "out" / "vectors.parquet", tmp_path / "daily.parquet"
    code, output = _run(["--data", str(data_dir), "--as-of", "2024-01-31", "--out", str(out),
                         "--daily-out", str(daily_out)], capsys)
    assert code == 0, output
    vectors = pd.read_parquet(out)
    assert vectors.account_id.tolist() == ["a"]
    assert vectors.active_days_30d.tolist() == [30]
    daily = pd.read_parquet(daily_out)
    assert len(daily) == 31 and daily.tier.eq("low").all()
    assert list(out.parent.iterdir()) == [out]  # no temporary files left behind


def test_unknown_config_key_is_a_readable_error(make_dir, tmp_path, capsys):
    data_dir = make_dir(ACCOUNTS, _usage())
    config = tmp_path / "features.toml"
    config.write_text("active_shares = 0.5\n")
    out = tmp_path / "vectors.parquet"
    code, output = _run(["--data", str(data_dir), "--as-of", "2024-01-31", "--out", str(out),
                         "--config", str(config)], capsys)
    assert code == 2
    assert "active_shares" in output
    assert not out.exists()


def test_broken_data_directory_exits_2_without_output(make_dir, tmp_path, capsys):
    usage = _usage()
    usage[0]["key_actions"] = -5
    data_dir = make_dir(ACCOUNTS, usage)
    out = tmp_path / "vectors.parquet"
    code, output = _run(["--data", str(data_dir), "--as-of", "2024-01-31", "--out", str(out)],
                        capsys)
    assert code == 2
    assert "usage.key_actions" in output
    assert not out.exists()
