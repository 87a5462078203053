"""Audit of the cohort metrics at their boundaries (docs/metrics.md, ../shared/domain.md): each
case is a tiny hand-built data directory whose expected values are worked out in a comment."""

from __future__ import annotations

import pytest
from conftest import d

from features.config import FeatureConfig
from features.metrics import cohort_metrics
from features.source import open_source

USAGE = [{"account_id": "m", "date": d("2023-05-02"), "user_id": "u", "logins": 1,
          "key_actions": 1}]


def _term(contract: str, account: str, start: str, end: str, arr: float,
          renewed: bool | None, next_arr: float | None = None) -> dict:
    return {"contract_id": contract, "account_id": account, "start_date": start,
            "end_date": end, "arr": arr, "renewed": renewed, "next_arr": next_arr}


def _logos(make_dir, contracts: list[dict], as_of: str) -> dict[str, tuple[int, int, int]]:
    accounts = [{"account_id": x, "signed_at": "2023-01-01", "seats": 10}
                for x in sorted({c["account_id"] for c in contracts})]
    source = open_source(make_dir(accounts, USAGE, contracts=contracts))
    table = cohort_metrics(source, d(as_of), FeatureConfig(), "renewal")
    return {r.renewal_month: (r.accounts_renewed, r.accounts_churned, r.accounts_undecided)
            for r in table.itertuples()}


# ------------------------------------------------------------------------------------------
# logo renewal: an account is a lost logo only when it stops being a customer
# ------------------------------------------------------------------------------------------

def test_an_add_on_lapsing_while_the_main_term_runs_on_is_not_a_lost_logo(make_dir):
    """Domain 1: "Logo renewal rate counts accounts". m renewed its main contract in December
    (main2 runs 2024-01-01..2024-12-31) and let an add-on lapse on 2024-03-31: m is still a
    customer on April 1, so March must not count it as churned. c really churned in March.

    March 2024, as of 2024-04-15: logos m (kept: main2, started 2024-01-01 <= Mar 31, runs
    past Mar 31) and c (churned) -> 1 renewed / 2 due = 0.5. Contracts: both March terms
    renewed = false -> 2 churned. Money (NDR) is unchanged: beginning 200 + 500 = 700,
    churned 700, ending 0.
    """
    contracts = [
        _term("main1", "m", "2023-01-01", "2023-12-31", 1000.0, True, 1000.0),
        _term("main2", "m", "2024-01-01", "2024-12-31", 1000.0, None),
        _term("addon", "m", "2023-04-01", "2024-03-31", 200.0, False),
        _term("c1", "c", "2023-04-01", "2024-03-31", 500.0, False),
    ]
    accounts = [{"account_id": x, "signed_at": "2023-01-01", "seats": 10} for x in ("c", "m")]
    source = open_source(make_dir(accounts, USAGE, contracts=contracts))
    renewal = cohort_metrics(source, d("2024-04-15"), FeatureConfig(), "renewal")
    march = renewal[renewal.renewal_month == "2024-03"].iloc[0]
    assert (march.accounts_due, march.accounts_renewed, march.accounts_churned) == (2, 1, 1)
    assert march.renewal_rate == pytest.approx(1 / 2)
    assert (march.contracts_due, march.contracts_renewed, march.contracts_churned) == (2, 0, 2)
    ndr = cohort_metrics(source, d("2024-04-15"), FeatureConfig(), "ndr")
    march_ndr = ndr[ndr.renewal_month == "2024-03"].iloc[0]
    assert (march_ndr.beginning_arr, march_ndr.churned_arr, march_ndr.ndr) == (700.0, 700.0,
                                                                               0.0)


def test_a_logo_churns_once_when_its_last_term_ends(make_dir):
    """m's add-on lapses on 2024-03-10 while its main term (decided early: not renewed) runs
    to 2024-05-31. As of 2024-06-30 m was a customer all along until May 31: one lost logo,
    in May, not one in March and another in May."""
    contracts = [
        _term("addon", "m", "2023-03-11", "2024-03-10", 200.0, False),
        _term("main", "m", "2023-06-01", "2024-05-31", 1000.0, False),
    ]
    # March: addon ends Mar 10, main (started 2023-06-01 <= Mar 10, ends May 31 > Mar 10)
    # runs on -> kept (1, 0, 0). May: main ends, nothing runs past May 31 -> churned (0, 1, 0).
    assert _logos(make_dir, contracts, "2024-06-30") == {"2024-03": (1, 0, 0),
                                                         "2024-05": (0, 1, 0)}


@pytest.mark.parametrize(("contracts", "as_of", "expected"), [
    # Two concurrent terms both lapsing in March (Mar 10 and Mar 20): the Mar 20 term runs past
    # Mar 10 but not past the month's last end (Mar 20) -> one churned logo, not "kept".
    ([_term("a", "m", "2023-03-11", "2024-03-10", 100.0, False),
      _term("b", "m", "2023-03-21", "2024-03-20", 100.0, False)],
     "2024-04-15", {"2024-03": (0, 1, 0)}),
    # As of Mar 15 the Mar 20 term has not ended: m is still a customer -> kept.
    ([_term("a", "m", "2023-03-11", "2024-03-10", 100.0, False),
      _term("b", "m", "2023-03-21", "2024-03-20", 100.0, False)],
     "2024-03-15", {"2024-03": (1, 0, 0)}),
    # The add-on's outcome is still open, but the main term runs on: a customer -> kept.
    ([_term("addon", "m", "2023-04-01", "2024-03-31", 100.0, None),
      _term("main", "m", "2023-06-01", "2024-05-31", 1000.0, None)],
     "2024-04-15", {"2024-03": (1, 0, 0)}),
    # A term starting after the lapse (a win-back on Apr 5) did not run on Mar 31: churned.
    ([_term("old", "m", "2023-04-01", "2024-03-31", 100.0, False),
      _term("back", "m", "2024-04-05", "2025-04-04", 100.0, None)],
     "2024-04-15", {"2024-03": (0, 1, 0)}),
])
def test_kept_logo_needs_a_term_running_past_the_months_last_end(make_dir, contracts, as_of,
                                                                 expected):
    assert _logos(make_dir, contracts, as_of) == expected


# ------------------------------------------------------------------------------------------
# point in time: an account signed after T is not there yet, contracts and all
# ------------------------------------------------------------------------------------------

def test_a_backdated_contract_of_an_account_signed_after_as_of_counts_nowhere(make_dir):
    """docs/metrics.md: "accounts signed after T ... change nothing". p (signed 2023-01-01,
    active Feb 1-12, 2024: 12 active days, monthly active) is the only account at T =
    2024-04-30. late signs on 2024-05-10 but its export backdates two terms: 2024-01-01..
    2024-12-31 and 2023-01-01..2023-12-31 (renewed). At T, February: 1 paying account, 1 active
    -> 100 % (was 1/2 with late's contract as a paying month); no 2023-12 renewal or NDR row
    (was late's renewed term); the 2024-12 row is after T either way."""
    accounts = [{"account_id": "p", "signed_at": "2023-01-01", "seats": 1},
                {"account_id": "late", "signed_at": "2024-05-10", "seats": 1}]
    usage = [{"account_id": "p", "date": f"2024-02-{day:02d}", "user_id": "u", "logins": 1,
              "key_actions": 1} for day in range(1, 13)]
    contracts = [_term("c1", "p", "2023-01-01", "2024-12-31", 100.0, None),
                 _term("c2", "late", "2024-01-01", "2024-12-31", 50.0, None),
                 _term("c3", "late", "2023-01-01", "2023-12-31", 50.0, True, 50.0)]
    source = open_source(make_dir(accounts, usage, contracts=contracts))
    as_of = d("2024-04-30")
    activity = cohort_metrics(source, as_of, FeatureConfig(), "activity")
    february = activity[activity.month == "2024-02"].iloc[0]
    assert (february.paying_accounts, february.monthly_active_accounts) == (1, 1)
    assert february.monthly_activity_rate == 1.0
    assert set(activity.paying_accounts) == {1}
    for metric in ("renewal", "ndr"):
        assert cohort_metrics(source, as_of, FeatureConfig(), metric).empty


def test_a_flat_renewal_has_no_negative_zero_contraction(make_dir):
    """Renewed at the same ARR: change 0, contraction -(0.0) = -0.0 was shown as "-0"."""
    contracts = [_term("c1", "m", "2023-01-01", "2023-12-31", 1000.0, True, 1000.0),
                 _term("c2", "n", "2023-01-01", "2023-12-31", 500.0, True)]  # assumed flat
    accounts = [{"account_id": x, "signed_at": "2023-01-01", "seats": 10} for x in ("m", "n")]
    source = open_source(make_dir(accounts, USAGE, contracts=contracts))
    ndr = cohort_metrics(source, d("2024-01-31"), FeatureConfig(), "ndr").iloc[0]
    for column in ("expansion_arr", "contraction_arr", "churned_arr"):
        assert ndr[column] == 0.0
        assert str(ndr[column]) == "0.0", column  # not "-0.0"
    assert ndr.ndr == 1.0
