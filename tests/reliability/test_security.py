"""Security beyond the service tests' role walk (tests/service/test_service_auth.py checks
401/403/404 per documented route, mixed batches and another CSM's risk list): every route
the app has *now* (workflow routes included) refuses a missing or wrong key, oversized
requests are refused fast, and keys are stored only as hashes."""

from __future__ import annotations

import time

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import text

from service.app import all_routes
from service.keys import hash_key

PUBLIC = {"/healthz", "/readyz"}


def _every_route(app) -> list[tuple[str, str]]:
    return sorted(
        (method, route.path)
        for route in all_routes(app)
        if isinstance(route, APIRoute)
        for method in route.methods
        if method != "HEAD"
    )


def test_every_route_of_the_app_refuses_a_missing_or_wrong_key(seeded):
    routes = _every_route(seeded.client.app)
    assert len(routes) >= 13
    for method, template in routes:
        path = template.replace("{", "").replace("}", "")  # any value: auth comes first
        for key in (None, "rnw_" + "x" * 43, seeded.keys.revoked):
            response = seeded.client.request(
                method, path, headers={"Authorization": f"Bearer {key}"} if key else {}
            )
            if template in PUBLIC:
                assert response.status_code in (200, 503)
                continue
            assert response.status_code == 401, (method, template, key is None)
            assert response.headers["content-type"] == "application/problem+json"


def test_another_csms_account_is_not_found_on_every_account_route(seeded):
    foreign = "acc-00001"  # csm-b's; the key is csm-a's
    routes = [r for r in _every_route(seeded.client.app) if "{account_id}" in r[1]]
    for method, template in routes:
        path = template.replace("{account_id}", foreign)
        body = {"csm_score": 3} if method == "PUT" else None
        response = seeded.client.request(
            method, path, headers={"Authorization": f"Bearer {seeded.keys.csm_a}"}, json=body
        )
        assert response.status_code in (403, 404, 422), (method, template, response.text)
        assert response.status_code != 200


def _timed(call):
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def test_a_body_over_the_limit_is_413_before_it_is_read(seeded):
    limit = seeded.service_settings.max_body_bytes
    body = b'{"account_ids": ["' + b"a" * (limit + 10) + b'"]}'
    response, seconds = _timed(
        lambda: seeded.client.post(
            "/v1/score",
            content=body,
            headers={
                "Authorization": f"Bearer {seeded.keys.admin}",
                "Content-Type": "application/json",
            },
        )
    )
    assert response.status_code == 413 and seconds < 2
    assert response.json()["type"].endswith(":content-too-large")


def test_a_batch_over_the_limit_is_refused_fast(seeded):
    ids = [f"acc-{i:05d}" for i in range(1001)]
    response, seconds = _timed(
        lambda: seeded.post("/v1/score", seeded.keys.admin, json={"account_ids": ids})
    )
    assert response.status_code in (413, 422) and seconds < 2, response.text


@pytest.mark.parametrize("limit", [201, 10_000, 0, -1])
def test_a_page_over_the_limit_is_422(seeded, limit):
    response = seeded.get(f"/v1/risk-list?limit={limit}", seeded.keys.admin)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_keys_are_stored_only_as_sha256(seeded):
    with seeded.factory() as session:
        rows = session.execute(text("SELECT * FROM api_keys")).mappings().all()
    stored = " ".join(str(v) for row in rows for v in row.values())
    for key in (seeded.keys.admin, seeded.keys.crm, seeded.keys.csm_a, seeded.keys.csm_b):
        assert key not in stored
        assert hash_key(key) in stored


def test_the_body_limit_leaves_room_for_a_full_batch_of_full_what_if_vectors():
    """Found by audit: at 1 MiB, 600 full feature vectors were a 413 although a batch may
    hold 1,000. Every registry feature with a long value, 1,000 times, must fit."""
    import json

    from features.registry import FEATURES
    from service.config import ServiceSettings

    settings = ServiceSettings()
    vector = {f.name: ("x" * 40 if f.kind == "category" else 123456.789012) for f in FEATURES}
    body = json.dumps({"accounts": [{"account_id": f"acc-{i:08d}", "features": vector}
                                    for i in range(settings.max_batch_accounts)]})
    assert len(body.encode()) < settings.max_body_bytes
