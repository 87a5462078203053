"""Findings of the security audit (docs/reliability.md, "Security"), each with the request
that showed it: customer data in the server log on an unexpected error, a broken data
directory described to every key, and the page's session cookie without ``Secure`` behind a
TLS-terminating proxy. Plus checks of what the audit found sound and nothing else covered
without a browser (revocation ends a page session)."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from service_harness import LATEST

from service.db import scores as scores_db
from service.db.engine import transaction
from service.db.models import ApiKey, ScoringRun
from service.keys import revoke_key
from service.model_store import ModelStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflows"))
from workflow_factories import ThreadedServer  # noqa: E402

#: What a failing line of code may hold: an account id and a note's words.
SECRET = "acc-00042: the sponsor left, renewal at risk"
CONTRACTS_HEADER = "contract_id,account_id,start_date,end_date,arr,renewed,next_arr\n"


class Collected(logging.Handler):
    """Every record of a logger, formatted as a log file would show it (traceback included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logging.Formatter().format(record))


@contextmanager
def server_log(*names: str) -> Iterator[Collected]:
    collected = Collected()
    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.addHandler(collected)
    try:
        yield collected
    finally:
        for logger in loggers:
            logger.removeHandler(collected)


def _broken(*_args, **_kwargs):
    raise KeyError(SECRET)


def _sign_in(client: httpx.Client | TestClient, key: str, **headers: str):
    form = client.get("/ui/login", headers=headers)
    token = re.search(r'name="login_token" value="([^"]+)"', form.text)
    assert token, form.text[:300]
    return client.post("/ui/login", data={"api_key": key, "login_token": token.group(1)},
                       headers=headers, follow_redirects=False)


# --- An unexpected error: answered by the app, never re-raised to the server ----------------


@pytest.mark.parametrize("where", ["route", "authentication middleware"])
def test_an_unexpected_api_error_reaches_the_server_log_without_its_message(
    service, monkeypatch, where
):
    """Found: Starlette's error middleware answered with the app's 500 handler and then
    re-raised, so uvicorn logged "Exception in ASGI application" with the full traceback,
    ``KeyError: 'acc-00042: the sponsor left...'`` included (the in-process tests did not
    see it: TestClient swallows what the app re-raises). The middlewares around the routes
    (authentication, telemetry) sit outside the routes' guard and have their own."""
    from service.verifiers import KeyVerifier

    if where == "route":
        monkeypatch.setattr(ModelStore, "require", _broken)
    else:
        monkeypatch.setattr(KeyVerifier, "cached", _broken)
    with ThreadedServer(service.client.app) as server, \
            server_log("uvicorn.error", "uvicorn", "service") as log:
        response = httpx.get(f"{server.base}/v1/model",
                             headers={"Authorization": f"Bearer {service.keys.crm}"})
    assert response.status_code == 500
    assert response.json()["detail"] == "an unexpected error occurred"
    logged = "\n".join(log.lines)
    assert "unhandled KeyError at" in logged  # the type and where: still there
    assert "acc-00042" not in logged and "sponsor" not in logged, logged[-2000:]


def test_an_unexpected_page_error_reaches_the_server_log_without_its_message(
    service, monkeypatch
):
    import service.ui.routes.risk_list as risk_list

    monkeypatch.setattr(risk_list, "risk_rows", _broken)
    with ThreadedServer(service.client.app) as server, \
            server_log("uvicorn.error", "uvicorn", "service") as log, \
            httpx.Client(base_url=server.base) as browser:
        assert _sign_in(browser, service.keys.csm_a).status_code == 303
        page = browser.get("/ui/risk-list")
    assert page.status_code == 500 and "an unexpected error occurred" in page.text
    assert "content-security-policy" in page.headers  # the page's own error page
    logged = "\n".join(log.lines)
    assert "unhandled KeyError on the web page" in logged
    assert "acc-00042" not in logged and "sponsor" not in logged, logged[-2000:]


def test_an_unexpected_error_does_not_escape_the_app(service, monkeypatch):
    """The same, in process: an ASGI server gets an answer, never the exception."""
    monkeypatch.setattr(ModelStore, "require", _broken)
    client = TestClient(service.client.app)  # raises whatever the app lets escape
    response = client.get("/v1/model", headers={"Authorization": f"Bearer {service.keys.crm}"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"


# --- A broken data directory: its problems are for operators -------------------------------


def _run_on(service, data_dir: Path) -> None:
    with transaction(service.factory) as session:
        scores_db.record_run(session, ScoringRun(
            as_of=LATEST, data_dir=str(data_dir), model_name="renewal", model_version="1",
            accounts_scored=60, accounts_lost=0, warnings=[],
            started_at=datetime.now(UTC), finished_at=datetime.now(UTC)))


@pytest.mark.parametrize("route", ["/v1/forecast", "/v1/save-rate"])
def test_a_broken_data_directory_is_described_in_full_to_admin_keys_only(
    service, tmp_path, route
):
    """Found: ``GET /v1/forecast`` with a CSM key answered 503 "...: contracts: required
    table is missing in /srv/..." (the server's path, which the API shows only to admin
    keys) and, for a bad cell, "contracts.end_date: ... e.g. <the cell's value>" of any
    account."""
    data_dir = tmp_path / "served-data"
    data_dir.mkdir()
    _run_on(service, data_dir)
    for key in (service.keys.csm_a, service.keys.crm):
        body = service.get(route, key).json()
        assert body["status"] == 503 and body["type"].endswith(":data-unavailable")
        assert str(tmp_path) not in body["detail"], body["detail"]
        assert body["detail"].endswith("1 problem(s) in contracts (an admin key sees them)")
    admin = service.get(route, service.keys.admin).json()
    assert str(data_dir) in admin["detail"]  # operators still read what to fix

    (data_dir / "contracts.csv").write_text(
        CONTRACTS_HEADER + "c1,acc-00001,2024-01-01,sponsor-left-acc-00001,1000,,\n"
    )
    body = service.get(route, service.keys.csm_a).json()
    assert body["status"] == 503 and "sponsor-left" not in body["detail"], body["detail"]
    assert "sponsor-left" in service.get(route, service.keys.admin).json()["detail"]


# --- The page's session cookie behind a TLS-terminating proxy ------------------------------


def _set_cookie(response, name: str) -> str:
    found = [v for k, v in response.headers.multi_items()
             if k == "set-cookie" and v.startswith(f"{name}=")]
    assert found, response.headers
    return found[0]


@pytest.mark.parametrize("proxy_header", [
    {"X-Forwarded-Proto": "https"},
    {"Forwarded": 'for=192.0.2.60;proto=https;by="203.0.113.43"'},
])
def test_the_session_cookie_is_secure_behind_a_tls_proxy(service, proxy_header):
    """Found: uvicorn rewrites the scheme only for proxies on 127.0.0.1 (its default
    ``forwarded_allow_ips``), so behind a TLS proxy elsewhere (another container) the page
    saw http and set the session cookie (a sign-in to the page) without ``Secure``."""
    client = service.client
    client.cookies.clear()
    form = client.get("/ui/login", headers=proxy_header)
    login_cookie = _set_cookie(form, "renewal_ui_login")
    assert "; secure" in login_cookie.lower()
    token = re.search(r'name="login_token" value="([^"]+)"', form.text).group(1)
    client.cookies.clear()  # the test client is on http: it holds Secure cookies back
    signed_in = client.post(
        "/ui/login", data={"api_key": service.keys.csm_a, "login_token": token},
        headers={**proxy_header, "Cookie": login_cookie.split(";")[0]}, follow_redirects=False,
    )
    assert signed_in.status_code == 303
    cookie = _set_cookie(signed_in, "renewal_ui_session").lower()
    assert "; secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert signed_in.headers["strict-transport-security"] == "max-age=31536000"


def test_the_session_cookie_over_plain_http_is_not_marked_secure(service):
    """Plain http (a laptop, ``renewal serve`` on loopback) still signs in: a Secure cookie
    would never be sent back."""
    client = service.client
    client.cookies.clear()
    signed_in = _sign_in(client, service.keys.csm_a)
    assert "; secure" not in _set_cookie(signed_in, "renewal_ui_session").lower()
    assert "strict-transport-security" not in signed_in.headers
    assert client.get("/ui/risk-list").status_code == 200


# --- Sound, and now checked without a browser ----------------------------------------------


def test_revoking_a_key_signs_its_open_page_sessions_out(service):
    client = service.client
    client.cookies.clear()
    assert _sign_in(client, service.keys.csm_a).status_code == 303
    assert client.get("/ui/risk-list").status_code == 200
    with transaction(service.factory) as session:
        row = session.query(ApiKey).filter(ApiKey.csm_id == "csm-a").one()
        revoke_key(session, row.id)
    page = client.get("/ui/risk-list", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/ui/login"
    htmx = client.get("/ui/risk-list", headers={"HX-Request": "true"}, follow_redirects=False)
    assert htmx.status_code == 401 and htmx.headers["hx-redirect"] == "/ui/login"


def test_notes_and_account_ids_are_text_on_the_page(service):
    note = "<img src=x onerror=alert(1)>\"'"
    assert service.put("/v1/accounts/acc-00000/health-inputs", service.keys.csm_a,
                       json={"note": note}).status_code == 200
    client = service.client
    client.cookies.clear()
    _sign_in(client, service.keys.csm_a)
    page = client.get("/ui/accounts/acc-00000").text
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    missing = client.get("/ui/accounts/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert missing.status_code == 404 and "<script>alert(1)" not in missing.text
