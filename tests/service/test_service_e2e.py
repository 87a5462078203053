"""End to end, as a user runs it: simulate → train → score → serve (real uvicorn on loopback)
→ the CRM reads drivers in words, a CSM cannot see another CSM's account, a health input
changes the score now and in the next scoring run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pandas as pd
import pytest
from live_server import free_port, wait_until_ready

from renewal.simulator import simulate

pytestmark = pytest.mark.slow
AS_OF = "2025-12-31"
NEXT_MONTH = "2026-01-31"
RENEWAL = [str(Path(sys.executable).parent / "renewal")]  # the installed console script


def run(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [*RENEWAL, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"renewal {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def new_key(env, cwd, *args: str) -> str:
    return run(["keys", "create", *args], env, cwd).strip().splitlines()[-1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Data, a registered champion and one scoring run, then `renewal serve` in a process.

    Simulation, training and scoring run in this process (the same functions the commands
    call, without paying their start-up again); the server is the real console script.
    """
    from renewal.settings import Settings
    from service.config import ServiceSettings
    from service.scoring import run_scoring
    from training.config import load_train_config
    from training.train import run_training

    root = tmp_path_factory.mktemp("e2e")
    settings = Settings(data_dir=root / "work", models_dir=root / "models")
    env = {
        **os.environ,
        "RENEWAL_DATA_DIR": str(settings.data_dir),
        "RENEWAL_MODELS_DIR": str(settings.models_dir),
        "RENEWAL_CACHE_REFRESH_SECONDS": "1",
        "RENEWAL_KEY_CACHE_SECONDS": "0",
        # The receiver of the webhook test listens on loopback; deliver quickly.
        "RENEWAL_WEBHOOK_ALLOW_PRIVATE_URLS": "true",
        "RENEWAL_WEBHOOK_POLL_SECONDS": "0.2",
    }
    for name in ("RENEWAL_DATABASE_URL", "RENEWAL_TRACKING_URI", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    previous_cwd = os.getcwd()
    os.chdir(root)  # MLflow puts run artifacts under ./mlruns
    try:
        simulate(root / "data", accounts=800, seed=5, months=24)
        run_training(
            root / "data",
            root / "train",
            load_train_config(None),
            tracking_uri=settings.resolved_tracking_uri,
        )
        run_scoring(
            root / "data",
            date.fromisoformat(AS_OF),
            settings,
            ServiceSettings(),
            out=root / "scores.parquet",
        )
    finally:
        os.chdir(previous_cwd)
    scores = pd.read_parquet(root / "scores.parquet")
    accounts = pd.read_parquet(root / "data" / "accounts.parquet")
    port = free_port()
    server = subprocess.Popen(
        [*RENEWAL, "serve", "--port", str(port)],
        env=env,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    wait_until_ready(server, base, 90)
    yield {
        "root": root,
        "env": env,
        "base": base,
        "scores": scores,
        "accounts": accounts,
        "server": server,
        "settings": settings,
    }
    if server.poll() is None:
        server.kill()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_the_crm_call_returns_drivers_in_words(stack):
    key = new_key(stack["env"], stack["root"], "--role", "crm")
    account = stack["scores"].sort_values("probability")["account_id"].iloc[0]
    response = httpx.get(f"{stack['base']}/v1/accounts/{account}/renewal", headers=auth(key))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["as_of"] == AS_OF and body["model"]["version"] == "1"
    assert body["risk_tier"] in ("high", "medium")
    risk = body["drivers"]["risk_drivers"]
    assert risk and all(d["contribution"] < 0 for d in risk)
    for driver in risk + body["drivers"]["protective_factors"]:
        words = driver["description"]
        assert "{" not in words and len(words.split()) >= 2, words
    card = httpx.get(f"{stack['base']}/v1/model", headers=auth(key)).json()
    assert card["training_window"]["test_end"] and card["test_metrics"]["auc"] > 0.5
    assert card["heuristic_metrics"]["auc"] > 0
    metric = httpx.get(f"{stack['base']}/v1/metrics/activation?by=segment", headers=auth(key))
    assert metric.status_code == 200 and metric.json()["rows"], metric.text
    assert isinstance(body["inputs"]["stale"], bool)  # manual inputs' age (issue 8)


def test_lost_customers_are_not_scored_listed_or_served(stack):
    """An account whose every term ended before the as-of date unrenewed has left: no renewal
    probability, nothing at risk; one with a term in force on it is scored."""
    contracts = pd.read_parquet(stack["root"] / "data" / "contracts.parquet")
    for column in ("start_date", "end_date"):
        contracts[column] = pd.to_datetime(contracts[column])
    day = pd.Timestamp(AS_OF)
    ended = contracts.groupby("account_id").agg(
        last_end=("end_date", "max"),
        none_renewed=("renewed", lambda r: bool(r.eq(False).fillna(False).all())),
    )
    gone = set(ended[(ended.last_end < day) & ended.none_renewed].index)
    in_force = set(contracts[(contracts.start_date <= day)
                             & (contracts.end_date >= day)]["account_id"])
    scored = set(stack["scores"]["account_id"])
    assert gone and not gone & scored
    assert in_force <= scored
    admin = new_key(stack["env"], stack["root"], "--role", "admin")
    one = sorted(gone)[0]
    missing = httpx.get(f"{stack['base']}/v1/accounts/{one}/renewal", headers=auth(admin))
    assert missing.status_code == 404
    listed = httpx.get(f"{stack['base']}/v1/risk-list?limit=200", headers=auth(admin))
    assert not {i["account_id"] for i in listed.json()["data"]} & gone


def test_a_csm_key_cannot_see_another_csms_account(stack):
    accounts = stack["accounts"]
    accounts = accounts[accounts["account_id"].isin(stack["scores"]["account_id"])]
    accounts = accounts.dropna(subset=["csm_id"])
    csm = accounts["csm_id"].iloc[0]
    own = accounts[accounts["csm_id"] == csm]["account_id"].iloc[0]
    foreign = accounts[accounts["csm_id"] != csm]["account_id"].iloc[0]
    key = new_key(stack["env"], stack["root"], "--role", "csm", "--csm-id", csm)
    base = stack["base"]
    assert httpx.get(f"{base}/v1/accounts/{own}/renewal", headers=auth(key)).status_code == 200
    hidden = httpx.get(f"{base}/v1/accounts/{foreign}/renewal", headers=auth(key))
    assert hidden.status_code == 404
    assert hidden.headers["content-type"] == "application/problem+json"
    listed = httpx.get(f"{base}/v1/risk-list?limit=200", headers=auth(key)).json()["data"]
    assert listed and {i["csm_id"] for i in listed} == {csm}


def test_a_health_input_changes_the_score_now_and_in_the_next_run(stack):
    base, env, root = stack["base"], stack["env"], stack["root"]
    admin = new_key(env, root, "--role", "admin")
    ids = stack["scores"]["account_id"].tolist()
    scored = httpx.post(
        f"{base}/v1/score", headers=auth(admin), json={"account_ids": ids[:200]}
    ).json()["results"]
    # The account whose exec sponsor matters most: it is one of its risk drivers.
    candidates = [
        r
        for r in scored
        if any(d["feature"] == "exec_sponsor_active" for d in r["drivers"]["risk_drivers"])
    ]
    target = (candidates or scored)[0]
    account = target["account_id"]
    put = httpx.put(
        f"{base}/v1/accounts/{account}/health-inputs",
        headers=auth(admin),
        json={
            "exec_sponsor_active": True,
            "core_process_live": True,
            "csm_score": 5,
            "note": "QBR went well",
        },
    )
    assert put.status_code == 200, put.text
    now = put.json()["renewal"]["probability"]
    assert now != target["probability"]
    # The next scoring run merges the stored input and agrees with the on-the-spot score.
    run(["score", "--data", str(root / "data"), "--as-of", AS_OF, "--jobs", "1"], env, root)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        body = httpx.get(f"{base}/v1/accounts/{account}/renewal", headers=auth(admin)).json()
        if body["scored_at"] > put.json()["renewal"]["scored_at"]:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the server did not pick up the new scoring run")
    assert body["probability"] == pytest.approx(now, abs=1e-4)
    history = httpx.get(f"{base}/v1/accounts/{account}/health-inputs", headers=auth(admin)).json()
    assert history["data"][0]["note"] == "QBR went well"


class SigningReceiver:
    """A webhook receiver on loopback that verifies every signature."""

    def __init__(self, secret: str) -> None:
        from service.workflows.webhooks.signing import SignatureError, verify

        self.bodies: list[bytes] = []
        self.verified: list[bool] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    verify(secret, self.headers.get("Renewal-Signature", ""), body)
                    receiver.verified.append(True)
                except SignatureError:
                    receiver.verified.append(False)
                receiver.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"


def delivery_log(base: str, key: str, hook_id: str) -> list[dict]:
    """Every delivery of a subscription, following the log's pages."""
    out: list[dict] = []
    params: dict = {"limit": 500}
    while True:
        page = httpx.get(f"{base}/v1/webhooks/{hook_id}/deliveries", headers=auth(key),
                         params=params).json()
        out.extend(page["data"])
        if not page.get("next_before_id"):
            return out
        params = {"limit": 500, "before_id": page["next_before_id"]}


def test_a_scoring_run_sends_its_events_to_a_subscribed_receiver(stack):
    """`renewal score` stores the run's events with the scores; `renewal serve`'s worker
    delivers them, signed. The simulated data ends on AS_OF: a month later with no new usage,
    accounts fall, which is what the subscriber hears about."""
    import json

    base, env, root = stack["base"], stack["env"], stack["root"]
    admin = new_key(env, root, "--role", "admin")
    receiver = SigningReceiver("e2e-signing-secret-0123")
    try:
        hook = httpx.post(f"{base}/v1/webhooks", headers=auth(admin), json={
            "url": receiver.url, "secret": "e2e-signing-secret-0123",
            "events": ["risk_tier_crossed", "probability_dropped"]})
        assert hook.status_code == 201, hook.text
        hook_id = hook.json()["id"]
        run(["score", "--data", str(root / "data"), "--as-of", NEXT_MONTH, "--jobs", "1"],
            env, root)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            log = delivery_log(base, admin, hook_id)
            if log and all(d["status"] == "delivered" for d in log):
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"deliveries not done: {len(log)} logged")
        events = [json.loads(b) for b in receiver.bodies]
        assert events and all(receiver.verified)
        # At least once: every logged delivery arrived, and nothing arrived that is not logged.
        assert {e["id"] for e in events} == {d["event_id"] for d in log}
        assert {e["type"] for e in events} <= {"risk_tier_crossed", "probability_dropped"}
        for event in events:
            assert event["data"]["as_of"] == NEXT_MONTH  # the new run vs the one before
            assert event["data"]["previous_as_of"] == AS_OF
    finally:
        receiver.httpd.shutdown()


def test_sigterm_shuts_the_server_down_gracefully(stack):
    server = stack["server"]
    server.send_signal(signal.SIGTERM)
    # uvicorn re-raises the signal after a graceful shutdown (exit by SIGTERM, or 0)
    assert server.wait(timeout=30) in (0, -signal.SIGTERM)
    log = server.stdout.read()
    assert "Application shutdown complete" in log
    assert "rnw_" not in log and "QBR went well" not in log
    for account in stack["scores"]["account_id"].head(50):
        assert account not in log
