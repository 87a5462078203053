"""Where renewal dates, ARR and outcomes come from: the ``contracts`` table of a data directory.

By default the data directory of the latest scoring run (what the scores were computed
from; outcomes arrive there as ``renewed`` is filled in), or ``RENEWAL_OUTCOMES_DATA_DIR``.
The table is read once per file version (path + modification time) and kept in memory.
"""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import pandas as pd

from renewal.datadir import find_table, read_table
from renewal.errors import DataContractError, Problem

_lock = threading.Lock()
_cache: dict[tuple[str, float], pd.DataFrame] = {}


def load_contracts(data_dir: Path) -> pd.DataFrame:
    """Contracts with dates as ``datetime64`` (read through the data contract's reader)."""
    path = find_table(Path(data_dir), "contracts")
    if path is None:
        raise DataContractError(
            [Problem("contracts", None, f"required table is missing in {data_dir}")]
        )
    key = (str(path), path.stat().st_mtime)
    with _lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    frame = read_table(Path(data_dir), "contracts")
    assert frame is not None
    for column in ("start_date", "end_date"):
        frame[column] = pd.to_datetime(frame[column])
    with _lock:
        _cache.clear()
        _cache[key] = frame
    return frame


def contract_at(contracts: pd.DataFrame, account_id: str, day: date) -> pd.Series | None:
    """The account's contract in force on ``day`` (latest start; ties: later end), or None."""
    when = pd.Timestamp(day)
    rows = contracts[
        (contracts["account_id"] == account_id)
        & (contracts["start_date"] <= when)
        & (contracts["end_date"] >= when)
    ]
    if rows.empty:
        return None
    return rows.sort_values(["start_date", "end_date", "contract_id"]).iloc[-1]
