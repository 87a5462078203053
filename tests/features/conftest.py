"""Tiny hand-built data directories for the feature tests (real Parquet files, real DuckDB)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from renewal.datadir import write_table

DATE_COLUMNS = {
    "accounts": ("signed_at",), "contracts": ("start_date", "end_date"), "usage": ("date",),
    "tickets": ("opened_at", "resolved_at"), "surveys": ("date",), "health_inputs": ("date",),
    "value": ("date",),
}


def d(text: str) -> date:
    return date.fromisoformat(text)


def days(start: str, count: int) -> list[date]:
    """``count`` consecutive dates from ``start``."""
    first = d(start)
    return [first + timedelta(days=i) for i in range(count)]


def write_dir(path: Path, **tables: Iterable[dict] | pd.DataFrame) -> Path:
    """Write each table (records or a frame) as Parquet; dates become datetime64 like real data."""
    path.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
        for column in DATE_COLUMNS.get(name, ()):
            if column in frame.columns:
                frame[column] = pd.to_datetime(frame[column])
        write_table(frame, path, name)
    return path


def contracts_for(accounts: Iterable[dict], arr: float = 1000.0) -> list[dict]:
    """One open two-year contract per account, starting on its signing date."""
    return [
        {"contract_id": f"c-{a['account_id']}", "account_id": a["account_id"],
         "start_date": a["signed_at"], "end_date": d(str(a["signed_at"])) + timedelta(days=730),
         "arr": arr, "renewed": None}
        for a in accounts
    ]


@pytest.fixture
def make_dir(tmp_path: Path) -> Callable[..., Path]:
    """Build a data directory; contracts default to one per account."""
    counter = iter(range(1000))

    def build(accounts: list[dict], usage: list[dict], **optional) -> Path:
        optional.setdefault("contracts", contracts_for(accounts))
        return write_dir(tmp_path / f"data{next(counter)}", accounts=accounts, usage=usage,
                         **optional)

    return build
