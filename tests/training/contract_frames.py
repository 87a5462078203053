"""Hand-built contract tables for the training tests."""

from __future__ import annotations

import pandas as pd


def contracts_frame(rows: list[tuple]) -> pd.DataFrame:
    """(contract_id, account_id, start_date, end_date, renewed) rows as the contracts table."""
    frame = pd.DataFrame(rows, columns=["contract_id", "account_id", "start_date", "end_date",
                                        "renewed"])
    frame["start_date"] = pd.to_datetime(frame["start_date"])
    frame["end_date"] = pd.to_datetime(frame["end_date"])
    frame["renewed"] = frame["renewed"].astype("boolean")
    return frame
