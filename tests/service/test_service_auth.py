"""Every route refuses a missing or bad key, and every role only gets what it may use."""

from __future__ import annotations

import itertools

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Route

from service.app import all_routes
from service.db.engine import transaction
from service.workflows.webhooks import store as webhook_store
from service.workflows.webhooks.events import emit_model_promoted

PUBLIC = frozenset()
ALL = frozenset({"crm", "csm", "admin"})
#: The access rules as a user reads them in docs/api.md. A new route must be added here.
EXPECTED = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/v1/accounts/{account_id}/renewal"): ALL,
    ("POST", "/v1/score"): ALL,
    ("GET", "/v1/risk-list"): ALL,
    ("PUT", "/v1/accounts/{account_id}/health-inputs"): frozenset({"csm", "admin"}),
    ("GET", "/v1/accounts/{account_id}/health-inputs"): frozenset({"csm", "admin"}),
    ("GET", "/v1/metrics/{metric}"): ALL,
    ("GET", "/v1/model"): ALL,
    ("GET", "/v1/scoring-runs"): ALL,
    ("POST", "/v1/admin/reload"): frozenset({"admin"}),
    ("GET", "/metrics"): frozenset({"admin"}),
    ("GET", "/openapi.json"): ALL,
    # customer-success workflows (docs/workflows.md)
    ("GET", "/v1/levers"): ALL,
    ("POST", "/v1/accounts/{account_id}/what-if"): ALL,
    ("GET", "/v1/accounts/{account_id}/renewal/history"): ALL,
    ("GET", "/v1/disagreements"): ALL,
    ("GET", "/v1/stale-inputs"): ALL,
    ("POST", "/v1/accounts/{account_id}/interventions"): frozenset({"csm", "admin"}),
    ("GET", "/v1/accounts/{account_id}/interventions"): frozenset({"csm", "admin"}),
    ("GET", "/v1/save-rate"): ALL,
    ("GET", "/v1/forecast"): ALL,
    ("GET", "/v1/survey-follow-ups"): ALL,
    ("POST", "/v1/webhooks"): frozenset({"admin"}),
    ("GET", "/v1/webhooks"): frozenset({"admin"}),
    ("DELETE", "/v1/webhooks/{webhook_id}"): frozenset({"admin"}),
    ("POST", "/v1/webhooks/{webhook_id}/secret"): frozenset({"admin"}),
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): frozenset({"admin"}),
    ("POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"): frozenset({"admin"}),
}
#: JSON bodies of the routes that need one (valid, so only the key decides the answer).
BODIES = {
    ("POST", "/v1/score"): lambda account: {"account_ids": [account]},
    ("PUT", "/v1/accounts/{account_id}/health-inputs"): lambda _: {"csm_score": 3},
    ("POST", "/v1/accounts/{account_id}/what-if"): lambda _: {
        "levers": [{"name": "exec_sponsor_active"}]
    },
    ("POST", "/v1/accounts/{account_id}/interventions"): lambda _: {"playbook": "qbr"},
    ("POST", "/v1/webhooks/{webhook_id}/secret"): lambda _: {"keep_previous_hours": 0},
    ("POST", "/v1/webhooks"): lambda _: {
        "url": "https://93.184.215.14/hook",  # a public literal address: no DNS, no send
        "events": ["risk_tier_crossed"],
    },
}
_versions = itertools.count(100)
ACCOUNT_OF_CSM_B = "acc-00001"  # accounts are dealt to csm-a, csm-b, csm-c in turn
ACCOUNT_OF_CSM_A = "acc-00000"


def app_routes(app) -> set[tuple[str, str]]:
    found = set()
    for route in all_routes(app):
        if isinstance(route, APIRoute | Route):
            for method in route.methods or ():
                if method != "HEAD":
                    found.add((method, route.path))
    return found


def webhook_with_delivery(service) -> tuple[str, int]:
    """A real subscription (a loopback URL the worker refuses without sending) with one
    delivery, written through the workflow store as the API would."""
    with transaction(service.factory) as session:
        hook = webhook_store.create_subscription(
            session, "http://127.0.0.1:9/hook", ["model_promoted"], "test"
        )
        emit_model_promoted(session, "renewal", str(next(_versions)), "1")
        delivery = webhook_store.deliveries(session, hook.id)[0][0]
        return hook.id, delivery.id


def request_for(service, method: str, template: str, key: str | None, account: str):
    path = template.replace("{account_id}", account).replace("{metric}", "activation")
    if "{webhook_id}" in path:
        hook, delivery = webhook_with_delivery(service)
        path = path.replace("{webhook_id}", hook).replace("{delivery_id}", str(delivery))
    make_body = BODIES.get((method, template))
    body = make_body(account) if make_body else None
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return service.client.request(method, path, headers=headers, json=body)


def test_the_route_table_is_complete(service):
    assert app_routes(service.client.app) == set(EXPECTED)


def test_every_route_but_the_health_checks_refuses_a_missing_or_bad_key(service):
    for (method, template), allowed in EXPECTED.items():
        for key in (None, "rnw_not-a-key", service.keys.revoked, "", "x" * 500):
            response = request_for(service, method, template, key, ACCOUNT_OF_CSM_A)
            if allowed is PUBLIC:
                assert response.status_code in (200, 503), (method, template)
                continue
            assert response.status_code == 401, (method, template, key)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["www-authenticate"].startswith("Bearer")


def test_every_role_gets_403_where_it_may_not_go_and_in_where_it_may(service):
    keys = {"crm": service.keys.crm, "csm": service.keys.csm_a, "admin": service.keys.admin}
    for (method, template), allowed in EXPECTED.items():
        if allowed is PUBLIC:
            continue
        for role, key in keys.items():
            response = request_for(service, method, template, key, ACCOUNT_OF_CSM_A)
            if role in allowed:
                assert response.status_code not in (401, 403, 404), (
                    method,
                    template,
                    role,
                    response.text,
                )
            else:
                assert response.status_code == 403, (method, template, role)
                assert response.json()["type"].endswith(":forbidden")


def test_a_csm_cannot_see_or_touch_another_csms_account(service):
    account_routes = [(m, t) for (m, t) in EXPECTED if "{account_id}" in t] + [
        ("POST", "/v1/score")
    ]
    for method, template in account_routes:
        foreign = request_for(service, method, template, service.keys.csm_a, ACCOUNT_OF_CSM_B)
        unknown = request_for(service, method, template, service.keys.csm_a, "acc-99999")
        assert foreign.status_code == 404, (method, template)
        # Same answer as for an account that does not exist: existence does not leak.
        assert foreign.json()["detail"].replace(ACCOUNT_OF_CSM_B, "X") == unknown.json()[
            "detail"
        ].replace("acc-99999", "X")
        own_key = request_for(service, method, template, service.keys.csm_b, ACCOUNT_OF_CSM_B)
        assert own_key.status_code in (200, 201, 503), (method, template)


def test_mixed_batches_and_what_ifs_are_checked_per_account(service):
    mixed = service.post(
        "/v1/score", service.keys.csm_a, json={"account_ids": [ACCOUNT_OF_CSM_A, ACCOUNT_OF_CSM_B]}
    )
    assert mixed.status_code == 404
    assert mixed.json()["missing_account_ids"] == [ACCOUNT_OF_CSM_B]
    what_if = service.post(
        "/v1/score",
        service.keys.csm_a,
        json={
            "accounts": [
                {"account_id": ACCOUNT_OF_CSM_B, "features": {"exec_sponsor_active": True}}
            ]
        },
    )
    assert what_if.status_code == 404
    # A vector without an account is pure computation: any role may score it.
    anonymous = service.post(
        "/v1/score", service.keys.csm_a, json={"accounts": [{"features": {"active_days_30d": 10}}]}
    )
    assert anonymous.status_code == 200


def test_a_csm_risk_list_holds_only_its_own_accounts(service):
    page = service.get("/v1/risk-list?limit=200", service.keys.csm_a).json()
    assert page["count"] == 20 and {i["csm_id"] for i in page["data"]} == {"csm-a"}
    # All matches, whatever the page size: `total`, as on the other lists.
    small = service.get("/v1/risk-list?limit=3", service.keys.csm_a).json()
    assert (small["count"], small["total"], len(small["data"])) == (20, 20, 3)
    other = service.get("/v1/risk-list?csm_id=csm-b", service.keys.csm_a)
    assert other.status_code == 403
    assert service.get("/v1/risk-list?csm_id=csm-a", service.keys.csm_a).status_code == 200


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "bearer  ", "Token x"])
def test_malformed_authorization_headers_are_401(service, header):
    response = service.client.get("/v1/model", headers={"Authorization": header})
    assert response.status_code == 401
