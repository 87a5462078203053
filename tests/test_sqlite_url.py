"""Which file a SQLite URL names (the score store's and the MLflow store's default)."""

from __future__ import annotations

from pathlib import Path

import pytest

from renewal.sqlite import sqlite_file


@pytest.mark.parametrize(("url", "expected"), [
    ("sqlite:////srv/renewal/renewal.db", Path("/srv/renewal/renewal.db")),
    ("sqlite:///data/mlflow.db", Path("data/mlflow.db")),  # relative, as written
    ("sqlite+pysqlite:////srv/r.db", Path("/srv/r.db")),
    ("sqlite://", None),  # in memory
    ("sqlite:///:memory:", None),
    ("sqlite:///file:/srv/r.db?mode=ro&uri=true", None),  # SQLite reads a URI filename itself
    ("postgresql+psycopg://postgres@127.0.0.1:5432/test", None),
    ("not a url", None),
])
def test_the_file_a_sqlite_url_names(url, expected):
    assert sqlite_file(url) == expected
