"""Values in the raw files that the engine's cast to the contract would fail on or hide.

DuckDB's cast rounds ``2.5`` to an int, reads a zoned timestamp as a UTC instant (moving
the day) and fails a whole table on one unparsable cell. The big-table contract check
(:mod:`features.validation`) therefore first counts such values per column, worded as
:mod:`renewal.contract`, and reads them as nulls so that the other rules run on the rest. It
scans only where the file's own types leave room for them, and for the two rules the types
cannot express: dates outside the contract's range, and whitespace around ids and codes (not
in a Parquet usage table: too costly there, see :func:`_table_values`).
"""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd

from features.source import FALSE_WORDS, TRUE_WORDS, Source, cast_to_contract
from renewal.contract import INT_RANGE, PADDED_TEXT_RULE, ZONED_DATE, ZONED_RULE, shown
from renewal.datadir import DATE_RANGE_RULE, find_table
from renewal.errors import Problem
from renewal.tables import DATE_RANGE, TABLES, Column

_raw_views = itertools.count()
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}([ T].*)?$"
#: The whitespace characters Python's str.strip removes (what renewal.contract checks with;
#: a test keeps the two equal).
_WHITESPACE = list("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003"
                   "\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f"
                   "\u3000")


def unparsable_values(source: Source, data_dir: Path) -> tuple[list[Problem], dict[str, set[str]]]:
    """Values the engine's cast to the contract would fail on or silently change, worded as
    :mod:`renewal.contract` (``values are not of type int``, dates with a time zone), and the
    columns holding them, by table.

    Those values are then read as nulls (``source.tables`` is replaced), so that the other
    rules are checked on the rest; as in ``renewal validate``, the rules of a column whose
    values do not parse are not checked (their nulls would be reported twice).
    """
    problems: list[Problem] = []
    unparsed: dict[str, set[str]] = {}
    for name in list(source.tables):
        path = find_table(data_dir, name)
        if path is None:
            continue
        try:
            found, columns, table = _table_values(source.backend, path, name)
        except Exception:  # noqa: BLE001 - unreadable: contract_problems names it
            continue
        problems += found
        if columns:
            unparsed[name] = columns
        if table is not None:
            source.tables[name] = table
    return problems, unparsed


def _table_values(
    backend, path: Path, name: str
) -> tuple[list[Problem], set[str], ir.Table | None]:
    """One table's values that do not parse, their columns, and the table cast without them
    (None: nothing to hide)."""
    problems: list[Problem] = []
    unparsed: set[str] = set()
    raw = _read_raw(backend, path)
    spec = TABLES[name]
    # Whitespace around ids of a Parquet usage table is left unchecked here: reading its
    # string columns for it took the check on 50 M rows from ~15 to ~30 s (measured under
    # load). The other tables are small, and a CSV is read as text anyway.
    padding = not (name == "usage" and path.suffix == ".parquet")
    checks = {c.name: _value_checks(raw[c.name], c, padding)
              for c in spec.columns if c.name in raw.columns}
    checks = {column: rules for column, rules in checks.items() if rules}
    if not checks:
        return [], set(), None  # the file's types admit only valid values: nothing to scan
    labelled = {f"c{i}": found for i, found in enumerate(
        (column, rule, cond) for column, rules in checks.items()
        for rule, cond in rules.items() if rule)}
    counts = raw.aggregate(
        **{label: cond.ifelse(1, 0).sum() for label, (_c, _r, cond) in labelled.items()}
    ).to_pandas().iloc[0] if labelled else {}
    for label, (column, rule, cond) in labelled.items():
        rows = int(counts[label] or 0)
        if rows:
            problems.append(Problem(name, column, rule, rows,
                                    _value_examples(raw, spec, column, cond)))
            unparsed.add(column)
    masked = {
        column: ibis.or_(*rules.values()).ifelse(ibis.null(raw[column].type()), raw[column])
        for column, rules in checks.items() if column in unparsed or None in rules
    }
    if not masked:
        return problems, unparsed, None
    table = cast_to_contract(raw.mutate(**masked), name, from_text=path.suffix == ".csv")
    return problems, unparsed, table


def _read_raw(backend, path: Path) -> ir.Table:
    """The file as the engine reads it, before the cast (as :func:`features.source.open_source`)."""
    view = f"raw_{path.stem}_{next(_raw_views)}"
    if path.suffix == ".parquet":
        return backend.read_parquet(path, table_name=view)
    return backend.read_csv(path, table_name=view, all_varchar=True, header=True)


#: The smallest magnitude read as a nanosecond timestamp in an integer date column:
#: 1e17 ns is 1973-03-03; epoch seconds and milliseconds of any plausible date are far below.
NANOSECOND_DATES_FROM = 10**17


def _value_checks(
    value: ir.Value, column: Column, padding: bool = True
) -> dict[str | None, ir.BooleanValue]:
    """The rule each bad value of ``value`` breaks and its condition; key None: values read
    as nulls without a rule broken (NaN in a float column, a null to pandas too)."""
    dtype = value.type()
    if column.kind == "str":
        if column.free_text or not dtype.is_string() or not padding:
            return {}
        # Ids and codes are compared as written: whitespace around one (a non-breaking space
        # too) is refused, as renewal.contract does. The first and last characters are
        # compared with a list: a regex on every row of 50 M usage rows took the check from
        # 25 to 36 s (found by review).
        ends = [value.left(1), value.right(1)]
        return {PADDED_TEXT_RULE: value.notnull()
                & (ends[0].isin(_WHITESPACE) | ends[1].isin(_WHITESPACE))}
    not_type = f"values are not of type {column.kind}"
    first, last = DATE_RANGE
    if dtype.is_string():
        text = value.strip()
        given = text.notnull() & (text != "")
        if column.kind == "date":
            zoned = given & text.re_search(f"^{ZONED_DATE}$")
            iso = given & ~zoned & text.re_search(_ISO_DATE)
            year = text.substr(0, 4).try_cast("int64")
            beyond = iso & ((year < first.year) | (year > last.year)).fill_null(False)
            unread = given & ~zoned & ~beyond & (~text.re_search(_ISO_DATE)
                                                 | text.try_cast("timestamp").isnull())
            return {ZONED_RULE: zoned, DATE_RANGE_RULE: beyond, not_type: unread}
        if column.kind == "bool":
            return {not_type: given & ~text.lower().isin([*TRUE_WORDS, *FALSE_WORDS])}
        number = text.try_cast("float64")
        unread = given & (number.isnull() | number.isnan())
        if column.kind == "int":
            unread = given & (unread | _not_int(number).fill_null(False))
        return {not_type: unread}
    if column.kind == "date" and dtype.is_timestamp() and dtype.timezone is not None:
        return {ZONED_RULE: value.notnull()}
    if column.kind == "date" and (dtype.is_timestamp() or dtype.is_date()):
        year = value.year()
        return {DATE_RANGE_RULE: value.notnull() & ((year < first.year) | (year > last.year))}
    if column.kind == "date" and dtype.is_integer():
        # Long integers are nanosecond timestamps (Spark's legacy Parquet); an export's epoch
        # seconds or milliseconds (1.7e9, 1.7e12 for 2024) would read as 1970-01-01 and pass
        # (found by audit: every account 19,904 days old). pandas refuses them too.
        return {not_type: value.notnull() & (value.abs() < NANOSECOND_DATES_FROM)}
    if column.kind == "int" and (dtype.is_floating() or dtype.is_decimal()):
        number = value.cast("float64")
        checks = {not_type: value.notnull() & ~number.isnan() & _not_int(number)}
        if dtype.is_floating():
            checks[None] = number.isnan().fill_null(False)
        return checks
    return {}


def _not_int(number: ir.FloatingValue) -> ir.BooleanValue:
    """Fractional, infinite or beyond int64 (the cast would round, or fail). Not ``round()``:
    Ibis casts its result to int64, which fails on the very values looked for."""
    low, high = INT_RANGE
    return ((number % 1) != 0) | (number < float(low)) | (number >= float(high))


def _value_examples(raw: ir.Table, spec, column: str, cond: ir.BooleanValue) -> tuple[str, ...]:
    """Example keys as written, the value after the key unless part of it (as renewal.contract)."""
    key = [k for k in spec.key if k in raw.columns] or [raw.columns[0]]
    shown = list(dict.fromkeys([*key, column]))
    frame = (raw.filter(cond).select(shown).distinct().order_by(shown).limit(EXAMPLES_SHOWN)
             .to_pandas())
    examples = []
    for row in frame.to_dict("records"):
        text = "/".join(_written(row[k], k == column) for k in key)
        examples.append(text if column in key else f"{text}: {_written(row[column], True)}")
    return tuple(examples)


EXAMPLES_SHOWN = 3


def _written(value: object, as_is: bool) -> str:
    """A key part as :func:`features.source.example_keys` renders it; the offending value as
    written (a zoned timestamp keeps its offset)."""
    if as_is and value is not None:
        if isinstance(value, pd.Timestamp):  # a zoned or timed value keeps what sets it apart
            plain = value.tzinfo is None and value == value.normalize()
            return value.date().isoformat() if plain else value.isoformat()
        return shown(str(value))
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return "null" if pd.isna(value) else shown(str(value))
