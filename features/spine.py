"""Points in time to compute vectors at (``renewal features --spine``), read and checked.

A spine is the caller's table of ``(account_id, as_of)`` rows, often with labels beside them:
a training set of one's own. Every row must come back with its vector, in the file's order,
so nothing in the file is guessed at or dropped: each doubt is an error naming the file, the
row count and examples.
"""

from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path

import ibis.expr.types as ir
import pandas as pd

from features.config import FeatureConfig
from features.registry import FEATURES
from features.source import Source
from features.vectors import feature_vectors
from features.windows import KEYS
from renewal.errors import SpineError

# YYYY-MM-DD, alone or followed by a time: "2024-01-3100" or "2024-01-31/2024-02-29" are not
# dates, and "01/02/2024" is a month or a day depending on a guess.
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ].*)?$")


def read_spine(path: Path) -> pd.DataFrame:
    """The spine in ``path`` (``.parquet`` or ``.csv``): ``account_id`` (trimmed), ``as_of``
    (a date-time at midnight, the date as written) and the file's other columns as read."""
    if not path.is_file():
        raise SpineError(f"--spine {path}: no such file")
    frame = _read_points(path)
    frame.columns = [str(name).strip() for name in frame.columns]
    repeated = sorted({name for name in frame.columns if list(frame.columns).count(name) > 1})
    if repeated:
        raise SpineError(f"--spine {path}: column(s) {', '.join(map(repr, repeated))} more than "
                         "once (names are trimmed)")
    missing = [column for column in KEYS if column not in frame.columns]
    if missing:
        raise SpineError(f"--spine {path}: missing column(s) {', '.join(missing)} "
                         f"(has {', '.join(map(repr, frame.columns)) or 'none'})")
    clash = sorted(set(frame.columns) & {feature.name for feature in FEATURES})
    if clash:
        raise SpineError(f"--spine {path}: column(s) {', '.join(clash)} are feature names; "
                         "rename them (the output has both)")
    if frame.empty:
        raise SpineError(f"--spine {path}: no rows")
    accounts = frame["account_id"].astype("string").str.strip().replace("", pd.NA)
    dates = _spine_dates(frame["as_of"])
    bad = accounts.isna() | dates.isna()
    if bad.any():
        examples = frame.loc[bad, list(KEYS)].head(3).to_dict("records")
        raise SpineError(f"--spine {path}: {int(bad.sum())} of {len(frame)} row(s) without an "
                         f"account_id or a date as_of (YYYY-MM-DD), e.g. {examples}")
    return frame.assign(account_id=accounts, as_of=dates)


def spine_vectors(
    source: Source, points: pd.DataFrame, config: FeatureConfig, daily: ir.Table | None = None
) -> pd.DataFrame:
    """One vector per row of ``points`` (:func:`read_spine`), in its order, its other columns
    kept between the keys and the features: labels travel with their vectors."""
    keys = points[list(KEYS)].drop_duplicates()
    vectors = feature_vectors(source, keys, config, daily=daily)
    return points.merge(vectors, on=list(KEYS), how="left", validate="many_to_one",
                        suffixes=(None, None))


def _read_points(path: Path) -> pd.DataFrame:
    """The file as a frame; in a CSV only empty cells are missing ("NA" is an account id)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
            # A frame saved with its keys as the index: they are columns here.
            return frame.reset_index() if any(frame.index.names) else frame
        if suffix != ".csv":
            raise SpineError(f"--spine {path}: expected a .parquet or .csv file")
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
        if not header:
            raise SpineError(f"--spine {path}: no header row")
        names = [name.strip() for name in header]
        if len(set(names)) < len(names):  # pandas would rename the second "x" to "x.1"
            return pd.DataFrame(columns=names)
        with warnings.catch_warnings():
            # A row longer than the header would otherwise shift into an index, or lose fields.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(path, header=0, names=names, encoding="utf-8-sig",
                               dtype={"account_id": "string", "as_of": "string"},
                               index_col=False, keep_default_na=False, na_values=[""])
    except (ValueError, OSError, pd.errors.ParserWarning) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpineError(f"--spine {path}: cannot be read: {reason}") from exc


def _spine_dates(values: pd.Series) -> pd.Series:
    """Each as_of as a naive date-time at midnight; NaT where it is not an ISO date.

    A date-time counts by its date as written (a zoned one is not moved to UTC first).
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        if values.dt.tz is not None:
            values = values.dt.tz_localize(None)
        return values.dt.normalize().astype("datetime64[ns]")
    text = values.astype("string").str.strip()
    text = text.where(text.str.match(_ISO_DATE).fillna(False)).str.slice(0, 10)
    return pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").astype("datetime64[ns]")
