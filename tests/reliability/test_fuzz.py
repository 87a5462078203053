"""API fuzzing: schemathesis generates requests from the app's own OpenAPI document.

Every operation is fuzzed with an admin key, a CSM key, a wrong key and no key, at least 100
generated cases each (plus schemathesis' example and coverage phases). Checks: schemathesis'
defaults (no 5xx, status codes, content types, headers and bodies as documented, invalid
input rejected, valid input accepted) plus ours: every error is ``application/problem+json``
with a problem body. Nothing is excluded. The rules JSON Schema cannot state are said in the
parameters' descriptions; valid cases follow them (:func:`follow_documented_rules`: an issued
cursor, thresholds in order), use the run's ``as_of`` (:func:`pin_metric_dates`: each date is
a pipeline run; the date ends have their own test), and the app allows private webhook URLs
(which hosts resolve in DNS cannot be documented; tests/workflows test the SSRF guard).

The app runs in-process over ASGI (schemathesis' ASGI transport): the same app a uvicorn
worker serves, without a socket. Measured: ~3x faster than a loopback server here.
The data are the service tests' seeded store (60 accounts, a tiny real LightGBM model), and
the latest scoring run points at a small simulated data directory so the cohort metrics
route computes for real.
"""

from __future__ import annotations

import copy
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import service_factories as factories
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from service_harness import DEAD_REGISTRY, LATEST, Keys, make_keys
from sqlalchemy import text

from features.levers import LEVERS
from features.registry import FEATURES
from renewal.settings import Settings
from service.app import create_app
from service.config import ServiceSettings
from service.db.engine import make_engine, make_session_factory
from service.db.migrate import upgrade
from service.model_store import ModelStore
from service.workflows.config import WorkflowSettings

pytestmark = pytest.mark.slow
FUZZ_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)


#: Subscriber URLs are not checked against DNS here (which hosts resolve cannot be documented
#: and this machine resolves none): the fuzz checks everything the document can say about a
#: URL; tests/workflows check the SSRF guard. No delivery worker: nothing is sent anywhere.
WORKFLOWS = WorkflowSettings(webhook_allow_private_urls=True, webhook_worker=False)


@dataclass
class FuzzStack:
    app: Any
    keys: Keys
    engine: Any

    def revive_example_webhook(self) -> None:
        """Undo the fuzzed DELETEs, so the retry route is reached past its 409 too."""
        with self.engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE webhook_subscriptions SET active = :t, disabled_at = NULL "
                    "WHERE id = :id"
                ),
                {"t": True, "id": EXAMPLE_WEBHOOK},
            )


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory, tiny_scorer, small_data_dir: Path):
    root = tmp_path_factory.mktemp("fuzz")
    # POST /v1/admin/reload asks the (dead) registry each time: fail at once, no retry.
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    url = f"sqlite:///{root / 'store.db'}"
    app_settings = Settings(
        data_dir=small_data_dir,
        models_dir=root / "models",
        database_url=url,
        tracking_uri=DEAD_REGISTRY,
    )
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    model = factories.loaded(tiny_scorer)
    factories.seed_history(factory, model, 60, LATEST)
    with engine.begin() as connection:  # the metrics route reads the latest run's data dir
        connection.execute(
            text("UPDATE scoring_runs SET data_dir = :d"), {"d": str(small_data_dir)}
        )
    keys = make_keys(factory)
    _seed_webhook(factory)
    store = ModelStore(app_settings)
    store.install(model)
    app = create_app(
        app_settings,
        ServiceSettings(key_cache_seconds=60),
        models=store,
        background=False,
        workflow_settings=WORKFLOWS,
    )
    yield FuzzStack(app, keys, engine)
    engine.dispose()
    patch.undo()


#: The webhook id the document gives as its example: the fuzzer's valid cases use it, so the
#: delivery log and retry routes are reached past their 404 (deliveries have ids 1-5).
EXAMPLE_WEBHOOK = "whk_0123456789abcdef"


def _seed_webhook(factory: Any) -> None:
    from service.db.engine import transaction
    from service.db.workflow_models import WebhookDelivery, WebhookEvent, WebhookSubscription

    with transaction(factory) as session:
        session.add(
            WebhookSubscription(
                id=EXAMPLE_WEBHOOK,
                url="https://hooks.example.com/renewal",
                events=["model_promoted"],
                secret="s" * 32,
                created_by="key_fuzz",
            )
        )
        for i in range(1, 6):
            event = WebhookEvent(
                event_id=f"evt_{i}", type="model_promoted", dedupe_key=f"fuzz-{i}", payload={}
            )
            session.add(event)
            session.flush()
            session.add(
                WebhookDelivery(
                    id=i,
                    event_id=event.id,
                    subscription_id=EXAMPLE_WEBHOOK,
                    status="failed",
                    attempts=8,
                    last_status_code=500,
                    last_error="HTTP 500",
                    attempt_log=[{"status_code": 500}],
                )
            )


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_stack: FuzzStack) -> Iterator[Any]:
    document = copy.deepcopy(fuzz_stack.app.openapi())
    # Each variant sends its own key; without the security scheme schemathesis does not
    # generate (or negate) the Authorization header that the variant would then replace.
    document.get("components", {}).pop("securitySchemes", None)
    for path_item in document["paths"].values():
        for operation in path_item.values():
            operation.pop("security", None)
    schema = schemathesis.openapi.from_dict(document)
    schema.app = fuzz_stack.app
    yield schema


def errors_are_problems(ctx: Any, response: Any, case: Any) -> bool | None:
    """Our check: every 4xx/5xx is RFC 9457 problem+json with type, title, status, detail."""
    if response.status_code < 400:
        return None
    media_type = response.headers.get("content-type", [""])
    media_type = media_type[0] if isinstance(media_type, list) else media_type
    assert media_type.startswith("application/problem+json"), (
        f"{response.status_code} answered with {media_type!r}, not application/problem+json"
    )
    body = response.json()
    missing = {"type", "title", "status", "detail"} - set(body)
    assert not missing, f"problem body lacks {sorted(missing)}"
    assert body["status"] == response.status_code
    return True


def follow_documented_rules(case: Any, key: str | None) -> Any:
    """Make a valid (positive) case follow the rules its parameters' descriptions state but
    JSON Schema cannot: a well-formed cursor is still one the API must have issued (for the
    same filters), and the disagreement thresholds must stay in order, defaults included."""
    query = case.query or {}
    if case.path == "/v1/risk-list" and query.get("cursor") is not None:
        issued = _issued_cursor(case, key)
        if issued is None:
            query.pop("cursor")
        else:
            query["cursor"] = issued
    if case.path == "/v1/disagreements":
        for low, high in (
            ("low_probability", "high_probability"),
            ("low_csm_score", "high_csm_score"),
        ):
            _keep_in_order(query, low, high)
    return case


def _issued_cursor(case: Any, key: str | None) -> str | None:
    """The cursor the API issues after the first item of the same filters (None: no page 2)."""
    query = {k: v for k, v in case.query.items() if k not in ("cursor", "limit")}
    response = case.operation.Case(query={**query, "limit": 1}).call(headers=_auth(key))
    return response.json().get("next_cursor") if response.status_code == 200 else None


def _keep_in_order(query: dict[str, Any], low: str, high: str) -> None:
    defaults = WORKFLOWS.model_dump()
    low_value = float(query.get(low, defaults[f"disagreement_{low}"]))
    high_value = float(query.get(high, defaults[f"disagreement_{high}"]))
    if low_value < high_value:
        return
    if low in query and high in query and low_value != high_value:
        query[low], query[high] = query[high], query[low]
    else:  # one of them against the other's default, or both equal: the defaults hold
        query.pop(low, None)
        query.pop(high, None)


def _is_positive(case: Any) -> bool:
    return case.meta is not None and not case.meta.generation.mode.is_negative


def pin_metric_dates(case: Any) -> Any:
    """Each cohort metric at a new as_of is a real feature-pipeline run (~0.5-1 s): valid
    cases of the metrics route use the run's as_of, so 100 of them fit in CI. Dates are
    fuzzed by the invalid-input variant and pinned by the regression tests."""
    if case.path.startswith("/v1/metrics/") and case.query:
        case.query.pop("as_of", None)
    return case


def negated_only_in_the_key_header(case: Any) -> bool:
    """A negative case whose only invalid part is the Authorization header: the fuzz replaces
    that header with the variant's key, so the request sent is not invalid any more."""
    meta = case.meta
    if meta is None:
        return False
    negated = {loc.value for loc, info in meta.components.items() if info.mode == NEGATIVE}
    return negated == {"header"}


def _auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key is not None else {}


def _call(case: Any, key: str | None) -> Any:
    if case.headers:
        case.headers.pop("Authorization", None)
    return case.call_and_validate(headers=_auth(key), additional_checks=[errors_are_problems])


PUBLIC = ("/healthz", "/readyz")
SERVED_FEATURES = frozenset(factories.FEATURE_NAMES)
WRONG_KEY = "rnw_" + "x" * 43
POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
#: (key, generation modes, cases per operation). The admin key reaches every line of every
#: route: 100 valid and 100 invalid cases per operation. "other-keys" draws, per case, a CSM
#: key, a wrong key or no key: 100 cases of both kinds per operation (the CSM key goes as far
#: as its role allows; without a valid key the request ends in the auth middleware).
VARIANTS = {
    "admin-valid-input": ("admin", [POSITIVE], 100),
    "admin-invalid-input": ("admin", [NEGATIVE], 100),
    "other-keys": ("other", [POSITIVE, NEGATIVE], 100),
}


def test_every_route_of_the_app_is_in_the_fuzzed_document(fuzz_schema, fuzz_stack: FuzzStack):
    """Only the key-guarded documentation routes are left out of the OpenAPI document."""
    from fastapi.routing import APIRoute

    from service.app import all_routes

    documented = {op.ok().label for op in fuzz_schema.get_all_operations()}
    routes = {
        f"{method} {route.path}"
        for route in all_routes(fuzz_stack.app)
        if isinstance(route, APIRoute)
        for method in route.methods
        if method != "HEAD"
    }
    assert routes - documented == {"GET /openapi.json"}


def _fuzz_operation(
    operation: Any, keys: list[str | None], modes: list[GenerationMode], examples: int
) -> Counter[int]:
    """Fuzz one operation; the requests sent, by response status (hypothesis stops early
    when an operation has fewer distinct cases, e.g. one without any parameter)."""
    strategy = st.one_of(*(operation.as_strategy(generation_mode=m) for m in modes))
    if modes == [POSITIVE]:
        strategy = strategy.map(pin_metric_dates)
    sent: Counter[int] = Counter()

    @settings(FUZZ_SETTINGS, max_examples=examples)
    @given(case=strategy, key=st.sampled_from(keys))
    def fuzz(case: Any, key: str | None) -> None:
        assume(not negated_only_in_the_key_header(case))
        if _is_positive(case):
            follow_documented_rules(case, key)
        response = _call(case, key)
        sent[response.status_code] += 1
        if key in (None, WRONG_KEY) and case.path not in PUBLIC:
            assert response.status_code == 401, response.text

    fuzz()
    return sent


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_fuzz_every_operation(fuzz_schema, fuzz_stack: FuzzStack, variant: str):
    """Each operation in turn; all failures are collected so one run shows them all."""
    role, modes, examples = VARIANTS[variant]
    keys = [fuzz_stack.keys.admin] if role == "admin" else [fuzz_stack.keys.csm_a, WRONG_KEY, None]
    failures = []
    for result in fuzz_schema.get_all_operations():
        operation = result.ok()
        fuzz_stack.revive_example_webhook()
        started = time.perf_counter()
        try:
            sent = _fuzz_operation(operation, keys, modes, examples)
        except Unsatisfiable:  # nothing to negate (no parameters, no body)
            continue
        except Exception as exc:  # report every operation, not only the first failing one
            failures.append(f"--- {operation.label}:\n{exc}")
            continue
        seconds = time.perf_counter() - started
        print(f"{variant} {operation.label}: {sent.total()} cases {dict(sent)}, {seconds:.1f} s")
    assert not failures, "\n".join(failures)


# -- what the fuzzing found: one regression test per finding ---------------------------------
# Each test keeps the seed of a finding (docs/reliability.md, F1-F16): the server's answer, and
# where the finding was a disagreement between the document and the server, the document's.


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


def test_f3_a_body_that_is_not_json_is_a_422_problem(seeded):
    response = seeded.client.post(
        "/v1/score",
        content=b"%\xfffl\xe9:{",
        headers={
            "Authorization": f"Bearer {seeded.keys.admin}",
            "Content-Type": "application/json",
        },
    )
    body = _problem(response, 422)
    assert body["errors"][0]["field"] == "body"


@pytest.mark.parametrize("query", ["csm_id=", "=true", "segmnet=smb", "cursor=%C2%8A%3DWl"])
def test_f4_f5_f7_empty_unknown_or_malformed_risk_list_parameters_are_422(seeded, query):
    response = seeded.get(f"/v1/risk-list?{query}", seeded.keys.admin)
    _problem(response, 422)


@pytest.mark.parametrize(
    ("url", "misspelt"),
    [
        ("/v1/accounts/acc-00000/health-inputs?limt=5", "limt"),
        ("/v1/accounts/acc-00000/renewal/history?limit=3&topp=1", "topp"),
        ("/v1/disagreements?low_probabilty=0.2", "low_probabilty"),
        ("/v1/stale-inputs?csm=csm-a", "csm"),
        ("/v1/metrics/renewal?group=segment", "group"),
        ("/v1/save-rate?confidance=0.9", "confidance"),
        ("/v1/forecast?month=3", "month"),
        ("/v1/webhooks?include_disable=true", "include_disable"),
        ("/v1/accounts/acc-00000/interventions?limits=5", "limits"),
    ],
)
def test_f7_every_route_with_query_parameters_refuses_an_unknown_one(seeded, url, misspelt):
    """A misspelt filter is a 422 naming it, never an unfiltered answer read as filtered."""
    body = _problem(seeded.get(url, seeded.keys.admin), 422)
    assert body["errors"] == [
        {"field": f"query.{misspelt}", "type": "extra_forbidden", "message": "unknown parameter"}
    ]


def test_f7_routes_without_query_parameters_ignore_the_query_string(seeded):
    """Cache busters (``?_=123``) stay harmless where there is nothing to misspell."""
    assert seeded.get("/v1/model?_=1", seeded.keys.admin).status_code == 200
    assert seeded.get("/v1/accounts/acc-00000/renewal?_=1", seeded.keys.admin).status_code == 200


def test_f6_the_documented_page_size_cap_is_the_enforced_one(seeded):
    document = seeded.client.app.openapi()
    parameters = document["paths"]["/v1/risk-list"]["get"]["parameters"]
    limit = next(p for p in parameters if p["name"] == "limit")
    maximum = next(s["maximum"] for s in limit["schema"]["anyOf"] if "maximum" in s)
    assert maximum == seeded.service_settings.max_page_size == 200
    assert seeded.get("/v1/risk-list?limit=200", seeded.keys.admin).status_code == 200
    _problem(seeded.get("/v1/risk-list?limit=201", seeded.keys.admin), 422)


def _request_schema(app: Any, path: str, method: str) -> dict[str, Any]:
    document = app.openapi()
    ref = document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    return document["components"]["schemas"][ref["$ref"].rsplit("/", 1)[-1]]


def _document_accepts(app: Any, path: str, method: str, body: Any) -> bool:
    import jsonschema

    document = app.openapi()
    schema = {**_request_schema(app, path, method), "components": document["components"]}
    return jsonschema.Draft202012Validator(json_refs_to_defs(schema)).is_valid(body)


def json_refs_to_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """Make ``#/components/schemas/X`` references resolvable inside one schema document."""
    text = json.dumps(schema).replace("#/components/schemas/", "#/$defs/")
    out = json.loads(text)
    out["$defs"] = out.pop("components")["schemas"]
    return out


def _query_parameter(app: Any, path: str, name: str, method: str = "get") -> dict[str, Any]:
    parameters = app.openapi()["paths"][path][method]["parameters"]
    return next(p for p in parameters if p["name"] == name)


SCORE = ("/v1/score", "post")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"account_ids": None},
        {"account_ids": None, "accounts": None},
        {"account_ids": ["acc-00000"], "accounts": [{"features": {}}]},
    ],
)
def test_f1_the_document_refuses_a_score_request_without_exactly_one_kind(seeded, body):
    _problem(seeded.post("/v1/score", seeded.keys.admin, json=body), 422)
    assert not _document_accepts(seeded.client.app, *SCORE, body)


@pytest.mark.parametrize(
    "body",
    [
        {"account_ids": ["acc-00000"]},
        {"account_ids": ["acc-00000"], "accounts": None},
        {"accounts": [{"features": {"active_days_30d": 3}}], "account_ids": None},
    ],
)
def test_f1_either_kind_alone_is_documented_and_accepted(seeded, body):
    assert _document_accepts(seeded.client.app, *SCORE, body)
    assert seeded.post("/v1/score", seeded.keys.admin, json=body).status_code == 200


def test_f2_an_unknown_feature_is_refused_by_the_document_and_named_by_the_server(seeded):
    body = {"accounts": [{"features": {"not_a_feature": 1}}]}
    problem = _problem(seeded.post("/v1/score", seeded.keys.admin, json=body), 422)
    assert problem["errors"][0]["field"] == "body.accounts[0].features.not_a_feature"
    assert problem["errors"][0]["type"] == "unknown_feature"
    assert not _document_accepts(seeded.client.app, *SCORE, body)


def test_f2_the_document_lists_every_registry_feature_with_its_type(seeded):
    schema = _request_schema(seeded.client.app, *SCORE)
    vector = seeded.client.app.openapi()["components"]["schemas"]["WhatIfVector"]
    features = vector["properties"]["features"]
    assert features["additionalProperties"] is False
    assert set(features["properties"]) == {f.name for f in FEATURES}
    assert schema["oneOf"]  # F1
    wrong_type = {"accounts": [{"features": {"exec_sponsor_active": 1}}]}
    assert not _document_accepts(seeded.client.app, *SCORE, wrong_type)
    _problem(seeded.post("/v1/score", seeded.keys.admin, json=wrong_type), 422)


def test_f2_a_registry_feature_the_model_does_not_read_is_accepted_and_moves_nothing(seeded):
    """A model retrained without an optional table must not break a CRM integration."""
    unread = next(f.name for f in FEATURES if f.name not in SERVED_FEATURES and f.kind == "numeric")
    base = {"account_id": "acc-00000", "features": {}}
    body = {"accounts": [base, {**base, "features": {unread: 123.0}}]}
    assert _document_accepts(seeded.client.app, *SCORE, body)
    response = seeded.post("/v1/score", seeded.keys.admin, json=body)
    assert response.status_code == 200, response.text
    plain, with_unread = response.json()["results"]
    assert plain["probability"] == with_unread["probability"]


HEALTH = "/v1/accounts/acc-00000/health-inputs"


@pytest.mark.parametrize("body", [{}, {"note": None}, {"csm_score": None, "note": None}])
def test_f8_the_document_refuses_an_empty_health_input(seeded, body):
    problem = _problem(seeded.put(HEALTH, seeded.keys.admin, json=body), 422)
    assert problem["errors"][0]["field"] == "body"
    path = "/v1/accounts/{account_id}/health-inputs"
    assert not _document_accepts(seeded.client.app, path, "put", body)
    assert _document_accepts(seeded.client.app, path, "put", {**body, "note": ""})


def test_f9_an_integral_float_csm_score_is_an_integer(seeded):
    response = seeded.put(HEALTH, seeded.keys.admin, json={"csm_score": 4.0})
    assert response.status_code == 200, response.text
    assert response.json()["health_input"]["csm_score"] == 4


@pytest.mark.parametrize("score", [4.5, "4", True])
def test_f9_a_fraction_a_string_or_a_boolean_is_not_a_csm_score(seeded, score):
    problem = _problem(seeded.put(HEALTH, seeded.keys.admin, json={"csm_score": score}), 422)
    assert problem["errors"][0]["field"] == "body.csm_score"


def test_f10_the_reload_422_is_documented_as_a_problem(seeded):
    _problem(seeded.post("/v1/admin/reload?force=0.9", seeded.keys.admin), 422)
    responses = seeded.client.app.openapi()["paths"]["/v1/admin/reload"]["post"]["responses"]
    assert "application/problem+json" in responses["422"]["content"]


@pytest.mark.parametrize("as_of", ["0.0", "0", "1700000000", "20250630", "2025-6-30"])
def test_f12_only_an_iso_date_is_a_metrics_date(seeded, as_of):
    problem = _problem(seeded.get(f"/v1/metrics/renewal?as_of={as_of}", seeded.keys.admin), 422)
    assert problem["errors"][0]["field"] == "query.as_of"


WHAT_IF = ("/v1/accounts/{account_id}/what-if", "post")


def test_f11_the_document_names_the_declared_levers_and_their_values(seeded):
    lever = seeded.client.app.openapi()["components"]["schemas"]["LeverIn"]
    assert lever["properties"]["name"]["enum"] == [lv.name for lv in LEVERS]
    app = seeded.client.app
    assert _document_accepts(app, *WHAT_IF, {"levers": [{"name": "exec_sponsor_active"}]})
    for refused in (
        {"levers": [{"name": "not_a_lever"}]},
        {"levers": [{"name": "exec_sponsor_active", "value": 0.5}]},
        {"levers": [{"name": "raise_seat_utilization"}]},  # needs its target
        {"levers": [{"name": "raise_seat_utilization", "value": 1.5}]},
        {"levers": [{"name": "exec_sponsor_active"}, {"name": "exec_sponsor_active"}]},
    ):
        assert not _document_accepts(app, *WHAT_IF, refused), refused
        url = "/v1/accounts/acc-00000/what-if"
        _problem(seeded.post(url, seeded.keys.admin, json=refused), 422)


def test_f11_an_on_off_lever_takes_true_not_one(seeded):
    """``1 == True`` in Python: the server read 1 as "on" where the document says true."""
    body = {"levers": [{"name": "exec_sponsor_active", "value": 1}]}
    assert not _document_accepts(seeded.client.app, *WHAT_IF, body)
    _problem(seeded.post("/v1/accounts/acc-00000/what-if", seeded.keys.admin, json=body), 422)


@pytest.mark.parametrize(
    "query",
    [
        "high_probability=0.17",
        "low_probability=0.9",
        "low_probability=0.5&high_probability=0.5",
        "low_csm_score=4",
        "low_csm_score=3&high_csm_score=2",
    ],
)
def test_f13_thresholds_out_of_order_are_a_422_the_document_describes(seeded, query):
    problem = _problem(seeded.get(f"/v1/disagreements?{query}", seeded.keys.admin), 422)
    assert problem["errors"][0]["type"] == "threshold_order"
    for name in ("low_probability", "high_probability", "low_csm_score", "high_csm_score"):
        parameter = _query_parameter(seeded.client.app, "/v1/disagreements", name)
        assert "else 422" in parameter["description"]


def test_f13_thresholds_in_order_are_accepted(seeded):
    query = "low_probability=0.3&high_probability=0.6&low_csm_score=1&high_csm_score=5"
    assert seeded.get(f"/v1/disagreements?{query}", seeded.keys.admin).status_code == 200


def test_f14_the_document_says_what_a_webhook_url_is(seeded):
    url = _request_schema(seeded.client.app, "/v1/webhooks", "post")["properties"]["url"]
    assert url["pattern"].startswith("^https?://")
    assert "DNS" in url["description"]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/x",
        "HTTPS://hooks.example.com/x",
        "https://[::1/x",
        "https://user:pw@hooks.example.com/",
        "https://hooks.example.com:99999/x",
        "https://hooks.example.com/a b",
    ],
)
def test_f14_a_url_outside_the_documented_pattern_is_a_422_never_a_500(seeded, url):
    body = {"url": url, "events": ["model_promoted"]}
    problem = _problem(seeded.post("/v1/webhooks", seeded.keys.admin, json=body), 422)
    assert problem["errors"][0]["field"] == "body.url"
    assert not _document_accepts(seeded.client.app, "/v1/webhooks", "post", body)


@pytest.mark.parametrize(
    "url",
    [
        "/v1/save-rate?confidence=0.9999999999999999",
        "/v1/save-rate?confidence=1e-300",
        "/v1/forecast?level=0.9999999999999999",
    ],
)
def test_f15_an_extreme_confidence_is_a_422_not_a_server_error(fuzz_stack, url):
    from fastapi.testclient import TestClient

    with TestClient(fuzz_stack.app, raise_server_exceptions=False) as client:
        response = client.get(url, headers=_auth(fuzz_stack.keys.admin))
        _problem(response, 422)
        for bound in ("0.5", "0.999"):
            ok = client.get(url.split("=")[0] + "=" + bound, headers=_auth(fuzz_stack.keys.admin))
            assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", "/v1/webhooks/whk_0123456789abcdef/deliveries/99999999999999999999999/retry"),
        ("post", f"/v1/webhooks/whk_0123456789abcdef/deliveries/{2**63}/retry"),
        ("get", f"/v1/webhooks/whk_0123456789abcdef/deliveries?before_id={2**63}"),
    ],
)
def test_f16_an_id_beyond_64_bits_is_a_422_not_a_server_error(seeded, method, url):
    response = getattr(seeded, method)(url, seeded.keys.admin)
    _problem(response, 422)


def test_f16_the_largest_64_bit_id_reaches_the_route(seeded):
    url = f"/v1/webhooks/whk_0123456789abcdef/deliveries/{2**63 - 1}/retry"
    _problem(seeded.post(url, seeded.keys.admin), 404)


def test_f17_retrying_a_delivery_of_a_disabled_webhook_is_a_documented_409(fuzz_stack):
    from fastapi.testclient import TestClient

    app = fuzz_stack.app
    responses = app.openapi()["paths"]["/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"]
    assert "application/problem+json" in responses["post"]["responses"]["409"]["content"]
    headers = _auth(fuzz_stack.keys.admin)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.delete(f"/v1/webhooks/{EXAMPLE_WEBHOOK}", headers=headers)
        response = client.post(
            f"/v1/webhooks/{EXAMPLE_WEBHOOK}/deliveries/1/retry", headers=headers
        )
    _problem(response, 409)


def test_f18_the_earliest_and_latest_metric_dates_are_answered(fuzz_stack):
    """The fuzz pins valid metric dates (each one is a pipeline run): the ends, here."""
    from fastapi.testclient import TestClient

    today = datetime.now(UTC).date().isoformat()
    with TestClient(fuzz_stack.app, raise_server_exceptions=False) as client:
        for as_of in ("1900-01-01", today):
            for metric in ("activation", "activity", "renewal", "ndr"):
                url = f"/v1/metrics/{metric}?as_of={as_of}"
                response = client.get(url, headers=_auth(fuzz_stack.keys.admin))
                assert response.status_code == 200, response.text


def _tomorrow() -> str:
    return (datetime.now(UTC).date() + timedelta(days=1)).isoformat()


@pytest.mark.parametrize("as_of", ["0001-01-01", "1899-12-31", "2100-01-01", "2999-12-31", None])
def test_f18_a_metric_date_out_of_range_is_a_422_not_a_500(fuzz_stack, as_of):
    """Years past 2262 overflowed the pipeline's nanosecond timestamps (500), year 1 a date
    (500), and a far-future date cost seconds of CPU per request: not after today."""
    from fastapi.testclient import TestClient

    as_of = as_of or _tomorrow()
    with TestClient(fuzz_stack.app, raise_server_exceptions=False) as client:
        response = client.get(
            f"/v1/metrics/activity?as_of={as_of}", headers=_auth(fuzz_stack.keys.admin)
        )
    assert _problem(response, 422)["errors"][0]["field"] == "query.as_of"
