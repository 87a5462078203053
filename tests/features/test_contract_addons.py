"""Contract features of accounts whose terms overlap: add-ons beside a main term.

The audit's bug: an add-on started after a $258,289 main term became "the current contract",
so the account's ARR read 1,000, its last ARR change -99.6 %, the add-on counted as a renewal
and the renewal date was the add-on's end. Each account below is one boundary of the rules in
``features.windows.contracts``; accounts with one term at a time keep the values of the
latest-started term (checked on simulated data when the rules were written).
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from conftest import d, days, write_dir

from features.config import FeatureConfig
from features.source import open_source
from features.vectors import feature_vectors

COLUMNS = ["arr", "days_to_renewal", "renewals_so_far", "last_arr_change_pct"]
NULL = None


def term(contract_id: str, account: str, start: str, end: str, arr: float) -> dict:
    # renewed / next_arr are outcomes: set to values that would show if they were read.
    return {"contract_id": contract_id, "account_id": account, "start_date": d(start),
            "end_date": d(end), "arr": arr, "renewed": False, "next_arr": 1e9}


CONTRACTS = [
    # the audit's case: a small add-on started after the main term
    term("bug-main", "bug", "2024-01-01", "2024-12-31", 258_289.0),
    term("bug-addon", "bug", "2024-06-01", "2024-12-31", 1_000.0),
    # an add-on ending 2024-06-30 inside a renewed main term
    term("end-1", "ends", "2023-01-01", "2023-12-31", 10_000.0),
    term("end-2", "ends", "2024-01-01", "2024-12-31", 10_000.0),
    term("end-addon", "ends", "2024-03-01", "2024-06-30", 2_000.0),
    # two terms of equal ARR: the later end is the main term
    term("eq-1", "equal", "2024-01-01", "2024-12-31", 5_000.0),
    term("eq-2", "equal", "2024-04-01", "2025-03-31", 5_000.0),
    # equal ARR and end: the larger contract_id is the main term
    term("co-1", "coterm", "2024-01-01", "2024-12-31", 5_000.0),
    term("co-2", "coterm", "2024-03-01", "2024-12-31", 5_000.0),
    # renewals on the day after the end, with an add-on running past the first renewal
    term("ren-1", "renewals", "2023-01-01", "2023-12-31", 8_000.0),
    term("ren-2", "renewals", "2024-01-01", "2024-12-31", 8_000.0),
    term("ren-addon", "renewals", "2024-05-01", "2025-04-30", 1_000.0),
    term("ren-3", "renewals", "2025-01-01", "2025-12-31", 8_000.0),
    # a downgrade at renewal, and one where the add-on is not renewed
    term("down-1", "down", "2023-01-01", "2023-12-31", 10_000.0),
    term("down-2", "down", "2024-01-01", "2024-12-31", 6_000.0),
    term("lost-1", "lost_addon", "2023-01-01", "2023-12-31", 10_000.0),
    term("lost-addon", "lost_addon", "2023-06-01", "2023-12-31", 2_000.0),
    term("lost-2", "lost_addon", "2024-01-01", "2024-12-31", 10_000.0),
    # a first term
    term("first-1", "first", "2024-01-01", "2024-12-31", 3_000.0),
    # between terms (lapsed), then back after a gap
    term("gap-1", "gap", "2023-01-01", "2023-12-31", 7_000.0),
    term("gap-2", "gap", "2024-03-01", "2025-02-28", 9_000.0),
    # an export with exclusive ends: the next term starts on end_date
    term("excl-1", "exclusive", "2023-01-01", "2024-01-01", 1_000.0),
    term("excl-2", "exclusive", "2024-01-01", "2024-12-31", 1_200.0),
    # a renewal signed with an expansion on the same day: one renewal
    term("pair-1", "pair", "2023-01-01", "2023-12-31", 4_000.0),
    term("pair-2", "pair", "2024-01-01", "2024-12-31", 4_000.0),
    term("pair-2x", "pair", "2024-01-01", "2024-12-31", 1_000.0),
    # an early renewal overlapping the old term by a month reads as an add-on
    term("early-1", "early", "2023-01-01", "2023-12-31", 5_000.0),
    term("early-2", "early", "2023-12-01", "2024-11-30", 5_000.0),
]

# (account, as_of): arr, days_to_renewal, renewals_so_far, last_arr_change_pct
EXPECTED = {
    ("bug", "2024-05-31"): (258_289.0, 214, 0, NULL),  # the day before the add-on
    ("bug", "2024-07-31"): (259_289.0, 153, 0, NULL),  # not 1,000 / -99.6 % / 1 renewal
    ("ends", "2024-06-30"): (12_000.0, 184, 1, 0.2),  # in force on its last day: expansion
    ("ends", "2024-07-01"): (10_000.0, 183, 1, 0.0),  # ended the day before: gone
    ("equal", "2024-06-30"): (10_000.0, 274, 0, 1.0),  # main eq-2 (ends 2025-03-31)
    ("equal", "2025-01-15"): (5_000.0, 75, 0, 0.0),  # eq-1 ended: as before eq-2
    ("coterm", "2024-06-30"): (10_000.0, 184, 0, 1.0),  # main co-2, co-1 the day before
    ("renewals", "2024-06-30"): (9_000.0, 184, 1, 0.125),  # ren-addon is not a renewal
    ("renewals", "2025-02-01"): (9_000.0, 333, 2, 0.0),  # ren-3 renews under ren-addon
    ("renewals", "2025-05-01"): (8_000.0, 244, 2, -1 / 9),  # the add-on ended 04-30
    ("down", "2024-03-01"): (6_000.0, 305, 1, -0.4),
    ("lost_addon", "2024-03-01"): (10_000.0, 305, 1, -1 / 6),  # 12,000 in force on 12-31
    ("first", "2024-03-01"): (3_000.0, 305, 0, NULL),
    ("gap", "2024-01-15"): (7_000.0, -15, 0, NULL),  # lapsed: where gap-1 left it
    ("gap", "2024-03-15"): (9_000.0, 350, 1, 2 / 7),  # a return counts, vs gap-1's ARR
    ("exclusive", "2024-01-01"): (1_200.0, 365, 1, 0.2),  # not 2,200 on the shared day
    ("exclusive", "2023-12-31"): (1_000.0, 1, 0, NULL),
    ("pair", "2024-03-01"): (5_000.0, 305, 1, 0.25),
    ("early", "2023-12-15"): (10_000.0, 351, 0, 1.0),  # main early-2 (the later end)
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    ids = sorted({c["account_id"] for c in CONTRACTS})
    accounts = [{"account_id": a, "signed_at": d("2023-01-01"), "seats": 10} for a in ids]
    usage = [{"account_id": a, "date": day, "key_actions": 5, "logins": 2, "active_users": 2}
             for a in ids for day in days("2024-01-01", 3)]
    return write_dir(tmp_path_factory.mktemp("addons"), accounts=accounts, usage=usage,
                     contracts=CONTRACTS)


def _spine() -> pd.DataFrame:
    return pd.DataFrame([{"account_id": a, "as_of": pd.Timestamp(t)} for a, t in EXPECTED])


def _contract_values(source) -> pd.DataFrame:
    frame = feature_vectors(source, _spine(), FeatureConfig())
    frame["as_of"] = frame["as_of"].dt.strftime("%Y-%m-%d")
    return frame.set_index(["account_id", "as_of"])[COLUMNS]


@pytest.fixture(scope="module")
def values(data_dir) -> pd.DataFrame:
    return _contract_values(open_source(data_dir))


@pytest.mark.parametrize("key", list(EXPECTED), ids=["@".join(k) for k in EXPECTED])
def test_contract_features_at_the_boundaries(values, key):
    arr, days_left, renewals, change = EXPECTED[key]
    row = values.loc[key]
    assert row.arr == pytest.approx(arr)
    assert row.days_to_renewal == days_left
    assert row.renewals_so_far == renewals
    if change is NULL:
        assert pd.isna(row.last_arr_change_pct)
    else:
        assert row.last_arr_change_pct == pytest.approx(change)


def test_terms_started_after_as_of_are_not_read(data_dir, tmp_path):
    """A later add-on, renewal or handover changes nothing before it starts."""
    later = [term("bug-later", "bug", "2024-08-01", "2025-07-31", 50_000.0),
             term("first-2", "first", "2024-03-02", "2025-03-01", 1.0),
             term("gap-3", "gap", "2024-03-16", "2024-04-15", 1.0),
             # starts on down-2's end_date: down-2 then ends a day early, after as_of
             term("down-3", "down", "2024-12-31", "2025-12-31", 1.0)]
    wild = write_dir(tmp_path / "wild", accounts=pd.read_parquet(data_dir / "accounts.parquet"),
                     usage=pd.read_parquet(data_dir / "usage.parquet"),
                     contracts=[*CONTRACTS, *later])
    pd.testing.assert_frame_equal(_contract_values(open_source(wild)),
                                  _contract_values(open_source(data_dir)))


@pytest.mark.spark
@pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java 17 (no `java`)")
def test_spark_reads_overlapping_terms_alike(data_dir, values, spark):
    on_spark = _contract_values(open_source(data_dir, engine="spark", spark=spark))
    pd.testing.assert_frame_equal(values, on_spark, check_exact=False, rtol=1e-12)
