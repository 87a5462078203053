"""Model lifecycle against a real MLflow registry (SQLite): load, last-known-good, refusal,
atomic swap."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import joblib
import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from service_factories import FEATURE_NAMES, tiny_scorer

from renewal.errors import ModelUnavailableError
from renewal.settings import Settings
from service.model_store import LKG_FILE, ModelStore

DEAD_REGISTRY = "http://127.0.0.1:9"


def log_version(tracking_uri: str, scorer_or_junk, alias: str = "champion") -> str:
    """Log a pyfunc around ``scorer_or_junk`` (as training does), register it, set ``alias``."""
    from training.pyfunc import SCORER_ARTIFACT, RenewalPyfunc
    from training.tracking import configure

    configure(tracking_uri, "service-tests")  # artifacts beside the store, not in ./mlruns
    with mlflow.start_run(), pytest.MonkeyPatch.context() as patch:
        patch.chdir(Path(tracking_uri.removeprefix("sqlite:///")).parent)
        path = Path(os.getcwd()) / "scorer.joblib"
        joblib.dump(scorer_or_junk, path)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=RenewalPyfunc(),
            artifacts={SCORER_ARTIFACT: str(path)},
            pip_requirements=["lightgbm"],
        )
    version = mlflow.register_model(info.model_uri, "renewal").version
    MlflowClient().set_registered_model_alias("renewal", alias, version)
    return str(version)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = os.getcwd()
    os.chdir(root)
    try:
        first = log_version(uri, tiny_scorer(seed=0))
    finally:
        os.chdir(previous)
    return root, uri, first


def settings_for(tmp_path: Path, tracking_uri: str, models_dir: Path | None = None) -> Settings:
    return Settings(
        data_dir=tmp_path,
        models_dir=models_dir or tmp_path / "models",
        tracking_uri=tracking_uri,
        database_url=f"sqlite:///{tmp_path / 's.db'}",
    )


def test_start_loads_the_champion_and_keeps_a_last_known_good_copy(registry, tmp_path):
    _root, uri, first = registry
    store = ModelStore(settings_for(tmp_path, uri))
    model = store.start()
    assert model is not None and store.status == "ready"
    assert (model.version, model.source, model.alias) == (first, "registry", "champion")
    assert model.feature_names == FEATURE_NAMES
    assert (tmp_path / "models" / "renewal" / LKG_FILE).exists()
    assert (tmp_path / "models" / "renewal" / f"v{first}" / "MLmodel").exists()
    assert store.reload().outcome == "unchanged"

    # Registry unreachable at the next start: the copy serves, and readiness says degraded.
    offline = ModelStore(settings_for(tmp_path, DEAD_REGISTRY))
    fallback = offline.start()
    assert fallback is not None and fallback.source == "last-known-good"
    assert fallback.version == first and offline.status == "degraded"
    assert "last-known-good" in offline.status_reason
    frame = pd.DataFrame({"active_days_30d": [3.0], "segment": ["smb"]})
    assert fallback.scorer.predict(fallback.scorer.prepare(frame)) == pytest.approx(
        model.scorer.predict(model.scorer.prepare(frame))
    )


def test_no_registry_and_no_copy_means_unavailable_not_a_crash(tmp_path):
    store = ModelStore(settings_for(tmp_path, DEAD_REGISTRY))
    assert store.start() is None and store.status == "unavailable"
    with pytest.raises(ModelUnavailableError, match="no model is loaded"):
        store.require()


def test_a_broken_champion_is_refused_and_a_good_one_swapped_in(registry, tmp_path):
    root, uri, first = registry
    store = ModelStore(settings_for(tmp_path, uri))
    assert store.start().version == first
    served: list[str] = []
    stop = threading.Event()

    def reader() -> None:  # requests in flight during reloads
        frame = pd.DataFrame({"active_days_30d": [10.0]})
        while not stop.is_set():
            model = store.require()
            model.scorer.predict(model.scorer.prepare(frame))
            served.append(model.version)

    thread = threading.Thread(target=reader)
    thread.start()
    previous = os.getcwd()
    os.chdir(root)
    try:
        broken = log_version(uri, "not a scorer")
        refused = store.reload()
        assert refused.outcome == "refused" and refused.version == broken
        assert store.current.version == first
        assert store.last_refusal is not None and store.last_refusal.version == broken
        assert "not a renewal model" in store.last_refusal.reason
        good = log_version(uri, tiny_scorer(seed=1))
        swapped = store.reload()
    finally:
        os.chdir(previous)
        stop.set()
        thread.join()
    assert swapped.outcome == "swapped" and store.current.version == good
    assert set(served) <= {first, good} and served
    # The last-known-good copy follows the swap.
    offline = ModelStore(settings_for(tmp_path, DEAD_REGISTRY))
    assert offline.start().version == good
    # Put the champion back on the first version for other tests of this module.
    MlflowClient(uri, uri).set_registered_model_alias("renewal", "champion", first)


def test_an_admin_reload_that_swaps_announces_model_promoted(registry, tmp_path):
    """Through the real app: the swap stores one model_promoted event (outbox) for webhook
    subscribers; a reload that changes nothing stores none."""
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from service.app import create_app
    from service.config import ServiceSettings
    from service.db.engine import make_session_factory, transaction
    from service.db.workflow_models import WebhookEvent
    from service.keys import create_key

    root, uri, first = registry
    app = create_app(settings_for(tmp_path, uri), ServiceSettings(key_cache_seconds=0),
                     background=False)
    factory = make_session_factory(app.state.context.engine)
    with TestClient(app) as client:
        with transaction(factory) as session:
            admin = create_key(session, "admin", "ops")[1]
        headers = {"Authorization": f"Bearer {admin}"}
        previous = os.getcwd()
        os.chdir(root)
        try:
            good = log_version(uri, tiny_scorer(seed=2))
            swapped = client.post("/v1/admin/reload", headers=headers).json()
            unchanged = client.post("/v1/admin/reload", headers=headers).json()
        finally:
            os.chdir(previous)
            MlflowClient(uri, uri).set_registered_model_alias("renewal", "champion", first)
        with factory() as session:
            events = list(session.scalars(select(WebhookEvent)))
    assert swapped["outcome"] == "swapped" and unchanged["outcome"] == "unchanged"
    assert [e.type for e in events] == ["model_promoted"]
    assert events[0].payload == {"model": "renewal", "version": good,
                                 "previous_version": first, "alias": "champion"}


@pytest.mark.parametrize("form", ["alias", "number"])
def test_a_model_uri_is_looked_up_in_the_projects_registry(registry, tmp_path, form):
    """`renewal score --model models:/renewal@champion` must read RENEWAL_TRACKING_URI, not
    MLflow's default store, and record the version the alias holds, not "renewal@champion"."""
    _root, uri, first = registry
    elsewhere = f"sqlite:///{tmp_path / 'other' / 'mlflow.db'}"
    (tmp_path / "other").mkdir()
    mlflow.set_tracking_uri(elsewhere)  # where MLflow would look by itself
    mlflow.set_registry_uri(elsewhere)
    model_uri = "models:/renewal@champion" if form == "alias" else f"models:/renewal/{first}"
    model = ModelStore(settings_for(tmp_path, uri)).load_uri(model_uri)
    assert model.version == first and model.source == "uri"
    assert model.feature_names == FEATURE_NAMES


def test_the_card_shows_the_thresholds_the_model_was_trained_with():
    """GET /v1/model's card: what RENEWAL_FEATURE_CONFIG must give for scores to be read
    right (training records it; older models have none)."""
    from service_factories import loaded

    from features.config import FeatureConfig
    from service.model_store import model_card

    scorer = tiny_scorer()
    assert "feature_config" not in model_card(loaded(scorer))
    recorded = FeatureConfig(monthly_active_days=20).model_dump(mode="json")
    scorer.metadata["feature_config"] = recorded
    assert model_card(loaded(scorer))["feature_config"] == recorded
