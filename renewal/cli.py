"""The ``renewal`` console script: the composition root of the project.

Each command lives in ``renewal/commands/<name>.py`` and registers itself; heavy imports stay
inside the command functions so that ``renewal --help`` starts fast. Domain errors become a
readable message and exit code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys

import typer
from rich.console import Console

from renewal import commands
from renewal.errors import DataContractError, RenewalError

EXIT_BAD_INPUT = 2


def build_app() -> typer.Typer:
    """A Typer app with every command module of :mod:`renewal.commands` registered."""
    app = typer.Typer(
        name="renewal",
        help="Renewal prediction for B2B SaaS: data → features → model → scores with drivers.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    # A callback keeps the app a command group even while only one command is registered.
    app.callback()(lambda: None)
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)
    _reflow_help(app)
    return app


def _reflow_help(app: typer.Typer) -> None:
    """Give each command its docstring with every paragraph on one line.

    Typer keeps a docstring's single line breaks in ``--help``, so a docstring wrapped at 100
    columns printed sentences broken mid-way at 80; the terminal's own wrapping is the right one.
    """
    for info in app.registered_commands:
        if info.help is None and info.callback is not None and info.callback.__doc__:
            paragraphs = inspect.cleandoc(info.callback.__doc__).split("\n\n")
            info.help = "\n\n".join(" ".join(p.split()) for p in paragraphs)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            _reflow_help(group.typer_instance)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    app = build_app()
    try:
        app(args=argv, prog_name="renewal")
    except DataContractError as exc:
        report_error("the data breaks the contract", [p.render() for p in exc.problems])
        sys.exit(EXIT_BAD_INPUT)
    except RenewalError as exc:
        report_error(str(exc), [])
        sys.exit(EXIT_BAD_INPUT)
    except Exception as exc:
        if not _store_unreachable(exc):
            raise
        # The driver's own first line names host and port, never the password of the URL.
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
        report_error("cannot reach the score store (RENEWAL_DATABASE_URL): " + reason, [])
        sys.exit(EXIT_BAD_INPUT)


def _store_unreachable(exc: BaseException) -> bool:
    """SQLAlchemy's OperationalError (server down, wrong port, no such database): a setting to
    fix, not a bug. Matched by name so that ``renewal --help`` need not import SQLAlchemy."""
    return type(exc).__name__ == "OperationalError" and type(exc).__module__.startswith(
        "sqlalchemy")


def report_error(title: str, lines: list[str]) -> None:
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    console.print(f"[bold red]error:[/] {title}", markup=True)
    for line in lines:
        console.print(f"  - {line}", markup=False)
