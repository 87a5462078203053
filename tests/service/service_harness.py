"""The seeded app of the API tests: a real SQLite store with two scoring runs 30 days apart,
the tiny real model installed, and one key per role (plus a revoked one)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import service_factories as factories
from fastapi.testclient import TestClient

from renewal.settings import Settings
from service.app import create_app
from service.config import ServiceSettings
from service.db.engine import make_engine, make_session_factory, transaction
from service.db.migrate import upgrade
from service.keys import create_key
from service.model_store import ModelStore

LATEST = date(2025, 6, 30)
DEAD_REGISTRY = "http://127.0.0.1:9"  # nothing listens on the discard port: fails at once


@dataclass
class Keys:
    crm: str
    admin: str
    csm_a: str
    csm_b: str
    revoked: str


@dataclass
class Service:
    client: TestClient
    keys: Keys
    settings: Settings
    service_settings: ServiceSettings
    factory: object
    frame: object  # latest feature frame (pandas)

    def get(self, path: str, key: str | None = None, **kwargs):
        return self.client.get(path, headers=_auth(key), **kwargs)

    def post(self, path: str, key: str | None = None, **kwargs):
        return self.client.post(path, headers=_auth(key), **kwargs)

    def put(self, path: str, key: str | None = None, **kwargs):
        return self.client.put(path, headers=_auth(key), **kwargs)


def _auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def make_keys(factory) -> Keys:
    from service.keys import revoke_key

    with transaction(factory) as session:
        crm = create_key(session, "crm", "crm")[1]
        admin = create_key(session, "admin", "ops")[1]
        csm_a = create_key(session, "csm", "alice", "csm-a")[1]
        csm_b = create_key(session, "csm", "bob", "csm-b")[1]
        row, revoked = create_key(session, "crm", "old")
        revoke_key(session, row.id)
    return Keys(crm, admin, csm_a, csm_b, revoked)


def build_service(
    tmp_path: Path,
    scorer,
    database_url: str | None = None,
    n_accounts: int = 60,
    feature_config: Path | None = None,
    **service_overrides,
) -> Iterator[Service]:
    url = database_url or f"sqlite:///{tmp_path / 'store.db'}"
    settings = Settings(
        data_dir=tmp_path,
        models_dir=tmp_path / "models",
        database_url=url,
        tracking_uri=DEAD_REGISTRY,
        feature_config=feature_config,
    )
    service_settings = ServiceSettings(key_cache_seconds=0, **service_overrides)
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    model = factories.loaded(scorer)
    frame = factories.seed_history(factory, model, n_accounts, LATEST)
    keys = make_keys(factory)
    store = ModelStore(settings)
    store.install(model)
    app = create_app(settings, service_settings, models=store, background=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Service(client, keys, settings, service_settings, factory, frame)
    engine.dispose()


def sign_in_page(client: Any, key: str) -> Any:
    """Sign ``key`` in on the ops page through its form (a fresh session: cookies cleared);
    the answer to the form, i.e. the risk list."""
    client.cookies.clear()
    return post_sign_in(client, key)


def post_sign_in(client: Any, key: str, follow_redirects: bool = True) -> Any:
    """Send the sign-in form for ``key`` with the form's hidden ``login_token``, keeping the
    cookies the client already holds."""
    form = client.get("/ui/login").text
    token = re.search(r'name="login_token" value="([^"]+)"', form)
    assert token, form[:300]
    return client.post("/ui/login", data={"api_key": key, "login_token": token.group(1)},
                       follow_redirects=follow_redirects)


def sign_in_csrf(service: Any, key: str) -> str:
    """Sign ``key`` in on the page (:func:`sign_in_page`); returns the session's CSRF token."""
    page = sign_in_page(service.client, key)
    assert page.status_code == 200 and "<h1>Risk list</h1>" in page.text, page.text[:300]
    csrf = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', page.text)
    assert csrf
    return csrf.group(1)
