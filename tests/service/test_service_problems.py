"""Every error is RFC 9457 application/problem+json, including the framework's own."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from renewal.settings import Settings
from service.app import create_app
from service.config import ServiceSettings
from service.keys import Principal, hash_key
from service.model_store import ModelStore

PROBLEM = "application/problem+json"


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["type"].startswith("urn:renewal:problem:")
    assert body["title"] and body["detail"]
    return body


def test_unknown_route_and_wrong_method(service):
    assert_problem(service.get("/v2/nothing", service.keys.crm), 404)
    body = assert_problem(
        service.client.delete("/v1/model", headers={"Authorization": f"Bearer {service.keys.crm}"}),
        405,
    )
    assert body["type"].endswith("method-not-allowed")


def test_validation_errors_name_the_field(service):
    body = assert_problem(
        service.post("/v1/score", service.keys.crm, json={"account_ids": "acc-1"}), 422
    )
    assert body["errors"][0]["field"] == "body.account_ids"
    assert "body.account_ids" in body["detail"]
    body = assert_problem(
        service.post("/v1/score", service.keys.crm, json={"account_ids": ["a"], "accounts": []}),
        422,
    )
    body = assert_problem(service.get("/v1/risk-list?max_probability=2", service.keys.crm), 422)
    assert body["errors"][0]["field"] == "query.max_probability"
    body = assert_problem(service.get("/v1/metrics/churn", service.keys.crm), 422)
    assert body["errors"][0]["field"] == "path.metric"


def test_invalid_json_is_a_422_problem(service):
    response = service.client.post(
        "/v1/score",
        content=b"{not json",
        headers={"Authorization": f"Bearer {service.keys.crm}", "Content-Type": "application/json"},
    )
    assert_problem(response, 422)


def test_batches_over_1000_accounts_are_refused(service):
    ids = [f"acc-{i:05d}" for i in range(1001)]
    body = assert_problem(
        service.post("/v1/score", service.keys.crm, json={"account_ids": ids}), 422
    )
    assert body["errors"][0]["field"] == "body.account_ids"


def test_bodies_over_the_limit_get_413_declared_or_streamed(service):
    over = service.service_settings.max_body_bytes + 100_000
    big = b'{"account_ids": ["' + b"a" * over + b'"]}'
    headers = {"Authorization": f"Bearer {service.keys.crm}", "Content-Type": "application/json"}
    assert_problem(service.client.post("/v1/score", content=big, headers=headers), 413)

    def chunks():  # no Content-Length: counted while it streams
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    assert_problem(service.client.post("/v1/score", content=chunks(), headers=headers), 413)


def test_a_configured_smaller_batch_limit_is_413(tmp_path, scorer):
    from service_harness import build_service

    for svc in build_service(tmp_path, scorer, n_accounts=9, max_batch_accounts=5):
        ids = [f"acc-{i:05d}" for i in range(6)]
        body = assert_problem(svc.post("/v1/score", svc.keys.crm, json={"account_ids": ids}), 413)
        assert body["type"].endswith("batch-too-large")


def test_no_model_means_503_with_retry_after_not_a_crash(tmp_path):
    settings = Settings(
        data_dir=tmp_path,
        models_dir=tmp_path / "models",
        database_url=f"sqlite:///{tmp_path / 's.db'}",
        tracking_uri="http://127.0.0.1:9",
    )
    app = create_app(settings, ServiceSettings(), background=False)
    with TestClient(app) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
        ctx = app.state.context
        secret = "rnw_test-admin"
        ctx.keys._cache[hash_key(secret)] = (Principal("key_t", "admin", None, "t"), 1e12)
        body = assert_problem(
            client.get("/v1/model", headers={"Authorization": f"Bearer {secret}"}), 503
        )
        assert body["type"].endswith("model-unavailable")
        # Why names the registry's URI and the models directory: admin keys only.
        assert "127.0.0.1:9" in body["detail"]
        csm = "rnw_test-csm"
        ctx.keys._cache[hash_key(csm)] = (Principal("key_c", "csm", "csm_01", "c"), 1e12)
        told = assert_problem(
            client.get("/v1/model", headers={"Authorization": f"Bearer {csm}"}), 503
        )
        assert told["type"].endswith("model-unavailable")
        assert told["detail"].startswith("no model is loaded")
        assert "127.0.0.1" not in told["detail"] and str(tmp_path) not in told["detail"]


@pytest.mark.postgres
def test_database_down_gives_503_with_retry_after(tmp_path, scorer):
    from service_factories import loaded

    settings = Settings(
        data_dir=tmp_path,
        models_dir=tmp_path / "models",
        database_url="postgresql+psycopg://postgres@127.0.0.1:1/test",
        tracking_uri="http://127.0.0.1:9",
    )
    store = ModelStore(settings)
    store.install(loaded(scorer))
    app = create_app(settings, ServiceSettings(), models=store, background=False, migrate=False)
    app.state.context.cache.load = lambda: 0  # nothing to load from a dead database
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["database"]["ok"] is False
        key_check = client.get("/v1/model", headers={"Authorization": "Bearer rnw_any"})
        body = assert_problem(key_check, 503)
        assert key_check.headers["retry-after"] == "5" and "database" in body["type"]
        ctx = app.state.context
        ctx.keys._cache[hash_key("rnw_cached")] = (Principal("key_t", "admin", None, "t"), 1e12)
        route = client.get("/v1/metrics/activation", headers={"Authorization": "Bearer rnw_cached"})
        assert_problem(route, 503)
        assert route.headers["retry-after"] == "5"


def test_an_unexpected_error_logs_where_it_happened_not_its_message(
    service, monkeypatch, caplog
):
    """An exception's message may hold what the failing code held (an account id, a note):
    the log keeps the type and the frames, never the message."""
    import logging

    secret = "acc-00042: the sponsor left, renewal at risk"

    def broken(_self):
        raise KeyError(secret)

    monkeypatch.setattr(ModelStore, "require", broken)
    with caplog.at_level(logging.ERROR):
        response = service.get("/v1/model", service.keys.crm)
    body = assert_problem(response, 500)
    assert secret not in body["detail"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    logged += "".join(str(r.exc_info) for r in caplog.records if r.exc_info)
    assert "unhandled KeyError at" in logged
    assert "in broken" in logged and "test_service_problems.py" in logged  # where to look
    assert "acc-00042" not in logged and "sponsor" not in logged
