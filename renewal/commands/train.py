"""``renewal train``: fit, evaluate, log to MLflow and register the renewal model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from renewal.errors import ConfigError

if TYPE_CHECKING:
    from rich.table import Table

MAX_SEED = 2**32 - 1  # = training.config.MAX_SEED; kept here so --help does not import training


def check_config_files(*paths: Path | None) -> None:
    """A directory given as a config file is a clear error, not an IsADirectoryError."""
    for path in paths:
        if path is not None and Path(path).is_dir():
            raise ConfigError(f"config file {path} is a directory, not a TOML file")


def parse_horizons(text: str | None) -> list[int] | None:
    """``180,270`` → [180, 270]; an empty text is no extra horizon (overrides the TOML's);
    None (option not given) keeps the TOML's. Ranges are TrainConfig's to check."""
    if text is None:
        return None
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        return [int(part) for part in parts]
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: write whole days separated by commas, e.g. 180,270",
            param_hint="--extra-horizons-days") from None


def register(app: typer.Typer) -> None:
    app.command("train")(train)


def train(
    data: Annotated[Path, typer.Option("--data", help="Data directory (the contract's tables).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for report.json, plots, model.")],
    horizon_days: Annotated[int | None, typer.Option(
        "--horizon-days", min=1,
        help="Snapshot this many days before each contract's end [90].")] = None,
    extra_horizons_days: Annotated[str | None, typer.Option(
        "--extra-horizons-days", metavar="DAYS,DAYS",
        help="Also snapshot each contract this many days before its end (e.g. 180,270): "
        "one row per contract and horizon, metrics per horizon [none].")] = None,
    tracking_uri: Annotated[str | None, typer.Option(
        "--tracking-uri", help="MLflow tracking URI [RENEWAL_TRACKING_URI, else SQLite under "
        "RENEWAL_DATA_DIR].")] = None,
    experiment: Annotated[str, typer.Option(
        "--experiment", help="MLflow experiment name.")] = "renewal",
    register_model: Annotated[bool, typer.Option(
        "--register/--no-register",
        help="Register the model as RENEWAL_MODEL_NAME [renewal] with an alias.")] = True,
    promote: Annotated[bool, typer.Option(
        "--promote", help="Make this model the champion even if it does not beat it "
        "(needs --register).")] = False,
    config: Annotated[Path | None, typer.Option(
        "--config", help="Feature thresholds TOML (as for `renewal features`) "
        "[RENEWAL_FEATURE_CONFIG, which scoring uses].")] = None,
    train_config: Annotated[Path | None, typer.Option(
        "--train-config", help="Training TOML (windows, LightGBM, calibration).")] = None,
    seed: Annotated[int | None, typer.Option(
        "--seed", min=0, max=MAX_SEED, help="Random seed [42].")] = None,
    validate: Annotated[bool, typer.Option(
        "--validate/--no-validate", help="Check the data contract first.")] = True,
) -> None:
    """Train the renewal model on contracts with known outcomes, split by time.

    Fits the fitted heuristic (factor × activity_rate_3m), a logistic baseline and the
    calibrated LightGBM model; evaluates all on the same test window; writes report.json and
    plots to --out; logs everything to MLflow and registers the model (champion only if it
    beats the current champion on this test window, else challenger).
    """
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from features.config import load_feature_config
    from renewal.console import print_table, print_warning
    from renewal.settings import get_settings
    from training.config import load_train_config
    from training.tracking import mask_uri
    from training.train import STEPS, run_training

    if promote and not register_model:
        # A promotion that cannot happen must not pass for one (it used to be dropped silently).
        raise typer.BadParameter("--promote makes the registered model the champion: it cannot "
                                 "be combined with --no-register", param_hint="--promote")
    console = Console(highlight=False)
    settings = get_settings()
    # Scoring computes features with RENEWAL_FEATURE_CONFIG: training without it (the defaults)
    # fitted the model to other thresholds than the ones it is served with.
    config = config or settings.feature_config
    check_config_files(config, train_config)
    train_cfg = load_train_config(train_config, horizon_days=horizon_days, seed=seed,
                                  extra_horizons_days=parse_horizons(extra_horizons_days))
    feature_cfg = load_feature_config(config)
    uri = tracking_uri or settings.resolved_tracking_uri
    labels = {"validate": "checking the data contract", "features": "building the training set",
              "fit": "fitting heuristic, logistic, LightGBM", "evaluate": "evaluating, plotting",
              "mlflow": "logging to MLflow, registering"}
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("starting", total=len(STEPS))
        seen: list[str] = []

        def on_step(name: str) -> None:
            if seen:
                progress.advance(task)
            seen.append(name)
            progress.update(task, description=labels.get(name, name))

        result = run_training(
            data, out, train_cfg, feature_config=feature_cfg, tracking_uri=uri,
            experiment=experiment, register=register_model, promote=promote,
            model_name=settings.model_name, validate=validate, on_step=on_step,
        )
        progress.update(task, completed=len(STEPS), description="done")

    report = result.report
    parts = Table(title="training set (split by contract end date)")
    for column in ("part", "rows", "renewal rate", "contract ends", "snapshots"):
        parts.add_column(column)
    for part in report["parts"]:
        parts.add_row(part["part"], str(part["rows"]), f"{part['renewal_rate']:.3f}",
                      f"{part['end_date_min']} .. {part['end_date_max']}",
                      f"{part['as_of_min']} .. {part['as_of_max']}")
    print_table(console, parts)
    metrics = Table(title=f"test window {report['test_window'][0]} .. {report['test_window'][1]}")
    for column in ("model", "AUC", "log loss", "Brier", "ECE", "top-decile lift"):
        metrics.add_column(column)
    for name, m in report["models"].items():
        metrics.add_row(name, f"{m['auc']:.4f}", f"{m['log_loss']:.4f}", f"{m['brier']:.4f}",
                        f"{m['ece']:.4f}", f"{m['top_decile_lift']:.2f}")
    print_table(console, metrics)
    if len(report["horizons"]) > 1:
        print_table(console, horizon_table(report))
    console.print(f"heuristic factor fitted on train: {report['factor']:.3f} "
                  f"(the source's example: {report['source_factor']})")
    console.print(f"calibration: {report['calibration']['method']} (cross-fitted log loss "
                  + ", ".join(f"{k} {v:.4f}" for k, v in
                              report["calibration"]["cross_fitted_log_loss"].items()) + ")")
    if result.registration is not None:
        r = result.registration
        console.print(f"registered {r.name} v{r.version} as [bold]{r.alias}[/]: {r.reason}")
    if result.run_id:
        console.print(f"MLflow run {result.run_id} at {mask_uri(uri)}")
    console.print(f"report: {Path(out) / 'report.json'}")
    for warning in report.get("warnings", []):
        print_warning(console, warning)


def horizon_table(report: dict) -> Table:
    """The test metrics of each model at each snapshot horizon (the oracle: primary only)."""
    from rich.table import Table

    table = Table(title="test window by horizon (days before the contract's end)")
    for column in ("horizon", "rows", "observed", "model", "AUC", "log loss", "Brier", "ECE",
                   "mean p"):
        table.add_column(column)
    for days, values in report["horizons"].items():
        for name, m in values["models"].items():
            auc = "-" if m["auc"] is None else f"{m['auc']:.4f}"
            table.add_row(days, str(values["n"]), f"{values['observed_rate']:.3f}", name, auc,
                          f"{m['log_loss']:.4f}", f"{m['brier']:.4f}", f"{m['ece']:.4f}",
                          f"{m['mean_probability']:.3f}")
    return table
