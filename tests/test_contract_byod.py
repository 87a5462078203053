"""Customers' own exports (the BYOD audit): null markers, spaces around values, placeholder
dates and optional tables without rows, each read the same way by every reader.

The CSV files are written by hand, byte for byte as the exports had them.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import features.validation as validation
from features.config import load_feature_config
from features.source import open_source
from features.vectors import feature_vectors
from renewal.contract import load_valid_tables, validate_data_dir
from renewal.datadir import read_table, write_table
from renewal.errors import DataContractError

ACCOUNTS = ("account_id,signed_at,seats,segment,region,name\n"
            "A1,2024-01-15,10,smb,emea,Acme\n"
            "A2,2024-02-01,5,,emea,Bolt\n")
CONTRACTS = ("contract_id,account_id,start_date,end_date,arr,renewed,next_arr\n"
             "C1,A1,2024-01-15,2025-01-14,1200.0,,\n"
             "C2,A2,2024-02-01,2025-01-31,600.0,,\n")
USAGE = ("account_id,date,user_id,logins,key_actions\n"
         "A1,2024-03-01,u1,1,2\n"
         "A1,2024-03-02,u1,2,0\n"
         "A2,2024-03-01,u9,1,1\n")
TICKETS = ("ticket_id,account_id,opened_at,type,severity,resolved_at\n"
           "T1,A1,2024-03-02,bug,high,2024-03-06\n"
           "T2,A2,2024-03-03,usage_question,,\n")
TABLES = {"accounts": ACCOUNTS, "contracts": CONTRACTS, "usage": USAGE, "tickets": TICKETS}

PADDED = "text with whitespace around it: ids and codes are compared as written, so trim them"
DATE_RANGE = ("dates outside 1678-01-01..2261-12-31 (placeholders such as 9999-12-31,"
              " 0001-01-01): leave an unknown date empty; export an open-ended contract term by"
              " term, each row ending on its term's last day")


def csv_dir(path: Path, **tables: str | None) -> Path:
    """The tables above as CSV, each replaced by ``tables`` (None: no file)."""
    path.mkdir(parents=True, exist_ok=True)
    for name, text in {**TABLES, **tables}.items():
        if text is not None:
            (path / f"{name}.csv").write_text(text, encoding="utf-8")
    return path


def problems_of(data_dir: Path) -> list[str]:
    return [p.render() for p in validate_data_dir(data_dir).problems]


def engine_check(data_dir: Path, monkeypatch) -> list[str]:
    """What the commands' big-directory check (DuckDB) says about ``data_dir``."""
    monkeypatch.setattr(validation, "ENGINE_CHECK_FROM_ROWS", 0)
    try:
        validation.check_data_dir(data_dir)
    except DataContractError as refused:
        return [p.render() for p in refused.problems]
    return []


# -- 1. only an empty CSV cell is missing --------------------------------------------------------

def test_null_markers_are_values_refused_where_they_do_not_parse(tmp_path, monkeypatch):
    """Found by audit: pandas read NULL and N/A as missing, so validate passed, and DuckDB then
    failed its cast with a traceback (invalid date field format: "NULL")."""
    data = csv_dir(
        tmp_path / "d",
        contracts=("contract_id,account_id,start_date,end_date,arr,renewed,next_arr\n"
                   "C1,A1,2024-01-15,2025-01-14,1200.0,NULL,N/A\n"
                   "C2,A2,2024-02-01,2025-01-31,600.0,,NaN\n"),
        tickets=("ticket_id,account_id,opened_at,type,severity,resolved_at\n"
                 "T1,A1,2024-03-02,bug,high,NULL\n"
                 "T2,A2,2024-03-03,usage_question,None,\n"))
    expected = [
        "contracts.renewed: values are not of type bool (1 row, e.g. C1: NULL)",
        "contracts.next_arr: values are not of type float (2 rows, e.g. C1: N/A, C2: NaN)",
        "tickets.severity: values must be one of low, medium, high (1 row, e.g. T2)",
        "tickets.resolved_at: values are not of type date (1 row, e.g. T1: NULL)",
    ]
    assert sorted(problems_of(data)) == sorted(expected)
    assert sorted(engine_check(data, monkeypatch)) == sorted(expected)


def test_both_readers_take_only_an_empty_cell_as_missing(tmp_path):
    """A region "NA" (North America) is text to pandas and to DuckDB alike; an empty cell is
    null to both, quoted or not."""
    data = csv_dir(tmp_path / "d", accounts=(
        "account_id,signed_at,seats,segment,region,name\n"
        'A1,2024-01-15,10,NULL,NA,None\n'
        'A2,2024-02-01,5,"",,N/A\n'))
    assert validate_data_dir(data).ok, validate_data_dir(data).render()
    by_pandas = load_valid_tables(data)["accounts"][["segment", "region", "name"]]
    source = open_source(data)
    by_engine = source.tables["accounts"].select("segment", "region", "name").to_pandas()
    source.backend.disconnect()
    expected = [["NULL", "NA", "None"], [None, None, "N/A"]]
    for frame in (by_pandas, by_engine):
        rows = frame.astype(object).where(frame.notna(), None).values.tolist()
        assert rows == expected


# -- 2. spaces around values: text is taken as written, padded ids and codes are refused ------

def padded_accounts_frame() -> pd.DataFrame:
    return pd.DataFrame({"account_id": ["A1", "A2", " A2"],
                         "signed_at": pd.to_datetime(["2024-01-15", "2024-02-01", "2024-02-01"]),
                         "seats": [10, 5, 40]})


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_id_with_spaces_around_it_is_refused_in_csv_and_parquet(tmp_path, fmt):
    """Found by audit: "H3" and " H3" passed validate as two accounts, then the engine's CSV
    cast trimmed them into one and `renewal features` crashed (MergeError)."""
    data = csv_dir(tmp_path / fmt, accounts=None)
    write_table(padded_accounts_frame(), data, "accounts", fmt)  # type: ignore[arg-type]
    assert problems_of(data) == [f"accounts.account_id: {PADDED} (1 row, e.g. ' A2')"]
    with pytest.raises(DataContractError):
        validation.check_data_dir(data)  # the gate of features, metrics, train and score


def test_a_padded_user_id_is_refused_not_counted_as_a_second_user(tmp_path):
    data = csv_dir(tmp_path / "d", usage=USAGE + "A1,2024-03-01,u1 ,1,13\n")
    assert problems_of(data) == [f"usage.user_id: {PADDED} (1 row, e.g. A1/2024-03-01/'u1 ')"]


def test_a_reference_error_quotes_the_value_so_the_space_shows(tmp_path):
    data = csv_dir(tmp_path / "d", accounts=ACCOUNTS.replace("A2,", "A2 ,", 1))
    assert problems_of(data) == [
        f"accounts.account_id: {PADDED} (1 row, e.g. 'A2 ')",
        "contracts.account_id: references an unknown account (1 row, e.g. A2)",
        "usage.account_id: references an unknown account (1 row, e.g. A2)",
        "tickets.account_id: references an unknown account (1 row, e.g. A2)",
    ]
    data = csv_dir(tmp_path / "e", usage=USAGE + "A2\u00a0,2024-03-02,u9,1,1\n")
    assert problems_of(data) == [
        f"usage.account_id: {PADDED} (1 row, e.g. 'A2\\xa0'/2024-03-02/u9)",
        "usage.account_id: references an unknown account (1 row, e.g. 'A2\\xa0')",
    ]


def test_a_code_of_spaces_only_is_refused_where_an_empty_cell_is_missing(tmp_path):
    assert problems_of(csv_dir(tmp_path / "d")) == []  # A2's segment: an empty cell
    blank = ACCOUNTS.replace("A2,2024-02-01,5,,", "A2,2024-02-01,5,  ,")
    assert problems_of(csv_dir(tmp_path / "e", accounts=blank)) == [
        f"accounts.segment: {PADDED} (1 row, e.g. A2: '  ')"]


def test_spaces_around_numbers_dates_and_booleans_are_ignored_and_free_text_kept(tmp_path):
    data = csv_dir(
        tmp_path / "d",
        accounts=("account_id,signed_at,seats,segment,region,name\n"
                  "A1, 2024-01-15 , 10 ,smb,emea, Acme \n"
                  "A2,2024-02-01,5,,emea,Bolt\n"),
        contracts=("contract_id,account_id,start_date,end_date,arr,renewed,next_arr\n"
                   "C1,A1,2024-01-15,2025-01-14, 1200.0, true ,   \n"
                   "C2,A2,2024-02-01,2025-01-31,600.0,,\n"))
    report = validate_data_dir(data)
    assert report.ok, report.render()
    tables = load_valid_tables(data)
    accounts, contracts = tables["accounts"], tables["contracts"]
    assert accounts.loc[0, "signed_at"] == pd.Timestamp("2024-01-15")
    assert accounts.loc[0, "seats"] == 10
    assert accounts.loc[0, "name"] == " Acme "  # free text: as written
    assert contracts.loc[0, "arr"] == 1200.0 and bool(contracts.loc[0, "renewed"])
    assert pd.isna(contracts.loc[0, "next_arr"])  # spaces only: missing


# -- 3. placeholder dates ------------------------------------------------------------------------

def test_placeholder_dates_are_their_own_problem_and_the_column_is_still_checked(tmp_path):
    """Found by audit: 9999-12-31 said "Out of bounds nanosecond timestamp" with no row count or
    example, and the column then escaped the other checks."""
    data = csv_dir(
        tmp_path / "d",
        contracts=("contract_id,account_id,start_date,end_date,arr,renewed,next_arr\n"
                   "C1,A1,2024-01-15,9999-12-31,1200.0,,\n"
                   "C2,A2,2024-02-01,2300-01-01,600.0,,\n"
                   "C3,A2,2024-03-01,2024-02-01,600.0,,\n"),  # ends before it starts
        tickets=TICKETS.replace("2024-03-06", "0001-01-01"))
    assert problems_of(data) == [
        f"contracts.end_date: {DATE_RANGE} (2 rows, e.g. C1: 9999-12-31, C2: 2300-01-01)",
        f"tickets.resolved_at: {DATE_RANGE} (1 row, e.g. T1: 0001-01-01)",
        "contracts.end_date: end_date must be after start_date (1 row, e.g. C3)",
    ]
    with pytest.raises(DataContractError) as refused:
        read_table(data, "contracts")  # how training reads contracts: no traceback either
    assert [p.render() for p in refused.value.problems] == [
        f"contracts.end_date: {DATE_RANGE} (2 rows, e.g. 9999-12-31, 2300-01-01)"]


def test_a_parquet_evergreen_date_is_the_same_problem(tmp_path):
    data = csv_dir(tmp_path / "d", contracts=None)
    contracts = pa.table({
        "contract_id": ["C1", "C2"], "account_id": ["A1", "A2"],
        "start_date": pa.array([date(2024, 1, 15), date(2024, 2, 1)], pa.date32()),
        "end_date": pa.array([date(9999, 12, 31), date(2025, 1, 31)], pa.date32()),
        "arr": [1200.0, 600.0], "renewed": pa.array([None, None], pa.bool_())})
    pq.write_table(contracts, data / "contracts.parquet")
    assert problems_of(data) == [
        f"contracts.end_date: {DATE_RANGE} (1 row, e.g. C1: 9999-12-31)"]


def test_the_first_and_last_day_of_the_range_are_dates(tmp_path):
    data = csv_dir(
        tmp_path / "d",
        accounts=ACCOUNTS.replace("2024-01-15", "1678-01-01", 1),
        contracts=CONTRACTS.replace("2025-01-14", "2261-12-31"))
    assert problems_of(data) == []
    tables = load_valid_tables(data)
    assert tables["accounts"].loc[0, "signed_at"] == pd.Timestamp("1678-01-01")
    assert tables["contracts"].loc[0, "end_date"] == pd.Timestamp("2261-12-31")
    data = csv_dir(tmp_path / "e", accounts=ACCOUNTS.replace("2024-01-15", "1677-12-31", 1))
    assert problems_of(data) == [
        f"accounts.signed_at: {DATE_RANGE} (1 row, e.g. A1: 1677-12-31)"]


# -- 4. optional tables with a header and no rows -----------------------------------------------

TICKET_HEADER = "ticket_id,account_id,opened_at,type,severity,resolved_at\n"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_header_only_optional_table_is_present_and_empty(tmp_path, monkeypatch, fmt):
    """Found by audit: a month without tickets was refused ("tickets: table is empty")."""
    data = csv_dir(tmp_path / fmt, tickets=TICKET_HEADER if fmt == "csv" else None)
    if fmt == "parquet":
        empty = pd.DataFrame({c: pd.Series(dtype="string") for c in TICKET_HEADER.split(",")})
        write_table(empty.rename(columns=str.strip), data, "tickets", "parquet")
    report = validate_data_dir(data)
    assert report.ok, report.render()
    assert report.tables["tickets"] == 0
    assert engine_check(data, monkeypatch) == []


def test_a_header_only_optional_table_still_needs_its_columns(tmp_path, monkeypatch):
    data = csv_dir(tmp_path / "d", tickets="ticket_id,account_id,opened_at\n")
    expected = ["tickets.type: required column is missing",
                "tickets.severity: required column is missing",
                "tickets.resolved_at: required column is missing"]
    assert problems_of(data) == expected
    assert engine_check(data, monkeypatch) == expected


def test_a_header_only_required_table_is_still_refused(tmp_path, monkeypatch):
    data = csv_dir(tmp_path / "d", usage="account_id,date,user_id,logins,key_actions\n")
    assert problems_of(data) == ["usage: table is empty"]
    assert engine_check(data, monkeypatch) == ["usage: table is empty"]


def test_an_empty_tickets_table_gives_zero_ticket_counts_and_an_absent_one_none(tmp_path):
    points = pd.DataFrame({"account_id": ["A1", "A2"], "as_of": [date(2024, 6, 30)] * 2})
    config = load_feature_config(None)
    counts = ["bugs_90d", "usage_questions_90d", "open_high_bugs", "overdue_bugs"]
    empty = open_source(csv_dir(tmp_path / "empty", tickets=TICKET_HEADER))
    vectors = feature_vectors(empty, points, config)
    assert vectors[counts].values.tolist() == [[0, 0, 0, 0], [0, 0, 0, 0]]
    absent = open_source(csv_dir(tmp_path / "absent", tickets=None))
    assert not set(counts) & set(feature_vectors(absent, points, config).columns)
