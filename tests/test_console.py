"""Tables for people (renewal.console.print_table): never a value cut short."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from renewal.console import print_table

VALUES = ["1,234,567–2,345,678", "mid_market", "100.0%"]


def wide_table() -> Table:
    table = Table(title="forecast backtest")
    for name in ("expected ARR interval", "segment", "activation rate"):
        table.add_column(name, justify="right")
    table.add_row(*VALUES)
    return table


def printed(console: Console) -> str:
    print_table(console, wide_table())
    return console.file.getvalue()


def test_a_pipe_gets_the_natural_width_and_the_console_keeps_its_own() -> None:
    console = Console(file=io.StringIO(), width=30)
    out = printed(console)
    assert "…" not in out
    row = next(line for line in out.splitlines() if "mid_market" in line)
    assert all(value in row for value in VALUES)
    assert console.width == 30


def test_a_narrow_terminal_folds_instead_of_eliding() -> None:
    console = Console(file=io.StringIO(), width=30, force_terminal=True, color_system=None)
    out = printed(console)
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 30
    # Every character of every value is still there, folded over lines of its column.
    body = [line for line in out.splitlines() if line.startswith("│")]
    columns = ["".join(line.strip("│").split("│")[i].strip() for line in body) for i in range(3)]
    assert columns == VALUES
