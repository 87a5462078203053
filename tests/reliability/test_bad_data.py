"""Broken data directories: every command that reads one stops with a clear error naming the
table (and column and rows where there are any), exit code 2, no traceback, and no output
file left behind, complete or partial.

Coverage, and why it is enough: every command (validate, features, metrics, train, score)
runs the same data-contract validation (``renewal.contract.validate_data_dir``) before it
reads anything else. So every bad input runs through ``validate`` (the contract itself) and
through ``features`` (a command that writes an output), and one representative bad input,
a contract that ends before it starts, runs through each of ``metrics``, ``train`` and ``score``
to prove they validate first too. That is 10 + 10 + 3 subprocesses, well under two minutes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow
RENEWAL = str(Path(sys.executable).parent / "renewal")
AS_OF = "2024-06-30"


def _frame(data: Path, table: str) -> pd.DataFrame:
    return pd.read_parquet(data / f"{table}.parquet")


def _as_csv(data: Path, table: str, frame: pd.DataFrame, **kwargs) -> None:
    (data / f"{table}.parquet").unlink()
    frame.to_csv(data / f"{table}.csv", index=False, **kwargs)


def truncated_parquet(data: Path) -> None:
    path = data / "usage.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def wrong_delimiter(data: Path) -> None:
    _as_csv(data, "accounts", _frame(data, "accounts"), sep=";")


def latin1_encoding(data: Path) -> None:
    accounts = _frame(data, "accounts")
    accounts.loc[0, "name"] = "Société Générale Façades"
    _as_csv(data, "accounts", accounts, encoding="latin-1")


def mixed_date_formats(data: Path) -> None:
    contracts = _frame(data, "contracts").astype({"start_date": "string"})
    contracts.loc[0, "start_date"] = pd.Timestamp(contracts.loc[0, "start_date"]).strftime(
        "%d/%m/%Y"
    )
    _as_csv(data, "contracts", contracts)


def strings_for_numbers(data: Path) -> None:
    contracts = _frame(data, "contracts").astype({"arr": "string"})
    contracts.loc[:2, "arr"] = "lots"
    _as_csv(data, "contracts", contracts)


def duplicate_account_days(data: Path) -> None:
    usage = _frame(data, "usage")
    pd.concat([usage, usage.head(5)]).to_parquet(data / "usage.parquet", index=False)


def usage_for_unknown_accounts(data: Path) -> None:
    usage = _frame(data, "usage")
    ghost = usage.head(3).copy()
    ghost["account_id"] = "A999999"
    pd.concat([usage, ghost]).to_parquet(data / "usage.parquet", index=False)


def zero_seats(data: Path) -> None:
    accounts = _frame(data, "accounts")
    accounts.loc[:1, "seats"] = 0
    accounts.to_parquet(data / "accounts.parquet", index=False)


def contract_ends_before_start(data: Path) -> None:
    contracts = _frame(data, "contracts")
    contracts.loc[0, "end_date"] = contracts.loc[0, "start_date"] - pd.Timedelta(days=10)
    contracts.to_parquet(data / "contracts.parquet", index=False)


def empty_table(data: Path) -> None:
    contracts = _frame(data, "contracts")
    contracts.head(0).to_parquet(data / "contracts.parquet", index=False)


#: bad input → (what breaks it, words the error must contain: table, and column if any)
BAD_INPUTS: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "truncated-parquet": (truncated_parquet, ("usage",)),
    "wrong-delimiter": (wrong_delimiter, ("accounts",)),
    "latin-1-encoding": (latin1_encoding, ("accounts",)),
    "mixed-date-formats": (mixed_date_formats, ("contracts", "start_date")),
    "strings-for-numbers": (strings_for_numbers, ("contracts", "arr")),
    "duplicate-account-days": (duplicate_account_days, ("usage",)),
    "usage-for-unknown-accounts": (usage_for_unknown_accounts, ("usage", "account_id")),
    "zero-seats": (zero_seats, ("accounts", "seats")),
    "contract-ends-before-start": (contract_ends_before_start, ("contracts", "end_date")),
    "empty-table": (empty_table, ("contracts",)),
}


def _command(name: str, data: Path, out: Path) -> list[str]:
    return {
        "validate": ["validate", "--data", str(data)],
        "features": [
            "features",
            "--data",
            str(data),
            "--as-of",
            AS_OF,
            "--out",
            str(out / "v.parquet"),
            "--daily-out",
            str(out / "daily.parquet"),
        ],
        "metrics": ["metrics", "--data", str(data), "--as-of", AS_OF, "--json"],
        "train": ["train", "--data", str(data), "--out", str(out / "train")],
        "score": ["score", "--data", str(data), "--as-of", AS_OF, "--out", str(out / "s.parquet")],
    }[name]


def run_on_bad_data(tmp_path: Path, small_data_dir: Path, problem: str, command: str):
    data = tmp_path / "data"
    shutil.copytree(small_data_dir, data)
    (data / "truth.parquet").unlink(missing_ok=True)
    BAD_INPUTS[problem][0](data)
    out = tmp_path / "out"
    out.mkdir()
    env = {
        **os.environ,
        "RENEWAL_DATA_DIR": str(tmp_path / "work"),
        "RENEWAL_MODELS_DIR": str(tmp_path / "models"),
        "RENEWAL_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "RENEWAL_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }
    before = sorted(p.name for p in data.iterdir())
    done = subprocess.run(
        [RENEWAL, *_command(command, data, out)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done, out, data, before


def _check(done, out: Path, data: Path, before: list[str], problem: str) -> None:
    text = done.stdout + done.stderr
    assert done.returncode == 2, f"exit {done.returncode}:\n{text}"
    assert "Traceback" not in text, text
    for word in BAD_INPUTS[problem][1]:
        assert word in text, f"the error does not name {word!r}:\n{text}"
    left = [str(p.relative_to(out)) for p in out.rglob("*")]
    assert not left, f"output left behind: {left}"
    assert sorted(p.name for p in data.iterdir()) == before, "the data directory was changed"


@pytest.mark.parametrize("problem", list(BAD_INPUTS))
@pytest.mark.parametrize("command", ["validate", "features"])
def test_every_bad_input_is_refused_clearly(tmp_path, small_data_dir, problem, command):
    _check(*run_on_bad_data(tmp_path, small_data_dir, problem, command), problem)


@pytest.mark.parametrize("command", ["metrics", "train", "score"])
def test_every_command_validates_before_it_works(tmp_path, small_data_dir, command):
    problem = "contract-ends-before-start"
    _check(*run_on_bad_data(tmp_path, small_data_dir, problem, command), problem)
