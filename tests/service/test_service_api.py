"""What the CRM and the CS team get from the API (in-process ASGI client, real SQLite store)."""

from __future__ import annotations

import gc
import logging

import pytest
from pydantic import TypeAdapter
from service_harness import build_service

from service.api.schemas import HealthInputHistory, Renewal, RiskListPage, ScoreResponse
from service.db import scores as scores_db

ACC = "acc-00000"  # csm-a's


def stored_latest(service, account_id: str):
    with service.factory() as session:
        [latest] = scores_db.latest_scores(session, [account_id])
    return latest


def test_crm_call_returns_the_latest_score_with_drivers_in_words(service):
    body = service.get(f"/v1/accounts/{ACC}/renewal", service.keys.crm).json()
    Renewal.model_validate(body)
    latest = stored_latest(service, ACC)
    assert body["probability"] == round(latest.score.probability, 4)
    assert body["as_of"] == "2025-06-30" and body["model"] == {"name": "renewal", "version": "1"}
    assert body["change_30d"] == round(latest.score.probability - latest.earlier_probability, 4)
    risk, protective = body["drivers"]["risk_drivers"], body["drivers"]["protective_factors"]
    assert 0 < len(risk) <= 3 and 0 < len(protective) <= 3
    assert all(d["contribution"] < 0 for d in risk) and all(
        d["contribution"] > 0 for d in protective
    )
    assert [d["contribution"] for d in risk] == sorted(d["contribution"] for d in risk)
    for driver in risk + protective:
        assert "{" not in driver["description"] and driver["description"].strip()
    tiers = service.service_settings
    assert body["risk_tier"] == tiers.risk_tier(body["probability"])


def test_risk_tiers_follow_the_configured_cut_offs():
    from service.config import ServiceSettings

    settings = ServiceSettings(risk_high_below=0.4, risk_medium_below=0.7)
    assert [settings.risk_tier(p) for p in (0.0, 0.3999, 0.4, 0.6999, 0.7, 1.0)] == [
        "high",
        "high",
        "medium",
        "medium",
        "low",
        "low",
    ]
    with pytest.raises(ValueError, match="must be <="):
        ServiceSettings(risk_high_below=0.8, risk_medium_below=0.7)


def test_scoring_ids_now_reproduces_the_stored_score_with_the_same_model(service):
    ids = [f"acc-{i:05d}" for i in range(0, 30, 3)]
    response = service.post("/v1/score", service.keys.crm, json={"account_ids": ids})
    assert response.status_code == 200
    body = ScoreResponse.model_validate(response.json())
    assert [r.account_id for r in body.results] == ids and body.count == len(ids)
    for result in body.results:
        stored = service.get(f"/v1/accounts/{result.account_id}/renewal", service.keys.crm).json()
        assert result.probability == stored["probability"]
        assert result.model_dump(mode="json")["drivers"] == stored["drivers"]


def test_what_if_the_exec_sponsor_were_active_raises_the_probability(service):
    frame = service.frame
    without = frame[frame["exec_sponsor_active"] == False]  # noqa: E712 - nullable boolean
    account = without["account_id"].iloc[0]
    before = service.get(f"/v1/accounts/{account}/renewal", service.keys.crm).json()
    response = service.post(
        "/v1/score",
        service.keys.crm,
        json={
            "accounts": [
                {"account_id": account, "features": {"exec_sponsor_active": True}},
                {"account_id": account, "features": {}},
            ]
        },
    )
    assert response.status_code == 200, response.text
    what_if, same = response.json()["results"]
    assert what_if["probability"] > before["probability"]  # monotone model: never lower
    assert same["probability"] == before["probability"]
    sponsor = [
        d for d in what_if["drivers"]["protective_factors"] if d["feature"] == "exec_sponsor_active"
    ]
    assert not sponsor or sponsor[0]["value"] is True


def test_what_if_vectors_without_an_account_hide_features_not_given(service):
    response = service.post(
        "/v1/score",
        service.keys.crm,
        json={"accounts": [{"features": {"active_days_30d": 2, "segment": "smb"}}]},
    )
    assert response.status_code == 200
    [result] = response.json()["results"]
    named = {d["feature"] for side in result["drivers"].values() for d in side}
    assert named <= {"active_days_30d", "segment"}
    assert result["account_id"] is None and result["as_of"] is None


@pytest.mark.parametrize(
    ("features", "field"),
    [
        ({"active_days_30d": False}, "active_days_30d"),  # lax mode would read false as 0.0
        ({"active_days_30d": "12"}, "active_days_30d"),
        ({"exec_sponsor_active": 1}, "exec_sponsor_active"),
        ({"segment": 3}, "segment"),
        ({"no_such_feature": 1}, "no_such_feature"),
    ],
)
def test_what_if_values_are_strictly_typed_and_errors_name_the_field(service, features, field):
    response = service.post(
        "/v1/score", service.keys.crm, json={"accounts": [{"features": features}]}
    )
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert any(e["field"].endswith(f"features.{field}") for e in problem["errors"]), problem


def test_risk_list_is_sorted_by_arr_at_risk_and_pages_cover_everything_once(service):
    seen, cursor, pages = [], None, 0
    while True:
        url = "/v1/risk-list?limit=7" + (f"&cursor={cursor}" if cursor else "")
        page = RiskListPage.model_validate(service.get(url, service.keys.crm).json())
        assert page.count == 60 and len(page.data) <= 7
        seen += page.data
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 9 and len({i.account_id for i in seen}) == 60 == len(seen)
    at_risk = [i.arr_at_risk for i in seen]
    assert at_risk == sorted(at_risk, reverse=True)
    for item in seen:
        # probability is rounded to 4 decimals in responses, ARR at risk is not
        assert item.arr_at_risk == pytest.approx(
            item.arr * (1 - item.probability), abs=item.arr * 5e-5 + 0.01
        )


def test_risk_list_filters(service):
    everything = service.get("/v1/risk-list?limit=200", service.keys.crm).json()["data"]

    def listed(query: str) -> set[str]:
        response = service.get(f"/v1/risk-list?limit=200&{query}", service.keys.crm)
        assert response.status_code == 200, response.text
        return {i["account_id"] for i in response.json()["data"]}

    def expect(rule) -> set[str]:
        return {i["account_id"] for i in everything if rule(i)}

    assert listed("csm_id=csm-b") == expect(lambda i: i["csm_id"] == "csm-b")
    assert listed("segment=smb") == expect(lambda i: i["segment"] == "smb")
    assert listed("max_probability=0.5") == expect(lambda i: i["probability"] <= 0.5)
    assert listed("not_activated=true") == expect(lambda i: i["activated"] is False)
    assert listed("not_activated=false") == expect(lambda i: i["activated"] is True)
    dropped = listed("min_drop=5")
    assert dropped and dropped == expect(
        lambda i: i["change_30d"] is not None and -100 * i["change_30d"] >= 5
    )
    both = listed("segment=smb&max_probability=0.8")
    assert both == expect(lambda i: i["segment"] == "smb" and i["probability"] <= 0.8)


@pytest.mark.parametrize("cursor", ["garbage", "eyJhIjoxfQ", "W10"])
def test_forged_or_foreign_cursors_are_refused(service, cursor):
    response = service.get(f"/v1/risk-list?cursor={cursor}", service.keys.crm)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.cursor"
    first = service.get("/v1/risk-list?limit=2", service.keys.crm).json()
    foreign = service.get(
        f"/v1/risk-list?segment=smb&cursor={first['next_cursor']}", service.keys.crm
    )
    assert foreign.status_code == 422


def test_page_size_is_limited(service):
    assert service.get("/v1/risk-list?limit=201", service.keys.crm).status_code == 422
    assert service.get("/v1/risk-list?limit=0", service.keys.crm).status_code == 422


def test_a_note_alone_changes_neither_the_score_nor_the_inputs_age(service):
    """Found by audit: "left a voicemail" reset a 101-day-old judgement to 0 days (off the
    stale list) and moved the probability."""
    stale = service.frame[service.frame["health_input_age_days"] > 90]
    account = stale["account_id"].iloc[0]
    csm = stale["csm_id"].iloc[0]
    key = {"csm-a": service.keys.csm_a, "csm-b": service.keys.csm_b}.get(csm, service.keys.admin)
    before = service.get(f"/v1/accounts/{account}/renewal", service.keys.crm).json()
    response = service.put(f"/v1/accounts/{account}/health-inputs", key,
                           json={"note": "left a voicemail"})
    assert response.status_code == 200, response.text
    after = response.json()["renewal"]
    assert after["probability"] == before["probability"]
    assert after["inputs"] == before["inputs"] and after["inputs"]["stale"] is True
    history = service.get(f"/v1/accounts/{account}/health-inputs", service.keys.admin).json()
    assert history["data"][0]["note"] == "left a voicemail"  # kept in the audit trail


def test_health_input_is_audited_and_rescores_the_account_on_the_spot(service):
    account = service.frame[service.frame["exec_sponsor_active"] == False]["account_id"].iloc[0]  # noqa: E712
    csm_key = {"csm-a": service.keys.csm_a, "csm-b": service.keys.csm_b}.get(
        service.frame.set_index("account_id").loc[account, "csm_id"], service.keys.admin
    )
    before = service.get(f"/v1/accounts/{account}/renewal", service.keys.crm).json()
    response = service.put(
        f"/v1/accounts/{account}/health-inputs",
        csm_key,
        json={"exec_sponsor_active": True, "csm_score": 5, "note": "Sponsor is back."},
    )
    assert response.status_code == 200, response.text
    recorded = response.json()
    assert recorded["health_input"]["author"].startswith("key_")
    assert csm_key not in response.text
    assert recorded["health_input"]["effective_date"] == "2025-06-30"
    assert recorded["renewal"]["probability"] > before["probability"]
    after = service.get(f"/v1/accounts/{account}/renewal", service.keys.crm).json()
    assert after["probability"] == recorded["renewal"]["probability"]
    latest = stored_latest(service, account).score
    assert latest.trigger == "health_input" and latest.features["exec_sponsor_active"] is True
    assert latest.features["csm_score"] == 5 and latest.features["health_input_age_days"] == 0
    # A later input with only a note keeps the judgement (null = no new judgement).
    service.put(
        f"/v1/accounts/{account}/health-inputs",
        service.keys.admin,
        json={"note": "Follow-up call booked."},
    )
    history = HealthInputHistory.model_validate(
        service.get(f"/v1/accounts/{account}/health-inputs", service.keys.admin).json()
    )
    assert [h.note for h in history.data] == ["Follow-up call booked.", "Sponsor is back."]
    assert history.data[0].author != history.data[1].author or csm_key == service.keys.admin
    assert stored_latest(service, account).score.features["exec_sponsor_active"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"csm_score": 7}, "body.csm_score"),
        ({"csm_score": "3"}, "body.csm_score"),
        ({"exec_sponsor_active": "yes"}, "body.exec_sponsor_active"),
        ({"note": "x" * 2001}, "body.note"),
        ({"mood": "good"}, "body.mood"),
        ({}, "body"),
    ],
)
def test_bad_health_inputs_are_refused_naming_the_field(service, body, field):
    response = service.put(f"/v1/accounts/{ACC}/health-inputs", service.keys.admin, json=body)
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]


def test_model_card_says_what_is_served(service):
    card = service.get("/v1/model", service.keys.crm).json()
    assert card["name"] == "renewal" and card["version"] == "1" and card["status"] == "ready"
    assert card["features"][0] == "active_days_30d" and card["last_refusal"] is None
    assert card["test_metrics"] == {"auc": 0.8}


def test_a_reload_that_cannot_reach_the_registry_is_refused_and_visible(service):
    response = service.post("/v1/admin/reload", service.keys.admin)
    assert response.status_code == 200
    assert response.json()["outcome"] == "refused"
    card = service.get("/v1/model", service.keys.admin).json()
    assert card["version"] == "1" and "registry" in card["last_refusal"]["reason"]
    assert service.get(f"/v1/accounts/{ACC}/renewal", service.keys.crm).status_code == 200
    # The reason names the registry's URI and model paths: admin keys only.
    told = service.get("/v1/model", service.keys.crm).json()
    assert told["last_refusal"]["reason"] == "refused (an admin key sees why)"
    assert told["last_reload"]["detail"].startswith("refused (an admin key sees why)")
    assert told["status_reason"] == "serving v1 from the registry"
    assert "127.0.0.1" in card["last_refusal"]["reason"] and "127.0.0.1" not in str(told)


def test_readiness_and_prometheus_metrics(service):
    ready = service.get("/readyz").json()
    assert ready["status"] == "ready"
    # The health checks answer anyone: no business figure (how many customers are scored).
    assert set(ready) == {"status", "model", "database"}
    assert service.get("/healthz").json() == {"status": "ok"}
    # Load balancers and uptime checkers probe with HEAD: a 405 read as "down".
    for path in ("/healthz", "/readyz"):
        head = service.client.head(path)
        assert head.status_code == 200 and head.content == b"", path
    assert service.client.head("/v1/model").status_code in (401, 405)  # no key: nothing said
    # Not in the OpenAPI document: one operationId per operation (code generators refuse
    # duplicates, which GET and HEAD on one route gave).
    document = service.get("/openapi.json", service.keys.admin).json()
    ids = [op["operationId"] for path in document["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    assert "head" not in document["paths"]["/healthz"]
    service.get(f"/v1/accounts/{ACC}/renewal", service.keys.crm)
    assert service.get("/ui/login").status_code == 200
    text = service.get("/metrics", service.keys.admin).text
    assert "renewal_cached_accounts 60.0" in text
    # The ops page's routes keep their mount: not "/login" beside the API's routes.
    assert 'route="/ui/login"' in text and 'route="/login"' not in text
    assert 'route="/v1/accounts/{account_id}/renewal"' in text
    assert 'renewal_model_info{name="renewal",source="registry",version="1"} 1.0' in text
    assert 'renewal_scores_served_total{endpoint="renewal"}' in text
    assert "acc-0" not in text


def test_logs_hold_no_keys_notes_or_account_ids(service, caplog):
    caplog.set_level(logging.DEBUG)
    note = "CFO unhappy with invoicing module"
    service.get(f"/v1/accounts/{ACC}/renewal", service.keys.crm)
    service.get(f"/v1/accounts/{ACC}/renewal", "rnw_wrong-key")
    service.put(f"/v1/accounts/{ACC}/health-inputs", service.keys.csm_a, json={"note": note})
    service.post("/v1/score", service.keys.crm, json={"account_ids": [ACC, "acc-99999"]})
    service.post("/v1/admin/reload", service.keys.admin)
    # httpx logs are the test client's own requests, not the service's.
    text = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    assert "GET /v1/accounts/{account_id}/renewal 200" in text
    for secret in (*vars(service.keys).values(), "rnw_wrong-key", note, ACC, "acc-99999"):
        assert secret not in text


def test_openapi_documents_every_operation_with_problem_responses(service):
    assert service.get("/openapi.json").status_code == 401
    schema = service.get("/openapi.json", service.keys.crm).json()
    assert "Problem" in schema["components"]["schemas"]
    assert schema["components"]["securitySchemes"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if path in ("/healthz", "/readyz"):
                continue
            assert "401" in operation["responses"], (method, path)
            assert "application/problem+json" in operation["responses"]["401"]["content"]
            assert operation.get("security"), (method, path)
    TypeAdapter(dict).validate_python(schema)


def test_what_start_up_loaded_is_left_out_of_later_garbage_collections(tmp_path, scorer):
    """Full collections walked the model, the cached scores and every module (100-250 ms
    stalls of all requests in flight); start-up freezes them (service.app)."""
    gc.unfreeze()
    try:
        for service in build_service(tmp_path, scorer):
            context = service.client.app.state.context
            cached = context.cache.risk_order[0]
            assert gc.get_freeze_count() > 0
            assert all(o is not cached for o in gc.get_objects())
            assert service.get(f"/v1/accounts/{ACC}/renewal", service.keys.crm).status_code == 200
    finally:
        gc.unfreeze()


def test_route_labels_behind_a_root_path_and_under_a_mount():
    """The label is the route's template, with a mount's prefix (/ui) and without the
    server's own root path (uvicorn --root-path /renewal: found by review)."""
    from service.telemetry import UNMATCHED_ROUTE, route_template

    class Route:
        path = "/accounts/{account_id}"

    assert route_template({"route": Route()}) == "/accounts/{account_id}"
    assert route_template({"route": Route(), "root_path": "/renewal"}) == "/accounts/{account_id}"
    assert route_template({"route": Route(), "root_path": "/renewal/ui",
                           "app_root_path": "/renewal"}) == "/ui/accounts/{account_id}"
    assert route_template({"route": Route(), "root_path": "/ui",
                           "app_root_path": ""}) == "/ui/accounts/{account_id}"
    assert route_template({}) == UNMATCHED_ROUTE


@pytest.mark.parametrize("media", ["application/x-www-form-urlencoded", "text/plain",
                                   "multipart/form-data; boundary=x", None])
def test_a_body_that_is_not_json_is_a_415_that_says_so(service, media):
    """`curl -d '{...}'` without the JSON header sends a form type: FastAPI answered 422
    "Input should be a valid dictionary", which sends people looking for a wrong field."""
    body = '{"account_ids": ["acc-00000"]}'
    typed = {"Content-Type": media} if media else {}
    answer = service.client.post("/v1/score", content=body, headers={
        "Authorization": f"Bearer {service.keys.crm}", **typed})
    assert answer.status_code == 415, answer.text
    problem = answer.json()
    assert problem["type"].endswith("unsupported-media-type")
    assert "Content-Type: application/json" in problem["detail"]
    # No key: 401 first, as on every route; the JSON types are read as JSON.
    assert service.client.post("/v1/score", content=body, headers=typed).status_code == 401
    for json_type in ("application/json", "application/json; charset=utf-8",
                      "application/merge-patch+json"):
        headers = {"Authorization": f"Bearer {service.keys.crm}", "Content-Type": json_type}
        assert service.client.post("/v1/score", content=body,
                                   headers=headers).status_code == 200, json_type
    # A POST without a body (a reload, a retry) needs no type.
    assert service.client.post("/v1/admin/reload", headers={
        "Authorization": f"Bearer {service.keys.admin}"}).status_code != 415
