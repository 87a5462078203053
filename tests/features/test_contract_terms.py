"""The contract's warnings on contract terms and seats, pandas and the engine alike.

The same term (account, start_date, end_date) under several contract ids is either one
contract exported twice or two products of one order: the data cannot tell, so it is a
warning, never a refusal. Other overlaps are add-ons and pass; a next term starting on a
term's last day (end_date is included) is warned about, as is an account-day with more
logged-in users than seats.
"""

from __future__ import annotations

from datetime import date

import pytest
from conftest import d, days, write_dir

import features.validation as validation
from features.config import FeatureConfig
from features.freshness import data_warnings
from features.source import open_source
from renewal.contract import (
    ABOVE_SEATS_RULE,
    DUPLICATE_TERM_RULE,
    LOST_BUT_CONTINUED_RULE,
    SHARED_END_DAY_RULE,
    validate_data_dir,
)
from renewal.errors import DataContractError

ACCOUNTS = [{"account_id": "a1", "signed_at": d("2024-01-01"), "seats": 10},
            {"account_id": "a2", "signed_at": d("2024-01-01"), "seats": 10}]
TERM_COLUMNS = "account_id, start_date, end_date"


def term(contract_id: str, start: str, end: str, account: str = "a1", arr: float = 1000.0):
    return {"contract_id": contract_id, "account_id": account, "start_date": d(start),
            "end_date": d(end), "arr": arr, "renewed": None}


def user_usage() -> list[dict]:
    return [{"account_id": "a1", "date": day, "user_id": "u1", "key_actions": 3, "logins": 1}
            for day in days("2024-03-01", 3)]


def rendered(problems) -> list[str]:
    return sorted(p.render() for p in problems)


def engine_and_pandas(data_dir, monkeypatch) -> tuple[list, list]:
    """The problems of the engine's check (empty when it passes) and of renewal validate."""
    detailed = validate_data_dir(data_dir).problems
    monkeypatch.setattr(validation, "ENGINE_CHECK_FROM_ROWS", 1)
    try:
        validation.check_data_dir(data_dir)
    except DataContractError as refused:
        return refused.problems, detailed
    return [], detailed


def warnings_of(data_dir) -> tuple[list, list]:
    """The contract's warnings by the engine and by renewal validate."""
    source = open_source(data_dir)
    try:
        by_engine = validation.contract_warnings(source)
    finally:
        source.backend.disconnect()
    return by_engine, validate_data_dir(data_dir).warnings


def contracts_dir(tmp_path, *terms) -> object:
    return write_dir(tmp_path / "d", accounts=ACCOUNTS, usage=user_usage(), contracts=terms)


# -- the same term twice ----------------------------------------------------------------------

def test_one_term_under_two_contract_ids_is_warned_not_refused(tmp_path, monkeypatch):
    data = contracts_dir(tmp_path, term("c1", "2024-01-01", "2024-12-31"),
                         term("c1-copy", "2024-01-01", "2024-12-31"),
                         term("c2", "2024-01-01", "2024-12-31", account="a2"))
    assert engine_and_pandas(data, monkeypatch) == ([], [])  # accepted by both checks
    by_engine, detailed = warnings_of(data)
    expected = [f"contracts.{TERM_COLUMNS}: {DUPLICATE_TERM_RULE} (2 rows, e.g. "
                "a1/2024-01-01/2024-12-31)"]
    assert rendered(by_engine) == rendered(detailed) == expected


def test_every_row_of_a_repeated_term_is_counted_and_examples_are_in_key_order(tmp_path):
    data = contracts_dir(tmp_path, *[term(f"b{i}", "2024-02-01", "2025-01-31", "a2")
                                     for i in range(3)],
                         *[term(f"a{i}", "2024-01-01", "2024-12-31") for i in range(2)])
    by_engine, detailed = warnings_of(data)
    assert rendered(by_engine) == rendered(detailed) == [
        f"contracts.{TERM_COLUMNS}: {DUPLICATE_TERM_RULE} (5 rows, e.g. "
        "a1/2024-01-01/2024-12-31, a2/2024-02-01/2025-01-31)"]


@pytest.mark.parametrize("second", [
    term("c2", "2024-01-01", "2024-06-30"),  # same start, other end: an add-on, not a copy
    term("c2", "2024-03-01", "2024-12-31"),  # same end, other start (co-termed add-on)
    term("c2", "2024-01-01", "2024-12-31", account="a2"),  # same dates, other account
])
def test_terms_differing_in_one_key_column_are_not_duplicates(tmp_path, monkeypatch, second):
    data = contracts_dir(tmp_path, term("c1", "2024-01-01", "2024-12-31"), second)
    assert engine_and_pandas(data, monkeypatch) == ([], [])
    assert warnings_of(data) == ([], [])


def test_one_contract_id_twice_stays_an_error(tmp_path, monkeypatch):
    """A contract exported twice with its id is a duplicate key, refused as before."""
    data = contracts_dir(tmp_path, term("c1", "2024-01-01", "2024-12-31"),
                         term("c1", "2024-01-01", "2024-12-31"))
    by_engine, detailed = engine_and_pandas(data, monkeypatch)
    assert rendered(by_engine) == rendered(detailed) == [
        "contracts.contract_id: duplicate key (contract_id) (2 rows, e.g. c1)"]


def test_terms_with_a_null_date_are_left_to_the_null_rule(tmp_path, monkeypatch):
    data = contracts_dir(tmp_path, term("c1", "2024-01-01", "2024-12-31"),
                         {**term("c2", "2024-01-01", "2024-12-31"), "end_date": None},
                         {**term("c3", "2024-01-01", "2024-12-31"), "end_date": None})
    by_engine, detailed = engine_and_pandas(data, monkeypatch)
    assert rendered(by_engine) == rendered(detailed) == [
        "contracts.end_date: nulls in a required column (2 rows, e.g. c2, c3)"]


# -- overlapping terms: allowed; a next term on a term's last day: warned ------------------------

@pytest.mark.parametrize("second", [
    term("c2", "2025-01-01", "2025-12-31"),  # end_date + 1 = next start: adjacent, no overlap
    term("c2", "2024-06-01", "2025-05-31"),  # an add-on overlapping months: allowed
    term("c2", "2024-12-30", "2025-12-30"),  # two shared days: an add-on, not the off-by-one
])
def test_adjacent_and_overlapping_terms_pass_without_warning(tmp_path, monkeypatch, second):
    data = contracts_dir(tmp_path, term("c1", "2024-01-01", "2024-12-31"), second)
    assert engine_and_pandas(data, monkeypatch) == ([], [])
    assert warnings_of(data) == ([], [])


def test_a_next_term_starting_on_the_end_date_is_warned_not_refused(tmp_path, monkeypatch):
    # end_date is the last day, included: the two terms share 2024-12-31.
    data = contracts_dir(tmp_path, term("c1", "2024-01-01", "2024-12-31"),
                         term("c2", "2024-12-31", "2025-12-31"),
                         term("c3", "2025-12-31", "2026-12-31"),
                         term("x1", "2024-01-01", "2024-12-31", account="a2"),
                         term("x2", "2025-01-01", "2025-12-31", account="a2"))
    assert engine_and_pandas(data, monkeypatch) == ([], [])
    report = validate_data_dir(data)
    assert report.ok
    by_engine, detailed = warnings_of(data)
    assert rendered(by_engine) == rendered(detailed) == [
        f"contracts.end_date: {SHARED_END_DAY_RULE} (2 rows, e.g. c1, c2)"]
    assert "1 warning(s) (the data is accepted)" in report.render()


def test_a_start_date_of_another_account_does_not_count(tmp_path):
    data = contracts_dir(tmp_path, term("c1", "2024-01-01", "2024-12-31"),
                         term("x1", "2024-12-31", "2025-12-30", account="a2"))
    assert warnings_of(data) == ([], [])


# -- more logged-in users than seats ------------------------------------------------------------

def account_usage(active_users: list[int], sites: list[str] | None = None) -> list[dict]:
    rows = []
    for i, users in enumerate(active_users):
        row = {"account_id": "a1", "date": date(2024, 3, 1 + (i if sites is None else 0)),
               "key_actions": 30, "logins": users, "active_users": users}
        if sites is not None:
            row["site_id"] = sites[i]
        rows.append(row)
    return rows


def seats_dir(tmp_path, usage) -> object:
    return write_dir(tmp_path / "s", accounts=ACCOUNTS, usage=usage,
                     contracts=[term("c1", "2024-01-01", "2024-12-31")])


def test_active_users_equal_to_seats_is_no_warning(tmp_path):
    assert warnings_of(seats_dir(tmp_path, account_usage([10, 9]))) == ([], [])


def test_active_users_above_seats_is_a_warning_with_both_checks(tmp_path, monkeypatch):
    data = seats_dir(tmp_path, account_usage([11, 10, 25]))
    assert engine_and_pandas(data, monkeypatch) == ([], [])  # accepted
    by_engine, detailed = warnings_of(data)
    assert rendered(by_engine) == rendered(detailed) == [
        f"usage.active_users: {ABOVE_SEATS_RULE} (2 rows, e.g. a1/2024-03-01, a1/2024-03-03)"]


def test_sites_are_summed_per_account_day_as_the_features_do(tmp_path):
    # 6 + 5 logged-in users at two sites on one day: 11 > 10 seats, though no row is.
    data = seats_dir(tmp_path, account_usage([6, 5], sites=["s1", "s2"]))
    by_engine, detailed = warnings_of(data)
    assert rendered(by_engine) == rendered(detailed) == [
        f"usage.active_users: {ABOVE_SEATS_RULE} (2 rows, e.g. a1/2024-03-01)"]


def test_user_grain_active_users_are_not_summed_against_seats(tmp_path):
    """With user_id the features count distinct users; an active_users column there is not
    what they read, and summing it over the users (4 x 4 = 16 > 10 seats) was a false
    warning of renewal validate that the engine did not give."""
    usage = [{"account_id": "a1", "date": date(2024, 3, 1), "user_id": f"u{i}",
              "key_actions": 3, "logins": 1, "active_users": 4} for i in range(4)]
    data = write_dir(tmp_path / "u", accounts=ACCOUNTS, usage=usage,
                     contracts=[term("c1", "2024-01-01", "2024-12-31")])
    assert warnings_of(data) == ([], [])


def test_user_grain_has_no_active_users_to_check(tmp_path):
    assert warnings_of(contracts_dir(tmp_path, term("c1", "2024-01-01", "2024-12-31"))) == (
        [], [])


def test_the_commands_say_the_warnings_as_counts_without_account_ids(tmp_path):
    data = seats_dir(tmp_path, account_usage([11, 12]))
    source = open_source(data)
    try:
        said = data_warnings(source, date(2024, 3, 2), FeatureConfig())
    finally:
        source.backend.disconnect()
    # After how far the usage reaches (here: its start), the contract's warnings.
    assert said[-1] == (f"usage.active_users: {ABOVE_SEATS_RULE} (2 rows; renewal validate "
                        "lists examples)")
    assert not any("a1" in sentence for sentence in said)


def lost_term(contract_id: str, start: str, end: str, account: str = "a1") -> dict:
    return {**term(contract_id, start, end, account), "renewed": False}


def test_a_term_not_renewed_yet_followed_the_next_day_is_warned(tmp_path, monkeypatch):
    """renewed = false, and the account's next term starts the day after end_date: the label
    says churn, the contracts say the customer stayed (training reads a churn, the metrics a
    lost logo). Hand-made: c1 (lost, ends 2024-12-31) then c2 from 2025-01-01 -> warned; x1
    (lost) then x2 two days later (a win-back after a gap) and y1 (lost, nothing after) -> not.
    Both checks agree, and the data is still accepted."""
    data = contracts_dir(tmp_path, lost_term("c1", "2024-01-01", "2024-12-31"),
                         term("c2", "2025-01-01", "2025-12-31"),
                         lost_term("x1", "2024-01-01", "2024-12-31", account="a2"),
                         term("x2", "2025-01-02", "2025-12-31", account="a2"),
                         lost_term("y1", "2023-01-01", "2023-06-30", account="a2"))
    assert engine_and_pandas(data, monkeypatch) == ([], [])
    by_engine, detailed = warnings_of(data)
    assert rendered(by_engine) == rendered(detailed) == [
        f"contracts.renewed: {LOST_BUT_CONTINUED_RULE} (1 row, e.g. c1)"]
