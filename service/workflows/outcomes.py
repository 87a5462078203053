"""Where renewal dates, ARR and outcomes come from: the ``contracts`` table of a data directory.

By default the data directory of the latest scoring run (what the scores were computed
from; outcomes arrive there as ``renewed`` is filled in), or ``RENEWAL_OUTCOMES_DATA_DIR``.
The table is read once per file version (:mod:`service.workflows.file_cache`).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from renewal.datadir import find_table, read_table
from renewal.errors import DataContractError, Problem
from service.workflows.file_cache import FileVersionCache, Kept

_contracts: FileVersionCache[pd.DataFrame] = FileVersionCache()


def load_contracts(data_dir: Path) -> pd.DataFrame:
    """Contracts with dates as ``datetime64`` (read through the data contract's reader)."""
    return kept_contracts(data_dir).value


def kept_contracts(data_dir: Path) -> Kept[pd.DataFrame]:
    """The contracts of the current file version, with what callers derive from them kept
    alongside (:meth:`Kept.derived`): dropped together when a new export replaces the file."""
    path = find_table(Path(data_dir), "contracts")
    if path is None:
        raise DataContractError(
            [Problem("contracts", None, f"required table is missing in {data_dir}")]
        )
    return _contracts.get(path, lambda: _read_contracts(Path(data_dir)))


def _read_contracts(data_dir: Path) -> pd.DataFrame:
    frame = read_table(data_dir, "contracts")
    if frame is None:  # removed between the look and the read
        raise DataContractError(
            [Problem("contracts", None, f"required table is missing in {data_dir}")]
        )
    for column in ("start_date", "end_date"):
        frame[column] = pd.to_datetime(frame[column])
    return frame


def contract_at(contracts: pd.DataFrame, account_id: str, day: date) -> pd.Series | None:
    """The account's main term in force on ``day``, or None: the largest ARR (ties: later
    end, then contract_id), the term whose renewal decides the logo, as the features read it
    (``features/windows/contracts.py``): a small add-on started later is not it."""
    when = pd.Timestamp(day)
    rows = contracts[
        (contracts["account_id"] == account_id)
        & (contracts["start_date"] <= when)
        & (contracts["end_date"] >= when)
    ]
    if rows.empty:
        return None
    return rows.sort_values(["arr", "end_date", "contract_id"], na_position="first").iloc[-1]


def term_being_renewed(contracts: pd.DataFrame, account_id: str, day: date) -> pd.Series | None:
    """The term whose renewal a save attempt on ``day`` is about: the main term in force, or,
    between terms, the latest term ended before ``day`` (its renewal still open, or decided:
    an attempt to win back a lost account is judged on the term it lost). Without the
    second, an attempt made during a renewal that runs late stayed pending for good, or was
    judged on the next term once signed (found by audit)."""
    current = contract_at(contracts, account_id, day)
    if current is not None:
        return current
    ended = contracts[(contracts["account_id"] == account_id)
                      & (contracts["end_date"] < pd.Timestamp(day))]
    if ended.empty:
        return None
    return ended.sort_values(["end_date", "arr", "contract_id"], na_position="first").iloc[-1]
