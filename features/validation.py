"""The data-contract check before a pipeline run: pandas where the data fits, the engine beyond.

``renewal validate`` (:mod:`renewal.contract`) reads every table into pandas and checks it with
pandera: the most detailed report (per column, per CSV cell), but on 50 M usage rows it took
43-48 s and 9.2 GB, twenty times the feature pipeline it guarded. Above
:data:`ENGINE_CHECK_FROM_ROWS` Parquet rows the commands that run the pipeline (features,
metrics, train, score) let DuckDB check the same rules instead
(:func:`features.source.contract_problems`, worded the same), reading only counts and a few
example keys back.

Before that, :func:`features.raw_values.unparsable_values` counts what the engine's cast
would hide: text that does not parse (per column), fractional or out-of-range numbers in an
int column (the cast would round them), dates with a time zone (refused, as by
``renewal validate``). On well-typed Parquet it reads nothing.

The contract's warnings, worded by :mod:`renewal.contract`, are here too
(:func:`contract_warnings`: one term under several contract ids, a next term starting on a
term's last day, a term not renewed and yet followed the next day, more logged-in users than
seats); the commands say them through
:func:`features.freshness.data_warnings`.
"""

from __future__ import annotations

import contextlib
import tempfile
from datetime import date
from pathlib import Path

import duckdb
import ibis
import ibis.expr.types as ir
import pyarrow.parquet as pq

from features.raw_values import unparsable_values
from features.source import Source, contract_problems, example_keys, open_source
from renewal.contract import (
    ABOVE_SEATS_RULE,
    DUPLICATE_TERM_RULE,
    LOST_BUT_CONTINUED_RULE,
    SHARED_END_DAY_RULE,
    TERM_KEY,
)
from renewal.datadir import find_table
from renewal.errors import DataContractError, Problem
from renewal.tables import TABLES

#: Parquet rows in a data directory from which the engine checks the contract (pandas below).
ENGINE_CHECK_FROM_ROWS = 5_000_000
#: DuckDB's memory for the check (it spills the duplicate-key aggregation beyond): on 50 M
#: usage rows 6.3 s and 2.2 GB peak, against 9.2 s and 4.9 GB with DuckDB's default limit
#: (both before the date partitioning below was turned back on for the check).
ENGINE_CHECK_MEMORY = "2GB"


def parquet_rows(data_dir: Path) -> int:
    """Rows of the directory's Parquet tables, from their footers (nothing else is read); a
    file whose footer cannot be read counts 0, so the detailed check reports it."""
    rows = 0
    for name in TABLES:
        try:
            path = find_table(data_dir, name)
        except DataContractError:
            continue
        if path is None or path.suffix != ".parquet":
            continue
        try:
            rows += pq.ParquetFile(path).metadata.num_rows
        except Exception:  # noqa: BLE001 - any unreadable footer: let pandas name the problem
            continue
    return rows


def check_data_dir(data_dir: Path, as_of: date | None = None) -> None:
    """Raise :class:`DataContractError` listing every problem of ``data_dir``.

    ``as_of``: also refuse dates after it in the tables that must not have any (as
    ``renewal validate --as-of``).
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir() or parquet_rows(data_dir) < ENGINE_CHECK_FROM_ROWS:
        from renewal.contract import validate_data_dir

        validate_data_dir(data_dir, as_of).raise_for_problems()
        return
    source = open_source(data_dir)  # refuses missing tables and a usage grain without users
    with tempfile.TemporaryDirectory(prefix="renewal-check-") as spill:
        try:
            source.backend.raw_sql(f"SET temp_directory = '{spill}'")
            source.backend.raw_sql(f"SET memory_limit = '{ENGINE_CHECK_MEMORY}'")
            # The duplicate-key check groups the whole usage by a key holding its date, with no
            # date filter: there DuckDB's date partitioning, which open_source turns off for
            # the features' date-filtered scans, splits the 50 M-group aggregation into
            # smaller ones (measured: 5.0-5.8 s -> 3.6-4.1 s on 50 M rows).
            with contextlib.suppress(duckdb.Error):
                source.backend.raw_sql("SET disabled_optimizers = ''")
            problems, unparsed = unparsable_values(source, data_dir)
            problems += [p for p in _name_columns(source, contract_problems(source))
                         if not _skipped(p, unparsed)]
            if as_of is not None:
                problems += future_date_problems(source, as_of)
        finally:
            source.backend.disconnect()
    if problems:
        raise DataContractError(problems)


def _skipped(problem: Problem, unparsed: dict[str, set[str]]) -> bool:
    """A rule of a column whose values do not parse: not checked, as in renewal.contract."""
    columns = unparsed.get(problem.table, set())
    if not columns or problem.column is None:
        return False
    if problem.rule.startswith("duplicate key"):
        return bool(columns & set(problem.column.split(", ")))
    return problem.column in columns and (
        problem.rule == "nulls in a required column" or problem.rule.startswith("values must be")
    )


def _name_columns(source: Source, problems: list[Problem]) -> list[Problem]:
    """A table the engine failed to read or cast, named down to its columns where one fails
    on its own (only on failure: a scan per column of that table)."""
    out = []
    for problem in problems:
        if problem.column is not None or not problem.rule.startswith("cannot be read or cast"):
            out.append(problem)
            continue
        table = source.tables[problem.table]
        failing = []
        for column in table.columns:
            try:
                table.aggregate(n=table[column].isnull().sum()).to_pandas()
            except Exception as exc:  # noqa: BLE001 - the engine's own error, named by column
                first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else repr(exc)
                failing.append(Problem(problem.table, column, f"cannot be read or cast: {first}"))
        out.extend(failing or [problem])
    return out


def future_date_problems(source: Source, as_of: date) -> list[Problem]:
    """Rows dated after ``as_of`` where the contract forbids them, worded as
    :mod:`renewal.contract`."""
    limit = ibis.literal(as_of, "date")
    problems = []
    for name, table in source.tables.items():
        spec = TABLES[name]
        key = [k for k in spec.key if k in table.columns] or [table.columns[0]]
        for column in spec.date_columns_checked_against_as_of:
            if column not in table.columns:
                continue
            late = table.filter(table[column] > limit)
            rows = int(late.count().to_pandas())
            if rows:
                problems.append(Problem(
                    name, column, f"dates after --as-of {as_of.isoformat()}", rows,
                    example_keys(late.select(key).distinct()),
                ))
    return problems


def contract_warnings(source: Source, examples: bool = True) -> list[Problem]:
    """What :func:`renewal.contract.validate_data_dir` warns about, by the engine, worded the
    same: one term under several contract ids, terms whose end_date is the start_date of
    another term of the account, terms marked not renewed that the account's next term
    follows the next day, and usage account-days with more logged-in users than seats
    (account-grain usage). ``examples`` False skips the queries for example keys: the
    commands say these warnings as counts only."""
    found = (_repeated_terms(source, examples), _shared_end_days(source, examples),
             _lost_but_continued(source, examples), _above_seats(source, examples))
    return [w for w in found if w is not None]


def _examples(table: ir.Table, wanted: bool) -> tuple[str, ...]:
    return example_keys(table) if wanted else ()


def _repeated_terms(source: Source, examples: bool) -> Problem | None:
    """Contract terms present more than once (same account, start_date and end_date), every
    such row counted. The contracts table is small: one aggregation, on any engine."""
    contracts = source.tables["contracts"]
    if not set(TERM_KEY) <= set(contracts.columns):
        return None
    terms = contracts.filter(*[contracts[k].notnull() for k in TERM_KEY])
    groups = terms.group_by(list(TERM_KEY)).aggregate(n=terms.count())
    twice = groups.filter(groups.n > 1)
    rows = twice.n.sum().to_pandas()
    if not rows or rows != rows:  # None or NaN: no term twice
        return None
    return Problem("contracts", ", ".join(TERM_KEY), DUPLICATE_TERM_RULE, int(rows),
                   _examples(twice.select(list(TERM_KEY)), examples))


def _shared_end_days(source: Source, examples: bool) -> Problem | None:
    contracts = source.tables["contracts"]
    if not set(TERM_KEY) <= set(contracts.columns):
        return None
    valid = contracts.filter(contracts.end_date > contracts.start_date)
    starts = valid.select(next_account=valid.account_id, next_start=valid.start_date).distinct()
    shared = valid.semi_join(starts, [valid.account_id == starts.next_account,
                                      valid.end_date == starts.next_start])
    rows = int(shared.count().to_pandas())
    if not rows:
        return None
    key = [k for k in TABLES["contracts"].key if k in contracts.columns] or [contracts.columns[0]]
    return Problem("contracts", "end_date", SHARED_END_DAY_RULE, rows,
                   _examples(shared.select(key).distinct(), examples))


def _lost_but_continued(source: Source, examples: bool) -> Problem | None:
    """Terms marked not renewed whose account's next term starts the day after they end."""
    contracts = source.tables["contracts"]
    if not {*TERM_KEY, "renewed"} <= set(contracts.columns):
        return None
    lost = contracts.filter(contracts.renewed == False)  # noqa: E712 - an Ibis expression
    starts = contracts.select(next_account=contracts.account_id,
                              next_start=contracts.start_date).distinct()
    hit = lost.semi_join(starts, [lost.account_id == starts.next_account,
                                  lost.end_date + ibis.interval(days=1) == starts.next_start])
    rows = int(hit.count().to_pandas())
    if not rows:
        return None
    key = [k for k in TABLES["contracts"].key if k in contracts.columns] or [contracts.columns[0]]
    return Problem("contracts", "renewed", LOST_BUT_CONTINUED_RULE, rows,
                   _examples(hit.select(key).distinct(), examples))


def _above_seats(source: Source, examples: bool) -> Problem | None:
    usage, accounts = source.tables["usage"], source.tables["accounts"]
    if ("active_users" not in usage.columns or "user_id" in usage.columns
            or "seats" not in accounts.columns):  # user grain: the features count users
        return None
    seats = accounts.filter(accounts.account_id.notnull() & (accounts.seats > 0))
    seats = seats.group_by("account_id").aggregate(seats=seats.seats.max())
    rows = usage.filter(usage.account_id.notnull() & usage.date.notnull())
    if source.has_sites:  # the features sum the sites' active_users per account-day
        days = rows.group_by(["account_id", "date"]).aggregate(
            active_users=rows.active_users.sum(), rows=rows.count())
    else:  # the key (account_id, date): each row is an account-day, no aggregation needed
        days = rows.select("account_id", "date", "active_users", rows=ibis.literal(1, "int64"))
    above = days.join(seats, "account_id").filter(lambda t: t.active_users > t.seats)
    found = above.aggregate(rows=above.rows.sum()).to_pandas()["rows"].iloc[0]
    if not found or found != found:  # None or NaN: none above
        return None
    return Problem("usage", "active_users", ABOVE_SEATS_RULE, int(found),
                   _examples(above.select("account_id", "date"), examples))
