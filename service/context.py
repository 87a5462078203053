"""Everything a request handler needs, built once per app by :func:`service.app.create_app`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from renewal.settings import Settings
from service.cache import ScoreCache
from service.config import ServiceSettings
from service.metric_results import MetricResults
from service.model_store import ModelStore
from service.risk_index import RiskIndexHolder
from service.telemetry import Telemetry
from service.verifiers import KeyVerifier


@dataclass
class ServiceContext:
    """The app's long-lived parts: settings, database, model, caches and metrics."""

    settings: Settings
    service_settings: ServiceSettings
    engine: Engine
    sessions: sessionmaker[Session]
    models: ModelStore
    cache: ScoreCache
    keys: KeyVerifier
    telemetry: Telemetry
    stale_input_days: int = 90
    metric_results: MetricResults = field(default_factory=MetricResults)
    risk_index: RiskIndexHolder = field(default_factory=RiskIndexHolder)


async def get_context(request: Request) -> ServiceContext:
    """The context of the app serving this request (async: no thread hop)."""
    return request.app.state.context


Ctx = Annotated[ServiceContext, Depends(get_context)]
