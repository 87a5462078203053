"""``renewal report``: the renewal forecast backtested on past months, and the save rate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    data: Annotated[Path, typer.Option("--data", help="Data directory (contracts + usage).")],
    model: Annotated[str | None, typer.Option(
        "--model", help="MLflow model URI or directory [registry alias champion].")] = None,
    months: Annotated[list[str] | None, typer.Option(
        "--month", metavar="YYYY-MM",
        help="Month to backtest (repeatable) [every month whose renewals are decided, after "
        "the model's calibration window].")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", metavar="YYYY-MM",
        help="Backtest every decided month from this one on (those the model was fitted on "
        "marked in-sample); with --month, only the months asked for from this one on.")] = None,
    lead_days: Annotated[int, typer.Option(
        "--lead-days", min=1, help="Forecast made this many days before the month starts.")] = 90,
    level: Annotated[float, typer.Option("--level", min=0.5, max=0.99,
                                         help="Prediction interval level.")] = 0.9,
    draws: Annotated[int, typer.Option("--draws", min=1000, help="ARR simulation draws.")] = 10_000,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Also write the report as JSON (atomically; a .json path outside "
        "--data).")] = None,
) -> None:
    """Backtest the renewal forecast on past months and report the save rate.

    Per month: predicted vs actual renewed ARR and logos, and whether the actual falls inside
    the interval. The save rate is per CSM and per playbook, from the interventions recorded
    through the API."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from features.outputs import check_outputs, staged_outputs
    from renewal.console import print_table
    from renewal.settings import get_settings
    from service.scoring import load_batch_model
    from service.workflows.backtest import (
        backtest_forecast,
        fitted_until,
        month_start,
        months_to_backtest,
    )
    from service.workflows.outcomes import load_contracts

    # The cheap checks first: a run of minutes must not end at the write, nor replace an input.
    if out is not None:
        check_outputs({"--out": out}, data, {}, suffix=".json")
    for label in [*(months or []), *([since] if since else [])]:
        month_start(label)
    settings = get_settings()
    console = Console(highlight=False)
    contracts = load_contracts(data)
    scorer = load_batch_model(settings, model).scorer
    until = fitted_until(scorer)
    chosen = months_to_backtest(contracts, until, months, since)
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("starting", total=max(len(chosen), 1))

        def on_progress(step: str, done: int, total: int) -> None:
            progress.update(task, description=step, completed=done, total=max(total, 1))

        result = backtest_forecast(data, scorer, chosen, lead_days, level, draws,
                                   progress=on_progress)
    table = Table(title=f"forecast backtest: {level:.0%} intervals, made {lead_days} days ahead")
    for column in ("month", "contracts", "expected ARR", "interval", "actual ARR", "in",
                   "expected logos", "interval", "actual", "in"):
        table.add_column(column, justify="right")
    for m in result.months:
        table.add_row(m.month + (" (in-sample)" if m.in_sample else ""), str(m.contracts),
                      f"{m.expected_renewed_arr:,.0f}",
                      f"{m.arr_interval[0]:,.0f}–{m.arr_interval[1]:,.0f}",
                      f"{m.actual_renewed_arr:,.0f}", "✓" if m.arr_covered else "✗",
                      f"{m.expected_logos:.1f}", f"{m.logos_interval[0]}–{m.logos_interval[1]}",
                      str(m.actual_logos), "✓" if m.logos_covered else "✗")
    print_table(console, table)
    arr, logos = result.coverage("arr"), result.coverage("logos")
    fitted = "" if until is None else f" (the model was fitted on contracts ending up to {until})"
    if arr is not None:
        console.print(f"ARR interval covered the actual in {arr:.0%} of "
                      f"{len(result.held_out)} held-out months; logo interval in {logos:.0%}")
    elif result.months:
        console.print(f"no held-out month among these{fitted}: their coverage is in-sample, "
                      "not a test of the forecast")
    elif not chosen and since is not None:
        asked = "among the months asked for" if months else "with every contract decided"
        console.print(f"no month {asked} from {since} on: nothing to backtest")
    elif not chosen:
        console.print(f"no decided month after the model's calibration window{fitted}: "
                      "nothing held out to backtest; --since YYYY-MM shows earlier months, "
                      "in-sample")
    else:
        console.print(f"no month could be backtested{fitted}: " + json.dumps(result.skipped))
    if result.months and len(result.held_out) < len(result.months):
        console.print(f"{len(result.months) - len(result.held_out)} in-sample month(s) shown, "
                      f"left out of the coverage{fitted}")
    for month, reason in result.skipped.items():
        console.print(f"skipped {month}: {reason}")
    saves = save_rate_section(settings, data, console)
    if out is not None:
        text = json.dumps({"forecast_backtest": result.as_dict(), "save_rate": saves},
                          indent=2, default=str)
        with staged_outputs() as staged:
            staged.write("--out", out, lambda tmp: tmp.write_text(text))
        console.print(f"report written to {out}")


def save_rate_section(settings, data: Path, console) -> dict:  # type: ignore[no-untyped-def]
    """The save rate per CSM and per playbook (empty without a score store or interventions),
    its uplift interval at ``RENEWAL_SAVE_RATE_CONFIDENCE``, as the API's."""
    from rich.table import Table
    from sqlalchemy import inspect, select

    from renewal.console import print_table
    from service.config import ServiceSettings
    from service.db.engine import make_engine, make_session_factory, missing_sqlite_file
    from service.db.workflow_models import Intervention
    from service.workflows.config import get_workflow_settings
    from service.workflows.interventions import AssignedAttempt, save_rate
    from service.workflows.outcomes import load_contracts

    missing = missing_sqlite_file(settings.resolved_database_url)
    if missing is not None:
        console.print(f"save rate: no score store at {missing} (RENEWAL_DATABASE_URL)")
        return {}
    engine = make_engine(settings.resolved_database_url)
    try:
        if "interventions" not in inspect(engine).get_table_names():
            console.print("save rate: no interventions table yet (run `renewal db upgrade`)")
            return {}
        with make_session_factory(engine)() as session:
            rows = session.scalars(select(Intervention)).all()
    finally:
        engine.dispose()
    attempts = [AssignedAttempt(r.account_id, r.csm_id, r.playbook, r.assigned_at.date(),
                                r.probability_at_assignment) for r in rows]
    contracts = load_contracts(data)
    contracts = contracts.assign(account_id=contracts["account_id"].astype(str))
    confidence = get_workflow_settings().save_rate_confidence
    at_risk_below = ServiceSettings().risk_medium_below
    out = {}
    for by in ("csm", "playbook"):
        groups = save_rate(attempts, contracts, by, confidence,  # type: ignore[arg-type]
                           at_risk_below)
        out[by] = groups
        table = Table(title=f"save rate by {by}: actual vs expected renewals")
        for column in (by, "assigned", "decided", "actual", "expected", "uplift",
                       f"{confidence:.0%} interval", "at-risk saved"):
            table.add_column(column, justify="right")
        for g in groups:
            interval = g["uplift_interval"]
            saved = (f"{g['at_risk_saved']} of {g['at_risk_decided']}"
                     if g["at_risk_decided"] else "–")
            table.add_row(g["group"], str(g["accounts_assigned"]), str(g["decided"]),
                          str(g["actual_renewals"]), f"{g['expected_renewals']:.1f}",
                          f"{g['uplift']:+.1f}",
                          "" if interval is None else f"{interval[0]:+.1f} … {interval[1]:+.1f}",
                          saved)
        print_table(console, table)
    return out
