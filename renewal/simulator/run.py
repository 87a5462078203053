"""``simulate``: draw the population, latent paths, contracts, usage and signals, and write them.

Random streams are children of ``SeedSequence(seed)`` keyed by purpose (and, for usage, by
account), so the same seed gives the same files byte for byte and changing the chunk size
changes nothing but memory use.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np

from renewal.datadir import Format, staged_directory, write_table
from renewal.errors import RenewalError
from renewal.simulator.calendar import build_calendar
from renewal.simulator.latent import draw_health
from renewal.simulator.outcomes import draw_contracts
from renewal.simulator.params import SimulatorParams
from renewal.simulator.population import draw_population
from renewal.simulator.signals import (
    account_months,
    health_inputs_frame,
    surveys_frame,
    tickets_frame,
    value_frame,
)
from renewal.simulator.usage import UsageInputs, usage_chunks, usage_schema
from renewal.simulator.writer import streaming_writer
from renewal.tables import TABLES

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``, called as work advances."""

# Stream keys of SeedSequence(seed).spawn: one per purpose; usage is further keyed by account.
POPULATION, LATENT, CONTRACTS, USAGE, TICKETS, SURVEYS, HEALTH_INPUTS = range(7)
CHUNK_ACCOUNTS = 500
#: The signal tables a simulation may draw no row of (then absent, never empty).
OPTIONAL_SIGNALS = ("tickets", "surveys", "health_inputs", "value")
LATENT_MONTHS_AFTER_WINDOW = 14  # terms ending up to a year after the window need a decision


@dataclass(frozen=True)
class SimulationSummary:
    """What was written, and the headline rates the simulation produced."""

    out_dir: Path
    rows: dict[str, int]
    renewal_rate: float  # renewed / decided contracts
    activation_rate: float  # activated within the window / accounts whose window has ended
    elapsed_seconds: float
    extra: dict[str, float] = field(default_factory=dict)


def _stream(seed: int, key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key,)))


def simulate(
    out_dir: Path,
    accounts: int = 2000,
    seed: int = 0,
    start: date = date(2024, 1, 1),
    months: int = 24,
    fmt: Literal["parquet", "csv"] = "parquet",
    grain: Literal["account", "user"] = "account",
    progress: Progress | None = None,
    params: SimulatorParams | None = None,
    chunk_accounts: int = CHUNK_ACCOUNTS,
) -> SimulationSummary:
    """Write a simulated data directory (seven tables + ``truth.parquet``) to ``out_dir``."""
    _check_arguments(accounts, seed, months, fmt, grain, chunk_accounts)
    began = time.perf_counter()
    params = params or SimulatorParams()
    report = progress or (lambda stage, done, total: None)
    out_dir = Path(out_dir)
    _check_out_dir(out_dir, fmt)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Tables are written to a staging directory and moved into out_dir only once all are
    # done: a run stopped half-way (Ctrl-C, SIGTERM, an error) leaves an earlier simulation
    # whole, never its accounts beside another run's usage.
    with staged_directory(out_dir) as staging:
        summary = _simulate_into(staging, accounts, seed, start, months, fmt, grain, report,
                                 params, chunk_accounts, began)
    for name in OPTIONAL_SIGNALS:  # optional tables may be absent, never empty
        if summary.rows.get(name) == 0:
            (out_dir / f"{name}.{fmt}").unlink(missing_ok=True)
    return replace(summary, out_dir=out_dir)


def _simulate_into(
    out_dir: Path, accounts: int, seed: int, start: date, months: int,
    fmt: Literal["parquet", "csv"], grain: Literal["account", "user"], report: Progress,
    params: SimulatorParams, chunk_accounts: int, began: float,
) -> SimulationSummary:
    """:func:`simulate` into an empty (staging) directory; ``began``: the run's start."""
    fmt_: Format = fmt

    calendar = build_calendar(start, months, months + LATENT_MONTHS_AFTER_WINDOW, params)
    population = draw_population(_stream(seed, POPULATION), accounts, calendar, params)
    health = draw_health(_stream(seed, LATENT), population.quality,
                         calendar.month_start_day.size - 1, params)
    contracts = draw_contracts(_stream(seed, CONTRACTS), population, health, calendar, params)
    rows: dict[str, int] = {}

    accounts_frame = population.accounts_frame(calendar)
    contracts_frame = contracts.contracts_frame(population, calendar)
    write_table(accounts_frame, out_dir, "accounts", fmt_)
    write_table(contracts_frame, out_dir, "contracts", fmt_)
    write_table(contracts.truth_frame(contracts_frame), out_dir, "truth", "parquet")
    rows["accounts"], rows["contracts"] = len(accounts_frame), len(contracts_frame)

    inputs = UsageInputs(population, contracts, health, calendar, params)
    value_parts, usage_rows = [], 0
    report("usage", 0, accounts)
    with streaming_writer(out_dir, "usage", fmt_, usage_schema(grain)) as sink:
        for chunk in usage_chunks(inputs, seed, USAGE, grain, chunk_accounts):
            sink.write_table(chunk.table)
            usage_rows += chunk.table.num_rows
            value_parts.append((chunk.value_account, chunk.value_day, chunk.value_amount))
            report("usage", chunk.accounts_done, accounts)
    rows["usage"] = usage_rows

    report("signals", 0, 4)
    cells = account_months(population, contracts, calendar, months)
    signal_frames = {
        "tickets": tickets_frame(_stream(seed, TICKETS), population, health, cells, calendar,
                                 params),
        "surveys": surveys_frame(_stream(seed, SURVEYS), population, health, cells, calendar,
                                 params),
        "health_inputs": health_inputs_frame(_stream(seed, HEALTH_INPUTS), population, health,
                                             cells, calendar, params),
        "value": value_frame(population, calendar,
                             *(np.concatenate(parts) for parts in zip(*value_parts, strict=True))),
    }
    for done, (name, frame) in enumerate(signal_frames.items(), start=1):
        rows[name] = len(frame)
        if len(frame):  # a tiny simulation can draw none: the table is then absent
            write_table(frame, out_dir, name, fmt_)
        report("signals", done, 4)

    decided = contracts.decided
    window_over = population.signed_day + population.activation_window <= calendar.end_day
    ndr_base = contracts.arr[decided].sum()
    return SimulationSummary(
        out_dir=out_dir,
        rows=rows,
        renewal_rate=float(contracts.renewed[decided].mean()) if decided.any() else float("nan"),
        activation_rate=float(population.activated_in_window[window_over].mean())
        if window_over.any() else float("nan"),
        elapsed_seconds=time.perf_counter() - began,
        extra={
            "ndr": float((contracts.next_arr[decided] * contracts.renewed[decided]).sum()
                         / ndr_base) if ndr_base else float("nan"),
            "decided_contracts": int(decided.sum()),
        },
    )


def _check_arguments(accounts: int, seed: int, months: int, fmt: str, grain: str,
                     chunk_accounts: int) -> None:
    problems = []
    if accounts < 1:
        problems.append(f"accounts must be >= 1 (got {accounts})")
    if seed < 0:
        problems.append(f"seed must be >= 0 (got {seed})")
    if months < 2:
        problems.append(f"months must be >= 2 (got {months})")
    if fmt not in ("parquet", "csv"):
        problems.append(f"format must be parquet or csv (got {fmt!r})")
    if grain not in ("account", "user"):
        problems.append(f"grain must be account or user (got {grain!r})")
    if chunk_accounts < 1:
        problems.append(f"chunk_accounts must be >= 1 (got {chunk_accounts})")
    if problems:
        raise RenewalError("cannot simulate: " + "; ".join(problems))


def _check_out_dir(out_dir: Path, fmt: str) -> None:
    """Refuse a file as the directory, and a table left in two formats (the reader would
    reject the directory)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise RenewalError(f"cannot simulate into {out_dir}: it is a file, not a directory")
    other = "csv" if fmt == "parquet" else "parquet"
    clashes = sorted(p.name for p in out_dir.glob(f"*.{other}") if p.stem in TABLES)
    if clashes:
        raise RenewalError(
            f"cannot simulate {fmt} into {out_dir}: it already holds {', '.join(clashes)}; "
            "remove them or choose another directory"
        )
