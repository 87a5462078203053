"""Validation of a data directory against the data contract (``docs/data-contract.md``).

Per-table rules (nulls, ranges, enums, unique keys) are a pandera schema built from
:mod:`renewal.tables`; cross-table rules (unknown accounts, end before start, dates after
``as_of``) are checked here. Every problem is reported at once, never only the first.

Warnings are data that is probably right but changes what the features mean (more logged-in
users than seats; a next term starting on the previous term's last day; one term under
several contract ids): reported with the same table, column, row count and examples, they do
not make the directory invalid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pyarrow

from renewal.datadir import DATE_RANGE_RULE, coerce, dates_out_of_range, find_table, read_raw
from renewal.errors import DataContractError, Problem
from renewal.tables import TABLES, Column, Table

EXAMPLES = 3

#: A date written with a time zone: "2024-03-14T22:00:00-05:00", "2024-03-14 03:00Z". Refused
#: in every date column: the engines disagree on which calendar day such a value is (pandas
#: keeps the local date, DuckDB converts the instant to UTC), so the user must write the day.
ZONED_DATE = (
    r"\d{4}-\d{2}-\d{2}[ T]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?"
    r"\s*(?:[Zz]|UTC|GMT|[+-]\d{2}(?::?\d{2})?)"
)
ZONED_RULE = "dates carry a time zone: write the local calendar date (YYYY-MM-DD) instead"
#: The int64 range: a larger number is not an int of the contract (and would not cast).
INT_RANGE = (-(2**63), 2**63)
#: Text in an id or code column with whitespace around it ("ACC-0005 ", " H3", a blank "  ").
#: pandas and Parquet kept it, the engine's CSV cast trimmed it: " H3" was a second account to
#: one reader and a duplicate of "H3" to the other. Trimming in every reader made a Parquet
#: usage scan 1.7x slower (20 M rows, DuckDB), so every reader takes text as written and such
#: values are refused here, before any of them runs; free text is kept as written.
PADDED_TEXT_RULE = (
    "text with whitespace around it: ids and codes are compared as written, so trim them"
)

#: Warning: the same account, start_date and end_date under several contract ids. A contract
#: exported twice looks like this (its ARR, renewal and training label then count twice), but
#: so do two products sold on one order, which are right: the data cannot tell, so it is said,
#: not refused. Overlapping terms with other dates are add-ons and pass without a word.
TERM_KEY = ("account_id", "start_date", "end_date")
DUPLICATE_TERM_RULE = (
    f"the same term ({', '.join(TERM_KEY)}) under several contract ids: each row counts its "
    "ARR, renewal and training label; fine for two products of one order, else drop the copy"
)
#: Warning: a term whose end_date is another term's start_date (same account) shares that day
#: with it, the mark of an export writing the next term's first day as end_date.
SHARED_END_DAY_RULE = (
    "the account's next term starts on this end_date, the last day of the term (included): "
    "if the export writes the next term's first day there, subtract one day"
)
#: Warning: a term marked not renewed whose account's next term starts the day after it ends.
#: The outcome says the customer left, the contracts say it stayed: training reads a churn,
#: the renewal metrics count a lost logo and its ARR as churned.
LOST_BUT_CONTINUED_RULE = (
    "renewed is false, yet the account's next term starts the day after this end_date: "
    "training reads a churn and the metrics a lost logo; if the customer renewed, set "
    "renewed true (and next_arr)"
)
#: Warning: logged-in users of an account-day (active_users summed over its rows) above seats.
ABOVE_SEATS_RULE = (
    "more logged-in users than the account's seats that day: seat_utilization_30d exceeds "
    "1 and the high tier's 60% of seats is easier to reach; fine if the customer over-deploys, "
    "else correct accounts.seats"
)


@dataclass
class ValidationReport:
    """What the validator found: tables read (with row counts) and every problem."""

    data_dir: Path
    tables: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        lines = [f"Data directory {self.data_dir}"]
        lines += [f"  {name}: {rows} rows" for name, rows in self.tables.items()]
        if self.ok:
            lines.append("valid: no problems found")
        else:
            lines.append(f"invalid: {len(self.problems)} problem(s)")
            lines += [f"  - {p.render()}" for p in self.problems]
        if self.warnings:
            lines.append(f"{len(self.warnings)} warning(s) (the data is accepted)")
            lines += [f"  - {w.render()}" for w in self.warnings]
        return "\n".join(lines)

    def raise_for_problems(self) -> None:
        if self.problems:
            raise DataContractError(self.problems)


def validate_data_dir(data_dir: Path, as_of: date | None = None) -> ValidationReport:
    """Check every table of ``data_dir``; load nothing that later steps would trust blindly."""
    data_dir = Path(data_dir)
    report = ValidationReport(data_dir)
    if not data_dir.is_dir():
        report.problems.append(Problem("(data directory)", None, f"{data_dir} is not a directory"))
        return report
    frames: dict[str, pd.DataFrame] = {}
    for spec in TABLES.values():
        frame = _load(data_dir, spec, report)
        if frame is not None:
            frames[spec.name] = frame
    _check_references(frames, report)
    _check_contract_dates(frames, report)
    _check_contract_terms(frames, report)
    _check_lost_but_continued(frames, report)
    _check_usage_grain(frames, report)
    _check_active_users_within_seats(frames, report)
    if as_of is not None:
        _check_future_dates(frames, as_of, report)
    return report


def load_valid_tables(data_dir: Path, as_of: date | None = None) -> dict[str, pd.DataFrame]:
    """All present tables, coerced; raises :class:`DataContractError` listing every problem."""
    report = validate_data_dir(data_dir, as_of)
    report.raise_for_problems()
    out: dict[str, pd.DataFrame] = {}
    for name in report.tables:
        path = find_table(data_dir, name)
        assert path is not None
        out[name], _ = coerce(read_raw(path), name)
    return out


def load_valid_table(data_dir: Path, name: str) -> pd.DataFrame | None:
    """One table, coerced and checked against its own rules (columns, types, nulls, ranges,
    key), or None when its file is absent; raises :class:`DataContractError` listing every
    problem. For readers of one optional table (the service's survey follow-ups) that must
    not act on a table the contract would refuse."""
    if find_table(Path(data_dir), name) is None:
        return None
    report = ValidationReport(Path(data_dir))
    frame = _load(Path(data_dir), TABLES[name], report)
    report.raise_for_problems()
    return frame


def _load(data_dir: Path, spec: Table, report: ValidationReport) -> pd.DataFrame | None:
    try:
        path = find_table(data_dir, spec.name)
        if path is None:
            if spec.required:
                report.problems.append(Problem(spec.name, None, "required table is missing"))
            return None
        raw = read_raw(path)
    except DataContractError as exc:
        report.problems.extend(exc.problems)
        return None
    report.tables[spec.name] = len(raw)
    if raw.empty and (spec.required or raw.columns.empty):
        report.problems.append(Problem(spec.name, None, "table is empty"))
        return None
    # An optional table with its header and no rows (a month without tickets) is present and
    # empty: its columns are still checked, and its count features are 0 for every account.
    missing = [c.name for c in spec.columns if c.required and c.name not in raw.columns]
    for name in missing:
        report.problems.append(Problem(spec.name, name, "required column is missing"))
    frame, type_problems = _coerce(raw, spec)
    report.problems.extend(type_problems)
    # Rules are not checked on a column whose values do not parse (their nulls would be told
    # twice); text with spaces around it parses, and the rest of its column is still checked.
    unparsed = {p.column for p in type_problems if p.rule != PADDED_TEXT_RULE}
    report.problems.extend(_rule_problems(frame, spec, skip=set(missing) | unparsed))
    return frame


def _coerce(raw: pd.DataFrame, spec: Table) -> tuple[pd.DataFrame, list[Problem]]:
    """:func:`renewal.datadir.coerce`, column by column, with problems that name example keys.

    Values the conversion must not see are taken out first and reported: dates with a time
    zone, dates outside the range pandas holds, numbers beyond the int64 range (they made
    pandas raise); a column whose conversion still fails is reported by name, never as a
    traceback. Text with whitespace around it is reported too, and kept as written.
    """
    frame = raw.copy()
    problems: list[Problem] = []
    for column in spec.columns:
        if column.name not in raw.columns:
            continue
        values = raw[column.name]
        padded = _padded_text(values, column)
        if padded.any():
            problems.append(Problem(spec.name, column.name, PADDED_TEXT_RULE, int(padded.sum()),
                                    _type_examples(raw, spec, column.name, padded)))
        zoned, out_of_range, undated = _unsafe_values(values, column)
        unsafe = zoned | out_of_range | undated
        part = raw[[column.name]]
        if unsafe.any():
            part = pd.DataFrame({column.name: values.where(~unsafe)}, index=raw.index)
        try:
            converted, found = coerce(part, spec.name)
        except Exception as exc:  # noqa: BLE001 - a value pandas cannot convert: name the column
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else repr(exc)
            problems.append(Problem(spec.name, column.name,
                                    f"values are not of type {column.kind}: {first}"))
            frame = frame.drop(columns=[column.name])
            continue
        frame[column.name] = converted[column.name]
        if zoned.any():
            problems.append(Problem(spec.name, column.name, ZONED_RULE, int(zoned.sum()),
                                    _type_examples(raw, spec, column.name, zoned)))
        if undated.any():
            problems.append(Problem(spec.name, column.name, DATE_RANGE_RULE, int(undated.sum()),
                                    _type_examples(raw, spec, column.name, undated)))
        if found or out_of_range.any():
            bad = _present(values) & converted[column.name].isna() & ~zoned & ~undated
            problems.append(Problem(spec.name, column.name, f"values are not of type {column.kind}",
                                    int(bad.sum()), _type_examples(raw, spec, column.name, bad)))
    return frame, problems


def _unsafe_values(
    values: pd.Series, column: Column
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Masks of the dates with a time zone, of the ints beyond int64 and of the dates outside
    :data:`renewal.tables.DATE_RANGE` (a zoned date counts as zoned only)."""
    none = pd.Series(False, index=values.index)
    if column.kind == "date":
        if _is_zoned_dtype(values.dtype):
            return values.notna(), none, none
        zoned = none.copy()
        if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
            text = values.astype("string").str.strip()
            long = (text.str.len() > 10).fillna(False).astype(bool)  # a bare date is 10 chars
            if long.any():
                zoned[long] = text[long].str.fullmatch(ZONED_DATE).fillna(False).astype(bool)
        return zoned, none, dates_out_of_range(values) & ~zoned
    if column.kind == "int" and not (
        pd.api.types.is_integer_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype)
    ):
        try:
            numbers = pd.to_numeric(values, errors="coerce")
        except (TypeError, ValueError):
            return none, none, none  # the conversion reports what it cannot read
        low, high = INT_RANGE
        beyond = numbers.notna() & ((numbers < low) | (numbers >= high))
        return none, beyond.fillna(False).astype(bool), none
    return none, none, none


def _padded_text(values: pd.Series, column: Column) -> pd.Series:
    """Mask of the values of an id or code column with whitespace around them (any Unicode
    whitespace: a non-breaking space too); a blank value is one of them, an empty CSV cell is
    missing, not text."""
    if column.kind != "str" or column.free_text:
        return pd.Series(False, index=values.index)
    text = values.astype("string")
    return (text != text.str.strip()).fillna(False).astype(bool)


def _is_zoned_dtype(dtype: object) -> bool:
    if isinstance(dtype, pd.DatetimeTZDtype):
        return True
    arrow_type = getattr(dtype, "pyarrow_dtype", None)
    return (arrow_type is not None and pyarrow.types.is_timestamp(arrow_type)
            and arrow_type.tz is not None)


def _present(values: pd.Series) -> pd.Series:
    """Non-null, non-blank inputs (as :func:`renewal.datadir.coerce` counts them)."""
    blank = values.astype("string").str.strip() == ""
    return (values.notna() & ~blank.fillna(False)).astype(bool)


def _type_examples(raw: pd.DataFrame, spec: Table, column: str, bad: pd.Series) -> tuple[str, ...]:
    """Up to three example keys of values that do not convert, as written; the value follows
    the key ("A1/2024-01-31: 2.5") unless it is part of it."""
    key = [k for k in spec.key if k in raw.columns] or [raw.columns[0]]
    sample = raw.loc[bad[bad].index[: EXAMPLES * 20], list(dict.fromkeys([*key, column]))]
    examples = []
    for row in sample.to_dict("records"):
        text = "/".join(_as_written(row[k]) if k == column else _fmt(row[k]) for k in key)
        examples.append(text if column in key else f"{text}: {_as_written(row[column])}")
    return tuple(dict.fromkeys(examples))[:EXAMPLES]


def _as_written(value: object) -> str:
    if isinstance(value, pd.Timestamp):  # a Parquet date is a naive midnight: show the day
        plain_day = value.tz is None and value == value.normalize()
        return value.date().isoformat() if plain_day else value.isoformat()
    return shown(str(value))


def shown(text: str) -> str:
    """``text`` for a message, quoted when what sets it apart is invisible: whitespace around
    it (``'ACC-0005 '``), a tab or non-breaking space inside, or nothing at all (``''``)."""
    return text if text and text.isprintable() and text == text.strip() else repr(text)


def _schema(spec: Table, frame: pd.DataFrame, skip: set[str]) -> pa.DataFrameSchema:
    """The pandera schema of the rules that can be checked on this table alone."""
    columns = {
        c.name: pa.Column(
            nullable=c.nullable, checks=_checks(c), required=False, coerce=False, name=c.name
        )
        for c in spec.columns
        if c.name in frame.columns and c.name not in skip
    }
    key = [k for k in spec.key if k in frame.columns]
    unique = key if key and not set(key) & skip else None
    return pa.DataFrameSchema(columns, unique=unique, report_duplicates="all")


def _checks(column: Column) -> list[pa.Check]:
    checks: list[pa.Check] = []
    if column.enum:
        checks.append(pa.Check.isin(list(column.enum), error=f"one of {', '.join(column.enum)}"))
    if column.min is not None:
        if column.min_exclusive:
            checks.append(pa.Check.gt(column.min, error=f"> {column.min:g}"))
        else:
            checks.append(pa.Check.ge(column.min, error=f">= {column.min:g}"))
    if column.max is not None:
        checks.append(pa.Check.le(column.max, error=f"<= {column.max:g}"))
    return checks


def _rule_problems(frame: pd.DataFrame, spec: Table, skip: set[str]) -> list[Problem]:
    try:
        _schema(spec, frame, skip).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        return _problems_from_failures(exc.failure_cases, frame, spec)
    return []


def _problems_from_failures(
    failures: pd.DataFrame, frame: pd.DataFrame, spec: Table
) -> list[Problem]:
    key = ", ".join(k for k in spec.key if k in frame.columns)
    is_unique = failures["check"].astype(str).str.contains("uniqueness")
    labels = failures["column"].astype(str).where(~is_unique, key)
    failures = failures.assign(label=labels, is_unique=is_unique)
    problems: dict[tuple[str, str], Problem] = {}
    for (label, check), group in failures.groupby(["label", "check"], sort=False):
        if group["is_unique"].iloc[0]:
            rule = f"duplicate key ({key})"
        elif check == "not_nullable":
            rule = "nulls in a required column"
        else:
            rule = f"values must be {check}"
        rows = group["index"].dropna().astype(int).unique()
        # pandera flags each column of a duplicate key: report the key once.
        problems.setdefault(
            (label, rule),
            Problem(spec.name, label, rule, len(rows), _example_keys(frame, spec, rows)),
        )
    return list(problems.values())


def _example_keys(frame: pd.DataFrame, spec: Table, rows) -> tuple[str, ...]:
    key = [k for k in spec.key if k in frame.columns] or [frame.columns[0]]
    sample = frame.loc[list(rows), key]
    keys = ("/".join(_fmt(v) for v in values) for values in sample.itertuples(index=False))
    return tuple(dict.fromkeys(keys))[:EXAMPLES]


def _fmt(value: object) -> str:
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return "null" if pd.isna(value) else shown(str(value))


def _check_references(frames: dict[str, pd.DataFrame], report: ValidationReport) -> None:
    accounts = frames.get("accounts")
    if accounts is None or "account_id" not in accounts:
        return
    known = set(accounts["account_id"].dropna())
    for name, frame in frames.items():
        if name == "accounts" or "account_id" not in frame:
            continue
        unknown = frame["account_id"].notna() & ~frame["account_id"].isin(known)
        if unknown.any():
            examples = tuple(
                _fmt(v) for v in frame.loc[unknown, "account_id"].drop_duplicates().head(EXAMPLES))
            report.problems.append(
                Problem(name, "account_id", "references an unknown account",
                        int(unknown.sum()), examples)
            )


def _check_contract_dates(frames: dict[str, pd.DataFrame], report: ValidationReport) -> None:
    contracts = frames.get("contracts")
    if contracts is None or not {"start_date", "end_date"} <= set(contracts.columns):
        return
    bad = (contracts["end_date"] <= contracts["start_date"]).fillna(False).astype(bool)
    if bad.any():
        report.problems.append(
            Problem("contracts", "end_date", "end_date must be after start_date",
                    int(bad.sum()), _example_keys(contracts, TABLES["contracts"], bad[bad].index))
        )


def _check_contract_terms(frames: dict[str, pd.DataFrame], report: ValidationReport) -> None:
    """Warnings: one term under several contract ids, and a next term starting on a term's
    last day."""
    contracts = frames.get("contracts")
    if contracts is None or not set(TERM_KEY) <= set(contracts.columns):
        return
    terms = contracts[list(TERM_KEY)].dropna()
    twice = terms[terms.duplicated(keep=False)]
    if not twice.empty:
        report.warnings.append(Problem(
            "contracts", ", ".join(TERM_KEY), DUPLICATE_TERM_RULE, len(twice),
            _sorted_examples(twice.drop_duplicates(), list(TERM_KEY))))
    valid = terms[terms["end_date"] > terms["start_date"]]
    starts = valid[["account_id", "start_date"]].drop_duplicates()
    shared = valid.reset_index().merge(
        starts, left_on=["account_id", "end_date"], right_on=["account_id", "start_date"],
        suffixes=("", "_next"))
    if not shared.empty:
        report.warnings.append(_terms_warned(contracts, shared, "end_date", SHARED_END_DAY_RULE))


def _check_lost_but_continued(frames: dict[str, pd.DataFrame], report: ValidationReport) -> None:
    """Warn where a term marked not renewed is followed the next day by another of its
    account's terms (:data:`LOST_BUT_CONTINUED_RULE`)."""
    contracts = frames.get("contracts")
    if contracts is None or not {*TERM_KEY, "renewed"} <= set(contracts.columns):
        return
    lost = contracts[contracts["renewed"].eq(False).fillna(False).astype(bool)]
    lost = lost.dropna(subset=list(TERM_KEY))
    if lost.empty:
        return
    starts = contracts[["account_id", "start_date"]].dropna().drop_duplicates()
    following = lost.assign(next_day=pd.to_datetime(lost["end_date"]) + pd.Timedelta(days=1))
    starts = starts.assign(start_date=pd.to_datetime(starts["start_date"]))
    hit = following.reset_index().merge(
        starts, left_on=["account_id", "next_day"], right_on=["account_id", "start_date"],
        suffixes=("", "_next"))
    if not hit.empty:
        report.warnings.append(_terms_warned(contracts, hit, "renewed", LOST_BUT_CONTINUED_RULE))


def _terms_warned(contracts: pd.DataFrame, found: pd.DataFrame, column: str,
                  rule: str) -> Problem:
    """A warning on the contract rows ``found`` (a merge of ``contracts.reset_index()``, its
    ``index`` the rows'): counted once each, with the first keys as examples."""
    rows = found.set_index("index").index.unique()
    key = [k for k in TABLES["contracts"].key if k in contracts.columns] or [
        contracts.columns[0]]
    return Problem("contracts", column, rule, len(rows),
                   _sorted_examples(contracts.loc[rows, key].drop_duplicates(), key))


def _check_active_users_within_seats(
    frames: dict[str, pd.DataFrame], report: ValidationReport
) -> None:
    """Warn where an account-day's active_users (summed over its sites, as the features do)
    exceed the account's seats; counted in usage rows of those account-days. Account-grain
    usage only: with ``user_id`` the features count distinct users, not this column."""
    usage, accounts = frames.get("usage"), frames.get("accounts")
    if (usage is None or accounts is None or "active_users" not in usage.columns
            or "user_id" in usage.columns
            or not {"account_id", "date"} <= set(usage.columns)
            or not {"account_id", "seats"} <= set(accounts.columns)):
        return
    seats = accounts.dropna(subset=["account_id", "seats"])
    seats = seats[seats["seats"] > 0].groupby("account_id")["seats"].max()
    rows = usage.dropna(subset=["account_id", "date"])
    days = rows.groupby(["account_id", "date"]).agg(
        active_users=("active_users", "sum"), rows=("active_users", "size")).reset_index()
    days["seats"] = days["account_id"].map(seats)
    above = days[(days["active_users"] > days["seats"]).fillna(False).astype(bool)]
    if not above.empty:
        report.warnings.append(Problem(
            "usage", "active_users", ABOVE_SEATS_RULE, int(above["rows"].sum()),
            _sorted_examples(above, ["account_id", "date"])))


def _sorted_examples(keys: pd.DataFrame, columns: list[str]) -> tuple[str, ...]:
    """The first three keys in key order, rendered as the engine's check renders them."""
    sample = keys.sort_values(columns, kind="stable")[columns].head(EXAMPLES)
    return tuple("/".join(_fmt(v) for v in values) for values in sample.itertuples(index=False))


def _check_usage_grain(frames: dict[str, pd.DataFrame], report: ValidationReport) -> None:
    usage = frames.get("usage")
    if usage is None:
        return
    if "user_id" not in usage.columns and "active_users" not in usage.columns:
        report.problems.append(
            Problem("usage", "active_users", "required when usage has no user_id column")
        )


def _check_future_dates(
    frames: dict[str, pd.DataFrame], as_of: date, report: ValidationReport
) -> None:
    limit = pd.Timestamp(as_of)
    for name, frame in frames.items():
        for column in TABLES[name].date_columns_checked_against_as_of:
            if column not in frame.columns:
                continue
            late = (frame[column] > limit).fillna(False).astype(bool)
            if late.any():
                report.problems.append(
                    Problem(name, column, f"dates after --as-of {as_of.isoformat()}",
                            int(late.sum()),
                            _example_keys(frame, TABLES[name], late[late].index))
                )
