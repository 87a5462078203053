"""Prometheus metrics and the access log: route templates, status, latency, counts only.

Labels are route *templates* (``/v1/accounts/{account_id}/renewal``), never concrete paths,
so no account id, key or note can reach a metric or a log line. Each app gets its own
registry (tests build many apps); with several workers, set ``PROMETHEUS_MULTIPROC_DIR``
(``renewal serve`` does) and every worker's samples are aggregated on ``/metrics``.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("service.access")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED_ROUTE = "<unmatched>"


class Telemetry:
    """The service's metrics, registered in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "renewal_http_requests_total",
            "HTTP requests by route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "renewal_http_request_duration_seconds",
            "Request latency by route template.",
            ("method", "route"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.scores_served = Counter(
            "renewal_scores_served_total",
            "Account scores returned, by endpoint.",
            ("endpoint",),
            registry=self.registry,
        )
        self.model_info = Gauge(
            "renewal_model_info",
            "The model being served (value 1), by name, version, source.",
            ("name", "version", "source"),
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.model_reloads = Counter(
            "renewal_model_reloads_total",
            "Model (re)loads by outcome.",
            ("outcome",),
            registry=self.registry,
        )
        self.cached_accounts = Gauge(
            "renewal_cached_accounts",
            "Accounts whose latest score is held in memory.",
            registry=self.registry,
            multiprocess_mode="liveall",
        )

    def set_model(self, name: str, version: str, source: str) -> None:
        """Publish which model is served now (exactly one series with value 1)."""
        self.model_info.clear()
        self.model_info.labels(name=name, version=version, source=source).set(1)

    def exposition(self) -> bytes:
        """The text format of ``/metrics`` (all workers' samples in multiprocess mode)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


class TelemetryMiddleware:
    """Counts and times every request by route template; writes one access-log line each."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            elapsed = time.perf_counter() - start
            route = route_template(scope)
            method = scope.get("method", "")
            self.telemetry.requests.labels(method, route, str(status)).inc()
            self.telemetry.latency.labels(method, route).observe(elapsed)
            access_log.info("%s %s %d %.1fms", method, route, status, elapsed * 1000)


def route_template(scope: dict[str, Any]) -> str:
    """The matched route's template, or a fixed label for unknown paths. A route of a mounted
    app (the ops page under ``/ui``) is relative to its mount: its prefix is added back, or
    ``/ui/accounts/{account_id}`` would be counted as ``/accounts/{account_id}``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED_ROUTE
    # A top-level route's scope has no app_root_path: its root_path is the server's own
    # (uvicorn --root-path), not a mount (found by review: "/renewal/v1/...").
    root = scope.get("root_path", "")
    app_root = scope.get("app_root_path", root)
    mounted = root[len(app_root):] if root.startswith(app_root) else ""
    return mounted + path
