"""GET /v1/forecast checked by hand on a small book of contracts written into the outcomes
data directory of the real app."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from renewal.datadir import write_table

LATEST = pd.Timestamp("2025-06-30")


def contract(cid: str, account: str, start_days: int, end_days: int, arr: float) -> dict:
    return {"contract_id": cid, "account_id": account,
            "start_date": LATEST + timedelta(days=start_days),
            "end_date": LATEST + timedelta(days=end_days), "arr": arr, "renewed": None}


def test_forecast_counts_an_account_with_two_terms_ending_as_one_logo(stack):
    """Account A has two terms in force ending the same month (a base plan and an add-on),
    B one term, C one term ending after the horizon, and a contract of an account that was
    never scored. Logos count accounts (docs/metrics.md): A is one logo, renewed with its
    probability, not two independent ones."""
    ids = stack.frame["account_id"].astype(str).tolist()
    a, b, c = ids[:3]
    with stack.client(stack.keys.admin) as client:
        p = {x: client.get(f"/v1/accounts/{x}/renewal").json()["probability"] for x in (a, b)}
    book = pd.DataFrame([
        contract("a-base", a, -300, 40, 1000.0),
        contract("a-addon", a, -100, 45, 500.0),
        contract("b-1", b, -200, 70, 2000.0),
        contract("c-1", c, -10, 500, 9000.0),       # ends after 12 months: not due
        contract("ghost-1", "never-scored", -30, 60, 700.0),
    ])
    book["renewed"] = book["renewed"].astype("boolean")
    write_table(book, stack.data_dir, "contracts", "parquet")
    with stack.client(stack.keys.admin) as client:
        response = client.get("/v1/forecast", params={"by": "month", "months": 12})
    assert response.status_code == 200, response.text
    body = response.json()
    total = body["total"]
    assert total["contracts"] == 3 and total["accounts"] == 2
    assert total["arr_up_for_renewal"] == pytest.approx(3500.0)
    # Σ arr·p: the same whether A's terms are one decision or two.
    assert total["expected_renewed_arr"] == pytest.approx(1500 * p[a] + 2000 * p[b], abs=0.02)
    # Two logos, not three: E = p_A + p_B.
    assert total["expected_logos"] == pytest.approx(p[a] + p[b], abs=0.01)
    assert total["logos_interval"][1] <= 2
    # A renews all 1,500 or nothing: only 0, 1500, 2000 and 3500 can be renewed.
    assert set(total["renewed_arr_interval"]) <= {0.0, 1500.0, 2000.0, 3500.0}
    months = {g["key"]: g for g in body["data"]}
    august = months[(LATEST + timedelta(days=40)).strftime("%Y-%m")]
    assert august["contracts"] == 2 and august["expected_logos"] == pytest.approx(p[a], abs=0.01)
    assert august["logos_interval"][1] <= 1
    assert body["unscored"] == {"contracts": 1, "arr": 700.0}
    assert type(body["unscored"]["contracts"]) is int  # a count, not 1.0


def test_a_term_ending_on_the_scoring_day_is_a_renewal_ahead():
    """The end date is the term's last day: a term ending on as_of is in force that day (its
    account is scored as a customer) and its renewal is still ahead, so it is forecast. It
    was left out of every month, scored or not."""
    from service.workflows.forecast import upcoming_renewals

    day = pd.Timestamp("2025-06-30")
    contracts = pd.DataFrame({
        "contract_id": ["ends-yesterday", "ends-today", "ends-in-a-year", "starts-tomorrow"],
        "account_id": ["a", "b", "c", "d"],
        "start_date": pd.to_datetime(["2024-06-29", "2024-07-01", "2025-06-30", "2025-07-01"]),
        "end_date": pd.to_datetime(["2025-06-29", "2025-06-30", "2026-06-29", "2026-06-30"]),
        "arr": [1.0, 2.0, 3.0, 4.0],
        "renewed": pd.array([None, None, None, None], dtype="boolean"),
    })
    due = upcoming_renewals(contracts, day, day + pd.DateOffset(months=12))
    assert due["contract_id"].tolist() == ["ends-today", "ends-in-a-year"]
    assert due["month"].tolist() == ["2025-06", "2026-06"]


def test_recorded_outcomes_are_known_not_forecast():
    """Hand-computed: A renewed early (1,000, p 0.2), B gave notice (2,000, p 0.9), C is
    undecided (4,000, p 0.5), D has a renewed add-on (500) and an undecided base (3,000, p 0.4),
    E has both terms decided, not renewed (700 + 300, p 0.8)."""
    from service.workflows.forecast import forecast_group

    accounts = np.array(["A", "B", "C", "D", "D", "E", "E"])
    p = np.array([0.2, 0.9, 0.5, 0.4, 0.4, 0.8, 0.8])
    arr = np.array([1000.0, 2000.0, 4000.0, 500.0, 3000.0, 700.0, 300.0])
    renewed = pd.array([True, False, None, True, None, False, False], dtype="boolean")
    group = forecast_group("all", p, arr, 0.9, 20_000, 0, accounts, renewed)
    assert group.contracts == 7 and group.contracts_decided == 5 and group.accounts == 5
    assert group.arr_up_for_renewal == 11_500.0
    # Known: 1,000 (A) + 500 (D's add-on); open: 4,000 x 0.5 + 3,000 x 0.4.
    assert group.expected_renewed_arr == pytest.approx(1500 + 2000 + 1200)
    # Logos: A and D kept for certain, B and E lost for certain, C with 0.5.
    assert group.expected_logos == pytest.approx(2.5)
    assert group.logos_interval == (2, 3)
    # Only C's and D's open ARR is random: 1,500 known + {0, 3,000, 4,000, 7,000}.
    low, high = group.renewed_arr_interval
    assert {low, high} <= {1500.0, 4500.0, 5500.0, 8500.0}
    assert low == 1500.0 and high == 8500.0


def test_without_recorded_outcomes_the_forecast_is_the_model_s():
    """The backtest passes no outcomes (they are what it measures): every term is forecast."""
    from service.workflows.forecast import forecast_group

    accounts = np.array(["A", "B"])
    group = forecast_group("all", np.array([0.2, 0.9]), np.array([1000.0, 2000.0]), 0.9,
                           1000, 0, accounts)
    assert group.contracts_decided == 0
    assert group.expected_renewed_arr == pytest.approx(200 + 1800)
    assert group.expected_logos == pytest.approx(1.1)


def test_the_forecast_endpoint_counts_an_early_renewal_as_known(stack):
    ids = stack.frame["account_id"].astype(str).tolist()
    a, b = ids[:2]
    with stack.client(stack.keys.admin) as client:
        p_b = client.get(f"/v1/accounts/{b}/renewal").json()["probability"]
    book = pd.DataFrame([
        contract("a-1", a, -300, 40, 1000.0),
        contract("b-1", b, -200, 70, 2000.0),
    ])
    book["renewed"] = pd.array([True, None], dtype="boolean")
    write_table(book, stack.data_dir, "contracts", "parquet")
    with stack.client(stack.keys.admin) as client:
        body = client.get("/v1/forecast", params={"by": "month", "months": 12}).json()
    total = body["total"]
    assert total["contracts"] == 2 and total["contracts_decided"] == 1
    # p is served to 4 places: 2,000 x 0.00005 of rounding.
    assert total["expected_renewed_arr"] == pytest.approx(1000 + 2000 * p_b, abs=0.15)
    assert total["expected_logos"] == pytest.approx(1 + p_b, abs=0.01)
    assert total["logos_interval"][0] >= 1
    assert total["renewed_arr_interval"][0] >= 1000.0


def test_an_add_on_lapsing_under_a_running_main_term_keeps_the_logo():
    """The logo rule of the metrics (docs/metrics.md): an account whose add-on ends while its
    main term, already started, runs on is kept, whatever the add-on does. A: add-on ends in
    August, main term until next year; B: one term ending in August. In August A's logo is
    certain, its add-on's ARR still forecast; B's logo and ARR are its probability's."""
    from service.workflows.forecast import forecast_table, upcoming_renewals

    day = pd.Timestamp("2025-06-30")
    contracts = pd.DataFrame({
        "contract_id": ["a-main", "a-addon", "b-1", "c-addon", "c-next"],
        "account_id": ["A", "A", "B", "C", "C"],
        "start_date": pd.to_datetime(["2025-01-01", "2025-02-01", "2024-08-21", "2025-02-01",
                                      "2025-08-21"]),
        "end_date": pd.to_datetime(["2026-12-31", "2025-08-20", "2025-08-20", "2025-08-20",
                                    "2026-08-20"]),
        "arr": [5000.0, 1000.0, 2000.0, 700.0, 900.0],
        "renewed": pd.array([None] * 5, dtype="boolean"),
    })
    due = upcoming_renewals(contracts, day, day + pd.DateOffset(months=3))
    assert sorted(due["contract_id"]) == ["a-addon", "b-1", "c-addon"]
    # C's next term starts after the forecast day (the day after the add-on ends): it is not
    # in force now, so it keeps nothing.
    assert dict(zip(due["contract_id"], due["runs_on"], strict=True)) == {
        "a-addon": True, "b-1": False, "c-addon": False}
    rows = due.assign(probability=due["account_id"].map({"A": 0.3, "B": 0.6, "C": 0.5}),
                      csm="x")
    (august,), total = forecast_table(rows, "month", 0.9, 2000, 0)
    assert august.accounts == 3
    assert august.expected_logos == pytest.approx(1 + 0.6 + 0.5)
    assert august.expected_renewed_arr == pytest.approx(1000 * 0.3 + 2000 * 0.6 + 700 * 0.5)
    assert august.logos_interval[0] >= 1  # A is certain
    assert total.expected_logos == pytest.approx(august.expected_logos)


def test_a_term_starting_after_the_forecast_day_does_not_keep_the_logo():
    """Found by review: a bridge term starting after as_of and ending in the same month as the
    main term made the forecast call the logo certain, while the metrics later judge the
    month by that later term (here: not renewed, a churn)."""
    from service.workflows.forecast import upcoming_renewals

    day = pd.Timestamp("2025-06-30")
    contracts = pd.DataFrame({
        "contract_id": ["a-main", "a-bridge"],
        "account_id": ["A", "A"],
        "start_date": pd.to_datetime(["2024-08-11", "2025-08-01"]),
        "end_date": pd.to_datetime(["2025-08-10", "2025-08-31"]),
        "arr": [1000.0, 100.0],
        "renewed": pd.array([None, None], dtype="boolean"),
    })
    due = upcoming_renewals(contracts, day, day + pd.DateOffset(months=3))
    assert due["contract_id"].tolist() == ["a-main"] and due["runs_on"].tolist() == [False]
