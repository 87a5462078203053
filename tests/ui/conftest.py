"""Fixtures of the web-page tests: a simulated data directory scored five times by the
feature pipeline and a small real model, one key per role, the app served by uvicorn on
loopback, and one headless Chromium (Debian's package) for the whole module."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflows"))

import service_factories as factories  # noqa: E402
import workflow_factories as wf  # noqa: E402
from ui_harness import AS_OFS, CHROMIUM, CHROMIUM_ARGS, VIEWPORT, UiStack  # noqa: E402


@pytest.fixture(scope="module")
def ui_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiStack]:
    from renewal.settings import Settings
    from renewal.simulator import simulate
    from service.app import create_app
    from service.config import ServiceSettings
    from service.db.engine import make_engine, make_session_factory, transaction
    from service.db.migrate import upgrade
    from service.keys import create_key
    from service.model_store import ModelStore
    from service.predict import score_vectors
    from service.scoring import compute_features, store_scores
    from service.workflows.config import WorkflowSettings

    root = tmp_path_factory.mktemp("ui")
    data_dir = root / "data"
    simulate(data_dir, accounts=120, seed=3, months=18)
    url = f"sqlite:///{root / 'store.db'}"
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    settings = Settings(data_dir=root, models_dir=root / "models", database_url=url,
                        tracking_uri="http://127.0.0.1:9")
    service_settings = ServiceSettings(key_cache_seconds=0)
    model = factories.loaded(wf.lever_scorer())
    frame = pd.DataFrame()
    for as_of in AS_OFS:  # what `renewal score` does, with the test's model
        frame = compute_features(data_dir, as_of, settings, pd.DataFrame())
        scored = score_vectors(model, frame, service_settings, top_k=3)
        store_scores(factory, frame, scored, model, as_of, str(data_dir.resolve()))
    books = frame["csm_id"].value_counts()
    csm_id, other_csm_id = str(books.index[0]), str(books.index[1])
    with transaction(factory) as session:
        keys = {
            "admin": create_key(session, "admin", "ops")[1],
            "crm": create_key(session, "crm", "crm")[1],
            "csm": create_key(session, "csm", "alice", csm_id)[1],
            "other_csm": create_key(session, "csm", "bob", other_csm_id)[1],
        }
    store = ModelStore(settings)
    store.install(model)
    app = create_app(settings, service_settings, models=store, background=False,
                     workflow_settings=WorkflowSettings(forecast_draws=2000))
    artifacts = tmp_path_factory.getbasetemp() / "ui-artifacts"
    artifacts.mkdir(exist_ok=True)
    with wf.ThreadedServer(app) as server:
        yield UiStack(server.base, keys, csm_id, other_csm_id, frame, data_dir, factory,
                      artifacts)
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser context (its own cookies) with a 1280 x 900 window."""
    ctx = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    try:
        yield ctx
    finally:
        ctx.close()
