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


# -- values the engine's cast would fail on or silently change ---------------------------------

def engine_and_pandas(data_dir, monkeypatch) -> tuple[list, list]:
    detailed = validate_data_dir(data_dir).problems
    monkeypatch.setattr(validation, "ENGINE_CHECK_FROM_ROWS", 1)
    return engine_problems(data_dir), detailed


def small_dir(path, usage) -> object:
    """One clean account and contract (Parquet) and ``usage`` (a frame: Parquet; text: CSV)."""
    accounts = ACCOUNTS[:1]
    if isinstance(usage, str):
        write_dir(path, accounts=accounts, contracts=contracts_for(accounts))
        (path / "usage.csv").write_text(usage)
        return path
    return write_dir(path, accounts=accounts, usage=usage, contracts=contracts_for(accounts))


def test_fractional_and_huge_floats_in_an_int_column_are_reported_not_rounded(
        tmp_path, monkeypatch):
    usage = pd.DataFrame({"account_id": "a1", "date": days("2025-03-01", 4), "user_id": "u1",
                          "key_actions": [3.0, 2.5, 1e23, 4.0], "logins": 1})
    by_engine, detailed = engine_and_pandas(small_dir(tmp_path / "d", usage), monkeypatch)
    assert [p.render() for p in by_engine] == [p.render() for p in detailed] == [
        "usage.key_actions: values are not of type int"
        " (2 rows, e.g. a1/2025-03-02/u1: 2.5, a1/2025-03-03/u1: 1e+23)"
    ]


def test_csv_text_that_does_not_parse_is_counted_per_column(tmp_path, monkeypatch):
    usage = ("account_id,date,user_id,key_actions,logins\n"
             "a1,2025-03-01,u1,3,1\n"
             "a1,2025-03-02,u1,99999999999999999999999,1\n"  # beyond int64
             "a1,2025-03-03,u1,many,2.5\n"
             "a1,03/04/2025,u1,3,1\n"
             "a1,2025-03-05T22:00:00-05:00,u1,3,1\n"
             "a1,2025-03-06 00:00:00,u1,3,1\n")  # a naive time: accepted
    by_engine, detailed = engine_and_pandas(small_dir(tmp_path / "d", usage), monkeypatch)
    assert summary(by_engine) == summary(detailed) == {
        ("usage", "key_actions", "values are not of type int", 2),
        ("usage", "logins", "values are not of type int", 1),
        ("usage", "date", "values are not of type date", 1),
        ("usage", "date", "dates carry a time zone: write the local calendar date (YYYY-MM-DD)"
                          " instead", 1),
    }
    examples = {(p.table, p.column, p.rows): p.examples for p in by_engine}
    assert examples[("usage", "key_actions", 2)] == (
        "a1/2025-03-02/u1: 99999999999999999999999", "a1/2025-03-03/u1: many")
    assert examples[("usage", "date", 1)] in {("a1/03/04/2025/u1",),
                                               ("a1/2025-03-05T22:00:00-05:00/u1",)}
    assert not any("cannot be read or cast" in p.rule for p in by_engine)


def test_zoned_parquet_timestamps_are_refused_by_the_engine_too(tmp_path, monkeypatch):
    local = pd.to_datetime(days("2025-03-01", 3)).tz_localize("America/New_York")
    usage = pd.DataFrame({"account_id": "a1", "date": local + pd.Timedelta(hours=22),
                          "user_id": "u1", "key_actions": 3, "logins": 1})
    data = small_dir(tmp_path / "d", usage)
    by_engine, detailed = engine_and_pandas(data, monkeypatch)
    rule = "dates carry a time zone: write the local calendar date (YYYY-MM-DD) instead"
    assert summary(by_engine) == summary(detailed) == {("usage", "date", rule, 3)}


def test_naive_timestamps_with_a_time_pass_the_engine_check(tmp_path, monkeypatch):
    usage = pd.DataFrame({"account_id": "a1", "user_id": "u1", "key_actions": [3.0, 4.0],
                          "logins": 1,
                          "date": pd.to_datetime(["2025-03-01 13:45", "2025-03-02 00:00"])})
    parquet = small_dir(tmp_path / "p", usage)
    csv = small_dir(tmp_path / "c", "account_id,date,user_id,key_actions,logins\n"
                                    "a1,2025-03-01 13:45:00,u1,3,1\na1,2025-03-02T00:00,u1,4,1\n")
    for data in (parquet, csv):
        assert validate_data_dir(data).ok
        monkeypatch.setattr(validation, "ENGINE_CHECK_FROM_ROWS", 1)
        validation.check_data_dir(data)  # no error


def test_a_column_the_engine_cannot_cast_is_named(tmp_path, monkeypatch):
    usage = pd.DataFrame({"account_id": "a1", "date": days("2025-03-01", 2), "user_id": "u1",
                          "key_actions": 3, "logins": [[1], [2]]})
    monkeypatch.setattr(validation, "ENGINE_CHECK_FROM_ROWS", 1)
    [problem] = engine_problems(small_dir(tmp_path / "d", usage))
    assert (problem.table, problem.column) == ("usage", "logins")
    assert problem.rule.startswith("cannot be read or cast")


@pytest.mark.parametrize("unit, scale", [("seconds", 10**9), ("milliseconds", 10**6)])
def test_epoch_integers_in_a_date_column_are_refused_by_the_engine_too(
        tmp_path, monkeypatch, unit, scale):
    """Found by audit: an export's signed_at as epoch milliseconds (a long in Parquet) was
    read by the engine as nanoseconds, so every account signed on 1970-01-01 and the big
    directory passed; pandas refused the same file."""
    from renewal.datadir import write_table

    people = [{"account_id": a, "signed_at": d("2025-01-01"), "seats": 10} for a in ("a1", "a2")]
    data = write_dir(tmp_path / unit, accounts=people,
                     usage=[{"account_id": "a1", "date": d("2025-03-01"), "user_id": "u1",
                             "key_actions": 3, "logins": 1}],
                     contracts=contracts_for(people))
    signed = pd.to_datetime(["2025-01-01", "2025-01-01"]).as_unit("ns").asi8 // scale
    write_table(pd.DataFrame({"account_id": ["a1", "a2"], "signed_at": signed, "seats": 10}),
                data, "accounts")  # as the export wrote it: a long per date
    detailed = validate_data_dir(data).problems
    monkeypatch.setattr(validation, "ENGINE_CHECK_FROM_ROWS", 1)
    by_engine = engine_problems(data)
    assert ("accounts", "signed_at", "values are not of type date", 2) in summary(by_engine)
    assert {p.column for p in detailed if p.table == "accounts"} == {"signed_at"}


def test_padded_ids_and_placeholder_dates_are_refused_by_the_engine_too(tmp_path, monkeypatch):
    """Found by review of the bring-your-own-data fixes: pandas refused ids with whitespace
    around them and dates outside 1678..2261, while a big directory's engine check let them
    through (an evergreen contract then had days_to_renewal 2,912,992). Same rules, counts
    and quoted examples now."""
    usage = ("account_id,date,user_id,key_actions,logins\n"  # a CSV export: read as text
             "a1,2025-03-01,u1,3,1\na1,2025-03-02,u1 ,3,1\na1,2025-03-03,\u00a0u2,3,1\n")
    data = small_dir(tmp_path / "d", usage)
    (data / "contracts.parquet").unlink()  # an evergreen term, as a CSV export writes it
    (data / "contracts.csv").write_text("contract_id,account_id,start_date,end_date,arr,renewed\n"
                                        "c-a1,a1,2025-01-01,9999-12-31,1000.0,\n")
    by_engine, detailed = engine_and_pandas(data, monkeypatch)
    padded = ("text with whitespace around it: ids and codes are compared as written, "
              "so trim them")
    assert ("usage", "user_id", padded, 2) in summary(by_engine)
    assert any(p.column == "end_date" and p.rule.startswith("dates outside 1678-01-01..")
               for p in by_engine)
    assert summary(by_engine) == summary(detailed)
    examples = {(p.table, p.column): p.examples for p in by_engine}
    assert examples == {(p.table, p.column): p.examples for p in detailed}
    assert "a1/2025-03-02/'u1 '" in examples[("usage", "user_id")]


def test_the_engine_knows_every_whitespace_character_pandas_strips():
    from features.raw_values import _WHITESPACE

    assert set(_WHITESPACE) == {chr(c) for c in range(0x110000) if chr(c).isspace()}
