"""``renewal serve``: run the scoring API with uvicorn (graceful shutdown on SIGTERM)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

#: uvicorn's "trace" level is left out on purpose: it logs every request's path (account ids).
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def _log_level(value: str) -> str:
    if value.lower() not in LOG_LEVELS:
        raise typer.BadParameter(f"one of {', '.join(LOG_LEVELS)}")
    return value.lower()


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
    import tempfile

    import uvicorn

    from renewal.settings import get_settings
    from service.db.engine import make_engine
    from service.db.migrate import upgrade

    engine = make_engine(get_settings().resolved_database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="renewal-prometheus-")
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
