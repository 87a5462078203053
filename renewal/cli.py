"""The ``renewal`` console script: the composition root of the project.

Each command lives in ``renewal/commands/<name>.py`` and registers itself; heavy imports stay
inside the command functions so that ``renewal --help`` starts fast. Domain errors become a
readable message and exit code 2, never a traceback.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import inspect
import pkgutil
import signal
import sys
import threading
from collections.abc import Iterator

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


#: Exit status of a command stopped by SIGTERM (128 + the signal's number, as a shell says).
EXIT_TERMINATED = 128 + signal.SIGTERM
#: Set once SIGTERM arrived: an engine interrupted by it (DuckDB answers the signal with
#: "Query interrupted") raises an error of its own, which must not read as bad data.
TERMINATED = threading.Event()


@contextlib.contextmanager
def stop_cleanly_on_sigterm() -> Iterator[None]:
    """Make SIGTERM (a scheduler's time limit, ``docker stop``, ``kill``) end a command the way
    Ctrl-C does: by an exception, so staged outputs, temporary files and open transactions
    are cleaned up. By default Python dies at once and leaves them behind (a ``.staging-*``
    directory in ``renewal train``'s ``--out``). ``renewal serve`` installs its own handler.
    The previous handler is back afterwards (``main`` also runs inside tests)."""
    def stop(signum: int, frame: object) -> None:
        TERMINATED.set()
        sys.stderr.write("stopped by SIGTERM: removing unfinished outputs\n")
        raise SystemExit(EXIT_TERMINATED)

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # only the main thread may set a handler
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    app = build_app()
    try:
        with stop_cleanly_on_sigterm():
            _run(app, argv)
    except SystemExit as done:  # click ends a command that succeeded with SystemExit(0) too
        if argv is None and not done.code:
            finished_ignores_sigterm()
        raise
    if argv is None:  # the console script, not a test calling main: the process ends now
        finished_ignores_sigterm()


#: Set once a command of the console script has succeeded (see finished_ignores_sigterm).
_SUCCEEDED = threading.Event()


def _ignore_sigterm_at_exit() -> None:
    """Registered when this module is imported, so it runs after every other exit callback
    (MLflow's, SQLAlchemy's): from then on Python has put its own handlers back to the
    default, and a SIGTERM during the last clean-up (module teardown, the final garbage
    collection) killed a command that had succeeded (found by review)."""
    if _SUCCEEDED.is_set():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


atexit.register(_ignore_sigterm_at_exit)


def finished_ignores_sigterm() -> None:
    """Once a command has succeeded, a SIGTERM while the interpreter shuts down (MLflow's and
    the engines' clean-up take a second or two) would kill the process with the signal: a
    scheduler then retries a run whose model is already registered (found by audit). The
    command is done: a SIGTERM now ends the process at once with status 0 (not ignored: a
    shut-down that hangs must still stop on it, found by review)."""
    import os

    def done(*_: object) -> None:
        for stream in (sys.stdout, sys.stderr):  # what the command printed is not lost
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(0)

    _SUCCEEDED.set()
    with contextlib.suppress(ValueError):  # only the main thread may set a handler
        signal.signal(signal.SIGTERM, done)


def _run(app: typer.Typer, argv: list[str] | None) -> None:
    """Run a command: bad data, a setting or a store that does not answer is a message and
    exit status 2; anything else is a bug and keeps its traceback. After SIGTERM any error
    (the engine's "Query interrupted" included) is the stop itself: exit status 143."""
    try:
        app(args=argv, prog_name="renewal")
    except Exception as exc:
        if TERMINATED.is_set():
            sys.exit(EXIT_TERMINATED)
        if isinstance(exc, DataContractError):
            report_error("the data breaks the contract", [p.render() for p in exc.problems])
        elif isinstance(exc, RenewalError):
            report_error(str(exc), [])
        elif _settings_refused(exc):
            report_error("a setting is refused", _setting_problems(exc))
        elif _store_unreachable(exc):
            # The driver's own first line names host and port, never the URL's password.
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
            report_error("cannot reach the score store (RENEWAL_DATABASE_URL): " + reason, [])
        else:
            raise
        sys.exit(EXIT_BAD_INPUT)


def _settings_refused(exc: BaseException) -> bool:
    """pydantic's error for one of the ``*Settings`` classes: an environment variable out of
    its range (``RENEWAL_MAX_BATCH_ACCOUNTS=2000``), not a bug: said, not a traceback."""
    from pydantic import ValidationError

    return isinstance(exc, ValidationError) and exc.title.endswith("Settings")


def _setting_problems(exc: BaseException) -> list[str]:
    """One line per refused variable, named as it is set; the value is not repeated (a URL
    there may hold a password)."""
    lines = []
    for error in exc.errors():  # type: ignore[attr-defined]
        field = str(error["loc"][0]) if error["loc"] else ""
        name = f"RENEWAL_{field.upper()}" if field else "settings"
        lines.append(f"{name}: {error['msg']}")
    return lines


def _store_unreachable(exc: BaseException) -> bool:
    """SQLAlchemy's OperationalError (server down, wrong port, no such database): a setting to
    fix, not a bug. Matched by name so that ``renewal --help`` need not import SQLAlchemy."""
    return type(exc).__name__ == "OperationalError" and type(exc).__module__.startswith(
        "sqlalchemy")


def report_error(title: str, lines: list[str]) -> None:
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    from rich.markup import escape

    # The title is the error's own text: "[lightgbm]" there is a TOML table, not markup.
    console.print(f"[bold red]error:[/] {escape(title)}", markup=True)
    for line in lines:
        console.print(f"  - {line}", markup=False)
