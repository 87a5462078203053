"""The ops page's server-side sessions, against the real store (SQLite and PostgreSQL): the
cookie holds a random token, never the key; signing out, expiry and revocation end a session
for every copy of its cookie; neither credential works in the other's place; CSRF stays."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from service_harness import Service, build_service, post_sign_in, sign_in_page
from sqlalchemy import inspect, select, text, update

from service.db.engine import make_session_factory, transaction
from service.db.migrate import downgrade, head_revision, upgrade
from service.db.models import ApiKey, UiSession, utc_now
from service.db.ui_sessions import SESSION_LIFETIME, find_session, hash_token, open_session
from service.keys import hash_key
from service.ui.security import csrf_token
from service.verifiers import KeyVerifier

RENEWAL = str(Path(sys.executable).parent / "renewal")
COOKIE = "renewal_ui_session"


@pytest.fixture
def service(tmp_path: Path, scorer, database_url: str) -> Iterator[Service]:
    """The seeded app on each backend (``database_url``: SQLite, and PostgreSQL when up)."""
    yield from build_service(tmp_path, scorer, database_url=database_url, n_accounts=12)


@dataclass
class SignedIn:
    token: str  # the cookie's value
    csrf: str  # the page's CSRF token


def sign_in(service: Service, key: str) -> SignedIn:
    page = sign_in_page(service.client, key)
    assert page.status_code == 200 and "<h1>Risk list</h1>" in page.text, page.text[:300]
    csrf = re.search(r'"X-CSRF-Token": "([0-9a-f]{64})"', page.text)
    assert csrf
    token = service.client.cookies.get(COOKIE)
    assert token
    return SignedIn(token, csrf.group(1))


def with_cookie(service: Service, path: str, token: str, **headers: str):
    """GET ``path`` as a browser holding (a copy of) the session cookie ``token``."""
    service.client.cookies.clear()
    return service.client.get(path, headers={"Cookie": f"{COOKIE}={token}", **headers},
                              follow_redirects=False)


def key_id_of(service: Service, key: str) -> str:
    with service.factory() as session:
        return session.scalars(select(ApiKey.id).where(ApiKey.key_hash == hash_key(key))).one()


def sessions_of(service: Service) -> list[UiSession]:
    with service.factory() as session:
        return list(session.scalars(select(UiSession)))


def assert_sent_to_sign_in(service: Service, token: str) -> None:
    page = with_cookie(service, "/ui/risk-list", token)
    assert page.status_code == 303 and page.headers["location"] == "/ui/login"
    htmx = with_cookie(service, "/ui/risk-list", token, **{"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["hx-redirect"] == "/ui/login"


# -- what the cookie and the table hold ------------------------------------------------------


def test_the_cookie_holds_a_random_token_and_the_store_only_its_hash(service):
    key = service.keys.csm_a
    first = sign_in(service, key)
    second = sign_in(service, key)
    assert key not in first.token and first.token != second.token
    assert len(first.token) >= 43  # 256 random bits, url-safe
    with service.factory() as session:
        dump = " ".join(str(v) for row in session.execute(text("SELECT * FROM ui_sessions"))
                        for v in row)
    assert first.token not in dump and key not in dump and hash_key(key) not in dump
    rows = {row.token_hash: row for row in sessions_of(service)}
    assert set(rows) == {hash_token(first.token), hash_token(second.token)}
    row = rows[hash_token(first.token)]
    assert row.key_id == key_id_of(service, key)
    assert row.expires_at - row.created_at == timedelta(hours=8) == SESSION_LIFETIME
    assert abs((row.created_at - utc_now()).total_seconds()) < 60
    # Each session is a page of its own, signed in as the key's holder.
    page = with_cookie(service, "/ui/risk-list", first.token)
    assert page.status_code == 200 and "alice" in page.text


def test_the_cookie_keeps_its_flags(service):
    service.client.cookies.clear()
    answer = post_sign_in(service.client, service.keys.crm, follow_redirects=False)
    assert answer.status_code == 303
    (cookie,) = [v for k, v in answer.headers.multi_items()
                 if k == "set-cookie" and v.startswith(f"{COOKIE}=")]
    flags = cookie.lower()
    assert "httponly" in flags and "samesite=strict" in flags and "path=/ui" in flags
    assert "max-age=28800" in flags
    assert service.keys.crm not in cookie


# -- neither credential works in the other's place -------------------------------------------


def test_the_session_token_is_not_an_api_key(service):
    signed_in = sign_in(service, service.keys.admin)
    for path in ("/v1/risk-list", "/v1/model"):
        response = service.get(path, signed_in.token)
        assert response.status_code == 401, path
        assert response.json()["detail"] == "unknown or revoked API key"
    # Nor does the API read the cookie itself (it takes the header only).
    service.client.cookies.clear()
    response = service.client.get("/v1/risk-list",
                                  headers={"Cookie": f"{COOKIE}={signed_in.token}"})
    assert response.status_code == 401
    assert service.get("/v1/risk-list", service.keys.admin).status_code == 200


def test_the_api_key_is_not_a_session_cookie(service):
    for key in (service.keys.admin, service.keys.csm_a):
        assert_sent_to_sign_in(service, key)


# -- how a session ends ----------------------------------------------------------------------


def test_a_copied_cookie_stops_working_after_sign_out(service):
    signed_in = sign_in(service, service.keys.csm_a)
    other = sign_in(service, service.keys.csm_a)  # another browser of the same key
    assert with_cookie(service, "/ui/risk-list", signed_in.token).status_code == 200
    out = service.client.post("/ui/logout", data={"csrf_token": signed_in.csrf},
                              headers={"Cookie": f"{COOKIE}={signed_in.token}"},
                              follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    assert any(k == "set-cookie" and v.startswith(f"{COOKIE}=") and "max-age=0" in v.lower()
               for k, v in out.headers.multi_items())  # and the browser forgets it
    assert_sent_to_sign_in(service, signed_in.token)  # the copy is dead
    assert [row.token_hash for row in sessions_of(service)] == [hash_token(other.token)]
    assert with_cookie(service, "/ui/risk-list", other.token).status_code == 200


def test_signing_in_again_in_the_same_browser_ends_its_previous_session(service):
    before = sign_in(service, service.keys.crm)
    service.client.cookies.clear()
    service.client.cookies.set(COOKIE, before.token)  # the browser still holds it
    again = post_sign_in(service.client, service.keys.admin, follow_redirects=False)
    assert again.status_code == 303
    after = again.cookies[COOKIE]
    assert_sent_to_sign_in(service, before.token)
    assert [row.token_hash for row in sessions_of(service)] == [hash_token(after)]
    assert with_cookie(service, "/ui/risk-list", after).status_code == 200


def test_an_expired_session_goes_to_the_sign_in_page(service):
    signed_in = sign_in(service, service.keys.crm)
    with transaction(service.factory) as session:
        session.execute(update(UiSession).where(UiSession.token_hash == hash_token(signed_in.token))
                        .values(expires_at=utc_now() - timedelta(seconds=1)))
    assert_sent_to_sign_in(service, signed_in.token)


def test_signing_in_purges_expired_sessions(service):
    key_id = key_id_of(service, service.keys.crm)
    long_ago = utc_now() - timedelta(days=2)
    with transaction(service.factory) as session:
        live = open_session(session, key_id)
        stale = [f"stale-{i}" for i in range(3)]  # as left by browsers never signed out
        session.add_all(UiSession(token_hash=hash_token(t), key_id=key_id, created_at=long_ago,
                                  expires_at=long_ago + SESSION_LIFETIME) for t in stale)
    assert len(sessions_of(service)) == 4
    fresh = sign_in(service, service.keys.admin)
    assert {row.token_hash for row in sessions_of(service)} == {
        hash_token(live), hash_token(fresh.token)}
    assert not {hash_token(t) for t in stale} & {row.token_hash for row in sessions_of(service)}


def test_revoking_the_key_ends_its_sessions(service):
    signed_in = sign_in(service, service.keys.csm_b)
    assert with_cookie(service, "/ui/risk-list", signed_in.token).status_code == 200
    env = {**os.environ, "RENEWAL_DATABASE_URL": service.settings.database_url,
           "RENEWAL_DATA_DIR": str(service.settings.data_dir)}
    done = subprocess.run([RENEWAL, "keys", "revoke", key_id_of(service, service.keys.csm_b)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert_sent_to_sign_in(service, signed_in.token)
    assert sign_in_page(service.client, service.keys.csm_b).status_code == 401


def test_a_session_the_store_cannot_check_is_a_503_not_a_sign_out(service):
    signed_in = sign_in(service, service.keys.crm)
    with service.factory() as session:
        session.execute(text("DROP TABLE ui_sessions"))
        session.commit()
    page = with_cookie(service, "/ui/risk-list", signed_in.token)
    assert page.status_code == 503
    assert page.headers["content-type"] == "application/problem+json"
    assert "database-unavailable" in page.json()["type"]
    assert page.headers["retry-after"] == str(service.service_settings.db_retry_after_seconds)


# -- CSRF ------------------------------------------------------------------------------------


def test_csrf_is_still_required_and_bound_to_the_session(service):
    first = sign_in(service, service.keys.csm_a)
    second = sign_in(service, service.keys.csm_a)  # same key, another session
    assert first.csrf == csrf_token(first.token) != second.csrf
    assert first.token not in first.csrf
    account = next(e.account_id for e in service.client.app.state.context.cache.risk_order
                   if e.csm_id == "csm-a")
    path = f"/ui/accounts/{account}/health-inputs"
    cookie = {"Cookie": f"{COOKIE}={first.token}"}
    service.client.cookies.clear()
    for sent in ({}, {"csrf_token": "0" * 64}, {"csrf_token": second.csrf}):
        response = service.client.post(path, data={"csm_score": "2", **sent}, headers=cookie,
                                        follow_redirects=False)
        assert response.status_code == 403, sent
    refused = service.client.post("/ui/logout", headers=cookie, follow_redirects=False)
    assert refused.status_code == 403  # no forged sign-out either
    assert with_cookie(service, "/ui/risk-list", first.token).status_code == 200
    posted = service.client.post(path, data={"csm_score": "2", "csrf_token": first.csrf},
                                 headers=cookie, follow_redirects=False)
    assert posted.status_code == 303


# -- the verifier's cache --------------------------------------------------------------------


def test_a_cached_session_lasts_at_most_the_ttl_and_sign_out_forgets_it_at_once(engine):
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        key = ApiKey(id="key_cache", name="c", role="crm", key_hash="0" * 64,
                     created_at=utc_now())
        session.add(key)
    this_worker = KeyVerifier(factory, ttl_seconds=2).sessions
    other_worker = KeyVerifier(factory, ttl_seconds=2).sessions
    token = this_worker.open("key_cache")
    assert this_worker.cached(token) is None  # opening does not trust it without a check
    assert this_worker.verify(token).key_id == other_worker.verify(token).key_id == "key_cache"
    assert this_worker.cached(token) is not None and other_worker.cached(token) is not None
    this_worker.close(token)
    assert this_worker.cached(token) is None and this_worker.verify(token) is None
    assert other_worker.cached(token) is not None  # another worker: until the TTL ...
    time.sleep(2.1)
    assert other_worker.cached(token) is None and other_worker.verify(token) is None  # ... only
    # Never trusted beyond the session's own expiry, whatever the TTL.
    with transaction(factory) as session:
        short = open_session(session, "key_cache", now=utc_now() - SESSION_LIFETIME
                             + timedelta(seconds=1.5))
    patient = KeyVerifier(factory, ttl_seconds=3600).sessions
    assert patient.verify(short) is not None
    time.sleep(1.6)
    assert patient.cached(short) is None
    with factory() as session:
        assert find_session(session, short) is None


def test_a_check_under_way_at_sign_out_does_not_trust_the_session_again(engine, monkeypatch):
    """A request with a copy of the cookie reads the session just before the sign-out
    commits, and finishes after it: it must not put the session back into this worker's
    cache (found by review: the copy then worked for the TTL)."""
    import service.verifiers as verifiers

    factory = make_session_factory(engine)
    with transaction(factory) as session:
        session.add(ApiKey(id="key_race", name="r", role="crm", key_hash="1" * 64,
                           created_at=utc_now()))
    worker = KeyVerifier(factory, ttl_seconds=60).sessions
    token = worker.open("key_race")
    read, signed_out = threading.Event(), threading.Event()
    real_find = verifiers.find_session

    def find_then_stall(session, wanted, now=None):
        found = real_find(session, wanted, now)  # the row, read before the delete
        read.set()
        signed_out.wait(5)
        return found

    monkeypatch.setattr(verifiers, "find_session", find_then_stall)
    racing = threading.Thread(target=worker.verify, args=(token,))
    racing.start()
    assert read.wait(5)
    monkeypatch.setattr(verifiers, "find_session", real_find)
    worker.close(token)
    signed_out.set()
    racing.join(5)
    assert worker.cached(token) is None
    assert worker.verify(token) is None


# -- the migration ---------------------------------------------------------------------------


def test_the_migration_adds_and_removes_the_table(engine):
    assert "ui_sessions" in inspect(engine).get_table_names()
    assert downgrade(engine, "0005_event_account_index") == "0005_event_account_index"
    tables = inspect(engine).get_table_names()
    assert "ui_sessions" not in tables and "api_keys" in tables
    assert upgrade(engine) == head_revision()
    assert "ui_sessions" in inspect(engine).get_table_names()
    foreign = inspect(engine).get_foreign_keys("ui_sessions")
    assert [(f["referred_table"], f["constrained_columns"]) for f in foreign] == [
        ("api_keys", ["key_id"])]


# -- logs ------------------------------------------------------------------------------------


def test_no_key_or_token_reaches_the_logs(service, caplog):
    caplog.set_level(logging.DEBUG)
    signed_in = sign_in(service, service.keys.admin)
    with_cookie(service, "/ui/risk-list", signed_in.token)
    service.client.post("/ui/logout", data={"csrf_token": signed_in.csrf},
                        headers={"Cookie": f"{COOKIE}={signed_in.token}"})
    with_cookie(service, "/ui/risk-list", signed_in.token)
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    for secret in (service.keys.admin, signed_in.token, hash_token(signed_in.token)):
        assert secret not in logged
