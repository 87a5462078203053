"""Wire the workflows into the app built by :func:`service.app.create_app`: their settings
and the webhook delivery worker (started and stopped with the app's lifespan). Their routers
are in :data:`service.api.ROUTERS` like every other route.

``create_app`` makes the one ``install_workflows(app, settings)`` call; nothing here runs at
import time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from service.workflows.config import WorkflowSettings, get_workflow_settings
from service.workflows.webhooks.delivery import DeliveryWorker


@dataclass
class WorkflowContext:
    """The workflows' settings and their delivery worker (None until the app starts)."""

    settings: WorkflowSettings
    worker: DeliveryWorker | None = None


async def get_workflows(request: Request) -> WorkflowContext:
    """The app's workflow context; defaults from the environment when not installed."""
    workflows = getattr(request.app.state, "workflows", None)
    if workflows is None:
        workflows = WorkflowContext(get_workflow_settings())
        request.app.state.workflows = workflows
    return workflows


Workflows = Annotated[WorkflowContext, Depends(get_workflows)]


def install_workflows(app: FastAPI, settings: WorkflowSettings | None = None) -> WorkflowContext:
    """Put the settings on ``app.state`` and run the delivery worker (with
    ``settings.webhook_worker``) inside the app's lifespan. The routes are in
    :data:`service.api.ROUTERS`; installing twice is refused (it would run two workers)."""
    if isinstance(getattr(app.state, "workflows", None), WorkflowContext):
        raise RuntimeError("the workflows are already installed on this app")
    workflows = WorkflowContext(settings or get_workflow_settings())
    app.state.workflows = workflows
    original = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(inner: FastAPI) -> AsyncIterator[Any]:
        async with original(inner) as state:
            task = None
            if workflows.settings.webhook_worker:
                ctx = inner.state.context
                workflows.worker = DeliveryWorker(ctx.sessions, workflows.settings)
                task = asyncio.create_task(workflows.worker.run_forever())
            try:
                yield state
            finally:
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    app.router.lifespan_context = lifespan
    app.openapi_schema = None
    return workflows
