"""A tiny real monotone model that reads the levers' features, its feature frames, a real
uvicorn server on loopback and a real webhook receiver on loopback."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import service_factories as factories
import uvicorn
from live_server import free_port

from training.scorer import Calibrator, FeatureSpec, RenewalScorer


def _spec(name: str, kind: str, words: str, risk: str | None, certain: bool, unit: str = "",
          false_words: str | None = None) -> FeatureSpec:
    return FeatureSpec(name=name, kind=kind, description=words, description_false=false_words,
                       unit=unit, risk=risk, certain=certain, table="usage")  # type: ignore[arg-type]


LEVER_SPECS = (
    *factories.SPECS,
    _spec("seat_utilization_30d", "numeric", "{value:.0%} of seats used", "low", True, "share"),
    _spec("activated", "bool", "activated within its window", "low", True,
          false_words="not activated within its window"),
    _spec("past_window_not_activated", "bool", "past its activation window", "high", True,
          false_words="within its activation window"),
    _spec("days_to_activation", "numeric", "activated after {value:.0f} days", "high", True),
    _spec("activation_window_days", "numeric", "window of {value:.0f} days", None, False),
    _spec("tier_low_days_30d", "numeric", "{value:.0f} low days", None, False),
    _spec("tier_mid_days_30d", "numeric", "{value:.0f} mid days", "low", True),
    _spec("open_high_bugs", "numeric", "{value:.0f} open high bugs", "high", True),
    _spec("overdue_high_bugs", "numeric", "{value:.0f} overdue high bugs", "high", True),
    _spec("overdue_bugs", "numeric", "{value:.0f} overdue bugs", "high", True),
)
NAMES = [s.name for s in LEVER_SPECS]


def lever_columns(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    activated = rng.random(n) < 0.75
    low = rng.integers(0, 20, n).astype(float)
    high_open = rng.integers(0, 4, n).astype(float)
    overdue_high = np.minimum(high_open, rng.integers(0, 3, n)).astype(float)
    return {
        "seat_utilization_30d": rng.random(n),
        "activated": activated,
        "past_window_not_activated": ~activated,
        "days_to_activation": np.where(activated, rng.integers(3, 30, n), np.nan),
        "activation_window_days": np.where(rng.random(n) < 0.5, 30.0, 45.0),
        "tier_low_days_30d": low,
        "tier_mid_days_30d": rng.integers(0, 10, n).astype(float),
        "open_high_bugs": high_open,
        "overdue_high_bugs": overdue_high,
        "overdue_bugs": overdue_high + rng.integers(0, 3, n),
    }


def lever_scorer(seed: int = 0) -> RenewalScorer:
    """A monotone LightGBM model on the tiny model's features plus every lever feature."""
    X6, _ = factories.training_matrix(4000, seed)
    extra = lever_columns(4000, seed + 1)
    X = np.column_stack([X6] + [np.asarray(extra[n], dtype=float) for n in NAMES[6:]])
    rng = np.random.default_rng(seed + 2)
    logit = (-3.0 + 0.1 * X[:, 0] + 1.0 * X[:, 2] + 0.8 * X[:, 3] + 0.3 * X[:, 4]
             + 2.0 * X[:, 6] + 1.0 * X[:, 7] - 0.8 * X[:, 8] + 0.08 * X[:, 12]
             - 0.5 * X[:, 13] - 0.4 * X[:, 14])
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-logit))).astype(int)
    data = lgb.Dataset(X, y, feature_name=NAMES, categorical_feature=[5], free_raw_data=False)
    params = {"objective": "binary", "num_leaves": 7, "learning_rate": 0.1, "verbose": -1,
              "monotone_constraints": [s.monotone for s in LEVER_SPECS], "seed": seed,
              "num_threads": 1, "min_data_in_leaf": 20}
    booster = lgb.train(params, data, num_boost_round=40)
    return RenewalScorer(booster, LEVER_SPECS, Calibrator("sigmoid"), heuristic_factor=0.9)


def lever_frame(n: int, as_of: date, seed: int = 1) -> pd.DataFrame:
    frame = factories.feature_frame(n, as_of, seed)
    for name, values in lever_columns(n, seed + 10).items():
        if name in ("activated", "past_window_not_activated"):
            values = pd.Series(values, dtype="boolean")
        frame[name] = values
    frame["health_input_age_days"] = np.where(np.arange(n) % 4 == 0, 200.0, 10.0)
    frame.loc[np.arange(n) % 7 == 0, "health_input_age_days"] = np.nan
    return frame


class ThreadedServer:
    """uvicorn serving ``app`` on a free loopback port in a thread."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@dataclass
class Receiver:
    """A webhook receiver on loopback: records requests, fails the first ``fail_first``,
    answers after ``delay`` seconds, and with ``hold`` keeps the first request waiting until
    ``release`` is set (``first_arrived`` says it came)."""

    fail_first: int = 0
    secret: str | None = None
    delay: float = 0.0
    hold: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    verified: list[bool] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    first_arrived: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Receiver:
        receiver = self
        if not self.hold:
            self.release.set()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.requests.append({"headers": headers, "body": body})
                if len(receiver.requests) == 1:
                    receiver.first_arrived.set()
                    receiver.release.wait(10)
                time.sleep(receiver.delay)
                ok = True
                if receiver.secret is not None:
                    from service.workflows.webhooks.signing import SignatureError, verify

                    try:
                        verify(receiver.secret, headers.get("renewal-signature"), body)
                    except SignatureError:
                        ok = False
                    receiver.verified.append(ok)
                failing = len(receiver.requests) <= receiver.fail_first
                self.send_response(503 if failing else (200 if ok else 400))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests]

    def keys(self) -> list[str]:
        """The Idempotency-Key of every request, in arrival order."""
        return [r["headers"].get("idempotency-key", "") for r in self.requests]

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def contracts_for(frame: pd.DataFrame, latest: date) -> pd.DataFrame:
    """One current contract per account ending 1-6 months after ``latest`` (undecided) and a
    previous, decided one (renewed for even account numbers)."""
    rows = []
    for i, account in enumerate(frame["account_id"].astype(str)):
        end = latest + timedelta(days=20 + 30 * (i % 6))
        start = end - timedelta(days=364)
        rows.append({"contract_id": f"c-{i}-1", "account_id": account,
                     "start_date": start - timedelta(days=365),
                     "end_date": start - timedelta(days=1), "arr": 10_000.0, "renewed": True})
        rows.append({"contract_id": f"c-{i}-2", "account_id": account, "start_date": start,
                     "end_date": end, "arr": float(frame["arr"].iloc[i]), "renewed": None})
    out = pd.DataFrame(rows)
    for c in ("start_date", "end_date"):
        out[c] = pd.to_datetime(out[c])
    out["renewed"] = out["renewed"].astype("boolean")
    return out
