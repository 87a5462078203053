"""Reading and writing the tables of a data directory (Parquet or CSV), one file per table.

Dtypes are normalised here, at the boundary, so that nothing downstream meets a mix of
Python ``date`` objects, strings and timestamps (pandas 3 reads Parquet dates as objects).

Values are read as written: in CSV only an empty cell is missing (:data:`CSV_MISSING`), as
DuckDB reads it (:mod:`features.source`), and text keeps its spaces (:mod:`renewal.contract`
refuses ids and codes with spaces around them, which the engine's CSV cast would trim);
spaces around a number, date or boolean are ignored where it is parsed.

Writes are atomic: a temporary file in the same directory, then a rename; a run's files are
staged together and published at its end.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from renewal.errors import DataContractError, Problem
from renewal.tables import DATE_RANGE, TABLES, Column

Format = Literal["parquet", "csv"]
FORMATS: tuple[Format, ...] = ("parquet", "csv")
STAGING_PREFIX = ".staging-"
# A staging directory whose writer cannot be asked is swept once nothing in it changed for this
# long: a run writes into its staging directory from start to end (tables one after another,
# usage in chunks), never pausing for a day.
STALE_STAGING_SECONDS = 24 * 60 * 60
_STAGING_NAME = re.compile(r"\.staging-(?P<space>[0-9a-f]{8})-(?P<pid>[0-9]{1,10})-[^-]+")
#: The one CSV cell that is missing: an empty one, as DuckDB and Spark read it. pandas' default
#: markers (NULL, N/A, NA, None, NaN, #N/A, ...) were missing to ``renewal validate`` only, so
#: a "NULL" date passed it and then failed the engine's cast; and as markers they would turn
#: real text into nulls (a region "NA", North America). Read as the values they are, they are
#: refused where they do not parse (numbers, dates, booleans) and kept as text elsewhere.
CSV_MISSING = ("",)
#: A date outside :data:`~renewal.tables.DATE_RANGE`: a placeholder, said as such (pandas' own
#: "Out of bounds nanosecond timestamp" named no row and let the column skip every other check).
DATE_RANGE_RULE = (
    f"dates outside {DATE_RANGE[0].isoformat()}..{DATE_RANGE[1].isoformat()} (placeholders "
    "such as 9999-12-31, 0001-01-01): leave an unknown date empty; export an open-ended "
    "contract term by term, each row ending on its term's last day"
)


def find_table(data_dir: Path, name: str) -> Path | None:
    """The file holding table ``name``, or None. Two formats of one table is an error."""
    found = [p for fmt in FORMATS if (p := Path(data_dir) / f"{name}.{fmt}").exists()]
    if len(found) > 1:
        raise DataContractError(
            [Problem(name, None, f"two files for one table: {', '.join(p.name for p in found)}")]
        )
    return found[0] if found else None


def read_raw(path: Path) -> pd.DataFrame:
    """Read a table file as it is, or raise a contract error naming the file (never a traceback)."""
    table = path.stem
    try:
        if path.suffix == ".parquet":
            # Dates as datetime64, not Python objects: re-parsing objects is slow on big tables.
            return pq.read_table(path).to_pandas(date_as_object=False)
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=list(CSV_MISSING),
                            encoding="utf-8")
        _refuse_repeated_columns(path, frame)
        return frame
    except UnicodeDecodeError as exc:
        rule = f"file {path.name} is not UTF-8 text ({exc.reason} at byte {exc.start})"
    except (pa.ArrowException, OSError, ValueError, pd.errors.ParserError) as exc:
        rule = f"file {path.name} cannot be read: {str(exc).splitlines()[0][:200]}"
    raise DataContractError([Problem(table, None, rule)])


def _refuse_repeated_columns(path: Path, frame: pd.DataFrame) -> None:
    """A CSV header naming a column twice: pandas renames the second ``x.1`` and the contract
    would silently read the first; which one the export meant is unknown."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle), [])
    names = [name.strip() for name in header]
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        raise DataContractError([Problem(
            path.stem, ", ".join(repeated),
            f"file {path.name} names column(s) {', '.join(repeated)} more than once in its "
            "header: keep one of each", rows=len(frame))])


def read_table(data_dir: Path, name: str) -> pd.DataFrame | None:
    """The table with normalised dtypes, or None when the file is absent.

    Conversion failures are not fixed here: values that do not parse become a contract
    problem in :mod:`renewal.contract`, which calls :func:`coerce` and reports them.
    """
    path = find_table(data_dir, name)
    if path is None:
        return None
    frame, problems = coerce(read_raw(path), name)
    if problems:
        raise DataContractError(problems)
    return frame


def coerce(raw: pd.DataFrame, name: str) -> tuple[pd.DataFrame, list[Problem]]:
    """Cast the known columns to their contract kinds; report values that do not parse and
    dates outside :data:`~renewal.tables.DATE_RANGE` (read as nulls, never a traceback)."""
    spec = TABLES[name]
    frame = raw.copy()
    problems: list[Problem] = []
    for column in spec.columns:
        if column.name not in frame.columns:
            continue
        values = frame[column.name]
        if column.kind == "date":
            beyond = dates_out_of_range(values)
            if beyond.any():
                examples = tuple(_day(v) for v in values[beyond].head(3))
                problems.append(Problem(name, column.name, DATE_RANGE_RULE, int(beyond.sum()),
                                        examples))
                values = values.where(~beyond)
        converted, bad = _convert(values, column)
        if bad.any():
            examples = tuple(str(v) for v in frame.loc[bad, column.name].head(3))
            problems.append(
                Problem(name, column.name, f"values are not of type {column.kind}",
                        int(bad.sum()), examples)
            )
        frame[column.name] = converted
    return frame, problems


def _day(value: object) -> str:
    """A date value as its day (a Parquet date is read as a timestamp at midnight)."""
    if isinstance(value, pd.Timestamp) and value.tz is None and value == value.normalize():
        return value.date().isoformat()
    return str(value)


def dates_out_of_range(values: pd.Series) -> pd.Series:
    """Mask of the dates outside :data:`~renewal.tables.DATE_RANGE`, given as dates (any unit,
    Arrow-backed too) or as ISO text; text that is no ISO date is left to the type check."""
    first, last = DATE_RANGE
    assert (first.month, first.day, last.month, last.day) == (1, 1, 12, 31)  # whole years
    if _is_temporal(values):
        years = values.dt.year
    else:
        text = values.astype("string").str.strip()
        iso = text.str.match(r"\d{4}-\d{2}-\d{2}").fillna(False).astype(bool)
        years = pd.to_numeric(text.str.slice(0, 4).where(iso), errors="coerce")
    beyond = (years < first.year) | (years > last.year)
    return beyond.fillna(False).astype(bool)


_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}


def _convert(values: pd.Series, column: Column) -> tuple[pd.Series, pd.Series]:
    """Return the converted series and a mask of non-null inputs that did not convert."""
    present = values.notna() & (values.astype("string").str.strip() != "")
    kind = column.kind
    if kind == "str":
        return values.astype("string"), pd.Series(False, index=values.index)
    if kind == "date":
        if _is_temporal(values):
            out = pd.to_datetime(values)
            if getattr(out.dt, "tz", None) is not None:
                out = out.dt.tz_localize(None)
            out = out.dt.normalize().astype("datetime64[ns]")
        else:
            text = values.astype("string").str.strip()
            # ISO dates only: a mix of formats is ambiguous (03/04 is March or April).
            out = pd.to_datetime(text, format="ISO8601", errors="coerce")
            iso = text.str.fullmatch(r"\d{4}-\d{2}-\d{2}([ T].*)?").fillna(False).astype(bool)
            out = out.where(iso).dt.normalize().astype("datetime64[ns]")
        return out, present & out.isna()
    if kind in ("int", "float"):
        if pd.api.types.is_bool_dtype(values):
            out = pd.Series(pd.NA, index=values.index, dtype="Float64")
            return out, present
        numbers = pd.to_numeric(values, errors="coerce")
        bad = present & numbers.isna()
        if kind == "int":
            fractional = numbers.notna() & (numbers != numbers.round())
            bad |= fractional
            numbers = numbers.where(~fractional)
            return numbers.astype("Int64"), bad
        return numbers.astype("Float64"), bad
    # bool
    if pd.api.types.is_bool_dtype(values) or str(values.dtype) == "boolean":
        return values.astype("boolean"), pd.Series(False, index=values.index)
    text = values.astype("string").str.strip().str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[text.isin(_TRUE).fillna(False).astype(bool)] = True
    out[text.isin(_FALSE).fillna(False).astype(bool)] = False
    return out, present & out.isna()


def _is_temporal(values: pd.Series) -> bool:
    """Datetime or date values, numpy- or Arrow-backed (text is parsed separately)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    arrow_type = getattr(values.dtype, "pyarrow_dtype", None)
    if arrow_type is None:
        return False
    return pa.types.is_date(arrow_type) or pa.types.is_timestamp(arrow_type)


def temporary_beside(target: Path) -> Path:
    """A new hidden empty file in ``target``'s directory (made if needed): written there, it is
    renamed onto ``target`` within one file system, so the rename is atomic."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    return Path(tmp)


def readable(path: Path) -> None:
    """mkstemp creates 0600; outputs are ordinary files others (e.g. the service) read."""
    os.chmod(path, 0o644)


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it into place only on success."""
    target = Path(target)
    tmp_path = temporary_beside(target)
    try:
        yield tmp_path
        readable(tmp_path)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def staged_directory(out_dir: Path) -> Iterator[Path]:
    """A hidden ``.staging-*`` directory inside ``out_dir`` to write a run's files into. They
    are moved into ``out_dir`` (each rename atomic: one file system) only when the block ends
    without an error, and the directory is removed either way, so a failed or stopped run
    leaves ``out_dir`` as it was (a previous good run's files included). What a killed run
    left behind is swept first (:func:`sweep_staging`)."""
    sweep_staging(out_dir)
    with tempfile.TemporaryDirectory(prefix=staging_prefix(), dir=out_dir) as name:
        staging = Path(name)
        yield staging
        for path in sorted(staging.iterdir()):
            os.replace(path, Path(out_dir) / path.name)


def staging_prefix(pid: int | None = None) -> str:
    """``.staging-<pid space>-<pid>-``, the start of the name of a staging directory written by
    process ``pid`` (this one by default): the name says who writes it, so that a later run can
    tell a leftover from the directory of a run that is still writing."""
    return f"{STAGING_PREFIX}{pid_space()}-{os.getpid() if pid is None else pid}-"


@functools.cache
def pid_space() -> str:
    """Eight hex digits for where a PID names one process: the host and its PID namespace.

    Containers sharing a volume each count PIDs from 1 and may even share a host name (set in
    a compose file); machines sharing a network file system may share a host name by mistake.
    The machine id and the PID namespace tell them apart where /proc and /etc have them. A
    reboot keeps the space: every PID from before it is gone, and its leftovers go at once.
    """
    parts = [socket.gethostname()]
    for read in (lambda: Path("/etc/machine-id").read_text().strip(),
                 lambda: os.readlink("/proc/self/ns/pid")):
        with contextlib.suppress(OSError):
            parts.append(read())
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()[:8]


def sweep_staging(out_dir: Path, now: float | None = None) -> list[Path]:
    """Remove the staging directories in ``out_dir`` whose run is over; return them.

    A run removes its own staging directory, also on an error, Ctrl-C or SIGTERM; SIGKILL or a
    power cut leave it behind, and nothing else ever would remove it. Two runs may write into
    one directory at once, so a staging directory goes only when its writer is known to be
    gone: the PID in its name no longer exists in this PID space. A reused PID keeps a leftover
    until that process ends: too late, never too early. A writer in another PID space (another
    host or container on a shared volume) cannot be asked, nor can the writer of a name without
    a PID (from before PIDs were part of it): their directories go once unchanged for
    :data:`STALE_STAGING_SECONDS`, which no run still writing leaves them.
    """
    now = time.time() if now is None else now
    swept = []
    for path in Path(out_dir).glob(f"{STAGING_PREFIX}*"):
        if path.is_dir() and not path.is_symlink() and _abandoned(path, now):
            shutil.rmtree(path, ignore_errors=True)  # best effort: it must not fail a new run
            swept.append(path)
    return swept


def _abandoned(staging: Path, now: float) -> bool:
    """Whether the run writing ``staging`` is over (or, when it cannot be asked, idle too long)."""
    named = _STAGING_NAME.fullmatch(staging.name)
    alive = None
    if named is not None and named["space"] == pid_space():
        alive = _process_alive(int(named["pid"]))
    if alive is None:
        return now - _last_change(staging) > STALE_STAGING_SECONDS
    return not alive


def _process_alive(pid: int) -> bool | None:
    """Whether process ``pid`` exists here; None where that cannot be asked."""
    if os.name != "posix":  # on Windows os.kill(pid, 0) terminates the process
        return None
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _last_change(directory: Path) -> float:
    """The latest modification of ``directory`` or of a file in it (a file being written grows
    without changing its directory)."""
    latest = 0.0
    for path in (directory, *_entries(directory)):
        with contextlib.suppress(OSError):  # removed meanwhile
            latest = max(latest, path.lstat().st_mtime)
    return latest


def _entries(directory: Path) -> list[Path]:
    try:
        return list(directory.iterdir())
    except OSError:
        return []


def missing_directories(directory: Path) -> list[Path]:
    """``directory`` and those of its parents that do not exist yet, innermost first: what
    creating it makes, and :func:`remove_empty_directories` takes back if the run fails."""
    missing = []
    path = Path(directory)
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def remove_empty_directories(directories: Iterable[Path]) -> None:
    """Remove directories a failed run created, innermost first, where still empty (another
    process may have put something into one meanwhile)."""
    for directory in directories:
        with contextlib.suppress(OSError):
            directory.rmdir()


def write_table(frame: pd.DataFrame, out_dir: Path, name: str, fmt: Format = "parquet") -> Path:
    """Write one table atomically as ``<out_dir>/<name>.<fmt>``."""
    target = Path(out_dir) / f"{name}.{fmt}"
    with atomic_path(target) as tmp:
        if fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False, date_format="%Y-%m-%d")
    return target
