"""The customers' display names of a data directory (``accounts.name``: optional, PII).

The feature vectors do not carry the name (no feature reads it), so the scoring job reads
this one column beside them for the accounts snapshot, through the data contract's reader
(the run has checked the table already). Names are customer data: shown to an account's
readers, never logged.
"""

from __future__ import annotations

from pathlib import Path

from renewal.datadir import read_table


def account_names(data_dir: str | Path) -> dict[str, str]:
    """Each account's name by id; empty without an accounts table or a ``name`` column.
    A blank name counts as none (the page then shows the id).

    Read through the data contract's reader (one row per account: small), so a directory of
    Parquet part files, CSV and the contract's missing-value rule read as everywhere else."""
    frame = read_table(Path(data_dir), "accounts")
    if frame is None or "name" not in frame.columns:
        return {}
    names = frame["name"].astype("string").str.strip()
    known = (names.notna() & (names != "")).fillna(False).astype(bool)
    return dict(zip(frame.loc[known, "account_id"].astype(str), names[known].astype(str),
                    strict=True))
