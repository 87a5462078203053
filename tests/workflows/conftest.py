"""Fixtures of the workflow tests: a real SQLite store seeded with two scoring runs of the
lever model, one key per role, outcomes in a data directory, and the app served by uvicorn."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))

import service_factories as factories  # noqa: E402
import workflow_factories as wf  # noqa: E402
from service_harness import Keys, make_keys  # noqa: E402

LATEST = date(2025, 6, 30)


@dataclass
class Stack:
    base: str
    keys: Keys
    factory: Any
    model: Any
    frame: Any
    data_dir: Path
    app: Any
    settings: Any

    def client(self, key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30)


@pytest.fixture(scope="session")
def lever_model():
    return factories.loaded(wf.lever_scorer())


@pytest.fixture(scope="module")
def stack(tmp_path_factory, lever_model) -> Iterator[Stack]:
    from renewal.datadir import write_table
    from renewal.settings import Settings
    from service.app import create_app
    from service.config import ServiceSettings
    from service.db.engine import make_engine, make_session_factory
    from service.db.migrate import upgrade
    from service.model_store import ModelStore
    from service.workflows.config import WorkflowSettings

    root = tmp_path_factory.mktemp("workflows")
    url = f"sqlite:///{root / 'store.db'}"
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    older = wf.lever_frame(60, LATEST - timedelta(days=30), seed=2)
    older["active_days_30d"] = np.minimum(older["active_days_30d"] + 12, 30)
    older["exec_sponsor_active"] = True
    factories.seed_scores(factory, lever_model, older, LATEST - timedelta(days=30))
    frame = wf.lever_frame(60, LATEST, seed=2)
    factories.seed_scores(factory, lever_model, frame, LATEST)
    keys = make_keys(factory)
    data_dir = root / "data"
    data_dir.mkdir()
    write_table(wf.contracts_for(frame, LATEST), data_dir, "contracts", "parquet")
    settings = Settings(data_dir=root, models_dir=root / "models", database_url=url,
                        tracking_uri="http://127.0.0.1:9")
    service_settings = ServiceSettings(key_cache_seconds=0)
    workflow_settings = WorkflowSettings(
        webhook_allow_private_urls=True, webhook_backoff_seconds=0.05,
        webhook_backoff_max_seconds=0.2, webhook_poll_seconds=0.05, webhook_max_attempts=4,
        outcomes_data_dir=data_dir, forecast_draws=2000,
    )
    store = ModelStore(settings)
    store.install(lever_model)
    app = create_app(settings, service_settings, models=store, background=False,
                     workflow_settings=workflow_settings)
    with wf.ThreadedServer(app) as server:
        yield Stack(server.base, keys, factory, lever_model, frame, data_dir, app,
                    workflow_settings)
    engine.dispose()


@pytest.fixture(scope="session")
def scorer():
    """The service tests' tiny model (its features exist in real feature vectors)."""
    return factories.tiny_scorer()
