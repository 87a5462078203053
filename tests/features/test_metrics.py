"""Cohort metrics against a small hand-built data directory; every expected value is computed
by hand in the comments. As of T = 2024-04-15 (a Monday).

Accounts (seats 10 -> 30-day activation window, seats 60 -> 45 days):

| account | signed     | seats | segment | csm  | contracts                                   |
|---------|------------|-------|---------|------|---------------------------------------------|
| A1      | 2024-01-01 | 10    | SMB     | c1   | 2024-01-01..2024-12-31                      |
| A2      | 2024-01-10 | 10    | null    | c2   | 2024-01-10..2025-01-09                      |
| R1      | 2023-03-01 | 10    | SMB     | c1   | 2023-03-01..2024-02-29 renewed 1000 -> 1500 |
| R2      | 2023-03-01 | 10    | ENT     | c2   | 2023-03-01..2024-02-29 renewed 2000 -> 1200 |
| R3      | 2023-03-01 | 10    | null    | c1   | 2023-03-01..2024-02-29 churned, arr 800     |
| R4      | 2023-03-15 | 10    | ENT     | null | 2023-03-15..2024-03-14 renewed 500, no next |
| R5      | 2023-03-20 | 10    | SMB     | c2   | 2023-03-20..2024-03-19 undecided, arr 300   |
| B30     | 2024-01-01 | 10    | SMB     | c1   | none (activation cases only)                |
| B31     | 2024-01-01 | 10    | SMB     | c1   | none                                        |
| B45     | 2024-01-01 | 60    | ENT     | c2   | none                                        |
| B46     | 2024-01-01 | 60    | ENT     | c2   | none                                        |
| C1      | 2024-03-16 | 10    | SMB     | c1   | none; window ends 2024-04-15 = T (closed)   |
| P1      | 2024-03-20 | 10    | SMB     | c1   | none; window ends 2024-04-19 (pending)      |
| P2      | 2024-04-01 | 10    | SMB     | c1   | none; pending, activity only after T        |
| F1      | 2024-05-01 | 10    | SMB     | c1   | 2024-05-01..2025-04-30 (signed after T)     |

R1, R2 and R4 renew into new terms (R1 2024-03-01..2025-02-28 arr 1500, R2 same dates arr
1200, R4 2024-03-15..2025-03-14 arr 500), undecided and ending after T.
"""

from __future__ import annotations

import json
import math
import shutil
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.config import FeatureConfig
from features.metrics import all_metrics, cohort_metrics, to_records
from features.metrics.activity import last_complete_month_end
from features.source import open_source
from renewal.datadir import write_table
from renewal.errors import DataContractError, RenewalError

T = date(2024, 4, 15)
WORKING_DAYS = FeatureConfig(monthly_rule="working_days")


def days(first: str, last: str) -> list[date]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def active(account: str, dates: list[date]) -> list[dict]:
    """Low-tier days for 10 seats: 5 key actions (0 < 5 <= 10 * 0.6 * 2)."""
    return [dict(account_id=account, date=d, logins=3, key_actions=5, active_users=3)
            for d in dates]


def build_data_dir(path: Path) -> Path:
    a = [
        ("A1", "2024-01-01", 10, "SMB", "c1"), ("A2", "2024-01-10", 10, None, "c2"),
        ("R1", "2023-03-01", 10, "SMB", "c1"), ("R2", "2023-03-01", 10, "ENT", "c2"),
        ("R3", "2023-03-01", 10, None, "c1"), ("R4", "2023-03-15", 10, "ENT", None),
        ("R5", "2023-03-20", 10, "SMB", "c2"),
        ("B30", "2024-01-01", 10, "SMB", "c1"), ("B31", "2024-01-01", 10, "SMB", "c1"),
        ("B45", "2024-01-01", 60, "ENT", "c2"), ("B46", "2024-01-01", 60, "ENT", "c2"),
        ("C1", "2024-03-16", 10, "SMB", "c1"), ("P1", "2024-03-20", 10, "SMB", "c1"),
        ("P2", "2024-04-01", 10, "SMB", "c1"), ("F1", "2024-05-01", 10, "SMB", "c1"),
    ]
    accounts = pd.DataFrame(a, columns=["account_id", "signed_at", "seats", "segment", "csm_id"])
    accounts["signed_at"] = pd.to_datetime(accounts["signed_at"])
    accounts["segment"] = accounts["segment"].astype("string")
    accounts["csm_id"] = accounts["csm_id"].astype("string")
    c = [
        ("cA1", "A1", "2024-01-01", "2024-12-31", 900.0, None, None),
        ("cA2", "A2", "2024-01-10", "2025-01-09", 900.0, None, None),
        ("cR1", "R1", "2023-03-01", "2024-02-29", 1000.0, True, 1500.0),
        ("cR1b", "R1", "2024-03-01", "2025-02-28", 1500.0, None, None),
        ("cR2", "R2", "2023-03-01", "2024-02-29", 2000.0, True, 1200.0),
        ("cR2b", "R2", "2024-03-01", "2025-02-28", 1200.0, None, None),
        ("cR3", "R3", "2023-03-01", "2024-02-29", 800.0, False, 700.0),  # next_arr ignored
        ("cR4", "R4", "2023-03-15", "2024-03-14", 500.0, True, None),  # assumed flat
        ("cR4b", "R4", "2024-03-15", "2025-03-14", 500.0, None, None),
        ("cR5", "R5", "2023-03-20", "2024-03-19", 300.0, None, None),  # undecided
        ("cF1", "F1", "2024-05-01", "2025-04-30", 900.0, None, None),  # after T
    ]
    contracts = pd.DataFrame(c, columns=["contract_id", "account_id", "start_date", "end_date",
                                         "arr", "renewed", "next_arr"])
    for column in ("start_date", "end_date"):
        contracts[column] = pd.to_datetime(contracts[column])
    contracts["renewed"] = contracts["renewed"].astype("boolean")
    contracts["next_arr"] = contracts["next_arr"].astype("Float64")
    usage = pd.DataFrame(
        # A1: Jan 2-13 = 12 active days, Feb 1-13 = 13, Mar 1-5 = 5; activates Jan 4 (day 3).
        active("A1", days("2024-01-02", "2024-01-13") + days("2024-02-01", "2024-02-13")
               + days("2024-03-01", "2024-03-05"))
        # A1 on Jan 20: logins but no key action -> a zero-tier day, not active.
        + [dict(account_id="A1", date=date(2024, 1, 20), logins=4, key_actions=0,
                active_users=2)]
        # A2: Jan 10-24 = 15 (partial month), Feb 1-12 = 12, Mar 1-20 = 20; activates Jan 12.
        + active("A2", days("2024-01-10", "2024-01-24") + days("2024-02-01", "2024-02-12")
                 + days("2024-03-01", "2024-03-20"))
        # B30: Mon Jan 29, Tue 30, Wed 31 -> 3rd active day of that ISO week on day 30: in.
        + active("B30", days("2024-01-29", "2024-01-31"))
        # B31: Jan 29, 30, Thu Feb 1 (same ISO week Jan 29 - Feb 4) -> day 31: out.
        + active("B31", days("2024-01-29", "2024-01-30") + [date(2024, 2, 1)])
        # B45 (60 seats, 45-day window; 5 actions is still low, 0 < 5 <= 72): Mon Feb 12, 13,
        # Thu Feb 15 -> day 45: in. B46: Feb 12, 13, Fri Feb 16 -> day 46: out.
        + active("B45", [date(2024, 2, 12), date(2024, 2, 13), date(2024, 2, 15)])
        + active("B46", [date(2024, 2, 12), date(2024, 2, 13), date(2024, 2, 16)])
        # P1: Mon Mar 25, 26, 27 -> activated on day 7, window still open at T.
        + active("P1", days("2024-03-25", "2024-03-27"))
        # Wild rows after T must change nothing: P2 would activate, A1 would be busy in April.
        + active("P2", days("2024-04-16", "2024-04-18"))
        + active("A1", days("2024-04-16", "2024-04-30"))
        + active("F1", days("2024-05-01", "2024-05-03"))
    )
    usage["date"] = pd.to_datetime(usage["date"])
    for name, frame in (("accounts", accounts), ("contracts", contracts), ("usage", usage)):
        write_table(frame, path, name)
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_data_dir(tmp_path_factory.mktemp("metrics"))


@pytest.fixture(scope="module")
def source(data_dir: Path):
    return open_source(data_dir)


def rows(frame: pd.DataFrame) -> list[dict]:
    return to_records(frame)


# ------------------------------------------------------------------------------------------
# activation
# ------------------------------------------------------------------------------------------

def test_activation_per_signing_month(source) -> None:
    table = cohort_metrics(source, T, FeatureConfig(), "activation")
    assert rows(table) == [
        # R1-R5 signed in March 2023, no usage: windows long closed, none activated.
        dict(signing_month="2023-03", accounts_signed=5, accounts_window_closed=5,
             accounts_activated=0, accounts_not_activated=5, activation_rate=0.0,
             accounts_pending=0, accounts_pending_activated=0, accounts_unobserved=0),
        # A1 (day 3), A2 (day 2), B30 (day 30 of 30), B45 (day 45 of 45) in; B31 (day 31 of
        # 30) and B46 (day 46 of 45) out: 4 / 6.
        dict(signing_month="2024-01", accounts_signed=6, accounts_window_closed=6,
             accounts_activated=4, accounts_not_activated=2, activation_rate=4 / 6,
             accounts_pending=0, accounts_pending_activated=0, accounts_unobserved=0),
        # C1: signed Mar 16 + 30 days = Apr 15 = T -> closed, not activated. P1: window ends
        # Apr 19 -> pending, already activated on Mar 27.
        dict(signing_month="2024-03", accounts_signed=2, accounts_window_closed=1,
             accounts_activated=0, accounts_not_activated=1, activation_rate=0.0,
             accounts_pending=1, accounts_pending_activated=1, accounts_unobserved=0),
        # P2: pending; its usage after T does not count. No closed window -> rate null.
        dict(signing_month="2024-04", accounts_signed=1, accounts_window_closed=0,
             accounts_activated=0, accounts_not_activated=0, activation_rate=None,
             accounts_pending=1, accounts_pending_activated=0, accounts_unobserved=0),
        # F1 (signed after T) appears nowhere.
    ]


def test_activation_window_closes_on_its_last_day(source) -> None:
    # The day before, C1's window (Mar 16 + 30 = Apr 15) is still open: pending, not failed.
    table = cohort_metrics(source, T - timedelta(days=1), FeatureConfig(), "activation")
    march = table[table["signing_month"] == "2024-03"].iloc[0]
    assert (march["accounts_window_closed"], march["accounts_pending"]) == (0, 2)


def test_activation_by_cohort_and_segment_override(source) -> None:
    # A 31-day window for SMB turns B31 (day 31) into an activated account: 5 / 6.
    config = FeatureConfig(activation_window_by_segment={"SMB": 31})
    table = cohort_metrics(source, T, config, "activation", by="cohort")
    january = table[table["signing_month"] == "2024-01"].iloc[0]
    assert january["cohort"] == "2024-01"
    assert (january["accounts_activated"], january["accounts_window_closed"]) == (5, 6)


# ------------------------------------------------------------------------------------------
# monthly activity
# ------------------------------------------------------------------------------------------

def expected_activity(required: dict[str, int], active_2024: dict[str, int]) -> list[dict]:
    """2023-03: R1-R3 pay the whole month, R4 (from the 15th) and R5 (from the 20th) part of
    it; 2023-04 .. 2023-12: R1-R5 pay whole months; none has any usage."""
    out = [dict(month="2023-03", paying_accounts=3, monthly_active_accounts=0,
                monthly_activity_rate=0.0, partial_month_accounts=2,
                active_days_required=required["2023-03"])]
    for month in range(4, 13):
        label = f"2023-{month:02d}"
        out.append(dict(month=label, paying_accounts=5, monthly_active_accounts=0,
                        monthly_activity_rate=0.0, partial_month_accounts=0,
                        active_days_required=required[label]))
    # 2024-01: R1-R5 + A1 whole (6), A2 from the 10th (partial, its 15 days do not count).
    # 2024-02: R1-R5, A1, A2 whole (7). 2024-03: R1, R2, R4 (old term to the 14th, new from
    # the 15th), A1, A2 whole (5); R5 ends on the 19th (partial); R3 churned (absent).
    for label, paying, partial in (("2024-01", 6, 1), ("2024-02", 7, 0), ("2024-03", 5, 1)):
        out.append(dict(month=label, paying_accounts=paying,
                        monthly_active_accounts=active_2024[label],
                        monthly_activity_rate=active_2024[label] / paying,
                        partial_month_accounts=partial, active_days_required=required[label]))
    return out  # April 2024 has not ended at T: absent.


def test_monthly_activity_rate_days_rule(source) -> None:
    table = cohort_metrics(source, T, FeatureConfig(), "activity")
    required = {f"2023-{m:02d}": 12 for m in range(3, 13)} | {
        "2024-01": 12, "2024-02": 12, "2024-03": 12}
    # >= 12 active days: Jan A1 (12); Feb A1 (13), A2 (12); Mar A2 (20), not A1 (5).
    assert rows(table) == expected_activity(required, {"2024-01": 1, "2024-02": 2, "2024-03": 1})


def test_monthly_activity_rate_working_days_rule(source) -> None:
    table = cohort_metrics(source, T, WORKING_DAYS, "activity")
    # Working days (Mon-Fri): Jan 2024 23 -> ceil(13.8) = 14; Feb 2024 21 -> ceil(12.6) = 13;
    # Mar 2024 21 -> 13. 2023: Mar 23, Apr 20, May 23, Jun 22, Jul 21, Aug 23, Sep 21, Oct 22,
    # Nov 22, Dec 21 -> 14, 12, 14, 14, 13, 14, 13, 14, 14, 13.
    required = dict(zip([f"2023-{m:02d}" for m in range(3, 13)],
                        [14, 12, 14, 14, 13, 14, 13, 14, 14, 13], strict=True))
    required |= {"2024-01": 14, "2024-02": 13, "2024-03": 13}
    # Jan: A1's 12 < 14 -> none. Feb: A1 13 >= 13 yes, A2 12 no. Mar: A2 20 yes.
    assert rows(table) == expected_activity(required, {"2024-01": 0, "2024-02": 1, "2024-03": 1})


def test_holidays_lower_the_working_days_threshold(source) -> None:
    # Two holidays in February 2024: 19 working days -> ceil(11.4) = 12, so A2's 12 now count.
    config = FeatureConfig(monthly_rule="working_days",
                           holidays=[date(2024, 2, 19), date(2024, 2, 20)])
    table = cohort_metrics(source, T, config, "activity")
    february = table[table["month"] == "2024-02"].iloc[0]
    assert (february["active_days_required"], february["monthly_active_accounts"]) == (12, 2)


def test_activity_by_csm_puts_null_csm_in_unknown(source) -> None:
    table = cohort_metrics(source, T, FeatureConfig(), "activity", by="csm_id")
    march = rows(table[table["month"] == "2024-03"])
    # Whole-month payers in March: R1 (c1), A1 (c1); R2 (c2), A2 (c2, active); R4 (no CSM).
    # R5 (c2) is partial.
    assert march == [
        dict(month="2024-03", csm_id="c1", paying_accounts=2, monthly_active_accounts=0,
             monthly_activity_rate=0.0, partial_month_accounts=0, active_days_required=12),
        dict(month="2024-03", csm_id="c2", paying_accounts=2, monthly_active_accounts=1,
             monthly_activity_rate=0.5, partial_month_accounts=1, active_days_required=12),
        dict(month="2024-03", csm_id="unknown", paying_accounts=1, monthly_active_accounts=0,
             monthly_activity_rate=0.0, partial_month_accounts=0, active_days_required=12),
    ]


@pytest.mark.parametrize(("as_of", "month_end"), [
    (date(2024, 3, 31), date(2024, 3, 31)),   # the month's last day: that month has ended
    (date(2024, 3, 30), date(2024, 2, 29)),
    (date(2024, 1, 1), date(2023, 12, 31)),   # across a year end
])
def test_last_complete_month_end(as_of: date, month_end: date) -> None:
    assert last_complete_month_end(as_of) == month_end


# ------------------------------------------------------------------------------------------
# logo renewal and NDR
# ------------------------------------------------------------------------------------------

def test_logo_renewal_rate(source) -> None:
    table = cohort_metrics(source, T, FeatureConfig(), "renewal")
    assert rows(table) == [
        # Feb 2024: R1 and R2 renewed, R3 churned -> 2 / 3.
        # One contract per account here: accounts and contracts agree.
        dict(renewal_month="2024-02", accounts_due=3, accounts_renewed=2, accounts_churned=1,
             renewal_rate=2 / 3, accounts_undecided=0, contracts_due=3, contracts_renewed=2,
             contracts_churned=1, contracts_undecided=0),
        # Mar 2024: R4 renewed; R5 ended Mar 19 with no outcome -> undecided, out of the rate.
        dict(renewal_month="2024-03", accounts_due=1, accounts_renewed=1, accounts_churned=0,
             renewal_rate=1.0, accounts_undecided=1, contracts_due=1, contracts_renewed=1,
             contracts_churned=0, contracts_undecided=1),
        # Terms ending after T (cA1, cR1b, ..., cF1) are not due yet: no later month.
    ]


def test_ndr(source) -> None:
    table = cohort_metrics(source, T, FeatureConfig(), "ndr")
    assert rows(table) == [
        # beginning 1000 + 2000 + 800 = 3800; expansion R1 1500 - 1000 = 500; contraction R2
        # 2000 - 1200 = 800; churned R3 800 (its next_arr 700 is ignored);
        # ending 3800 + 500 - 800 - 800 = 2700; NDR 2700 / 3800.
        dict(renewal_month="2024-02", contracts_due=3, contracts_renewed=2, contracts_churned=1,
             beginning_arr=3800.0, expansion_arr=500.0, contraction_arr=800.0,
             churned_arr=800.0, ending_arr=2700.0, ndr=2700 / 3800,
             renewed_next_arr_assumed=0, contracts_undecided=0),
        # R4 renewed without next_arr: counted flat (500 -> 500) and reported as assumed;
        # R5 undecided: not in beginning ARR.
        dict(renewal_month="2024-03", contracts_due=1, contracts_renewed=1, contracts_churned=0,
             beginning_arr=500.0, expansion_arr=0.0, contraction_arr=0.0, churned_arr=0.0,
             ending_arr=500.0, ndr=1.0, renewed_next_arr_assumed=1, contracts_undecided=1),
    ]


def logos(due: int, renewed: int, churned: int, rate: float | None, undecided: int) -> dict:
    """A renewal row's counts where every account has one contract (accounts = contracts)."""
    return dict(accounts_due=due, accounts_renewed=renewed, accounts_churned=churned,
                renewal_rate=rate, accounts_undecided=undecided, contracts_due=due,
                contracts_renewed=renewed, contracts_churned=churned,
                contracts_undecided=undecided)


def test_renewal_by_segment_keeps_null_segment_as_unknown(source) -> None:
    table = cohort_metrics(source, T, FeatureConfig(), "renewal", by="segment")
    assert rows(table) == [
        dict(renewal_month="2024-02", segment="ENT", **logos(1, 1, 0, 1.0, 0)),  # R2
        dict(renewal_month="2024-02", segment="SMB", **logos(1, 1, 0, 1.0, 0)),  # R1
        dict(renewal_month="2024-02", segment="unknown", **logos(1, 0, 1, 0.0, 0)),  # R3 (null)
        dict(renewal_month="2024-03", segment="ENT", **logos(1, 1, 0, 1.0, 0)),  # R4
        # R5 alone: nothing decided -> rate null, not 0 and not NaN.
        dict(renewal_month="2024-03", segment="SMB", **logos(0, 0, 0, None, 1)),
    ]


def test_ndr_by_segment_sums_to_the_total(source) -> None:
    grouped = cohort_metrics(source, T, FeatureConfig(), "ndr", by="segment")
    february = grouped[grouped["renewal_month"] == "2024-02"].set_index("segment")
    # ENT: R2 2000 -> 1200: NDR 0.6; SMB: R1 1000 -> 1500: 1.5; unknown: R3 churned: 0.0.
    assert february["ndr"].to_dict() == {"ENT": 0.6, "SMB": 1.5, "unknown": 0.0}
    assert february["beginning_arr"].sum() == 3800.0


def test_contracts_without_next_arr_column_count_renewals_flat(
    tmp_path: Path, data_dir: Path
) -> None:
    contracts = pd.read_parquet(data_dir / "contracts.parquet").drop(columns=["next_arr"])
    for name in ("accounts", "usage"):
        (tmp_path / f"{name}.parquet").write_bytes((data_dir / f"{name}.parquet").read_bytes())
    write_table(contracts, tmp_path, "contracts")
    table = cohort_metrics(open_source(tmp_path), T, FeatureConfig(), "ndr")
    february = table[table["renewal_month"] == "2024-02"].iloc[0]
    # R1 and R2 now renew flat: ending 3800 - 800 churned = 3000; both assumed.
    assert (february["ending_arr"], february["renewed_next_arr_assumed"]) == (3000.0, 2)
    assert february["ndr"] == 3000 / 3800


def test_all_metrics_match_single_metrics(source) -> None:
    everything = all_metrics(source, T, FeatureConfig(), by="segment")
    assert list(everything) == ["activation", "activity", "renewal", "ndr"]
    for metric, table in everything.items():
        pd.testing.assert_frame_equal(
            table, cohort_metrics(source, T, FeatureConfig(), metric, by="segment")
        )


def test_repeated_calls_leave_no_temporary_tables(data_dir: Path) -> None:
    # A service calls the metrics again and again on one connection: the shared daily table
    # must not pile up.
    source = open_source(data_dir)
    for _ in range(2):
        all_metrics(source, T, FeatureConfig())
    temporary = source.backend.con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    assert temporary == []


@pytest.mark.spark
@pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java 17 (no `java`)")
def test_spark_gives_the_same_metrics(data_dir: Path, spark) -> None:
    on_spark = all_metrics(open_source(data_dir, engine="spark", spark=spark), T,
                           WORKING_DAYS, by="segment")
    on_duckdb = all_metrics(open_source(data_dir), T, WORKING_DAYS, by="segment")
    for metric, table in on_duckdb.items():
        pd.testing.assert_frame_equal(table, on_spark[metric])


# ------------------------------------------------------------------------------------------
# errors and the CLI
# ------------------------------------------------------------------------------------------

def test_unknown_metric_and_grouping_are_clear_errors(source) -> None:
    with pytest.raises(RenewalError, match="unknown metric 'churn'"):
        cohort_metrics(source, T, FeatureConfig(), "churn")  # type: ignore[arg-type]
    with pytest.raises(RenewalError, match="unknown grouping 'region'"):
        cohort_metrics(source, T, FeatureConfig(), "renewal", by="region")  # type: ignore


def test_grouping_by_an_absent_column_names_it(tmp_path: Path, data_dir: Path) -> None:
    accounts = pd.read_parquet(data_dir / "accounts.parquet").drop(columns=["segment"])
    for name in ("contracts", "usage"):
        (tmp_path / f"{name}.parquet").write_bytes((data_dir / f"{name}.parquet").read_bytes())
    write_table(accounts, tmp_path, "accounts")
    with pytest.raises(DataContractError, match=r"accounts\.segment: grouping by segment"):
        cohort_metrics(open_source(tmp_path), T, FeatureConfig(), "renewal", by="segment")


def test_missing_required_column_is_a_contract_error(tmp_path: Path, data_dir: Path) -> None:
    contracts = pd.read_parquet(data_dir / "contracts.parquet").drop(columns=["renewed"])
    for name in ("accounts", "usage"):
        (tmp_path / f"{name}.parquet").write_bytes((data_dir / f"{name}.parquet").read_bytes())
    write_table(contracts, tmp_path, "contracts")
    with pytest.raises(DataContractError, match=r"contracts\.renewed: required column is "
                                                r"missing .* \(11 rows\)"):
        cohort_metrics(open_source(tmp_path), T, FeatureConfig(), "renewal")


def test_cli_json_is_one_document_without_nan(data_dir: Path) -> None:
    from renewal.cli import build_app

    result = CliRunner().invoke(
        build_app(), ["metrics", "--data", str(data_dir), "--as-of", "2024-04-15", "--json"]
    )
    assert result.exit_code == 0, result.output

    def refuse(constant: str) -> float:
        raise AssertionError(f"{constant} in JSON output")

    document = json.loads(result.stdout, parse_constant=refuse)
    assert list(document) == ["activation", "activity", "renewal", "ndr"]
    assert document["renewal"][0] == dict(renewal_month="2024-02", **logos(3, 2, 1, 2 / 3, 0))
    assert document["activation"][-1]["activation_rate"] is None
    assert math.isclose(document["ndr"][0]["ndr"], 2700 / 3800)


def test_cli_one_metric_grouped_and_config_file(data_dir: Path, tmp_path: Path) -> None:
    from renewal.cli import build_app

    config = tmp_path / "features.toml"
    config.write_text('monthly_rule = "working_days"\n')
    result = CliRunner().invoke(build_app(), [
        "metrics", "--data", str(data_dir), "--as-of", "2024-04-15", "--metric", "activity",
        "--by", "segment", "--config", str(config), "--json",
    ])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert list(document) == ["activity"]
    january = [r for r in document["activity"] if r["month"] == "2024-01"]
    assert {r["segment"]: r["active_days_required"] for r in january} == {
        "ENT": 14, "SMB": 14, "unknown": 14}


def test_cli_tables_for_people(data_dir: Path) -> None:
    from renewal.cli import build_app

    result = CliRunner().invoke(
        build_app(),
        ["metrics", "--data", str(data_dir), "--as-of", "2024-04-15", "--metric", "renewal"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "Logo renewal" in result.stdout
    assert "2024-02" in result.stdout and "66.7%" in result.stdout


def test_cli_tables_are_whole_when_piped(data_dir: Path) -> None:
    """Rich assumes 80 columns for a pipe or a file and would elide what does not fit
    ("2024-…"): piped tables come at their natural width instead, every value whole."""
    from renewal.cli import build_app

    result = CliRunner().invoke(
        build_app(),
        ["metrics", "--data", str(data_dir), "--as-of", "2024-04-15", "--by", "segment"],
        env={"COLUMNS": "80"},
    )
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) > 80
    assert any("signing month" in line and "accounts pending activated" in line for line in lines)
    cells = [[cell.strip() for cell in line.strip("│").split("│")]
             for line in lines if line.startswith("│")]
    # January's SMB signings: A1 (day 3) and B30 (day 30) activated, B31 (day 31) not.
    assert ["2024-01", "SMB", "3", "3", "2", "1", "66.7%", "0", "0", "0"] in cells


def test_cli_warns_on_stderr_when_the_usage_ends_before_as_of(data_dir: Path) -> None:
    """Months after the export would show no activity: said on stderr, the JSON stays whole."""
    from renewal.cli import build_app

    args = ["metrics", "--data", str(data_dir), "--metric", "activity", "--json"]
    late = CliRunner().invoke(build_app(), [*args, "--as-of", "2024-05-10"])
    assert late.exit_code == 0, late.output
    assert "usage ends 2024-05-03, 7 day(s) before as-of 2024-05-10" in late.stderr
    assert list(json.loads(late.stdout)) == ["activity"]
    complete = CliRunner().invoke(build_app(), [*args, "--as-of", "2024-05-03"])
    assert complete.exit_code == 0 and "usage ends" not in complete.stderr


def test_cli_bad_input_exits_2_with_a_message(tmp_path: Path, capsys) -> None:
    from renewal.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["metrics", "--data", str(tmp_path / "missing"), "--as-of", "2024-04-15"])
    assert exit_info.value.code == 2
    assert "is not a directory" in capsys.readouterr().err
