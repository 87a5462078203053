"""GET /v1/forecast checked by hand on a small book of contracts written into the outcomes
data directory of the real app."""

from __future__ import annotations

from datetime import timedelta

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
    assert total["contracts"] == 3
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
