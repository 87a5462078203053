"""MLflow tracking: where runs go, and what a training run records.

The tracking and registry URIs are set explicitly (never left to MLflow's environment defaults),
so a run always lands in the store the user named or in the project's SQLite file.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from training.scorer import RenewalScorer

PIP_REQUIREMENTS_PACKAGES = ("lightgbm", "numpy", "pandas", "scikit-learn", "joblib", "mlflow")


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
