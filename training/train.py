"""The training job: data → training set → models → report and plots → MLflow → registry.

Each stage is a function of its own module; this one only orders them, writes the outputs
atomically and tells the caller (the CLI's progress bar) which step it is on.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from renewal.datadir import (
    atomic_path,
    missing_directories,
    remove_empty_directories,
    staged_directory,
)
from renewal.errors import ConfigError
from training.config import TrainConfig
from training.dataset import LABEL, TrainingSet, build_training_set, horizon_gap_warning
from training.evaluate import (
    calibration_against_heuristic,
    horizon_metric_names,
    horizon_metrics,
    model_metrics,
    reliability_table,
    segment_metrics,
)
from training.fit import FittedModels, fit_models, score_all
from training.heuristic import SOURCE_FACTOR, factor_warning
from training.registry import Registration
from training.scorer import RenewalScorer

if TYPE_CHECKING:
    from training.tracking import CreatedStore

STEPS = ("validate", "features", "fit", "evaluate", "mlflow")
PLOTS = ("reliability.png", "feature_importance.png", "contributions.png", "lift.png")


@dataclass
class TrainResult:
    """Everything a caller may want after training (the report is also on disk)."""

    out_dir: Path
    report: dict[str, Any]
    training_set: TrainingSet
    fitted: FittedModels
    test_probabilities: dict[str, np.ndarray]
    run_id: str | None = None
    model_uri: str | None = None
    registration: Registration | None = None
    created_store: CreatedStore | None = None  # the tracking store this run created

    @property
    def scorer(self) -> RenewalScorer:
        return self.fitted.scorer


def build_report(
    training_set: TrainingSet, fitted: FittedModels, config: TrainConfig,
    probabilities: dict[str, np.ndarray],
) -> dict[str, Any]:
    """report.json: sizes, windows, fitted factor, metrics per model (overall and per
    horizon), calibration tables.

    The oracle (simulated truth) is what was knowable at the 90-day decision day: with extra
    horizons it is left out of the all-rows metrics and compared on primary-horizon rows only.
    """
    test = training_set.part("test")
    y = test[LABEL].to_numpy(dtype=int)
    primary = (test["horizon_days"].to_numpy() == config.horizon_days
               if "horizon_days" in test.columns else np.ones(len(test), dtype=bool))
    horizons = horizon_metrics(test, y, probabilities, config.horizon_days)
    if not primary.all():
        probabilities = {k: v for k, v in probabilities.items() if k != "oracle"}
    models = {name: model_metrics(y, p, name) for name, p in probabilities.items()}
    windows = training_set.windows
    longest = max(config.horizons_days)
    gap = horizon_gap_warning(windows, longest, "horizon_days" if longest == config.horizon_days
                              else "extra horizon")
    report: dict[str, Any] = {
        "n_train": int(len(training_set.part("train"))),
        "n_calibration": int(len(training_set.part("calibration"))),
        "n_test": int(len(test)),
        "test_window": [windows.test_start.isoformat(), windows.test_end.isoformat()],
        "factor": fitted.factor,
        "source_factor": SOURCE_FACTOR,
        "models": models,
        "calibration_against_heuristic": calibration_against_heuristic(
            test, y, probabilities["lightgbm"], probabilities["heuristic"]),
        "segments": segment_metrics(test, y, probabilities),
        "horizons": horizons,
        "reliability": {name: reliability_table(y, p).to_dict(orient="records")
                        for name, p in probabilities.items()},
        "windows": windows.as_dict(),
        "parts": training_set.summary(),
        "excluded": training_set.excluded,
        "calibration": {"method": fitted.scorer.calibrator.method,
                        "cross_fitted_log_loss": fitted.calibration_log_loss},
        "lightgbm": {"best_iteration": fitted.best_iteration,
                     "base_probability": fitted.scorer.base_probability},
        "features": fitted.scorer.feature_names,
        "horizon_days": config.horizon_days,
        "horizons_days": config.horizons_days,
        "seed": config.seed,
        "warnings": [w for w in [gap, factor_warning(fitted.factor)] if w],
    }
    on_primary = horizons.get(str(config.horizon_days), {}).get("models", {})
    if "oracle" in on_primary:
        lgbm, oracle = on_primary["lightgbm"], on_primary["oracle"]
        report["vs_oracle"] = {
            "auc_ratio": (lgbm["auc"] / oracle["auc"]
                          if lgbm["auc"] is not None and oracle["auc"] is not None else None),
            "brier_ratio": lgbm["brier"] / oracle["brier"],
            "computed_on": f"primary horizon rows (horizon_days {config.horizon_days})",
            "n": horizons[str(config.horizon_days)]["n"],
        }
    return report


def write_json(path: Path, data: Any) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def write_plots(out_dir: Path, test: pd.DataFrame, fitted: FittedModels,
                probabilities: dict[str, np.ndarray]) -> list[Path]:
    """The four PNGs, from the test window."""
    from training import plots

    y = test[LABEL].to_numpy(dtype=int)
    scorer = fitted.scorer
    X = scorer.prepare(test)
    contributions, _ = scorer.contributions(X)
    gain = scorer.booster.feature_importance(importance_type="gain")
    return [
        plots.reliability_diagram(y, probabilities, out_dir / PLOTS[0]),
        plots.feature_importance(scorer.feature_names, gain, out_dir / PLOTS[1]),
        plots.contribution_summary(scorer.feature_names, contributions, out_dir / PLOTS[2]),
        plots.lift_curve(y, probabilities, out_dir / PLOTS[3]),
    ]


def write_outputs(result: TrainResult) -> None:
    """report.json, the plots, test predictions and the scorer (joblib) into ``out_dir``."""
    import joblib

    out_dir = result.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    test = result.training_set.part("test")
    write_plots(out_dir, test, result.fitted, result.test_probabilities)
    keep = ["contract_id", "account_id", "end_date", "as_of", "horizon_days", LABEL]
    predictions = test[[c for c in keep if c in test.columns]].copy()
    for name, p in result.test_probabilities.items():
        predictions[f"p_{name}"] = p
    with atomic_path(out_dir / "test_predictions.parquet") as tmp:
        predictions.to_parquet(tmp, index=False)
    with atomic_path(out_dir / "scorer.joblib") as tmp:
        joblib.dump(result.scorer, tmp)
    write_json(out_dir / "report.json", result.report)


def check_out_dir(out_dir: Path) -> list[Path]:
    """Create ``out_dir`` or refuse it now (a file or an unwritable place used to fail only
    after minutes of training, with a traceback); returns the directories it created, which
    :func:`run_training` removes again if the run fails before writing anything."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"output directory {out_dir} exists and is not a directory")
    created = missing_directories(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"output directory {out_dir} cannot be created: "
                          f"{exc.strerror or exc}") from exc
    if not os.access(out_dir, os.W_OK | os.X_OK):
        remove_empty_directories(created)
        raise ConfigError(f"output directory {out_dir} is not writable")
    return created


def run_training(
    data_dir: Path,
    out_dir: Path,
    config: TrainConfig,
    *,
    feature_config: Any = None,
    tracking_uri: str | None = None,
    experiment: str = "renewal",
    register: bool = True,
    promote: bool = False,
    model_name: str = "renewal",
    validate: bool = True,
    on_step: Callable[[str], None] | None = None,
    registry: Any = None,
    training_set: TrainingSet | None = None,
) -> TrainResult:
    """Train, evaluate, write ``out_dir`` and (when ``tracking_uri``) log and register.

    ``training_set`` skips validation and feature building (notebooks, tests, re-fits).
    """
    if promote and (not register or tracking_uri is None):
        raise ConfigError("promote=True makes the registered model the champion: it needs "
                          "register=True and a tracking_uri")
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    created = check_out_dir(out_dir)
    try:
        return _train(data_dir, out_dir, config, feature_config, tracking_uri, experiment,
                      register, promote, model_name, registry, on_step, validate, training_set)
    except BaseException:
        # A refused run (bad data, dead store) leaves no empty --out.
        remove_empty_directories(created)
        raise


def _train(
    data_dir: Path, out_dir: Path, config: TrainConfig, feature_config: Any,
    tracking_uri: str | None, experiment: str, register: bool, promote: bool, model_name: str,
    registry: Any, on_step: Callable[[str], None] | None, validate: bool,
    training_set: TrainingSet | None,
) -> TrainResult:
    """:func:`run_training` once ``out_dir`` exists."""
    step = on_step or (lambda _name: None)
    if tracking_uri is not None:
        from training.tracking import check_tracking

        # A new SQLite store is only tried here; log_and_register creates it.
        check_tracking(tracking_uri, experiment, register, create=False)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal started
        now = time.perf_counter()
        timings[name] = round(now - started, 2)
        started = now

    step("validate")
    if validate and training_set is None:
        from features.validation import check_data_dir

        check_data_dir(data_dir)
    lap("validate")

    step("features")
    given_training_set = training_set is not None
    if training_set is None:
        training_set = build_training_set(data_dir, config, feature_config)
    lap("features")

    step("fit")
    fitted = fit_models(training_set, config, registry)
    lap("fit")

    step("evaluate")
    test = training_set.part("test")
    probabilities = score_all(fitted, test)
    report = build_report(training_set, fitted, config, probabilities)
    if not given_training_set:  # what the data's reach (its start: activation) and the
        # contract's warnings say, as the scoring job says them
        from features.config import FeatureConfig
        from features.freshness import contract_warning_sentences, usage_start_warning
        from features.source import open_source

        source = open_source(data_dir)
        warning = usage_start_warning(source, feature_config or FeatureConfig())
        report["warnings"] += [warning] if warning else []
        report["warnings"] += contract_warning_sentences(source)
    from training.lineage import data_fingerprint

    report["data"] = {
        "fingerprint": data_fingerprint(data_dir),
        "first_snapshot": training_set.summary()[0]["as_of_min"],
        "last_contract_end": training_set.windows.test_end.isoformat(),
    }
    fitted.scorer.metadata.update({
        "test_metrics": report["models"]["lightgbm"],
        "heuristic_test_metrics": report["models"]["heuristic"],
        "data_fingerprint": report["data"]["fingerprint"]["sha256"],
        "test_window": report["test_window"],
    })
    if feature_config is not None or not given_training_set:
        # The thresholds the features were computed with: scoring warns when its own differ.
        from features.config import FeatureConfig

        used = feature_config if feature_config is not None else FeatureConfig()
        fitted.scorer.metadata["feature_config"] = used.model_dump(mode="json")
    # Outputs are staged and moved into out_dir only when MLflow succeeded too: a failed run
    # never overwrites a previous good run's report and scorer.
    result = TrainResult(out_dir, report, training_set, fitted, probabilities)
    try:
        with staged_directory(out_dir) as staging:
            result.out_dir = staging
            with _written_to(out_dir):
                write_outputs(result)
            lap("evaluate")

            if tracking_uri is not None:
                step("mlflow")
                log_to_mlflow(result, config, tracking_uri, experiment, register, promote,
                              model_name, feature_config)
                lap("mlflow")
            report["timings_seconds"] = timings
            with _written_to(out_dir):
                write_json(result.out_dir / "report.json", report)
    except BaseException:
        # Registered, then failed: take it back (a failure inside register_model has
        # already undone itself, and result.registration is then unset).
        if result.registration is not None:
            from training.registry import undo_registration

            undo_registration(result.registration)
        if result.created_store is not None:  # and the store, if this run made it
            from training.tracking import remove_created_store

            remove_created_store(result.created_store, experiment, result.run_id,
                                 model_name if register else None)
        raise
    result.out_dir = out_dir
    return result


@contextmanager
def _written_to(out_dir: Path) -> Iterator[None]:
    """A write into ``--out`` failing (a full disk, a quota) is said, exit 2, not a traceback;
    the staging directory is removed as for any failure."""
    try:
        yield
    except OSError as exc:
        raise ConfigError(f"--out {out_dir} cannot be written: {exc.strerror or exc}") from exc


def log_to_mlflow(
    result: TrainResult, config: TrainConfig, tracking_uri: str, experiment: str,
    register: bool, promote: bool, model_name: str, feature_config: Any,
) -> None:
    """log_and_register, with MLflow's own failures (store gone mid-run) as a RenewalError."""
    from mlflow.exceptions import MlflowException

    from training.tracking import mlflow_error

    try:
        log_and_register(result, config, tracking_uri, experiment, register, promote,
                         model_name, feature_config)
    except (MlflowException, OSError) as exc:  # requests' errors are OSErrors too
        raise mlflow_error("logging the run and registering the model", tracking_uri,
                           exc) from exc


def log_and_register(
    result: TrainResult, config: TrainConfig, tracking_uri: str, experiment: str,
    register: bool, promote: bool, model_name: str, feature_config: Any,
) -> None:
    """One MLflow run: params, metrics, report + plots, the pyfunc; then the registry rule."""
    import mlflow

    from training.pyfunc import model_input
    from training.registry import register_model
    from training.tracking import (
        artifact_location_warning,
        configure,
        create_store,
        flat_params,
        log_pyfunc,
        mask_uri,
        segment_metric_names,
        segment_name_tags,
    )

    result.created_store = create_store(tracking_uri)  # a new SQLite store is made only now
    experiment_id = configure(tracking_uri, experiment)
    report = result.report
    misplaced = artifact_location_warning(tracking_uri, experiment_id)
    if misplaced:
        report["warnings"].append(misplaced)
    test = result.training_set.part("test")
    with mlflow.start_run() as run:
        result.run_id = run.info.run_id  # a failed run's store may be removed: what is ours
        params = {"train": config.model_dump(mode="json"),
                  "features": json.dumps(result.scorer.feature_names),
                  "data.fingerprint": report["data"]["fingerprint"]["sha256"],
                  "data.first_snapshot": report["data"]["first_snapshot"],
                  "data.last_contract_end": report["data"]["last_contract_end"],
                  "calibration.method": report["calibration"]["method"]}
        if feature_config is not None and hasattr(feature_config, "model_dump"):
            params["feature_config"] = feature_config.model_dump(mode="json")
        mlflow.log_params(flat_params(params))
        for name, metrics in report["models"].items():
            mlflow.log_metrics({f"{name}.{k}": v for k, v in metrics.items()
                                if v is not None and np.isfinite(v)})
        mlflow.log_metrics(segment_metric_names(report["segments"]))
        mlflow.log_metrics(horizon_metric_names(report["horizons"]))
        mlflow.log_dict(report["calibration_against_heuristic"],
                        "calibration_against_heuristic.json")
        mlflow.log_metrics({"n_train": report["n_train"], "n_calibration": report["n_calibration"],
                            "n_test": report["n_test"], "factor": report["factor"]})
        mlflow.set_tags({"test_window": "..".join(report["test_window"]),
                         "data_fingerprint": report["data"]["fingerprint"]["sha256"],
                         **segment_name_tags(report["segments"])})
        for name in (*PLOTS, "report.json"):
            mlflow.log_artifact(str(result.out_dir / name))
        from training.pyfunc import example_input

        example = example_input(result.scorer, result.training_set.part("train"))
        result.model_uri = log_pyfunc(result.scorer, example, config.explain_top_k)
        report["mlflow"] = {"run_id": run.info.run_id, "model_uri": result.model_uri,
                            "tracking_uri": mask_uri(tracking_uri), "experiment": experiment}
        if register:
            result.registration = register_model(
                result.model_uri, report["models"]["lightgbm"],
                model_input(result.scorer, test), test[LABEL].to_numpy(dtype=int),
                name=model_name, promote=promote,
                heuristic_metrics=report["models"]["heuristic"],
                new_probabilities=np.asarray(result.test_probabilities["lightgbm"]),
                confidence=config.champion_confidence,
                clusters=test["account_id"].astype(str).to_numpy(),
                tags={"data_fingerprint": report["data"]["fingerprint"]["sha256"],
                      "test_window": "..".join(report["test_window"])},
            )
            report["registration"] = result.registration.as_dict()
            mlflow.set_tag("registered_alias", result.registration.alias)
        write_json(result.out_dir / "report.json", report)
        mlflow.log_artifact(str(result.out_dir / "report.json"))
