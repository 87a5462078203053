"""The forecast's ``runs_on`` (another term keeps the logo) read the whole contracts table on
every request (~0.5 s at 2 million contracts): it is now kept per file version and as_of.
These tests check that it is reused, recomputed when the file changes, and unchanged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.metrics.renewals import runs_on
from renewal.datadir import write_table
from service.workflows import forecast

LATEST = pd.Timestamp("2025-06-30")


def contract(cid: str, account: str, start_days: int, end_days: int, arr: float) -> dict:
    return {"contract_id": cid, "account_id": account,
            "start_date": LATEST + timedelta(days=start_days),
            "end_date": LATEST + timedelta(days=end_days), "arr": arr, "renewed": None}


def book(*rows: dict) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows))
    frame["renewed"] = frame["renewed"].astype("boolean")
    return frame


@pytest.fixture
def runs_on_calls(monkeypatch) -> list[pd.Timestamp]:
    """Each as_of :func:`forecast.runs_on_as_of` was computed for, in order."""
    calls: list[pd.Timestamp] = []
    real: Callable[..., np.ndarray] = forecast.runs_on_as_of

    def counted(contracts: pd.DataFrame, as_of: pd.Timestamp) -> np.ndarray:
        calls.append(as_of)
        return real(contracts, as_of)

    monkeypatch.setattr(forecast, "runs_on_as_of", counted)
    return calls


def test_runs_on_is_computed_once_per_file_version_and_as_of(tmp_path: Path, runs_on_calls):
    """A's add-on ends in August under a main term running until April (kept); B has one
    term. Two horizons on the same day share one computation; another day, or a new export of
    the file (B signs a longer term), computes again."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_table(book(contract("a-main", "A", -180, 300, 5000.0),
                     contract("a-addon", "A", -150, 50, 1000.0),
                     contract("b-1", "B", -300, 60, 2000.0)), data_dir, "contracts", "parquet")
    year = forecast.renewals_due_in(data_dir, LATEST, LATEST + pd.DateOffset(months=12))
    quarter = forecast.renewals_due_in(data_dir, LATEST, LATEST + pd.DateOffset(months=3))
    assert runs_on_calls == [LATEST]
    assert dict(zip(quarter["contract_id"], quarter["runs_on"], strict=True)) == {
        "a-addon": True, "b-1": False}
    assert sorted(year["contract_id"]) == ["a-addon", "a-main", "b-1"]

    later = LATEST + timedelta(days=1)
    forecast.renewals_due_in(data_dir, later, later + pd.DateOffset(months=3))
    assert runs_on_calls == [LATEST, later]

    write_table(book(contract("a-main", "A", -180, 300, 5000.0),
                     contract("a-addon", "A", -150, 50, 1000.0),
                     contract("b-1", "B", -300, 60, 2000.0),
                     contract("b-long", "B", -10, 700, 2500.0)), data_dir, "contracts", "parquet")
    rewritten = forecast.renewals_due_in(data_dir, LATEST, LATEST + pd.DateOffset(months=3))
    assert runs_on_calls == [LATEST, later, LATEST]
    assert dict(zip(rewritten["contract_id"], rewritten["runs_on"], strict=True)) == {
        "a-addon": True, "b-1": True}


def test_a_missing_contracts_table_is_still_the_data_contract_s_problem(tmp_path: Path):
    from renewal.errors import DataContractError

    with pytest.raises(DataContractError, match="required table is missing"):
        forecast.renewals_due_in(tmp_path, LATEST, LATEST + pd.DateOffset(months=3))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_kept_answer_is_the_one_computed_for_each_horizon(seed: int):
    """Each term is judged on its own, so the answer kept for every term in force equals the
    one computed before on the horizon's terms only, whatever the horizon and the day; also
    with a repeated index label, which the kept answer does not mix up."""
    rng = np.random.default_rng(seed)
    n = 600
    start = LATEST + pd.to_timedelta(rng.integers(-900, 120, n), unit="D")
    contracts = pd.DataFrame({
        "contract_id": [f"c{i}" for i in range(n)],
        "account_id": rng.integers(0, 80, n).astype(str),
        "start_date": start,
        "end_date": start + pd.to_timedelta(rng.integers(0, 800, n), unit="D"),
        "arr": rng.random(n) * 1000,
        "renewed": pd.array([None] * n, dtype="boolean"),
    }, index=rng.permutation(n) + 10)
    answers: list[bool] = []
    for days in (-200, 0, 45):
        day = LATEST + timedelta(days=days)
        flags = forecast.runs_on_as_of(contracts, day)
        for months in (1, 6, 36):
            until = day + pd.DateOffset(months=months)
            due = contracts[(contracts["start_date"] <= day) & (contracts["end_date"] >= day)
                            & (contracts["end_date"] <= until)]
            before = runs_on(due, contracts[contracts["start_date"] <= day]).to_numpy()
            kept = forecast.upcoming_renewals(contracts, day, until, flags)
            assert kept["contract_id"].tolist() == due["contract_id"].tolist()
            assert kept["runs_on"].tolist() == before.tolist()
            assert forecast.upcoming_renewals(contracts, day, until).equals(kept)
            answers += before.tolist()
    assert any(answers) and not all(answers)  # both answers are exercised
    repeated = contracts.set_axis([0] * n)
    flags = forecast.runs_on_as_of(repeated, LATEST)
    assert flags.tolist() == forecast.runs_on_as_of(contracts, LATEST).tolist()


def test_the_endpoint_reuses_runs_on_until_the_contracts_change(stack, runs_on_calls):
    """Over HTTP: two forecasts of the same file (two horizons, two groupings) compute the
    logo rule once; a new export of the file computes it again and is what is served."""
    a, b = stack.frame["account_id"].astype(str).tolist()[:2]
    write_table(book(contract("a-main", a, -180, 550, 5000.0),
                     contract("a-addon", a, -150, 50, 1000.0),
                     contract("b-1", b, -300, 60, 2000.0)), stack.data_dir, "contracts",
                "parquet")
    with stack.client(stack.keys.admin) as client:
        first = client.get("/v1/forecast", params={"by": "month", "months": 3})
        second = client.get("/v1/forecast", params={"by": "csm", "months": 12})
    assert first.status_code == 200 and second.status_code == 200, second.text
    assert len(runs_on_calls) == 1
    first_total = first.json()["total"]
    assert first_total["contracts"] == 2 and first_total["logos_interval"][0] >= 1  # A is kept

    write_table(book(contract("b-1", b, -300, 60, 2000.0)), stack.data_dir, "contracts",
                "parquet")
    with stack.client(stack.keys.admin) as client:
        third = client.get("/v1/forecast", params={"by": "month", "months": 3})
    assert len(runs_on_calls) == 2
    assert third.status_code == 200 and third.json()["total"]["contracts"] == 1


def test_a_renewal_running_late_stays_in_the_forecast(tmp_path: Path):
    """Found by audit: a term ended before as_of with no outcome recorded, and nothing in
    force since, vanished from the forecast (the account still scored and listed). It is
    forecast as overdue now, under its past end month; a term renewed by a new one in force,
    or lost for certain, is not."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    lost = contract("c-lost", "C", -380, -20, 4000.0)
    lost["renewed"] = False
    main_lost = contract("d-main", "D", -380, -10, 9000.0)  # main term not renewed, its
    main_lost["renewed"] = False                           # add-on of the same end still open:
    addon_open = contract("d-addon", "D", -200, -10, 500.0)  # not lost, so late (review)
    write_table(book(contract("a-late", "A", -380, -16, 5000.0),      # open, nothing in force
                     contract("b-old", "B", -380, -30, 2000.0),       # open, but B renewed:
                     contract("b-new", "B", -29, 336, 2100.0),        # a term in force
                     lost, main_lost, addon_open), data_dir, "contracts", "parquet")
    due = forecast.renewals_due_in(data_dir, LATEST, LATEST + pd.DateOffset(months=3))
    assert due.loc[due["overdue"], "contract_id"].tolist() == ["a-late", "d-addon"]
    late = due.set_index("contract_id").loc["a-late"]
    assert late["month"] == (LATEST - timedelta(days=16)).strftime("%Y-%m")
    assert not late["runs_on"] and pd.isna(late["renewed"])
    assert "b-old" not in set(due["contract_id"]) and "c-lost" not in set(due["contract_id"])
    rows = due.assign(probability=0.5)
    groups, total = forecast.forecast_table(rows, "month", 0.9, 2000, 0)
    assert total.contracts_overdue == 2
    assert sum(g.contracts_overdue for g in groups) == 2
