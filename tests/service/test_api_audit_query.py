"""Query strings and what-if values as a demanding client sends them: a repeated parameter,
a rejected value said back, numbers JSON does not have (real app, real SQLite store)."""

from __future__ import annotations

import pytest

ACC = "acc-00000"


def _problem(response, status: int = 422) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


@pytest.mark.parametrize(
    ("url", "name", "values"),
    [
        ("/v1/risk-list?segment=smb&segment=enterprise", "segment", ["smb", "enterprise"]),
        ("/v1/risk-list?limit=5&limit=10", "limit", ["5", "10"]),
        (f"/v1/accounts/{ACC}/renewal/history?limit=3&limit=5", "limit", ["3", "5"]),
        ("/v1/disagreements?low_probability=0.3&low_probability=0.2", "low_probability",
         ["0.3", "0.2"]),
    ],
)
def test_a_single_valued_parameter_given_twice_is_a_422_naming_it(service, url, name, values):
    """Before: the last value won silently (``segment=smb&segment=enterprise`` listed only
    enterprise accounts, read by the caller as "smb or enterprise")."""
    body = _problem(service.get(url, service.keys.admin))
    assert body["errors"][0]["field"] == f"query.{name}"
    assert body["errors"][0]["type"] == "multiple_values"
    assert body["detail"].startswith(f"invalid query.{name}: given 2 times")
    assert all(repr(v) in body["detail"] for v in values)


def test_parameters_given_once_still_work_and_a_csm_list_is_unchanged(service):
    single = service.get("/v1/risk-list?segment=smb&limit=5", service.keys.admin)
    assert single.status_code == 200
    assert {d["segment"] for d in single.json()["data"]} == {"smb"}
    own = service.get("/v1/risk-list?limit=200", service.keys.csm_a).json()["data"]
    assert own and {d["csm_id"] for d in own} == {"csm-a"}


@pytest.mark.parametrize(
    ("url", "field", "value"),
    [
        ("/v1/risk-list?limit=abc", "query.limit", "abc"),
        ("/v1/risk-list?limit=500", "query.limit", "500"),
        ("/v1/risk-list?not_activated=maybe", "query.not_activated", "maybe"),
        ("/v1/metrics/activation?by=region", "query.by", "region"),
        ("/v1/metrics/churn", "path.metric", "churn"),
        ("/v1/forecast?months=99", "query.months", "99"),
    ],
)
def test_a_rejected_query_or_path_value_is_named_with_its_parameter(service, url, field, value):
    """Before: ``invalid query.by: Input should be 'segment', 'csm_id' or 'cohort'`` without
    the value sent, so a client building URLs could not tell which of its values was bad."""
    body = _problem(service.get(url, service.keys.admin))
    assert body["detail"].startswith(f"invalid {field}:")
    assert body["detail"].endswith(f"(got {value!r})")
    assert body["errors"][0]["field"] == field and body["errors"][0]["input"] == value


def test_body_values_are_never_said_back(service):
    note = "private: the sponsor is leaving " + "x" * 2000
    body = _problem(service.put(f"/v1/accounts/{ACC}/health-inputs", service.keys.admin,
                                json={"csm_score": 3, "note": note}))
    assert "private" not in str(body) and "input" not in body["errors"][0]


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_what_if_numbers_must_be_finite(service, raw):
    """Python's JSON reader takes NaN, Infinity and 1e999; they were scored (200) and said
    back as "inf active days in the last 30 days", or as a silently missing value."""
    for account in ("", f'"account_id": "{ACC}", '):
        content = f'{{"accounts": [{{{account}"features": {{"active_days_30d": {raw}}}}}]}}'
        response = service.client.post(
            "/v1/score", content=content.encode(),
            headers={"Authorization": f"Bearer {service.keys.crm}",
                     "Content-Type": "application/json"},
        )
        body = _problem(response)
        assert body["errors"] == [{
            "field": "body.accounts[0].features.active_days_30d", "type": "finite_number",
            "message": body["errors"][0]["message"],
        }]
        assert "finite" in body["detail"]


@pytest.mark.parametrize(("name", "value", "accepted"), [
    ("active_days_30d", 0, True), ("active_days_30d", 30, True),
    ("active_days_30d", -5, False), ("active_days_30d", 31, False),
    ("csm_score", 1, True), ("csm_score", 0, False), ("csm_score", 5.5, False),
    ("logins_change_30d", -1, True), ("logins_change_30d", -1.01, False),
    ("logins_change_30d", 7.5, True),  # a change upwards has no bound
    ("days_to_renewal", -400, True),  # negative once the contract has lapsed
    ("seats", 0, False),
])
def test_what_if_values_valid_data_cannot_give_are_a_422(service, name, value, accepted):
    """Before: ``active_days_30d: -5`` was scored and explained as "-5 active days in the last
    30 days". The range is the registry's (``features.registry.VALUE_RANGES``)."""
    response = service.post("/v1/score", service.keys.crm,
                            json={"accounts": [{"account_id": ACC, "features": {name: value}}]})
    if accepted:
        assert response.status_code == 200, response.text
        return
    body = _problem(response)
    assert body["errors"][0]["field"] == f"body.accounts[0].features.{name}"
    assert body["errors"][0]["type"] == "out_of_range"
    assert f"not {value!r}" in body["errors"][0]["message"]


def test_the_openapi_document_states_each_range(service):
    schema = service.get("/openapi.json", service.keys.crm).json()
    found = []

    def walk(node):
        if isinstance(node, dict):
            props = node.get("properties", {})
            if "active_days_30d" in props and "csm_score" in props:
                found.append(props)
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(schema)
    assert found
    props = found[0]
    assert props["active_days_30d"]["anyOf"][0] == {"type": "number", "minimum": 0,
                                                    "maximum": 30}
    assert props["csm_score"]["anyOf"][0]["minimum"] == 1
    assert "minimum" not in props["days_to_renewal"]["anyOf"][0]
