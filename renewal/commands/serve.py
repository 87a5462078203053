"""``renewal serve``: run the scoring API with uvicorn (graceful shutdown on SIGTERM)."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Annotated, Any

import typer

#: With several workers, how often each polls the registry alias unless configured.
MULTI_WORKER_POLL_SECONDS = 30
#: uvicorn's "trace" level is left out on purpose: it logs every request's path (account ids).
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def _log_level(value: str) -> str:
    if value.lower() not in LOG_LEVELS:
        raise typer.BadParameter(f"one of {', '.join(LOG_LEVELS)}")
    return value.lower()


def multi_worker_environment(workers: int, environ: MutableMapping[str, str]) -> list[str]:
    """What several worker processes need in their environment; returns what was set, in
    words. Prometheus counters are shared through a directory; and each worker polls the
    model alias, because ``POST /v1/admin/reload`` reaches only the worker that answers it."""
    if workers <= 1:
        return []
    said = []
    if not environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import tempfile

        environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="renewal-prometheus-")
    if not environ.get("RENEWAL_MODEL_POLL_SECONDS"):
        environ["RENEWAL_MODEL_POLL_SECONDS"] = str(MULTI_WORKER_POLL_SECONDS)
        said.append(f"{workers} workers: each polls the model alias every "
                    f"{MULTI_WORKER_POLL_SECONDS} s (RENEWAL_MODEL_POLL_SECONDS)")
    return said


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging plus our ``service`` loggers (access lines carry route templates
    only: uvicorn's own access log, which prints paths with account ids, stays off)."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["service"] = {"handlers": ["default"], "level": level.upper(),
                                    "propagate": False}
    return config


def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
    log_level: Annotated[str, typer.Option(
        "--log-level", callback=_log_level, help=f"One of {', '.join(LOG_LEVELS)}.",
    )] = "info",
    graceful_seconds: Annotated[int, typer.Option(
        "--graceful-seconds", min=0, help="How long in-flight requests may finish on SIGTERM.",
    )] = 30,
) -> None:
    """Serve the API: renewal scores with drivers, risk list, health inputs, metrics, model card.

    Migrates the database first (once, before workers start); each worker loads the model
    from the registry alias (else the last-known-good copy in RENEWAL_MODELS_DIR).
    """
    import os
    import signal
    import sys

    import uvicorn

    from renewal.settings import get_settings
    from service.config import get_service_settings
    from service.db.engine import make_engine
    from service.db.migrate import upgrade
    from service.workflows.config import get_workflow_settings

    # Read every settings class here, in this process: a value out of range is then one
    # "error:" line and exit 2, not a traceback in each worker that imports the app.
    get_service_settings()
    get_workflow_settings()
    engine = make_engine(get_settings().resolved_database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    for line in multi_worker_environment(workers, os.environ):
        typer.echo(line)
    # uvicorn re-raises SIGTERM once it has shut down gracefully; answer it with exit status
    # 0, so a supervisor sees a clean stop rather than a process killed by a signal.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_config=log_config(log_level),
        log_level=log_level,
        timeout_graceful_shutdown=graceful_seconds,
        server_header=False,
    )
