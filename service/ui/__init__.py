"""The ops web page: risk list, account view and cohort charts, served by the scoring app.

Server-rendered Jinja2 templates with a little htmx, charts as server-side SVG, signed in
with an API key kept in an HttpOnly cookie (see :mod:`service.ui.security`). Every number
comes from the same code the API serves it with (its route functions are called in-process,
behind the same role dependencies), so the page can never show what the key could not read
through the API. ``create_app`` makes the one :func:`install_ui` call; docs/ui.md explains
each view.
"""

from __future__ import annotations

from fastapi import FastAPI


def install_ui(app: FastAPI) -> FastAPI:
    """Mount the page at ``/ui`` on ``app`` (sharing its state: the service context and the
    workflows); returns the mounted sub-application."""
    from service.auth import UI_PREFIX
    from service.ui.app import create_ui_app

    ui = create_ui_app(app)
    app.mount(UI_PREFIX, ui, name="ui")
    return ui
