"""The FastAPI application factory. Nothing is built at import time: call :func:`create_app`."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError

from renewal.settings import Settings, get_settings
from service.api import include_routes
from service.auth import BEARER_SCHEME, PUBLIC_PATHS, AuthMiddleware
from service.cache import ScoreCache
from service.config import ServiceSettings, get_service_settings
from service.context import ServiceContext
from service.db import scores as scores_db
from service.db.engine import make_engine, make_session_factory
from service.db.migrate import upgrade
from service.limits import BodyLimitMiddleware, JsonBodyMiddleware
from service.metric_results import MetricResults
from service.model_store import ModelStore
from service.problems import Problem, guard_outer_middlewares, install_handlers
from service.telemetry import Telemetry, TelemetryMiddleware
from service.ui import install_ui
from service.verifiers import KeyVerifier
from service.workflows.config import WorkflowSettings
from service.workflows.install import install_workflows
from service.workflows.promotion import announce_promotion

log = logging.getLogger("service.app")
SAMPLE_VECTORS = 20

DESCRIPTION = """Calibrated renewal probabilities for B2B SaaS accounts, with the reasons in words.

Every route except `/healthz` and `/readyz` needs `Authorization: Bearer <key>` (create keys
with `renewal keys create`). Roles: `crm` reads scores, `csm` reads and writes only its own
accounts, `admin` everything. Errors are RFC 9457 `application/problem+json`.
"""


def _sample_vectors(ctx: ServiceContext) -> list[dict[str, Any]]:
    """A few stored feature vectors to probe a new model with before it is swapped in."""
    ids = [e.score_id for e in ctx.cache.risk_order[:SAMPLE_VECTORS]]
    if not ids:
        return []
    try:
        with ctx.sessions() as session:
            return [dict(s.features) for s in scores_db.scores_by_id(session, ids).values()]
    except SQLAlchemyError:
        return []


def _start(ctx: ServiceContext, migrate: bool) -> None:
    """Blocking start-up work: schema, model, cache (each failure is reported, not fatal)."""
    if migrate:
        try:
            upgrade(ctx.engine)
        except SQLAlchemyError as exc:  # /readyz reports the database until it answers
            log.error("database migration failed at start-up: %s", type(exc).__name__)
    try:
        cached = ctx.cache.load()
        ctx.telemetry.cached_accounts.set(cached)
    except SQLAlchemyError as exc:
        log.error("score cache not loaded at start-up: %s", type(exc).__name__)
    ctx.models.start()


def _freeze_start_up_objects() -> None:
    """Keep what start-up made (modules, model, cache) out of later garbage collections.

    Python's full collections walk every tracked object; with MLflow, pandas and the model
    loaded they took 100-250 ms each, stalling every request in flight, several times a
    minute under scoring load (measured: p99 of ``POST /v1/score`` 170-200 ms against a p50 of
    11 ms). Frozen objects are still freed by reference counting when replaced.
    """
    gc.collect()
    gc.freeze()


async def _every(seconds: float, work: Any, what: str) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await anyio.to_thread.run_sync(work)
        except Exception as exc:  # a background refresh must never kill the server
            log.warning("%s failed: %s", what, type(exc).__name__)


def _refresh_cache(ctx: ServiceContext) -> None:
    if ctx.cache.refresh():
        ctx.telemetry.cached_accounts.set(len(ctx.cache))
        ctx.metric_results.clear()


def _poll_model(ctx: ServiceContext) -> None:
    """Swap in a newly promoted champion (the cached scores stay: they name their model)
    and tell webhook subscribers (``model_promoted``)."""
    outcome = ctx.models.reload()
    ctx.telemetry.model_reloads.labels(outcome.outcome).inc()
    announce_promotion(ctx, outcome)


def _stale_input_days(settings: Settings) -> int:
    """The feature config's ``stale_input_days``: the one rule of staleness, shared with the
    model's ``health_input_stale`` feature (default 90 when the pipeline is not installed)."""
    try:
        from features.config import load_feature_config
    except ImportError:  # the feature pipeline is optional at serve time
        return ServiceContext.stale_input_days
    return load_feature_config(settings.feature_config).stale_input_days


def build_context(
    settings: Settings, service_settings: ServiceSettings, models: ModelStore | None = None
) -> ServiceContext:
    """The app's parts, wired together (no I/O yet)."""
    engine = make_engine(settings.resolved_database_url)
    sessions = make_session_factory(engine)
    telemetry = Telemetry()
    stale_input_days = _stale_input_days(settings)
    cache = ScoreCache(sessions, service_settings, stale_input_days)
    store = models or ModelStore(settings)
    ctx = ServiceContext(
        settings=settings,
        service_settings=service_settings,
        engine=engine,
        sessions=sessions,
        models=store,
        cache=cache,
        keys=KeyVerifier(sessions, service_settings.key_cache_seconds),
        telemetry=telemetry,
        stale_input_days=stale_input_days,
        metric_results=MetricResults(service_settings.metrics_cached_results,
                                     service_settings.metrics_concurrency,
                                     service_settings.metrics_wait_seconds),
    )
    store.sample_vectors = lambda: _sample_vectors(ctx)
    store.on_swap = lambda m: telemetry.set_model(m.name, m.version, m.source)
    if store.current is not None:
        telemetry.set_model(store.current.name, store.current.version, store.current.source)
    return ctx


def create_app(
    settings: Settings | None = None,
    service_settings: ServiceSettings | None = None,
    *,
    models: ModelStore | None = None,
    migrate: bool = True,
    background: bool = True,
    workflow_settings: WorkflowSettings | None = None,
) -> FastAPI:
    """Build the service. ``models`` lets a caller pass a store with a model already
    installed (then start-up does not touch the registry). ``workflow_settings`` default to
    the ``RENEWAL_*`` environment; the webhook delivery worker runs with the app when
    ``workflow_settings.webhook_worker`` (independent of ``background``)."""
    settings = settings or get_settings()
    service_settings = service_settings or get_service_settings()
    ctx = build_context(settings, service_settings, models)
    preloaded = models is not None and models.current is not None

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(_start_with, ctx, migrate, preloaded)
        _freeze_start_up_objects()
        tasks = []
        if background:
            tasks.append(
                asyncio.create_task(
                    _every(
                        service_settings.cache_refresh_seconds,
                        lambda: _refresh_cache(ctx),
                        "cache refresh",
                    )
                )
            )
            if service_settings.model_poll_seconds:
                tasks.append(
                    asyncio.create_task(
                        _every(
                            service_settings.model_poll_seconds,
                            lambda: _poll_model(ctx),
                            "model poll",
                        )
                    )
                )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            ctx.engine.dispose()

    app = FastAPI(
        title="renewal",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.context = ctx
    install_handlers(app, service_settings.db_retry_after_seconds)
    include_routes(app)  # every route, the workflows' included
    install_workflows(app, workflow_settings)
    install_ui(app)  # the ops web page at /ui (service/ui, docs/ui.md)
    app.add_middleware(JsonBodyMiddleware)  # innermost: after the key and the size checks
    app.add_middleware(BodyLimitMiddleware, max_bytes=service_settings.max_body_bytes)
    app.add_middleware(
        AuthMiddleware,
        verifier=ctx.keys,
        retry_after_seconds=service_settings.db_retry_after_seconds,
    )
    app.add_middleware(TelemetryMiddleware, telemetry=ctx.telemetry)
    guard_outer_middlewares(app)  # outermost
    _document_problem_schema(app)
    return app


def _start_with(ctx: ServiceContext, migrate: bool, preloaded: bool) -> None:
    if preloaded:
        if migrate:
            upgrade(ctx.engine)
        ctx.cache.load()
        ctx.telemetry.cached_accounts.set(len(ctx.cache))
        return
    _start(ctx, migrate)


def _document_problem_schema(app: FastAPI) -> None:
    """Make ``#/components/schemas/Problem`` exist in the OpenAPI document, and mark every
    operation but the health checks as needing the Bearer key (AuthMiddleware enforces it;
    no per-route dependency re-reads the header)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("Problem", Problem.model_json_schema())
        schema["components"].setdefault("securitySchemes", {})["HTTPBearer"] = BEARER_SCHEME
        for path, operations in schema.get("paths", {}).items():
            if path not in PUBLIC_PATHS:
                for operation in operations.values():
                    operation["security"] = [{"HTTPBearer": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def all_routes(app: FastAPI) -> list[Any]:
    """Every route of the app, with included routers flattened (FastAPI ≥ 0.16x nests them
    lazily). The route walk of the tests and the docs use this."""
    out: list[Any] = []

    def walk(routes: list[Any]) -> None:
        for route in routes:
            nested = getattr(route, "original_router", None)
            if nested is not None:
                walk(list(nested.routes))
            else:
                out.append(route)

    walk(list(app.routes))
    return out
