"""Domain exceptions, in one module. The CLI maps them to exit code 2, the API to problem+json."""

from __future__ import annotations

from dataclasses import dataclass, field


class RenewalError(Exception):
    """Base of every error this project raises on purpose (bad input, bad config, bad state)."""


@dataclass(frozen=True)
class Problem:
    """One broken rule of the data contract, with enough detail to find the rows."""

    table: str
    column: str | None
    rule: str
    rows: int = 0
    examples: tuple[str, ...] = field(default_factory=tuple)

    def render(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        text = f"{where}: {self.rule}"
        if self.rows:
            text += f" ({self.rows} row{'s' if self.rows != 1 else ''}"
            if self.examples:
                text += f", e.g. {', '.join(self.examples)}"
            text += ")"
        return text


class DataContractError(RenewalError):
    """The data directory breaks the contract; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(p.render() for p in problems))


class ConfigError(RenewalError):
    """A configuration file or value is invalid."""


class SpineError(RenewalError):
    """A spine (the points in time to compute vectors at) is unreadable or asks for an account
    that does not exist (yet) at its as_of."""


class ModelUnavailableError(RenewalError):
    """No usable model could be loaded (registry down and no last-known-good copy)."""
