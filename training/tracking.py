"""MLflow tracking: where runs go, and what a training run records.

The tracking and registry URIs are set explicitly (never left to MLflow's environment defaults),
so a run always lands in the store the user named or in the project's SQLite file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

from renewal.errors import ConfigError, RenewalError
from training.scorer import RenewalScorer

PIP_REQUIREMENTS_PACKAGES = ("lightgbm", "numpy", "pandas", "scikit-learn", "joblib", "mlflow")
SERVER_DATABASES = ("postgresql", "mysql", "mssql")  # SQLAlchemy stores MLflow retries ~2 min
# The up-front check must fail in seconds: MLflow's defaults retry a dead server for minutes.
QUICK_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}


def mask_uri(uri: str) -> str:
    """``uri`` with the password of its user info replaced by ``***`` (for output and reports)."""
    try:
        parts = urlsplit(uri)
        password = parts.password
    except ValueError:
        return uri
    if not password:
        return uri
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def scrub(text: str, uri: str) -> str:
    """``text`` (an error message) with ``uri``'s password masked wherever it appears."""
    try:
        password = urlsplit(uri).password
    except ValueError:
        password = None
    text = text.replace(uri, mask_uri(uri))
    return text.replace(password, "***") if password else text


def mlflow_error(action: str, uri: str, exc: BaseException) -> RenewalError:
    """A RenewalError for a failed MLflow call: what, where (masked), and MLflow's first line."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return RenewalError(f"{action} at MLflow tracking URI {mask_uri(uri)} failed: "
                        f"{scrub(first, uri)}")


@contextmanager
def _quick_http() -> Iterator[None]:
    """Temporarily no retries and a short timeout for MLflow's HTTP client."""
    saved = {k: os.environ.get(k) for k in QUICK_HTTP}
    os.environ.update(QUICK_HTTP)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _check_database(uri: str) -> None:
    """Connect once to a database store, so a dead server fails now, not after MLflow's retries."""
    scheme = urlsplit(uri).scheme.split("+")[0]
    if scheme not in SERVER_DATABASES:
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(uri)
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()


def check_tracking(tracking_uri: str, experiment: str, register: bool = True) -> None:
    """Fail in seconds, before minutes of training, when the run could not be logged.

    Checks the experiment name, that the store answers, that the experiment is not deleted and
    (when registering) that the model registry answers.
    """
    if not experiment.strip():
        raise ConfigError("the MLflow experiment name (--experiment) must not be blank")
    from mlflow import MlflowClient

    try:
        with _quick_http():
            _check_database(tracking_uri)
            client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
            client.search_experiments(max_results=1)
            found = client.get_experiment_by_name(experiment)
            if register:
                client.search_registered_models(max_results=1)
    except Exception as exc:  # any driver, HTTP or MLflow error: the store is not usable
        raise mlflow_error("checking the tracking store", tracking_uri, exc) from exc
    if found is not None and found.lifecycle_stage == "deleted":
        raise ConfigError(f"MLflow experiment {experiment!r} at {mask_uri(tracking_uri)} is "
                          "deleted; restore it or choose another --experiment")


def configure(tracking_uri: str, experiment: str) -> str:
    """Point MLflow's tracking and registry at ``tracking_uri``; return the experiment id."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return mlflow.set_experiment(experiment).experiment_id


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        out[prefix] = str(value)[:500]


def flat_params(params: dict[str, Any]) -> dict[str, str]:
    """Nested config → MLflow params (``lightgbm.num_leaves`` = "15")."""
    out: dict[str, str] = {}
    _flatten("", params, out)
    return out


def pip_requirements() -> list[str]:
    """Pinned versions of what the pyfunc needs (no slow requirement inference)."""
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for name in PIP_REQUIREMENTS_PACKAGES:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pins.append(name)
    return pins


def log_pyfunc(scorer: RenewalScorer, input_example: pd.DataFrame, top_k: int = 3) -> str:
    """Log the scorer as a pyfunc model in the active run; return its model URI."""
    import joblib
    import mlflow.pyfunc

    from training.pyfunc import SCORER_ARTIFACT, RenewalPyfunc, model_input, model_signature

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scorer.joblib"
        joblib.dump(scorer, path)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=RenewalPyfunc(top_k=top_k),
            artifacts={SCORER_ARTIFACT: str(path)},
            signature=model_signature(scorer),
            input_example=model_input(scorer, input_example),
            pip_requirements=pip_requirements(),
            metadata={"heuristic_factor": scorer.heuristic_factor,
                      "features": json.dumps(scorer.feature_names)},
        )
    return info.model_uri
