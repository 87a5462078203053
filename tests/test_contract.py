"""The data contract: every listed problem is reported exactly, all at once, never a traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from renewal.contract import load_valid_tables, validate_data_dir
from renewal.datadir import read_raw, write_table
from renewal.errors import DataContractError


def valid_tables() -> dict[str, pd.DataFrame]:
    """A small data directory that satisfies every rule of the contract."""
    ts = pd.to_datetime
    return {
        "accounts": pd.DataFrame(
            {
                "account_id": ["A1", "A2", "A3"],
                "signed_at": ts(["2024-01-01", "2024-02-01", "2024-03-01"]),
                "seats": [10, 60, 5],
                "segment": ["smb", "mid_market", None],
                "csm_id": ["csm_1", "csm_2", "csm_1"],
            }
        ),
        "contracts": pd.DataFrame(
            {
                "contract_id": ["C1", "C2", "C3"],
                "account_id": ["A1", "A2", "A3"],
                "start_date": ts(["2024-01-01", "2024-02-01", "2024-03-01"]),
                "end_date": ts(["2025-01-01", "2025-02-01", "2025-03-01"]),
                "arr": [1200.0, 9000.0, 600.0],
                "renewed": pd.array([True, False, None], dtype="boolean"),
                "next_arr": [1500.0, None, None],
            }
        ),
        "usage": pd.DataFrame(
            {
                "account_id": ["A1", "A1", "A2"],
                "date": ts(["2024-01-02", "2024-01-03", "2024-02-02"]),
                "user_id": ["u1", "u1", "u9"],
                "logins": [1, 2, 1],
                "key_actions": [5, 0, 3],
            }
        ),
        "tickets": pd.DataFrame(
            {
                "ticket_id": ["T1", "T2"],
                "account_id": ["A1", "A2"],
                "opened_at": ts(["2024-02-01", "2024-03-01"]),
                "type": ["bug", "usage_question"],
                "severity": ["high", None],
                "resolved_at": ts(["2024-02-05", None]),
            }
        ),
        "surveys": pd.DataFrame(
            {"account_id": ["A1"], "date": ts(["2024-04-01"]), "score": [8.0], "comment": ["ok"]}
        ),
        "health_inputs": pd.DataFrame(
            {
                "account_id": ["A1", "A2"],
                "date": ts(["2024-05-01", "2024-05-02"]),
                "exec_sponsor_active": pd.array([True, None], dtype="boolean"),
                "core_process_live": pd.array([None, False], dtype="boolean"),
                "csm_score": pd.array([4, None], dtype="Int64"),
                "note": ["sponsor engaged", None],
            }
        ),
        "value": pd.DataFrame(
            {"account_id": ["A1"], "date": ts(["2024-06-01"]), "amount": [1234.5]}
        ),
    }


def write_dir(path: Path, tables: dict[str, pd.DataFrame], fmt: str = "parquet") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        write_table(frame, path, name, fmt)  # type: ignore[arg-type]
    return path


def problems_of(path: Path, as_of: date | None = None) -> list[str]:
    return [p.render() for p in validate_data_dir(path, as_of).problems]


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    return valid_tables()


def test_valid_directory_has_no_problems(tmp_path, tables):
    report = validate_data_dir(write_dir(tmp_path / "d", tables))
    assert report.ok, report.render()
    assert report.tables == {name: len(frame) for name, frame in tables.items()}


def test_optional_tables_may_be_absent(tmp_path, tables):
    required = {k: tables[k] for k in ("accounts", "contracts", "usage")}
    assert validate_data_dir(write_dir(tmp_path / "d", required)).ok


def test_csv_directory_validates_the_same_as_parquet(tmp_path, tables):
    parquet = write_dir(tmp_path / "p", tables, "parquet")
    csv = write_dir(tmp_path / "c", tables, "csv")
    assert validate_data_dir(csv).ok
    loaded_p, loaded_c = load_valid_tables(parquet), load_valid_tables(csv)
    for name in tables:
        pd.testing.assert_frame_equal(
            loaded_p[name].reset_index(drop=True),
            loaded_c[name].reset_index(drop=True),
            check_dtype=True,
            obj=name,
        )


def test_csv_corruption_is_reported_the_same_as_parquet(tmp_path, tables):
    tables["accounts"].loc[1, "seats"] = 0
    tables["contracts"].loc[0, "account_id"] = "A404"
    assert problems_of(write_dir(tmp_path / "p", tables)) == problems_of(
        write_dir(tmp_path / "c", tables, "csv")
    )


def test_a_csv_header_naming_a_column_twice_is_refused(tmp_path, tables):
    """pandas would read the second key_actions as key_actions.1, ignored: which one did the
    export mean?"""
    data_dir = write_dir(tmp_path / "c", tables, "csv")
    usage = data_dir / "usage.csv"
    lines = usage.read_text().splitlines()
    lines = [lines[0] + ",key_actions"] + [line + ",0" for line in lines[1:]]
    usage.write_text("\n".join(lines) + "\n")
    assert problems_of(data_dir) == [
        "usage.key_actions: file usage.csv names column(s) key_actions more than once in its "
        f"header: keep one of each ({len(tables['usage'])} rows)"]


def test_missing_required_table(tmp_path, tables):
    del tables["usage"]
    assert problems_of(write_dir(tmp_path / "d", tables)) == ["usage: required table is missing"]


def test_missing_required_column(tmp_path, tables):
    tables["contracts"] = tables["contracts"].drop(columns=["arr"])
    assert problems_of(write_dir(tmp_path / "d", tables)) == [
        "contracts.arr: required column is missing"
    ]


def test_wrong_type_names_rows_and_examples(tmp_path, tables):
    tables["usage"]["key_actions"] = ["5", "many", "3"]
    assert problems_of(write_dir(tmp_path / "d", tables)) == [
        "usage.key_actions: values are not of type int (1 row, e.g. A1/2024-01-03/u1: many)"
    ]


def test_mixed_date_formats_are_rejected_not_guessed(tmp_path, tables):
    tables["accounts"]["signed_at"] = ["2024-01-01", "02/01/2024", "2024-03-01"]
    assert problems_of(write_dir(tmp_path / "d", tables, "csv")) == [
        "accounts.signed_at: values are not of type date (1 row, e.g. A2: 02/01/2024)"
    ]


def test_nulls_in_required_column(tmp_path, tables):
    tables["contracts"].loc[[0, 2], "arr"] = None
    assert problems_of(write_dir(tmp_path / "d", tables)) == [
        "contracts.arr: nulls in a required column (2 rows, e.g. C1, C3)"
    ]


def test_negative_counts_and_zero_seats(tmp_path, tables):
    tables["usage"].loc[1, "logins"] = -1
    tables["accounts"].loc[2, "seats"] = 0
    assert problems_of(write_dir(tmp_path / "d", tables)) == [
        "accounts.seats: values must be > 0 (1 row, e.g. A3)",
        "usage.logins: values must be >= 0 (1 row, e.g. A1/2024-01-03/u1)",
    ]


def test_duplicate_keys(tmp_path, tables):
    tables["accounts"].loc[2, "account_id"] = "A2"
    tables["usage"].loc[1, "date"] = pd.Timestamp("2024-01-02")
    assert problems_of(write_dir(tmp_path / "d", tables)) == [
        "accounts.account_id: duplicate key (account_id) (2 rows, e.g. A2)",
        "usage.account_id, date, user_id: duplicate key (account_id, date, user_id)"
        " (2 rows, e.g. A1/2024-01-02/u1)",
        # A3 no longer exists, so its contract now points nowhere: said, not dropped.
        "contracts.account_id: references an unknown account (1 row, e.g. A3)",
    ]


def test_references_to_unknown_accounts(tmp_path, tables):
    tables["usage"].loc[2, "account_id"] = "A404"
    tables["tickets"].loc[0, "account_id"] = "A405"
    assert problems_of(write_dir(tmp_path / "d", tables)) == [
        "usage.account_id: references an unknown account (1 row, e.g. A404)",
        "tickets.account_id: references an unknown account (1 row, e.g. A405)",
    ]


def test_contract_ending_before_it_starts(tmp_path, tables):
    tables["contracts"].loc[1, "end_date"] = pd.Timestamp("2024-01-15")
    assert problems_of(write_dir(tmp_path / "d", tables)) == [
        "contracts.end_date: end_date must be after start_date (1 row, e.g. C2)"
    ]


def test_dates_after_as_of(tmp_path, tables):
    assert problems_of(write_dir(tmp_path / "d", tables), as_of=date(2024, 2, 15)) == [
        "accounts.signed_at: dates after --as-of 2024-02-15 (1 row, e.g. A3)",
        "contracts.start_date: dates after --as-of 2024-02-15 (1 row, e.g. C3)",
        "tickets.opened_at: dates after --as-of 2024-02-15 (1 row, e.g. T2)",
        "surveys.date: dates after --as-of 2024-02-15 (1 row, e.g. A1/2024-04-01)",
        "health_inputs.date: dates after --as-of 2024-02-15 (2 rows, e.g. A1, A2)",
        "value.date: dates after --as-of 2024-02-15 (1 row, e.g. A1)",
    ]


def test_unknown_enum_values(tmp_path, tables):
    tables["tickets"].loc[1, "type"] = "complaint"
    tables["tickets"].loc[0, "severity"] = "critical"
    assert problems_of(write_dir(tmp_path / "d", tables)) == [
        "tickets.type: values must be one of bug, feature_request, usage_question (1 row, e.g. T2)",
        "tickets.severity: values must be one of low, medium, high (1 row, e.g. T1)",
    ]


def test_usage_without_user_id_needs_active_users(tmp_path, tables):
    tables["usage"] = tables["usage"].drop(columns=["user_id"])
    assert problems_of(write_dir(tmp_path / "d", tables)) == [
        "usage.active_users: required when usage has no user_id column"
    ]


def test_every_problem_is_reported_at_once(tmp_path, tables):
    tables["accounts"].loc[0, "seats"] = -3
    tables["contracts"].loc[0, "end_date"] = pd.Timestamp("2023-01-01")
    tables["tickets"].loc[0, "type"] = "rant"
    del tables["usage"]
    assert len(problems_of(write_dir(tmp_path / "d", tables))) == 4


def test_empty_table(tmp_path, tables):
    tables["usage"] = tables["usage"].iloc[0:0]
    assert problems_of(write_dir(tmp_path / "d", tables)) == ["usage: table is empty"]


def test_truncated_parquet_is_a_clear_error(tmp_path, tables):
    data = write_dir(tmp_path / "d", tables)
    blob = (data / "usage.parquet").read_bytes()
    (data / "usage.parquet").write_bytes(blob[: len(blob) // 2])
    [problem] = problems_of(data)
    assert problem.startswith("usage: file usage.parquet cannot be read")


def test_csv_in_wrong_encoding_is_a_clear_error(tmp_path, tables):
    tables["accounts"]["name"] = ["Müller GmbH", "Café SA", "Ørsted"]
    data = write_dir(tmp_path / "d", tables, "csv")
    text = (data / "accounts.csv").read_text(encoding="utf-8")
    (data / "accounts.csv").write_bytes(text.encode("latin-1", errors="replace"))
    [problem] = problems_of(data)
    assert problem.startswith("accounts: file accounts.csv is not UTF-8 text")


def test_csv_with_wrong_delimiter_reports_missing_columns(tmp_path, tables):
    data = write_dir(tmp_path / "d", tables, "csv")
    frame = read_raw(data / "contracts.csv")
    frame.to_csv(data / "contracts.csv", sep=";", index=False)
    problems = problems_of(data)
    assert "contracts.contract_id: required column is missing" in problems
    assert "contracts.end_date: required column is missing" in problems


def test_two_files_for_one_table_is_an_error(tmp_path, tables):
    data = write_dir(tmp_path / "d", tables)
    shutil.copy(data / "value.parquet", data / "value.csv")
    assert problems_of(data) == ["value: two files for one table: value.parquet, value.csv"]


def test_load_valid_tables_raises_with_every_problem(tmp_path, tables):
    tables["accounts"].loc[0, "seats"] = 0
    tables["tickets"].loc[0, "type"] = "rant"
    with pytest.raises(DataContractError) as err:
        load_valid_tables(write_dir(tmp_path / "d", tables))
    assert len(err.value.problems) == 2


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from renewal.cli import main; main()", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_validate_exit_codes_and_report(tmp_path, tables):
    good = run_cli("validate", "--data", str(write_dir(tmp_path / "good", tables)))
    assert good.returncode == 0, good.stderr
    assert "valid: no problems found" in good.stdout
    tables["accounts"].loc[0, "seats"] = 0
    bad = run_cli("validate", "--data", str(write_dir(tmp_path / "bad", tables)))
    assert bad.returncode == 2
    assert "accounts.seats: values must be > 0 (1 row, e.g. A1)" in bad.stdout
    assert "Traceback" not in bad.stdout + bad.stderr


def test_data_contract_doc_is_generated_from_the_code():
    from renewal.contract_docs import render

    committed = (Path(__file__).parents[1] / "docs" / "data-contract.md").read_text()
    assert committed == render(), "regenerate: python -m renewal.contract_docs > docs/..."


def test_doc_examples_are_valid_data(tmp_path):
    from renewal.contract_docs import EXAMPLES

    data = tmp_path / "d"
    data.mkdir()
    for name, text in EXAMPLES.items():
        (data / f"{name}.csv").write_text(text + "\n")
    report = validate_data_dir(data)
    assert report.ok, report.render()


def test_arrow_backed_dates_are_read(tmp_path, tables):
    import pyarrow as pa

    dates = [d.date() for d in tables["accounts"]["signed_at"]]
    tables["accounts"]["signed_at"] = pd.Series(dates, dtype=pd.ArrowDtype(pa.date32()))
    data = write_dir(tmp_path / "d", tables)
    assert validate_data_dir(data).ok
    loaded = load_valid_tables(data)["accounts"]["signed_at"]
    assert str(loaded.dtype) == "datetime64[ns]"
    assert list(loaded.dt.date) == dates


def test_outputs_are_readable_by_others(tmp_path, tables):
    data = write_dir(tmp_path / "d", tables)
    assert (data / "accounts.parquet").stat().st_mode & 0o777 == 0o644


def test_int_beyond_int64_is_a_type_problem_not_a_traceback(tmp_path, tables):
    tables["usage"]["key_actions"] = ["5", "99999999999999999999999", "3"]
    data = write_dir(tmp_path / "d", tables, "csv")
    expected = ("usage.key_actions: values are not of type int"
                " (1 row, e.g. A1/2024-01-03/u1: 99999999999999999999999)")
    assert problems_of(data) == [expected]
    cli = run_cli("validate", "--data", str(data))
    assert cli.returncode == 2
    assert expected in cli.stdout
    assert "Traceback" not in cli.stdout + cli.stderr


ZONED = "dates carry a time zone: write the local calendar date (YYYY-MM-DD) instead"


@pytest.mark.parametrize(
    "dates, rows",
    [
        (["2024-01-02T22:00:00-05:00", "2024-01-03T22:00:00-05:00", "2024-02-02T22:00:00-05:00"],
         3),  # one offset: pandas made the column zone-aware, then failed to cast it
        (["2024-01-02", "2024-01-03T03:00:00Z", "2024-02-02 10:00+0200"], 2),  # mixed
    ],
)
def test_csv_dates_with_a_time_zone_are_refused(tmp_path, tables, dates, rows):
    tables["usage"]["date"] = dates
    [problem] = validate_data_dir(write_dir(tmp_path / "d", tables, "csv")).problems
    assert (problem.table, problem.column, problem.rule, problem.rows) == (
        "usage", "date", ZONED, rows)
    assert problem.examples[0] == f"A1/{dates[3 - rows]}/u1"


def test_zoned_parquet_timestamps_are_refused_in_every_table(tmp_path, tables):
    def zoned(values: pd.Series) -> pd.Series:
        return values.dt.tz_localize("America/New_York") + pd.Timedelta(hours=22)

    tables["usage"]["date"] = zoned(tables["usage"]["date"])
    tables["tickets"]["resolved_at"] = zoned(tables["tickets"]["resolved_at"])
    tables["accounts"]["signed_at"] = tables["accounts"]["signed_at"].dt.tz_localize("UTC")
    assert problems_of(write_dir(tmp_path / "d", tables)) == [
        f"accounts.signed_at: {ZONED} (3 rows, e.g. A1: 2024-01-01T00:00:00+00:00,"
        " A2: 2024-02-01T00:00:00+00:00, A3: 2024-03-01T00:00:00+00:00)",
        f"usage.date: {ZONED} (3 rows, e.g. A1/2024-01-02T22:00:00-05:00/u1,"
        " A1/2024-01-03T22:00:00-05:00/u1, A2/2024-02-02T22:00:00-05:00/u9)",
        f"tickets.resolved_at: {ZONED} (1 row, e.g. T1: 2024-02-05T22:00:00-05:00)",
    ]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_naive_timestamps_with_a_time_are_accepted_as_their_day(tmp_path, tables, fmt):
    tables["usage"]["date"] = tables["usage"]["date"] + pd.Timedelta(hours=13, minutes=45)
    data = write_dir(tmp_path / "d", tables, fmt)
    if fmt == "csv":  # write_table writes dates only: write the times by hand
        tables["usage"].to_csv(data / "usage.csv", index=False)
    assert validate_data_dir(data).ok
    loaded = load_valid_tables(data)["usage"]["date"]
    assert list(loaded) == list(pd.to_datetime(["2024-01-02", "2024-01-03", "2024-02-02"]))


# -- contract terms and the contract's warnings -------------------------------------------------

def add_term(tables, contract_id: str, account: str, start: str, end: str) -> None:
    row = {"contract_id": contract_id, "account_id": account, "start_date": pd.Timestamp(start),
           "end_date": pd.Timestamp(end), "arr": 100.0, "renewed": None, "next_arr": None}
    contracts = pd.concat([tables["contracts"], pd.DataFrame([row])], ignore_index=True)
    contracts["renewed"] = contracts["renewed"].astype("boolean")
    tables["contracts"] = contracts


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_the_same_term_under_another_contract_id_is_a_warning_naming_the_term(
        tmp_path, tables, fmt):
    add_term(tables, "C1-again", "A1", "2024-01-01", "2025-01-01")
    report = validate_data_dir(write_dir(tmp_path / "d", tables, fmt))
    assert report.ok, report.render()
    assert [w.render() for w in report.warnings] == [
        "contracts.account_id, start_date, end_date: the same term (account_id, start_date,"
        " end_date) under several contract ids: each row counts its ARR, renewal and training"
        " label; fine for two products of one order, else drop the copy"
        " (2 rows, e.g. A1/2024-01-01/2025-01-01)"
    ]


def test_same_start_with_another_end_is_not_a_duplicate_term(tmp_path, tables):
    add_term(tables, "C1-addon", "A1", "2024-01-01", "2024-06-30")
    report = validate_data_dir(write_dir(tmp_path / "d", tables))
    assert report.ok and report.warnings == [], report.render()


def test_adjacent_renewal_is_neither_overlap_nor_warning(tmp_path, tables):
    add_term(tables, "C1-next", "A1", "2025-01-02", "2026-01-01")  # end_date + 1 day
    report = validate_data_dir(write_dir(tmp_path / "d", tables))
    assert report.ok and report.warnings == [], report.render()


def test_a_renewal_starting_on_the_end_date_is_a_warning_and_the_directory_stays_valid(
        tmp_path, tables):
    add_term(tables, "C1-next", "A1", "2025-01-01", "2026-01-01")  # shares 2025-01-01
    data = write_dir(tmp_path / "d", tables)
    report = validate_data_dir(data)
    assert report.ok
    assert [w.render() for w in report.warnings] == [
        "contracts.end_date: the account's next term starts on this end_date, the last day of"
        " the term (included): if the export writes the next term's first day there, subtract"
        " one day (1 row, e.g. C1)"
    ]
    lines = report.render().splitlines()
    assert lines[-3:-1] == ["valid: no problems found", "1 warning(s) (the data is accepted)"]
    cli = run_cli("validate", "--data", str(data))
    assert cli.returncode == 0, cli.stderr
    assert "contracts.end_date: the account's next term starts on this end_date" in cli.stdout


def test_active_users_above_seats_is_a_warning_not_an_error(tmp_path, tables):
    usage = tables["usage"].drop(columns=["user_id"])
    usage["active_users"] = [10, 11, 60]  # A1 has 10 seats, A2 60
    tables["usage"] = usage
    report = validate_data_dir(write_dir(tmp_path / "d", tables, "csv"))
    assert report.ok
    assert [w.render() for w in report.warnings] == [
        "usage.active_users: more logged-in users than the account's seats that day:"
        " seat_utilization_30d exceeds 1 and the high tier's 60% of seats is easier to reach;"
        " fine if the customer over-deploys, else correct accounts.seats"
        " (1 row, e.g. A1/2024-01-03)"
    ]
    assert load_valid_tables(tmp_path / "d")["usage"]["active_users"].tolist() == [10, 11, 60]
