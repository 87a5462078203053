"""The simulator: deterministic, contract-clean, referentially intact and plausible.

Plausibility is checked with simple, independent calculations on the written files (not by
reusing the simulator's internals), on a small population so the module stays fast.
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from renewal.datadir import read_table
from renewal.errors import RenewalError
from renewal.simulator import SimulationSummary, simulate
from renewal.tables import TABLES

ACCOUNTS = 400
SEED = 5
START = date(2024, 1, 1)
MONTHS = 24
WINDOW_END = pd.Timestamp("2025-12-31")  # last simulated day
ALL_TABLES = ("accounts", "contracts", "usage", "tickets", "surveys", "health_inputs", "value")


def _hashes(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimulationSummary]:
    out = tmp_path_factory.mktemp("sim") / "data"
    return out, simulate(out, accounts=ACCOUNTS, seed=SEED, start=START, months=MONTHS)


@pytest.fixture(scope="module")
def tables(sim: tuple[Path, SimulationSummary]) -> dict[str, pd.DataFrame]:
    out, _ = sim
    return {name: read_table(out, name) for name in ALL_TABLES}


@pytest.fixture(scope="module")
def daily(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Usage summed to account-day (sites summed), with seats and signing date."""
    usage = tables["usage"]
    per_day = usage.groupby(["account_id", "date"], as_index=False)[
        ["key_actions", "logins", "active_users"]].sum()
    accounts = tables["accounts"][["account_id", "seats", "signed_at"]]
    return per_day.merge(accounts, on="account_id")


@pytest.fixture(scope="module")
def yearly_decided(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    contracts = tables["contracts"]
    decided = contracts[contracts["renewed"].notna()].copy()
    decided["renewed"] = decided["renewed"].astype(bool)
    return decided[(decided["end_date"] - decided["start_date"]).dt.days > 300]


# --- determinism ---------------------------------------------------------------------------


def test_same_seed_gives_identical_files(sim, tmp_path):
    out, _ = sim
    simulate(tmp_path / "again", accounts=ACCOUNTS, seed=SEED, start=START, months=MONTHS)
    first, second = _hashes(out), _hashes(tmp_path / "again")
    assert set(first) == {f"{t}.parquet" for t in ALL_TABLES} | {"truth.parquet"}
    assert first == second


def test_different_seed_gives_different_data(sim, tmp_path):
    out, _ = sim
    simulate(tmp_path / "other", accounts=ACCOUNTS, seed=SEED + 1, start=START, months=MONTHS)
    first, other = _hashes(out), _hashes(tmp_path / "other")
    assert all(first[name] != other[name] for name in first)


def test_chunk_size_does_not_change_the_data(sim, tables, tmp_path):
    simulate(tmp_path / "chunked", accounts=ACCOUNTS, seed=SEED, start=START, months=MONTHS,
             chunk_accounts=37)
    for name in ("usage", "value"):
        pd.testing.assert_frame_equal(read_table(tmp_path / "chunked", name), tables[name])


# --- the contract --------------------------------------------------------------------------


def test_all_tables_have_the_contract_columns_and_kinds(tables):
    kinds = {"str": pd.api.types.is_string_dtype, "date": pd.api.types.is_datetime64_any_dtype,
             "int": pd.api.types.is_integer_dtype, "float": pd.api.types.is_float_dtype,
             "bool": pd.api.types.is_bool_dtype}
    for name, frame in tables.items():
        spec = TABLES[name]
        assert len(frame) > 0, name
        assert set(frame.columns) <= set(spec.names), name
        required = {c.name for c in spec.columns if c.required}
        assert required <= set(frame.columns), name
        for column in frame.columns:
            assert kinds[spec.column(column).kind](frame[column]), (name, column)
    assert {"site_id", "active_users"} <= set(tables["usage"].columns)
    assert "user_id" not in tables["usage"].columns


def test_simulated_directory_validates_clean(sim):
    contract = pytest.importorskip("renewal.contract")
    report = contract.validate_data_dir(sim[0])
    assert report.ok, report.render()


def test_csv_holds_the_same_data_as_parquet(tables, tmp_path):
    simulate(tmp_path / "csv", accounts=ACCOUNTS, seed=SEED, start=START, months=MONTHS,
             fmt="csv")
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == sorted(
        [f"{t}.csv" for t in ALL_TABLES] + ["truth.parquet"])
    for name in ALL_TABLES:
        pd.testing.assert_frame_equal(read_table(tmp_path / "csv", name), tables[name],
                                      check_dtype=False, obj=name)


def test_refuses_a_directory_holding_the_other_format(sim, tmp_path):
    (tmp_path / "usage.csv").write_text("account_id,date\n")
    with pytest.raises(RenewalError, match="usage.csv"):
        simulate(tmp_path, accounts=10, seed=1)
    with pytest.raises(RenewalError, match="accounts must be >= 1"):
        simulate(tmp_path / "x", accounts=0)


# --- referential integrity -------------------------------------------------------------------


def test_every_row_belongs_to_a_known_account(tables):
    known = set(tables["accounts"]["account_id"])
    assert tables["accounts"]["account_id"].is_unique
    for name in ALL_TABLES[1:]:
        assert set(tables[name]["account_id"]) <= known, name
    assert set(tables["contracts"]["account_id"]) == known  # every account has signed a term


def test_contracts_chain_day_after_day_and_renewed_means_a_successor(tables):
    contracts = tables["contracts"].sort_values(["account_id", "start_date"])
    assert contracts["contract_id"].is_unique
    assert (contracts["end_date"] > contracts["start_date"]).all()
    first = contracts.groupby("account_id").head(1).merge(tables["accounts"], on="account_id")
    assert (first["start_date"] == first["signed_at"]).all()
    successor_start = contracts.groupby("account_id")["start_date"].shift(-1)
    has_successor = successor_start.notna()
    chained = contracts[has_successor]
    assert (successor_start[has_successor] == chained["end_date"] + pd.Timedelta(days=1)).all()
    assert (chained["renewed"] == True).all()  # noqa: E712  (nullable boolean)
    last = contracts[~has_successor]
    assert not (last["renewed"] == True).any()  # noqa: E712
    # Undecided exactly when the term has not ended inside the window.
    assert (contracts["renewed"].isna() == (contracts["end_date"] >= WINDOW_END)).all()
    assert (contracts["next_arr"].notna() == (contracts["renewed"] == True)).all()  # noqa: E712
    assert (contracts["arr"] > 0).all()
    assert contracts["renewed"].isna().any()


def test_truth_covers_every_contract_with_a_probability(sim, tables):
    truth = pd.read_parquet(sim[0] / "truth.parquet")
    assert list(truth.columns) == ["contract_id", "account_id", "end_date", "p_renew"]
    assert sorted(truth["contract_id"]) == sorted(tables["contracts"]["contract_id"])
    assert truth["p_renew"].between(0, 1, inclusive="neither").all()
    merged = tables["contracts"].merge(truth, on="contract_id")
    decided = merged[merged["renewed"].notna()]
    # The outcome was drawn from p: renewers had the higher probability.
    assert (decided.loc[decided["renewed"] == True, "p_renew"].mean()  # noqa: E712
            > decided.loc[decided["renewed"] == False, "p_renew"].mean() + 0.2)  # noqa: E712


def test_usage_only_while_the_account_is_a_customer(tables, daily):
    contracts = tables["contracts"]
    last = contracts.sort_values("start_date").groupby("account_id").tail(1)
    churned_end = last.loc[last["renewed"] == False, ["account_id", "end_date"]]  # noqa: E712
    span = daily.merge(churned_end, on="account_id", how="left")
    assert (span["date"] >= span["signed_at"]).all()
    assert not (span["date"] > span["end_date"]).any()
    assert daily["date"].max() <= WINDOW_END
    assert (daily["active_users"] <= daily["seats"]).all()
    assert (daily["logins"] >= daily["active_users"]).all()


# --- plausibility ------------------------------------------------------------------------------


def test_renewal_rate_between_70_and_90_percent(sim, tables):
    renewed = tables["contracts"]["renewed"].dropna().astype(bool)
    assert 0.70 <= renewed.mean() <= 0.90
    assert sim[1].renewal_rate == pytest.approx(renewed.mean())
    assert sim[1].rows == {name: len(frame) for name, frame in tables.items()}


def _activated_by_usage(daily: pd.DataFrame, accounts: pd.DataFrame) -> pd.Series:
    """Independent activation check: some calendar week inside the window (30 days up to 50
    seats, else 45) holds >= 3 days with a key action. Only accounts whose window has ended."""
    window = np.where(accounts["seats"] <= 50, 30, 45)
    eligible = accounts[accounts["signed_at"] + pd.to_timedelta(window, "D") <= WINDOW_END]
    days = daily[daily["key_actions"] > 0].copy()
    days["offset"] = (days["date"] - days["signed_at"]).dt.days
    days = days[days["offset"] < np.where(days["seats"] <= 50, 30, 45)]
    week = days["date"].dt.to_period("W-SUN")
    weeks = days.groupby(["account_id", week]).size()
    activated = (weeks >= 3).groupby(level="account_id").any()
    return activated.reindex(eligible["account_id"], fill_value=False)


def test_activation_rate_is_plausible(sim, tables, daily):
    # Expected: most accounts activate (the domain's good companies aim for 90 %), a clear
    # minority never does; the simulator's own latent activation rate is close to the measure.
    measured = _activated_by_usage(daily, tables["accounts"])
    assert 0.6 <= measured.mean() <= 0.95
    assert abs(measured.mean() - sim[1].activation_rate) < 0.06


def test_accounts_that_never_activated_renew_clearly_less(tables, daily, yearly_decided):
    activated = _activated_by_usage(daily, tables["accounts"]).rename("activated")
    first_terms = yearly_decided.sort_values("start_date").groupby("account_id").head(1)
    rates = first_terms.join(activated, on="account_id").groupby("activated")["renewed"].mean()
    assert rates[True] - rates[False] >= 0.3
    assert rates[False] <= 0.5  # "accounts that never activate mostly churn"


def test_churners_usage_falls_before_the_end_date(daily, yearly_decided):
    merged = daily.merge(yearly_decided[["account_id", "end_date", "renewed"]], on="account_id")
    before = (merged["end_date"] - merged["date"]).dt.days
    merged["window"] = np.select([before.between(0, 89), before.between(90, 179)],
                                 ["last_90", "prior_90"], "other")
    per_seat = (merged[merged["window"] != "other"]
                .groupby(["account_id", "end_date", "renewed", "window"])["key_actions"].sum()
                .unstack("window", fill_value=0).reset_index()
                .merge(daily[["account_id", "seats"]].drop_duplicates(), on="account_id"))
    for column in ("last_90", "prior_90"):
        per_seat[column] = per_seat[column] / per_seat["seats"]
    churners = per_seat[~per_seat["renewed"]]
    renewers = per_seat[per_seat["renewed"]]
    assert len(churners) >= 20
    assert churners["last_90"].mean() < 0.8 * churners["prior_90"].mean()
    assert churners["last_90"].mean() < 0.5 * renewers["last_90"].mean()
    # Among activated accounts too (not only the never-activated): the warning is real.
    active = churners[churners["prior_90"] > 5]
    assert len(active) >= 10
    assert (active["last_90"] < active["prior_90"]).mean() > 0.6


def test_heavy_users_make_the_high_tier_login_condition_matter(daily):
    seats = daily["seats"]
    many_actions = daily["key_actions"] > seats * 0.6 * 4
    few_logged_in = daily["active_users"] < 0.6 * seats
    assert (many_actions & few_logged_in).sum() > 100  # mid, not high, by the login rule
    assert (many_actions & ~few_logged_in).sum() > 100  # real high days exist too


def test_weekends_and_multi_site_accounts(tables, daily):
    weekday = daily["date"].dt.day_of_week
    per_weekday = daily.groupby(weekday)["active_users"].sum()
    assert per_weekday[[5, 6]].max() < 0.3 * per_weekday[[0, 1, 2, 3, 4]].min()
    sites = tables["usage"].groupby("account_id")["site_id"].nunique()
    seats = tables["accounts"].set_index("account_id")["seats"]
    assert sites.max() >= 3
    assert seats[sites[sites > 1].index].median() > seats[sites[sites == 1].index].median()


def test_side_signals_are_noisy_views_of_health(tables, yearly_decided):
    outcome = yearly_decided.groupby("account_id")["renewed"].min().rename("renewed")
    health = tables["health_inputs"].join(outcome, on="account_id", how="inner")
    score = health.groupby("renewed")["csm_score"].mean()
    assert score[True] > score[False] + 0.3
    assert 0.05 < tables["health_inputs"]["csm_score"].isna().mean() < 0.3
    surveys = tables["surveys"].join(outcome, on="account_id", how="inner")
    assert surveys.groupby("renewed")["score"].mean().diff().iloc[-1] > 0.5
    assert surveys["score"].between(0, 10).all()
    tickets = tables["tickets"]
    assert set(tickets["type"]) == {"bug", "feature_request", "usage_question"}
    assert tickets.loc[tickets["type"] == "bug", "severity"].notna().all()
    assert tickets.loc[tickets["type"] != "bug", "severity"].isna().all()
    assert (tickets["resolved_at"].dropna() >= tickets.loc[tickets["resolved_at"].notna(),
                                                           "opened_at"]).all()
    high_open = tickets[(tickets["severity"] == "high") & tickets["resolved_at"].isna()]
    assert len(high_open) > 0


def test_value_tracks_key_actions(tables):
    usage = tables["usage"]
    monthly = usage.groupby(["account_id", usage["date"].dt.to_period("M")])["key_actions"].sum()
    value = tables["value"].set_index(["account_id", tables["value"]["date"].dt.to_period("M")])
    joined = value.join(monthly.rename("key_actions"), how="left").fillna({"key_actions": 0})
    assert np.corrcoef(np.log1p(joined["amount"]), np.log1p(joined["key_actions"]))[0, 1] > 0.7
    assert (joined.loc[joined["key_actions"] == 0, "amount"] == 0).all()


# --- usage grain ----------------------------------------------------------------------------------


def test_account_grain_is_the_user_grain_summed(tmp_path):
    small = {"accounts": 60, "seed": 3, "start": START, "months": 12}
    simulate(tmp_path / "user", grain="user", **small)
    simulate(tmp_path / "account", grain="account", **small)
    users = read_table(tmp_path / "user", "usage")
    assert {"user_id", "site_id"} <= set(users.columns)
    assert "active_users" not in users.columns
    assert (users["logins"] > 0).all()  # a row only for a day the user logged in
    assert not users.duplicated(["account_id", "date", "user_id", "site_id"]).any()
    summed = (users.groupby(["account_id", "date", "site_id"], as_index=False)
              .agg(logins=("logins", "sum"), key_actions=("key_actions", "sum"),
                   active_users=("user_id", "nunique")))
    accounts = read_table(tmp_path / "account", "usage")
    pd.testing.assert_frame_equal(
        summed.sort_values(["account_id", "date", "site_id"]).reset_index(drop=True),
        accounts[summed.columns].sort_values(["account_id", "date", "site_id"])
        .reset_index(drop=True),
        check_dtype=False,
    )
    for name in ("accounts", "contracts", "tickets", "value"):
        pd.testing.assert_frame_equal(read_table(tmp_path / "user", name),
                                      read_table(tmp_path / "account", name))


# --- the command -------------------------------------------------------------------------------


def test_cli_writes_a_directory_and_prints_a_summary(tmp_path):
    from typer.testing import CliRunner

    from renewal.cli import build_app

    out = tmp_path / "cli"
    result = CliRunner().invoke(build_app(), [
        "simulate", "--out", str(out), "--accounts", "40", "--seed", "7", "--months", "12",
        "--start", "2024-03-01", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert "renewal rate" in result.output and "usage" in result.output
    accounts = read_table(out, "accounts")
    assert len(accounts) == 40
    assert accounts["signed_at"].min() >= pd.Timestamp("2024-03-01")
    bad = CliRunner().invoke(build_app(), ["simulate", "--out", str(out), "--start", "2024-13-01"])
    assert bad.exit_code == 2 and "--start" in bad.output


def test_cli_says_n_a_for_rates_without_a_denominator_and_refuses_a_file(tmp_path, capsys):
    from typer.testing import CliRunner

    from renewal.cli import build_app, main

    # Two months: no contract has ended yet, so renewal rate and NDR have nothing to divide.
    result = CliRunner().invoke(build_app(), [
        "simulate", "--out", str(tmp_path / "short"), "--accounts", "5", "--months", "2"])
    assert result.exit_code == 0, result.output
    assert "renewal rate n/a of 0 decided contracts, NDR n/a" in result.output
    assert "nan" not in result.output
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    with pytest.raises(SystemExit) as refused:  # the console script's error handling
        main(["simulate", "--out", str(a_file)])
    assert refused.value.code == 2
    assert "it is a file, not a directory" in capsys.readouterr().err
    assert a_file.read_text() == "keep me"


def test_a_tiny_simulation_leaves_out_empty_optional_tables(tmp_path):
    summary = simulate(tmp_path, accounts=1, seed=2, months=3)
    written = {p.stem for p in tmp_path.glob("*.parquet")}
    assert {"accounts", "contracts", "usage", "truth"} <= written
    assert {name for name, rows in summary.rows.items() if rows == 0}.isdisjoint(written)
    contract = pytest.importorskip("renewal.contract")
    assert contract.validate_data_dir(tmp_path).ok
