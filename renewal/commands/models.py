"""``renewal models``: list registered versions, promote or roll back one, compare two runs."""

from __future__ import annotations

import json
from typing import Annotated

import typer

models_app = typer.Typer(help="Registered model versions in MLflow: list, promote, rollback, "
                         "compare.", no_args_is_help=True)

TrackingUri = Annotated[str | None, typer.Option(
    "--tracking-uri", help="MLflow tracking URI [RENEWAL_TRACKING_URI, else SQLite under "
    "RENEWAL_DATA_DIR].")]
ModelName = Annotated[str | None, typer.Option(
    "--name", help="Registered model name [RENEWAL_MODEL_NAME, renewal].")]
Alias = Annotated[str, typer.Option("--alias", help="The alias to move.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")


def _where(tracking_uri: str | None, name: str | None) -> tuple[str, str]:
    from renewal.settings import get_settings

    settings = get_settings()
    return tracking_uri or settings.resolved_tracking_uri, name or settings.model_name


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


@models_app.command("list")
def list_(tracking_uri: TrackingUri = None, name: ModelName = None, as_json: AsJson = False,
          ) -> None:
    """Every version of the registered model: aliases, run, test window, test log loss and AUC,
    and why it got its alias."""
    from rich.console import Console
    from rich.table import Table

    from renewal.console import print_table
    from training.versions import list_versions

    uri, model = _where(tracking_uri, name)
    rows = list_versions(uri, model)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"registered model {model}")
    for column in ("version", "aliases", "run", "test window", "log loss", "AUC", "reason"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["version"], ", ".join(row["aliases"]), row["run_id"] or "",
                      row["test_window"] or "", _fmt(row["log_loss"]), _fmt(row["auc"]),
                      row["alias_reason"] or "")
    print_table(Console(highlight=False), table)


@models_app.command("promote")
def promote(
    version: Annotated[str, typer.Argument(help="The version to promote (3 or v3).")],
    alias: Alias = "champion",
    tracking_uri: TrackingUri = None,
    name: ModelName = None,
) -> None:
    """Point an alias (champion by default) at a version, whatever its metrics; the version it
    replaces is recorded so that `renewal models rollback` can return to it. The service picks
    the new champion up on its next reload."""
    from training.versions import move_alias

    uri, model = _where(tracking_uri, name)
    move = move_alias(uri, model, version, alias, reason="promoted by hand")
    before = f" (was v{move.previous_version})" if move.previous_version else ""
    if move.previous_version == move.version:
        typer.echo(f"{model} v{move.version} already holds {alias}")
    else:
        typer.echo(f"{model}@{alias} -> v{move.version}{before}")


@models_app.command("rollback")
def rollback(alias: Alias = "champion", tracking_uri: TrackingUri = None,
             name: ModelName = None) -> None:
    """Undo an alias's last move (by training, `renewal models promote` or a rollback): point
    it back at the version it held before. A rollback is recorded like any move, so rolling back
    twice returns to where you started; to go further back, promote that version."""
    from training.versions import rollback as roll_back

    uri, model = _where(tracking_uri, name)
    move = roll_back(uri, model, alias)
    typer.echo(f"{model}@{alias} -> v{move.version} (was v{move.previous_version})")


@models_app.command("compare")
def compare(
    run_a: Annotated[str, typer.Argument(help="MLflow run id (printed by `renewal train`).")],
    run_b: Annotated[str, typer.Argument(help="MLflow run id to compare with.")],
    tracking_uri: TrackingUri = None,
    as_json: AsJson = False,
) -> None:
    """Two training runs side by side: test metrics, the params that differ, features added or
    removed. Metrics of runs on different test windows are not comparable: it says so."""
    from rich.console import Console
    from rich.table import Table

    from renewal.console import print_table, print_warning
    from training.versions import HEADLINE_METRICS, compare_runs

    uri, _ = _where(tracking_uri, None)
    result = compare_runs(uri, run_a, run_b)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    console = Console(highlight=False)
    table = Table(title="metrics on each run's test window")
    for column in ("metric", f"a {run_a[:8]}", f"b {run_b[:8]}", "b - a"):
        table.add_column(column)
    for key in HEADLINE_METRICS:
        values = result["metrics"].get(key)
        if values is None:
            continue
        a, b = values["a"], values["b"]
        diff = f"{b - a:+.4f}" if a is not None and b is not None else ""
        table.add_row(key, _fmt(a), _fmt(b), diff)
    print_table(console, table)
    if result["params_differing"]:
        params = Table(title="params that differ")
        for column in ("param", "a", "b"):
            params.add_column(column)
        for key, values in result["params_differing"].items():
            params.add_row(key, str(values["a"]), str(values["b"]))
        print_table(console, params)
    for side in ("a", "b"):
        if result[f"features_only_in_{side}"]:
            console.print(f"features only in {side}: "
                          + ", ".join(result[f"features_only_in_{side}"]))
    if not result["same_test_window"]:
        print_warning(console, f"the runs have different test windows ({result['a']['test_window']}"
                      f" vs {result['b']['test_window']}): their metrics are not comparable; "
                      "retrain both on the same data to compare")
