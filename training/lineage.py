"""Which data a model was trained on: a fingerprint of the files and the dates they cover.

The fingerprint hashes the bytes of every table file (and truth.parquet when present) in name
order, so two runs on identical directories get the same value and any edit changes it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from renewal.datadir import find_table
from renewal.tables import TABLES


def data_files(data_dir: Path) -> list[Path]:
    """The table files of the data directory (plus the simulator's truth), sorted by name."""
    files = [p for name in TABLES if (p := find_table(Path(data_dir), name)) is not None]
    truth = Path(data_dir) / "truth.parquet"
    if truth.exists():
        files.append(truth)
    return sorted(files, key=lambda p: p.name)


def data_fingerprint(data_dir: Path) -> dict[str, object]:
    """sha256 over all table files, and per file, so a changed table can be named."""
    combined = hashlib.sha256()
    per_file: dict[str, str] = {}
    for path in data_files(data_dir):
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        per_file[path.name] = digest
        combined.update(f"{path.name}:{digest}\n".encode())
    return {"sha256": combined.hexdigest(), "files": per_file}
