"""Tables and warnings for people: tables printed whole, warnings on one line each.

Rich fits a table to the console and elides what does not fit ("2024-…", "100.…"). A cohort
table or a forecast backtest with its values elided is useless, and when the output goes to a
file or a pipe, rich assumes 80 columns although nothing limits the width there.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

# Wide enough for any table of the commands; only the measurement uses it.
_UNBOUNDED = 10_000


def print_table(console: Console, table: Table) -> None:
    """Print ``table`` with every value whole.

    To a file or a pipe: at the table's natural width. To a terminal narrower than the table:
    cells and headers that must shrink are folded onto more lines instead of elided.
    """
    if console.is_terminal:
        for column in table.columns:
            column.overflow = "fold"
        console.print(table)
        return
    natural = console.measure(table, options=console.options.update_width(_UNBOUNDED)).maximum
    previous = console.width
    console.width = max(previous, natural)
    try:
        console.print(table)
    finally:
        console.width = previous


def print_warning(console: Console, message: str) -> None:
    """``warning: message`` in yellow, the message taken literally (no markup) and on one line
    when piped, so a log keeps it whole."""
    console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)
