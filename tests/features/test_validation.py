"""Big data directories are checked by the engine: the same problems as ``renewal validate``."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from conftest import contracts_for, d, days, write_dir

import features.validation as validation
from renewal.contract import validate_data_dir
from renewal.errors import DataContractError

AS_OF = date(2025, 3, 31)
ACCOUNTS = [
    {"account_id": "a1", "signed_at": d("2025-01-01"), "seats": 10},
    {"account_id": "a2", "signed_at": d("2025-01-15"), "seats": 0},  # seats must be > 0
    {"account_id": "a3", "signed_at": d("2025-04-02"), "seats": 5},  # signed after AS_OF
]


def usage_rows() -> list[dict]:
    rows = [{"account_id": "a1", "date": day, "user_id": "u1", "key_actions": 3, "logins": 1}
            for day in days("2025-03-01", 35)]  # 4 rows after AS_OF
    rows[0]["logins"] = -1
    rows[1]["logins"] = -2  # 2 rows with negative logins
    rows.append(dict(rows[5]))  # one duplicated account-day-user: 2 rows share a key
    rows.append({"account_id": "ghost", "date": d("2025-03-03"), "user_id": "g",
                 "key_actions": 1, "logins": 1})  # an unknown account
    return rows


@pytest.fixture
def broken(tmp_path):
    contracts = contracts_for(ACCOUNTS)
    contracts[0]["end_date"] = contracts[0]["start_date"]  # ends when it starts
    return write_dir(tmp_path / "broken", accounts=ACCOUNTS, usage=usage_rows(),
                     contracts=contracts)


def engine_problems(data_dir, as_of=None) -> list:
    with pytest.raises(DataContractError) as refused:
        validation.check_data_dir(data_dir, as_of)
    return refused.value.problems


def summary(problems) -> set[tuple]:
    return {(p.table, p.column, p.rule, p.rows) for p in problems}


def test_the_engine_reports_what_pandas_reports(broken, monkeypatch):
    detailed = validate_data_dir(broken, AS_OF).problems
    monkeypatch.setattr(validation, "ENGINE_CHECK_FROM_ROWS", 1)
    by_engine = engine_problems(broken, AS_OF)
    assert summary(by_engine) == summary(detailed)
    # By hand: every broken rule once, with its rows.
    assert summary(by_engine) == {
        ("accounts", "seats", "values must be > 0", 1),
        ("accounts", "signed_at", "dates after --as-of 2025-03-31", 1),
        ("contracts", "end_date", "end_date must be after start_date", 1),
        ("contracts", "start_date", "dates after --as-of 2025-03-31", 1),
        ("usage", "logins", "values must be >= 0", 2),
        ("usage", "account_id, date, user_id", "duplicate key (account_id, date, user_id)", 2),
        ("usage", "account_id", "references an unknown account", 1),
        ("usage", "date", "dates after --as-of 2025-03-31", 4),
    }
    examples = {(p.table, p.column): p.examples for p in by_engine}
    assert examples[("usage", "account_id")] == ("ghost",)
    assert examples[("usage", "date")] == ("a1/2025-04-01/u1", "a1/2025-04-02/u1",
                                           "a1/2025-04-03/u1")


def test_small_directories_keep_the_detailed_check(broken, monkeypatch):
    calls = []
    monkeypatch.setattr(validation, "contract_problems",
                        lambda source: calls.append(source) or [])
    with pytest.raises(DataContractError):
        validation.check_data_dir(broken, AS_OF)
    assert calls == []  # 47 Parquet rows: below the threshold, pandas checked


def test_rows_are_counted_from_the_parquet_footers(broken, tmp_path):
    assert validation.parquet_rows(broken) == len(ACCOUNTS) + 3 + len(usage_rows())
    (tmp_path / "broken" / "surveys.parquet").write_bytes(b"not parquet")
    assert validation.parquet_rows(broken) == len(ACCOUNTS) + 3 + len(usage_rows())


def test_a_clean_big_directory_passes_the_engine_check(tmp_path, monkeypatch):
    accounts = ACCOUNTS[:1]
    usage = pd.DataFrame({"account_id": "a1", "date": days("2025-03-01", 31), "user_id": "u1",
                          "key_actions": 3, "logins": 1})
    clean = write_dir(tmp_path / "clean", accounts=accounts, usage=usage,
                      contracts=contracts_for(accounts))
    monkeypatch.setattr(validation, "ENGINE_CHECK_FROM_ROWS", 1)
    validation.check_data_dir(clean, AS_OF)  # no error
