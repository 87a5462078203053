"""`renewal ... --help` prints each paragraph of a command's docstring as one paragraph: the
terminal wraps it, not the docstring's own line breaks (Typer keeps those as they are)."""

from __future__ import annotations

import inspect

import typer
from typer.testing import CliRunner

from renewal.cli import build_app


def commands(group, prefix: tuple[str, ...] = ()):
    """(path, command) of every leaf command; Typer 0.29 vendors its own click classes."""
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def test_every_command_has_its_paragraphs_on_one_line_each():
    found = dict(commands(typer.main.get_command(build_app())))
    assert {("score",), ("train",), ("keys", "revoke"), ("db", "upgrade")} <= set(found)
    for path, command in found.items():
        assert command.help, f"renewal {' '.join(path)} has no help"
        assert "\n" not in command.help.replace("\n\n", ""), path


def test_a_wide_terminal_shows_a_wrapped_docstring_paragraph_on_one_line():
    from renewal.commands.score import score

    second = inspect.cleandoc(score.__doc__ or "").split("\n\n")[1]
    assert "\n" in second  # wrapped in the source
    shown = CliRunner().invoke(build_app(), ["score", "--help"], env={"COLUMNS": "300"},
                               prog_name="renewal").output
    assert " ".join(second.split()) in shown
