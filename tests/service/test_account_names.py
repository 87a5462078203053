"""The customer's name: read from the data directory by the scoring job, kept in the accounts
snapshot (revision 0007), carried into the score cache and served by the API, to the
account's readers only, never logged; the risk list reads it from memory, not the store."""

from __future__ import annotations

import logging
import re
from datetime import date, timedelta

import pandas as pd
import pytest
import service_factories as factories
import sqlalchemy as sa
from account_name_data import (
    ACCENTED,
    BOBS,
    FORMULA,
    NAMES,
    SCRIPT,
    UNNAMED,
    accounts_table,
    score_run,
    stored_names,
    with_names,
    write_accounts,
)
from service_harness import LATEST, sign_in_csrf
from sqlalchemy import event
from sqlalchemy.engine import Engine

from renewal.errors import DataContractError
from service import scoring
from service.account_names import account_names
from service.db.migrate import downgrade, head_revision, upgrade
from service.db.models import Account


@pytest.fixture
def named(service, tmp_path, monkeypatch):
    return with_names(service, tmp_path, monkeypatch)


# -- reading the names -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_names_are_read_from_the_accounts_table_blank_ones_as_none(tmp_path, fmt):
    write_accounts(tmp_path, accounts_table(NAMES), fmt)
    names = account_names(tmp_path)
    assert names["acc-00000"] == SCRIPT and names["acc-00006"] == ACCENTED
    assert names["acc-00012"] == "Prairiestone Consulting B.V."  # trimmed
    assert UNNAMED not in names and len(names) == 59


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_names_read_as_the_data_contract_reads_text(tmp_path, fmt):
    """Through the contract's reader: a name "NA" (North America Ltd.) is a name, as text is
    in the other columns; only an empty cell is missing."""
    frame = accounts_table({**NAMES, "acc-00002": "NA"})
    write_accounts(tmp_path, frame, fmt)
    names = account_names(tmp_path)
    assert names["acc-00001"] == BOBS and names["acc-00002"] == "NA"


def test_no_accounts_table_or_no_name_column_means_no_names(tmp_path):
    assert account_names(tmp_path / "missing") == {}
    write_accounts(tmp_path, accounts_table({}).drop(columns="name"), "parquet")
    assert account_names(tmp_path) == {}
    (tmp_path / "accounts.parquet").unlink()
    write_accounts(tmp_path, accounts_table({}).drop(columns="name"), "csv")
    assert account_names(tmp_path) == {}


def test_an_unreadable_accounts_file_is_a_contract_error_naming_no_value(tmp_path):
    tmp_path.joinpath("accounts.parquet").write_bytes(b"PAR1 not parquet " + SCRIPT.encode())
    with pytest.raises(DataContractError) as raised:
        account_names(tmp_path)
    assert SCRIPT not in str(raised.value)


# -- stored by the scoring run, served by the API ----------------------------------------------


def test_a_scoring_run_keeps_the_names_in_the_accounts_snapshot(named):
    names = stored_names(named)
    assert names["acc-00000"] == SCRIPT and names["acc-00001"] == BOBS
    assert names[UNNAMED] is None
    assert names["acc-00012"] == "Prairiestone Consulting B.V."


def test_the_scoring_job_on_a_simulated_data_directory_stores_its_names(
        tmp_path, scorer, monkeypatch):
    """``renewal score``'s run as it is (validation, the feature pipeline, the store), only
    the model being the tiny one: the names are the data directory's, for every account."""
    from renewal.settings import Settings
    from renewal.simulator import simulate
    from service.config import ServiceSettings

    simulate(tmp_path / "data", accounts=40, seed=3, months=12)
    model = factories.loaded(scorer)
    monkeypatch.setattr(scoring, "load_batch_model", lambda *_a, **_k: model)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    settings = Settings(data_dir=tmp_path, models_dir=tmp_path / "models", database_url=url,
                        tracking_uri="http://127.0.0.1:9")
    summary = scoring.run_scoring(tmp_path / "data", date(2024, 12, 31), settings,
                                  ServiceSettings())
    accounts = pd.read_parquet(tmp_path / "data" / "accounts.parquet")
    expected = dict(zip(accounts["account_id"].astype(str), accounts["name"], strict=True))
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            stored = dict(connection.execute(sa.select(Account.account_id, Account.name)).all())
    finally:
        engine.dispose()
    assert len(stored) == summary.accounts + summary.lost_accounts > 0
    assert stored == {a: expected[a] for a in stored}
    assert all(stored.values())


def test_a_run_on_data_without_names_clears_them(named, tmp_path, monkeypatch):
    """The snapshot is the latest run's: a name removed from the data is not served on."""
    data_dir = tmp_path / "nameless"
    write_accounts(data_dir, accounts_table({}).drop(columns="name"))
    score_run(named, data_dir, LATEST + timedelta(days=2), monkeypatch)
    assert set(stored_names(named).values()) == {None}
    body = named.get("/v1/accounts/acc-00000/renewal", named.keys.crm).json()
    assert body["name"] is None


def test_get_renewal_carries_the_name_and_keeps_every_key(named):
    body = named.get("/v1/accounts/acc-00006/renewal", named.keys.crm).json()
    assert body["name"] == ACCENTED
    assert {"account_id", "probability", "risk_tier", "heuristic_probability", "as_of",
            "model", "change_30d", "drivers", "scored_at", "inputs"} < set(body)
    unnamed = named.get(f"/v1/accounts/{UNNAMED}/renewal", named.keys.crm).json()
    assert "name" in unnamed and unnamed["name"] is None


def test_the_risk_list_items_carry_the_name(named):
    data = named.get("/v1/risk-list", named.keys.admin, params={"limit": 200}).json()["data"]
    by_id = {item["account_id"]: item for item in data}
    assert by_id["acc-00003"]["name"] == FORMULA
    assert by_id[UNNAMED]["name"] is None
    assert all("name" in item for item in data) and len(data) == 60


def test_the_health_input_rescore_answers_with_the_name(named):
    answer = named.put("/v1/accounts/acc-00000/health-inputs", named.keys.csm_a,
                       json={"csm_score": 4})
    assert answer.status_code == 200, answer.text
    assert answer.json()["renewal"]["name"] == SCRIPT
    # And the re-scored cache entry keeps it.
    assert named.get("/v1/accounts/acc-00000/renewal", named.keys.csm_a).json()["name"] == SCRIPT


def test_a_csm_reads_only_the_names_of_their_own_accounts(named):
    own = named.get("/v1/risk-list", named.keys.csm_a, params={"limit": 200})
    assert {i["csm_id"] for i in own.json()["data"]} == {"csm-a"}
    assert BOBS not in own.text and "Bob" not in own.text
    assert SCRIPT in {i["name"] for i in own.json()["data"]}
    foreign = named.get("/v1/accounts/acc-00001/renewal", named.keys.csm_a)
    assert foreign.status_code == 404 and "Bob" not in foreign.text


def test_names_never_reach_the_logs(service, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    data_dir = tmp_path / "logged-data"
    write_accounts(data_dir, accounts_table(NAMES))
    score_run(service, data_dir, LATEST + timedelta(days=1), monkeypatch)
    service.get("/v1/risk-list", service.keys.admin)
    service.get("/v1/accounts/acc-00001/renewal", service.keys.csm_a)  # a 404
    service.get("/v1/accounts/acc-00001/renewal", service.keys.admin)
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert stored_names(service)["acc-00001"] == BOBS  # the run did store them
    for name in (BOBS, ACCENTED, "Prairiestone"):
        assert name not in logged


def test_the_risk_list_reads_names_from_memory_not_the_store(named):
    """The names are built into the cache entries once per scoring run: listing reads no
    accounts snapshot (the API's list, the page's list and its CSV)."""
    sign_in_csrf(named, named.keys.admin)
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        api = named.get("/v1/risk-list", named.keys.admin, params={"limit": 200})
        page = named.client.get("/ui/risk-list")
        exported = named.client.get("/ui/risk-list.csv")
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert api.status_code == page.status_code == exported.status_code == 200
    assert ACCENTED in {i["name"] for i in api.json()["data"]}
    assert ACCENTED in page.text and ACCENTED in exported.content.decode("utf-8-sig")
    assert statements, "the listener saw nothing: the check would pass vacuously"
    reads = [s for s in statements if re.search(r"\b(from|join)\s+accounts\b", s, re.I)]
    assert reads == []


# -- the migration -----------------------------------------------------------------------------


def test_the_migration_adds_and_removes_the_name_column(engine):
    """On SQLite and PostgreSQL: the column comes and goes with revision 0007, the rest of
    the snapshot stays, and accounts stored before it have no name until the next run."""
    columns = {c["name"] for c in sa.inspect(engine).get_columns("accounts")}
    assert "name" in columns
    with engine.begin() as connection:
        connection.execute(sa.insert(Account).values(
            account_id="acc-1", csm_id="csm-a", as_of=date(2025, 6, 30), name=ACCENTED,
            updated_at=pd.Timestamp("2025-07-01", tz="UTC").to_pydatetime()))
    assert downgrade(engine, "0006_ui_sessions") == "0006_ui_sessions"
    assert "name" not in {c["name"] for c in sa.inspect(engine).get_columns("accounts")}
    with engine.connect() as connection:
        kept = connection.execute(sa.text("select account_id, csm_id from accounts")).all()
    assert [tuple(r) for r in kept] == [("acc-1", "csm-a")]
    assert upgrade(engine) == head_revision()
    with engine.connect() as connection:
        assert connection.execute(sa.text("select name from accounts")).scalar_one() is None
