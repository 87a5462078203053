"""Data and a seeded service for the tests of the customer's name: a data directory whose
accounts table names the accounts (some names hostile), scored into the store by
``renewal score``'s own ``run_scoring`` (the tiny model and synthetic vectors standing in for
the training and the feature pipeline)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
import service_factories as factories
import sqlalchemy as sa
from service_harness import LATEST

from renewal.datadir import write_table
from service import scoring
from service.db.models import Account

SCRIPT = "<script>alert(1)</script> & Sons"
FORMULA = '=HYPERLINK("http://evil.example","Invoice")'
ACCENTED = "Société Générale 東京 K.K."
BOBS = "Bob's Customer GmbH"
#: acc-00000, -03, -06 and -09 are csm-a's (factories.CSMS[i % 3]); acc-00001 is csm-b's.
NAMES = {"acc-00000": SCRIPT, "acc-00003": FORMULA, "acc-00006": ACCENTED,
         "acc-00001": BOBS, "acc-00012": "  Prairiestone Consulting B.V.  "}
UNNAMED = "acc-00009"  # a blank name: no name


def accounts_table(names: dict[str, str], ids: int = 60) -> pd.DataFrame:
    account_ids = [f"acc-{i:05d}" for i in range(ids)]
    return pd.DataFrame({
        "account_id": account_ids,
        "signed_at": pd.Timestamp("2023-01-01"),
        "seats": 10,
        "name": [names.get(a, f"Customer {a}" if a != UNNAMED else "   ") for a in account_ids],
    })


def write_accounts(data_dir: Path, frame: pd.DataFrame, fmt: str = "csv") -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    return write_table(frame, data_dir, "accounts", fmt)  # type: ignore[arg-type]


def score_run(service, data_dir: Path, as_of: date, monkeypatch: pytest.MonkeyPatch) -> None:
    """``renewal score``'s run_scoring on ``data_dir`` into the service's store, with the
    tiny model and synthetic vectors standing in for the pipeline's; then the cache reloads
    as after a scoring run."""
    model = factories.loaded(factories.tiny_scorer())
    frame = factories.feature_frame(60, as_of, seed=2)
    monkeypatch.setattr("features.validation.check_data_dir", lambda *_a, **_k: None)
    monkeypatch.setattr(scoring, "load_batch_model", lambda *_a, **_k: model)
    monkeypatch.setattr(scoring, "customer_features", lambda *_a, **_k: (
        frame.copy(), frame.iloc[:0], pd.Series([], dtype="datetime64[ns]"), []))
    scoring.run_scoring(data_dir, as_of, service.settings, service.service_settings)
    service.client.app.state.context.cache.load()


def with_names(service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The seeded service after a scoring run on a data directory whose accounts have
    :data:`NAMES` (the ``named`` fixture of the tests)."""
    data_dir = tmp_path / "named-data"
    write_accounts(data_dir, accounts_table(NAMES))
    score_run(service, data_dir, LATEST + timedelta(days=1), monkeypatch)
    return service


def stored_names(service) -> dict[str, str | None]:
    with service.factory() as session:
        return dict(session.execute(sa.select(Account.account_id, Account.name)).all())
