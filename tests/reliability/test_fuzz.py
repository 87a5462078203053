"""API fuzzing: schemathesis generates requests from the app's own OpenAPI document.

Every operation is fuzzed with an admin key, a CSM key, a wrong key and no key, at least 100
generated cases each (plus schemathesis' example and coverage phases). Checks: schemathesis'
defaults (no 5xx, status codes, content types, headers and bodies as documented, invalid
input rejected) plus ours: every error is ``application/problem+json`` with a problem body.

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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import service_factories as factories
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
)
from service_harness import DEAD_REGISTRY, LATEST, Keys, make_keys
from sqlalchemy import text

from features.levers import LEVERS
from renewal.settings import Settings
from service.app import create_app
from service.config import ServiceSettings
from service.db.engine import make_engine, make_session_factory
from service.db.migrate import upgrade
from service.model_store import ModelStore

pytestmark = pytest.mark.slow
FUZZ_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)


@dataclass
class FuzzStack:
    app: Any
    keys: Keys


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
    store = ModelStore(app_settings)
    store.install(model)
    app = create_app(
        app_settings, ServiceSettings(key_cache_seconds=60), models=store, background=False
    )
    yield FuzzStack(app, keys)
    engine.dispose()
    patch.undo()


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


def open_finding(case: Any) -> bool:
    try:
        return _open_finding(case)
    except (
        TypeError,
        AttributeError,
        ValueError,
    ):  # an invalid body of another shape: not these findings
        return False


def _open_finding(case: Any) -> bool:
    """Cases of findings whose fix is in a file this suite's author does not own; each is
    pinned by an xfail(strict) regression test below, and left out of the fuzzing so that the
    fuzzer keeps looking for new ones."""
    body = case.body if isinstance(case.body, dict) else None
    query = case.query or {}
    if case.path.startswith("/v1/metrics/") and _is_number(query.get("as_of")):
        # F12: a number is read as a Unix timestamp for as_of (lax pydantic date).
        return True
    if case.path == "/v1/webhooks" and case.method == "POST" and body is not None:
        # F14: the document allows any string as a webhook URL.
        return not str(body.get("url", "https://")).startswith(("https://", "http://"))
    if case.path == "/v1/save-rate" and _is_number(query.get("confidence")):
        # F15: a confidence very close to 0 or 1 crashes the interval (500).
        return not 1e-6 < float(query["confidence"]) < 1 - 1e-6
    if case.path.endswith("/retry"):
        # F16: a delivery id beyond 64 bits crashes the database driver (500).
        return not -(2**63) <= int(case.path_parameters.get("delivery_id", 0)) < 2**63
    if case.path == "/v1/disagreements":
        # F13: low_probability must stay below high_probability (a rule the document omits).
        return "low_probability" in query or "high_probability" in query
    if case.path.endswith("/what-if") and body is not None:
        # F11: the document allows any lever name.
        levers = body.get("levers") if isinstance(body.get("levers"), list) else []
        return any(
            isinstance(lever, dict) and lever.get("name") not in KNOWN_LEVERS for lever in levers
        )
    if case.path.endswith("/health-inputs") and case.method == "PUT" and body is not None:
        # F8: the document allows a health input without any input.
        # F9: the document's "integer" csm_score admits 4.0; the strict model refuses it.
        return all(body.get(k) is None for k in HEALTH_INPUTS) or isinstance(
            body.get("csm_score"), float
        )
    if case.path == "/v1/score" and body is not None:
        # F1: the document allows neither account_ids nor accounts (or both).
        if (body.get("account_ids") is None) == (body.get("accounts") is None):
            return True
        # F2: the document allows any feature name in a what-if vector.
        vectors = body.get("accounts") or []
        return any(
            name not in SERVED_FEATURES
            for vector in vectors
            if isinstance(vector, dict) and isinstance(vector.get("features"), dict)
            for name in vector["features"]
        )
    return False


def _is_number(value: Any) -> bool:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return True
    try:
        float(str(value))
    except ValueError:
        return False
    return True


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


def _call(case: Any, key: str | None) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    if case.headers:
        case.headers.pop("Authorization", None)
    excluded = []
    if case.query and case.query.get("cursor") is not None:
        # An opaque cursor can be well-formed yet not one the API issued: 422 by design.
        excluded.append(positive_data_acceptance)
    if case.path == "/v1/webhooks" and case.method == "POST":
        # F14: a subscriber URL is checked against live DNS (SSRF guard): no document can
        # say which hosts resolve, and this machine resolves none.
        excluded.append(positive_data_acceptance)
    if case.path == "/v1/admin/reload":
        # F10: its 422 is not documented (FastAPI's default application/json one is).
        excluded.append(content_type_conformance)
    return case.call_and_validate(
        headers=headers, additional_checks=[errors_are_problems], excluded_checks=excluded
    )


PUBLIC = ("/healthz", "/readyz")
#: Operations of the workflow routers (another engineer's): fuzzed by their own test below.
OTHER_OWNERS: frozenset[str] = frozenset()
SERVED_FEATURES = frozenset(factories.FEATURE_NAMES)
KNOWN_LEVERS = frozenset(lever.name for lever in LEVERS)
HEALTH_INPUTS = ("exec_sponsor_active", "core_process_live", "csm_score", "note")
WRONG_KEY = "rnw_" + "x" * 43
POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
#: (key, generation modes, cases per operation). The admin key reaches every line of every
#: route: 100 valid and 100 invalid cases per operation. "other-keys" draws, per case, a CSM
#: key, a wrong key or no key (50 cases of both kinds per operation: without a valid key the
#: request ends in the auth middleware before any parsing, so its input matters little).
VARIANTS = {
    "admin-valid-input": ("admin", [POSITIVE], 100),
    "admin-invalid-input": ("admin", [NEGATIVE], 100),
    "other-keys": ("other", [POSITIVE, NEGATIVE], 50),
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
    assert routes - documented == {"GET /openapi.json", "GET /docs"}


def _fuzz_operation(
    operation: Any, keys: list[str | None], modes: list[GenerationMode], examples: int
) -> None:
    strategy = st.one_of(*(operation.as_strategy(generation_mode=m) for m in modes))
    if modes == [POSITIVE]:
        strategy = strategy.map(pin_metric_dates)

    @settings(FUZZ_SETTINGS, max_examples=examples)
    @given(case=strategy, key=st.sampled_from(keys))
    def fuzz(case: Any, key: str | None) -> None:
        assume(not open_finding(case) and not negated_only_in_the_key_header(case))
        response = _call(case, key)
        if key in (None, WRONG_KEY) and case.path not in PUBLIC:
            assert response.status_code == 401, response.text

    fuzz()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_fuzz_every_operation(fuzz_schema, fuzz_stack: FuzzStack, variant: str):
    """Each operation in turn; all failures are collected so one run shows them all."""
    role, modes, examples = VARIANTS[variant]
    keys = [fuzz_stack.keys.admin] if role == "admin" else [fuzz_stack.keys.csm_a, WRONG_KEY, None]
    failures = []
    for result in fuzz_schema.get_all_operations():
        operation = result.ok()
        if operation.label in OTHER_OWNERS:
            continue
        started = time.perf_counter()
        try:
            _fuzz_operation(operation, keys, modes, examples)
        except Unsatisfiable:  # nothing to negate (no parameters, no body)
            continue
        except Exception as exc:  # report every operation, not only the first failing one
            failures.append(f"--- {operation.label}:\n{exc}")
        print(f"{variant} {operation.label}: {time.perf_counter() - started:.1f} s")
    assert not failures, "\n".join(failures)


# -- what the fuzzing found: one regression test per finding ---------------------------------
# Fixed here: F3 (non-JSON body → undocumented 400), F5/F7 (empty or unknown query parameters
# silently ignored), F6 (documented page size 1000, enforced 200), F4 (cursor without format).
# Open (the fix is in a file owned by another engineer): xfail(strict=True) with the fix.


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
    resolver_schema = json_refs_to_defs(schema)
    return jsonschema.Draft202012Validator(resolver_schema).is_valid(body)


def json_refs_to_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """Make ``#/components/schemas/X`` references resolvable inside one schema document."""
    import json

    text = json.dumps(schema).replace("#/components/schemas/", "#/$defs/")
    out = json.loads(text)
    out["$defs"] = out.pop("components")["schemas"]
    return out


OPEN = "fix in service/api/schemas.py (owned by another engineer): "


@pytest.mark.xfail(
    strict=True,
    reason=OPEN + "ScoreRequest json_schema_extra oneOf [{required:[account_ids]}, "
    "{required:[accounts]}] (non-null), so the document refuses {} as the server does",
)
@pytest.mark.parametrize(
    "body", [{}, {"account_ids": None}, {"account_ids": None, "accounts": None}]
)
def test_f1_the_document_refuses_a_score_request_without_ids_or_vectors(seeded, body):
    _problem(seeded.post("/v1/score", seeded.keys.admin, json=body), 422)
    assert not _document_accepts(seeded.client.app, "/v1/score", "post", body)


@pytest.mark.xfail(
    strict=True,
    reason=OPEN + "WhatIfVector.features needs propertyNames enum of features.registry names "
    "(the server answers 422 unknown_feature for any other name)",
)
def test_f2_the_document_names_the_what_if_features(seeded):
    body = {"accounts": [{"features": {"not_a_feature": 1}}]}
    _problem(seeded.post("/v1/score", seeded.keys.admin, json=body), 422)
    assert not _document_accepts(seeded.client.app, "/v1/score", "post", body)


@pytest.mark.xfail(
    strict=True,
    reason=OPEN + "HealthInputIn needs anyOf of one non-null input (server: 'give at least one')",
)
@pytest.mark.parametrize("body", [{}, {"note": None}])
def test_f8_the_document_refuses_an_empty_health_input(seeded, body):
    url = "/v1/accounts/acc-00000/health-inputs"
    _problem(seeded.put(url, seeded.keys.admin, json=body), 422)
    assert not _document_accepts(
        seeded.client.app, url.replace("acc-00000", "{account_id}"), "put", body
    )


@pytest.mark.xfail(
    strict=True,
    reason=OPEN + "csm_score is StrictInt but documented as JSON 'integer', which admits 4.0: "
    "accept integral floats (or document multipleOf/type) so 4.0 is not a 422",
)
def test_f9_an_integral_float_csm_score_is_accepted_as_documented(seeded):
    url = "/v1/accounts/acc-00000/health-inputs"
    assert seeded.put(url, seeded.keys.admin, json={"csm_score": 4.0}).status_code == 200


@pytest.mark.xfail(
    strict=True,
    reason="fix in service/api/admin.py (another engineer's): responses=problem_responses(401, "
    "403, 422, 503) so the 422 is documented as application/problem+json",
)
def test_f10_the_reload_422_is_documented_as_a_problem(seeded):
    _problem(seeded.post("/v1/admin/reload?force=0.9", seeded.keys.admin), 422)
    responses = seeded.client.app.openapi()["paths"]["/v1/admin/reload"]["post"]["responses"]
    assert "application/problem+json" in responses["422"]["content"]


@pytest.mark.xfail(
    strict=True,
    reason="fix in service/api/metrics.py (another engineer's): as_of as a strict date "
    "(Annotated[date, Strict()] or a YYYY-MM-DD pattern); 0.0 is read as 1970-01-01 now",
)
def test_f12_a_number_is_not_a_metrics_date(seeded):
    _problem(seeded.get("/v1/metrics/renewal?as_of=0.0", seeded.keys.admin), 422)


@pytest.mark.xfail(
    strict=True,
    reason="fix in service/api/workflow_schemas.py / what_if.py (another engineer's): "
    "document lever names as an enum of features.levers.LEVERS",
)
def test_f11_the_document_names_the_levers(seeded):
    schema = _request_schema(seeded.client.app, "/v1/accounts/{account_id}/what-if", "post")
    assert "enum" in json.dumps(schema)


@pytest.mark.xfail(
    strict=True,
    reason="fix in service/api/disagreements.py (another engineer's): the rule "
    "low_probability < high_probability (defaults included) is not in the document; "
    "e.g. ?high_probability=0.17 alone is schema-valid and answers 422",
)
def test_f13_a_schema_valid_disagreements_query_is_accepted(seeded):
    response = seeded.get("/v1/disagreements?high_probability=0.17", seeded.keys.admin)
    assert response.status_code == 200, response.text


@pytest.mark.xfail(
    strict=True,
    reason="fix in service/api/webhooks.py / workflow_schemas.py (another engineer's): "
    "document url with format uri and pattern ^https?:// (the server answers 422 unsafe_url)",
)
def test_f14_the_document_says_what_a_webhook_url_is(seeded):
    schema = _request_schema(seeded.client.app, "/v1/webhooks", "post")
    url = schema["properties"]["url"]
    assert "pattern" in json.dumps(url)


@pytest.mark.xfail(
    strict=True,
    reason="fix in service/api/interventions.py / service/workflows/interventions.py "
    "(another engineer's): confidence=0.9999999999999999 raises 'p must be in the range "
    "0.0 < p < 1.0' (the normal quantile of (1+confidence)/2 rounds to 1): 500; bound it, "
    "e.g. Query(ge=0.5, le=0.999)",
)
@pytest.mark.parametrize("confidence", ["0.9999999999999999"])
def test_f15_an_extreme_confidence_is_not_a_server_error(fuzz_stack, confidence):
    from fastapi.testclient import TestClient

    with TestClient(fuzz_stack.app, raise_server_exceptions=False) as client:
        response = client.get(
            f"/v1/save-rate?confidence={confidence}",
            headers={"Authorization": f"Bearer {fuzz_stack.keys.admin}"},
        )
    assert response.status_code < 500, response.text


@pytest.mark.xfail(
    strict=True,
    reason="fix in service/api/webhooks.py (another engineer's): delivery_id as "
    "Path(ge=1, le=2**63 - 1); a larger id reaches the driver (OverflowError → 500)",
)
def test_f16_a_huge_delivery_id_is_not_a_server_error(seeded):
    response = seeded.post(
        "/v1/webhooks/whk_0123456789abcdef/deliveries/99999999999999999999999/retry",
        seeded.keys.admin,
    )
    assert response.status_code < 500, response.text
