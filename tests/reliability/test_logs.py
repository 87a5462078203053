"""No secret or customer data in the logs of a full run, at DEBUG level.

The whole chain runs as a user runs it, one subprocess per command: simulate → validate →
features → train → score → keys create → serve, then real requests (a renewal, a batch score,
a health input and an intervention with distinctive notes, a webhook with a secret, a wrong
key, another CSM's account, an invalid body carrying a note). Every process logs at DEBUG:
the commands run ``renewal.cli.main`` with the root logger at DEBUG (the CLI has no log-level
option but ``serve``'s, which gets ``--log-level debug`` as well), so third-party libraries
(SQLAlchemy, Alembic, MLflow, uvicorn, httpx...) log everything they would in production at
the most verbose level. Their stdout and stderr, and any ``*.log`` file left under the run's
directory, must not hold an API key, a note, the webhook secret or an account's name; the
server's output must not hold an account id either. The one place a key is printed is
``renewal keys create``'s stdout, by design (shown once): it is checked to be that once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from live_server import free_port, wait_until_ready

pytestmark = pytest.mark.slow

AS_OF = "2025-12-31"
HEALTH_NOTE = "Sponsor Zebulon quietly evaluating Quokkasoft"
INTERVENTION_NOTE = "Escalate to Wilhelmina before the Xylophone rollout"
INVALID_NOTE = "Pomegranate budget freeze rumour"
WEBHOOK_SECRET = "whsec-Marmalade-7f3c9e1d2b4a"
WRONG_KEY = "rnw_NotARealKey_Tangerine0123456789abcdef"
DEBUG_CLI = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)\n"
    # SQLAlchemy quiets its loggers to WARNING at import: statements as with echo=True.
    "logging.getLogger('sqlalchemy.engine').setLevel(logging.INFO)\n"
    "from renewal.cli import main\n"
    "sys.argv[0] = 'renewal'\n"
    "main()\n"
)


class Run:
    """The CLI in subprocesses at DEBUG, every output kept."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {
            **os.environ,
            "RENEWAL_DATA_DIR": str(root / "work"),
            "RENEWAL_MODELS_DIR": str(root / "models"),
            "RENEWAL_KEY_CACHE_SECONDS": "0",
            "RENEWAL_WEBHOOK_ALLOW_PRIVATE_URLS": "true",
            "RENEWAL_WEBHOOK_POLL_SECONDS": "0.2",
            "MLFLOW_LOGGING_LEVEL": "DEBUG",
        }
        for name in ("RENEWAL_DATABASE_URL", "RENEWAL_TRACKING_URI", "PROMETHEUS_MULTIPROC_DIR"):
            self.env.pop(name, None)
        self.outputs: dict[str, str] = {}

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-c", DEBUG_CLI, *args]

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            self.command(*args),
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=600,
        )
        name = f"{len(self.outputs):02d} renewal {' '.join(args[:2])}"
        self.outputs[f"{name} (stderr)"] = done.stderr
        self.outputs[f"{name} (stdout)"] = done.stdout
        assert done.returncode == 0, f"renewal {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout


def new_key(run: Run, *args: str) -> str:
    stdout = run("keys", "create", *args)
    key = stdout.strip().splitlines()[-1]
    assert key.startswith("rnw_") and stdout.count(key) == 1
    # Shown once, on purpose: the only output allowed to hold the key.
    run.outputs = {k: v for k, v in run.outputs.items() if v is not stdout}
    return key


def requests_of_a_working_day(
    base: str, admin: str, csm: str, ids: list[str], own: str, foreign: str
) -> None:
    """Real calls touching every place a key, a note or a secret passes through."""
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {admin}"}, timeout=60
    ) as client:
        assert client.get(f"/v1/accounts/{ids[0]}/renewal").status_code == 200
        assert client.post("/v1/score", json={"account_ids": ids[:50]}).status_code == 200
        assert client.get("/v1/risk-list?limit=20").status_code == 200
        assert client.get("/v1/model").status_code == 200
        put = client.put(
            f"/v1/accounts/{own}/health-inputs",
            json={"exec_sponsor_active": False, "csm_score": 2, "note": HEALTH_NOTE},
        )
        assert put.status_code == 200, put.text
        invalid = client.put(
            f"/v1/accounts/{own}/health-inputs", json={"csm_score": "three", "note": INVALID_NOTE}
        )
        assert invalid.status_code == 422 and INVALID_NOTE not in invalid.text
        hook = client.post(
            "/v1/webhooks",
            json={
                "url": "http://127.0.0.1:9/hook",
                "secret": WEBHOOK_SECRET,
                "events": ["risk_tier_crossed", "probability_dropped", "model_promoted"],
            },
        )
        assert hook.status_code == 201, hook.text
        history = client.get(f"/v1/accounts/{own}/health-inputs").json()
        assert history["data"][0]["note"] == HEALTH_NOTE
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {csm}"}, timeout=60
    ) as client:
        intervention = client.post(
            f"/v1/accounts/{own}/interventions",
            json={"playbook": "exec-reengagement", "note": INTERVENTION_NOTE},
        )
        assert intervention.status_code in (200, 201), intervention.text
        assert client.get(f"/v1/accounts/{foreign}/renewal").status_code == 404
    wrong = httpx.get(
        f"{base}/v1/accounts/{ids[0]}/renewal", headers={"Authorization": f"Bearer {WRONG_KEY}"}
    )
    assert wrong.status_code == 401


def test_a_full_run_logs_no_key_note_secret_or_account_name(tmp_path: Path):
    run = Run(tmp_path)
    run("simulate", "--out", "data", "--accounts", "300", "--seed", "7", "--months", "24")
    run("validate", "--data", "data")
    run("features", "--data", "data", "--as-of", AS_OF, "--out", "features.parquet")
    run("train", "--data", "data", "--out", "train", "--promote")
    run("score", "--data", "data", "--as-of", AS_OF, "--jobs", "1", "--out", "scores.parquet")
    accounts = pd.read_parquet(tmp_path / "data" / "accounts.parquet")
    # Accounts lost by AS_OF are not scored (service/lost_accounts.py): serve the scored ones.
    scored = pd.read_parquet(tmp_path / "scores.parquet")["account_id"].astype(str)
    accounts = accounts[accounts["account_id"].astype(str).isin(set(scored))]
    admin = new_key(run, "--role", "admin", "--name", "ops")
    owned = accounts.dropna(subset=["csm_id"])
    csm_id = owned["csm_id"].iloc[0]
    own = owned[owned["csm_id"] == csm_id]["account_id"].iloc[0]
    foreign = owned[owned["csm_id"] != csm_id]["account_id"].iloc[0]
    csm = new_key(run, "--role", "csm", "--csm-id", csm_id, "--name", "alice")

    port = free_port()
    server = subprocess.Popen(
        run.command("serve", "--port", str(port), "--log-level", "debug"),
        env=run.env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(server, base, 120)
        ids = accounts["account_id"].astype(str).tolist()
        requests_of_a_working_day(base, admin, csm, ids, own, foreign)
        time.sleep(1.0)  # a webhook worker pass (its deliveries to a dead port fail: logged)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            served, _ = server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            served, _ = server.communicate()
    assert server.returncode == 0, served
    run.outputs["serve (stdout+stderr)"] = served
    for log_file in tmp_path.rglob("*.log"):
        run.outputs[str(log_file.relative_to(tmp_path))] = log_file.read_text(errors="replace")

    everything = "".join(run.outputs.values())
    assert "DEBUG:" in everything and "INFO:sqlalchemy.engine" in served
    assert "PUT /v1/accounts/{account_id}/health-inputs 200" in served
    secrets = {
        "admin key": admin,
        "csm key": csm,
        "wrong key": WRONG_KEY,
        "health-input note": HEALTH_NOTE,
        "invalid body's note": INVALID_NOTE,
        "intervention note": INTERVENTION_NOTE,
        "webhook secret": WEBHOOK_SECRET,
    }
    names = accounts["name"].dropna().astype(str)
    assert len(names) == len(accounts) and names.str.len().min() >= 5
    leaks = [
        f"{what} in {where}"
        for where, text in run.outputs.items()
        for what, secret in secrets.items()
        if secret in text
    ]
    leaks += [
        f"account name {name!r} in {where}"
        for where, text in run.outputs.items()
        for name in names
        if name in text
    ]
    leaks += [f"account id {a} in the server's output" for a in ids if a in served]
    assert not leaks, "\n".join(leaks[:20])
