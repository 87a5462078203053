"""The served model: loaded from the registry alias, copied to ``models/`` as last-known-good,
validated before use and swapped atomically.

Start-up tries the registry first; if it is unreachable (or the alias is missing) the last
copy that once loaded and passed validation is used, and ``/readyz`` says "degraded". A
reload builds and checks the new model completely, then replaces one reference: a request
that already holds the old model finishes with it, the next one gets the new one, and no
request ever sees a half-loaded model. A model that fails to load or to score a probe is
refused; the old one keeps serving and the refusal is kept for ``/v1/model``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from renewal.datadir import atomic_path
from renewal.errors import ModelUnavailableError, RenewalError
from renewal.settings import Settings
from renewal.uri_secrets import error_line

log = logging.getLogger("service.model")

ModelSource = Literal["registry", "last-known-good", "uri"]
LKG_FILE = "last-known-good.json"
KEEP_COPIES = 3


@dataclass(frozen=True)
class LoadedModel:
    """A validated scorer and what it is: never mutated after construction."""

    scorer: Any  # training.scorer.RenewalScorer (imported lazily: MLflow is heavy)
    name: str
    version: str
    alias: str | None
    source: ModelSource
    uri: str
    card: dict[str, Any]
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def feature_names(self) -> list[str]:
        return list(self.scorer.feature_names)


@dataclass(frozen=True)
class Refusal:
    """A model version that was not swapped in, and why."""

    version: str | None
    reason: str
    at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "reason": self.reason, "at": self.at.isoformat()}


@dataclass(frozen=True)
class ReloadOutcome:
    """What a reload did: 'swapped', 'unchanged' or 'refused'."""

    outcome: Literal["swapped", "unchanged", "refused"]
    version: str | None
    previous_version: str | None
    detail: str
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "version": self.version,
            "previous_version": self.previous_version,
            "detail": self.detail,
            "at": self.at.isoformat(),
        }


class RegistryUnavailable(RenewalError):
    """The MLflow registry could not be asked (down, unknown model or alias)."""


def _short(exc: BaseException, tracking_uri: str | None = None) -> str:
    """The exception in one line for logs and /readyz's admin detail; the tracking URI's
    token masked out of it (MLflow's errors quote the URL they called)."""
    return f"{type(exc).__name__}: {error_line(exc, tracking_uri) if str(exc) else ''}"


# -- registry access -------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryVersion:
    """A registered model version as the registry describes it."""

    name: str
    version: str
    alias: str | None
    run_id: str | None
    tags: dict[str, str]
    description: str | None


def _fail_fast() -> None:
    """A remote registry that is down must fail in seconds, not after minutes of retries
    (MLflow's defaults): the last-known-good copy is the answer then. Explicit settings win."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


def _client(tracking_uri: str) -> Any:
    from mlflow import MlflowClient

    _fail_fast()
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def resolve_alias(tracking_uri: str, name: str, alias: str) -> RegistryVersion:
    """Which version holds ``alias`` now (raises :class:`RegistryUnavailable`)."""
    try:
        mv = _client(tracking_uri).get_model_version_by_alias(name, alias)
    except Exception as exc:  # MlflowException, connection errors, SQLAlchemy errors...
        raise RegistryUnavailable(
            f"cannot resolve {name}@{alias} in the registry: {_short(exc, tracking_uri)}"
        ) from exc
    return RegistryVersion(
        name=name,
        version=str(mv.version),
        alias=alias,
        run_id=mv.run_id,
        tags=dict(mv.tags or {}),
        description=mv.description,
    )


def _run_summary(tracking_uri: str, run_id: str | None) -> dict[str, Any]:
    """Training window and test metrics (model vs heuristic) of the run behind a version.

    Read from the run's ``report.json`` artifact when it has one, else from its metrics;
    best effort: a card without them is still served.
    """
    if not run_id:
        return {}
    summary: dict[str, Any] = {"run_id": run_id}
    try:
        import mlflow.artifacts

        report = (
            mlflow.artifacts.load_dict(f"runs:/{run_id}/report.json")
            if _set_tracking(tracking_uri)
            else {}
        )
    except Exception as exc:
        log.info("model card: no report.json in run %s (%s)", run_id, type(exc).__name__)
        report = {}
    models = report.get("models") or {}
    if report:
        summary["training_window"] = report.get("windows")
        summary["test_metrics"] = models.get("lightgbm")
        summary["heuristic_metrics"] = models.get("heuristic")
        summary["test_window"] = report.get("test_window")
        return summary
    try:
        run = _client(tracking_uri).get_run(run_id)
    except Exception as exc:
        log.warning("model card: run %s unreadable (%s)", run_id, type(exc).__name__)
        return summary
    metrics = dict(run.data.metrics)
    summary["test_metrics"] = _prefixed(metrics, "lightgbm.") or None
    summary["heuristic_metrics"] = _prefixed(metrics, "heuristic.") or None
    summary["test_window"] = run.data.tags.get("test_window")
    return summary


def _prefixed(values: dict[str, float], prefix: str) -> dict[str, float]:
    return {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}


def _uri_version(uri: str, tracking_uri: str) -> str:
    """The registry version a model URI names: ``models:/name/3`` -> "3", ``models:/name@a``
    -> the version alias ``a`` holds; "local" for a directory or a run's artifacts."""
    if not uri.startswith("models:/"):
        return "local"
    path = uri.removeprefix("models:/").strip("/")
    if "@" in path:
        name, alias = path.split("@", 1)
        return resolve_alias(tracking_uri, name, alias).version
    return path.rsplit("/", 1)[-1]


def _set_tracking(tracking_uri: str) -> bool:
    """Point the MLflow fluent API at ``tracking_uri`` (artifact helpers read it from there)."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return True


def download_version(tracking_uri: str, version: RegistryVersion, models_dir: Path) -> Path:
    """Copy the version's MLflow model into ``models_dir/<name>/v<version>`` (atomic rename)."""
    import mlflow.artifacts

    root = models_dir / version.name
    target = root / f"v{version.version}"
    if (target / "MLmodel").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".v{version.version}.", dir=root))
    try:
        _set_tracking(tracking_uri)  # models:/ URIs resolve through the fluent registry URI
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{version.name}/{version.version}",
            dst_path=str(staging),
            tracking_uri=tracking_uri,
            registry_uri=tracking_uri,
        )
        local_path = Path(local)
        if not (local_path / "MLmodel").exists():
            found = next(staging.rglob("MLmodel"), None)
            if found is None:
                raise RenewalError(f"{version.name} v{version.version} has no MLmodel file")
            local_path = found.parent
        if target.exists():
            shutil.rmtree(target)
        os.replace(local_path, target)
    except Exception as exc:
        raise RegistryUnavailable(
            f"cannot download {version.name} v{version.version}: {_short(exc, tracking_uri)}"
        ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load_scorer(model_dir_or_uri: str) -> Any:
    """The :class:`~training.scorer.RenewalScorer` inside an MLflow pyfunc model."""
    import mlflow.pyfunc

    from training.scorer import RenewalScorer

    try:
        wrapper = mlflow.pyfunc.load_model(model_dir_or_uri).unwrap_python_model()
    except Exception as exc:
        raise RenewalError(f"model at {model_dir_or_uri} does not load: {_short(exc)}") from exc
    scorer = getattr(wrapper, "scorer", None)
    if scorer is None and hasattr(wrapper, "load_context"):
        raise RenewalError(f"model at {model_dir_or_uri} has no scorer after loading")
    if not isinstance(scorer, RenewalScorer):
        raise RenewalError(
            f"model at {model_dir_or_uri} is not a renewal model "
            f"(got {type(wrapper).__name__} without a RenewalScorer)"
        )
    return scorer


# -- validation ------------------------------------------------------------------------------


def check_model(scorer: Any, sample_vectors: list[dict[str, Any]] | None = None) -> None:
    """Refuse a model that cannot score: probe it with a blank row and stored vectors.

    With stored vectors, every feature the model needs (outside optional tables) must be
    among the features the pipeline produced, or the model would score on blanks.
    """
    import pandas as pd

    names = list(getattr(scorer, "feature_names", []))
    if not names:
        raise RenewalError("model declares no features")
    rows: list[dict[str, Any]] = [{}]
    if sample_vectors:
        known = set().union(*(v.keys() for v in sample_vectors))
        required = [f.name for f in scorer.features if not getattr(f, "optional_table", False)]
        missing = [n for n in required if n not in known]
        if missing:
            raise RenewalError(
                f"model needs {len(missing)} feature(s) the scoring pipeline does not produce "
                f"(e.g. {', '.join(missing[:5])})"
            )
        rows += sample_vectors
    frame = pd.DataFrame(rows)
    try:
        X = scorer.prepare(frame)
        explanations = scorer.explain(X, top_k=3)
    except Exception as exc:
        raise RenewalError(f"model fails on a probe of {len(rows)} row(s): {_short(exc)}") from exc
    probabilities = np.array([e.probability for e in explanations], dtype=float)
    if len(probabilities) != len(rows) or not np.all(np.isfinite(probabilities)):
        raise RenewalError("model returns non-finite probabilities on a probe")
    if probabilities.min() < 0 or probabilities.max() > 1:
        raise RenewalError("model returns probabilities outside [0, 1] on a probe")


def model_card(model: LoadedModel) -> dict[str, Any]:
    """The public description of a loaded model (for GET /v1/model and the LKG file)."""
    scorer = model.scorer
    card = dict(model.card)
    card.update(
        name=model.name,
        version=model.version,
        alias=model.alias,
        source=model.source,
        loaded_at=model.loaded_at.isoformat(),
        features=list(scorer.feature_names),
        base_probability=_finite(getattr(scorer, "base_probability", None)),
        heuristic_factor=_finite(getattr(scorer, "heuristic_factor", None)),
    )
    metadata = getattr(scorer, "metadata", {}) or {}
    from_metadata = {
        "training_window": "training_window",
        "test_metrics": "test_metrics",
        "heuristic_metrics": "heuristic_test_metrics",
        "test_window": "test_window",
        # The thresholds the model's features were computed with (training.train).
        "feature_config": "feature_config",
    }
    for key, source_key in from_metadata.items():
        if metadata.get(source_key) is not None and not card.get(key):
            card[key] = metadata[source_key]
    return card


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# -- the store -------------------------------------------------------------------------------

SampleProvider = Callable[[], list[dict[str, Any]]]


class ModelStore:
    """Holds the one model being served; loads, checks, swaps and remembers refusals."""

    def __init__(self, settings: Settings, sample_vectors: SampleProvider | None = None) -> None:
        self.settings = settings
        self.sample_vectors: SampleProvider = sample_vectors or (lambda: [])
        self._current: LoadedModel | None = None
        self._lock = threading.Lock()
        self.status: Literal["ready", "degraded", "unavailable"] = "unavailable"
        self.status_reason = "not loaded yet"
        self.last_refusal: Refusal | None = None
        self.last_reload: ReloadOutcome | None = None
        self.on_swap: Callable[[LoadedModel], None] | None = None

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    @property
    def public_reason(self) -> str:
        """``status_reason`` without what only operators may read: ``status_reason`` names
        model paths and the registry's error (its URI), and ``/readyz`` answers anyone."""
        model = self._current
        if model is None:
            return "no model is loaded (an admin key sees why: GET /v1/model)"
        where = {"registry": "from the registry",
                 "last-known-good": "from the last-known-good copy (the registry failed)",
                 "uri": "from a model URI"}.get(model.source, "")
        return f"serving v{model.version} {where}".rstrip()

    def require(self) -> LoadedModel:
        """The model, or a 503-mapped error when none could be loaded."""
        model = self._current
        if model is None:
            raise ModelUnavailableError(
                f"no model is loaded ({self.status_reason}); train and promote one, "
                "then POST /v1/admin/reload"
            )
        return model

    @property
    def _lkg_root(self) -> Path:
        return Path(self.settings.models_dir) / self.settings.model_name

    # -- start-up --
    def start(self) -> LoadedModel | None:
        """Load from the registry, else from the last-known-good copy, else stay unavailable."""
        with self._lock:
            try:
                model = self._load_from_registry()
            except RenewalError as registry_error:
                log.warning("registry load failed: %s", registry_error)
                try:
                    model = self._load_last_known_good()
                except RenewalError as lkg_error:
                    self.status = "unavailable"
                    self.status_reason = f"{registry_error}; and {lkg_error}"
                    log.error("no model available: %s", self.status_reason)
                    return None
                self._swap(model)
                self.status = "degraded"
                self.status_reason = (
                    f"serving last-known-good v{model.version} from {model.uri}: {registry_error}"
                )
                log.warning("%s", self.status_reason)
                return model
            self._swap(model)
            self.status, self.status_reason = "ready", f"serving v{model.version} from the registry"
            return model

    def _load_from_registry(self) -> LoadedModel:
        s = self.settings
        version = resolve_alias(s.resolved_tracking_uri, s.model_name, s.model_alias)
        local = download_version(s.resolved_tracking_uri, version, Path(s.models_dir))
        scorer = load_scorer(str(local))
        check_model(scorer, self.sample_vectors())
        card = {
            "description": version.description,
            "tags": version.tags,
            **_run_summary(s.resolved_tracking_uri, version.run_id),
        }
        model = LoadedModel(
            scorer=scorer,
            name=version.name,
            version=version.version,
            alias=version.alias,
            source="registry",
            uri=f"models:/{version.name}@{version.alias}",
            card=card,
        )
        self._save_last_known_good(model, local)
        return model

    def _save_last_known_good(self, model: LoadedModel, local: Path) -> None:
        pointer = {
            "name": model.name,
            "version": model.version,
            "alias": model.alias,
            "path": local.name,
            "saved_at": datetime.now(UTC).isoformat(),
            "card": _json_safe(model.card),
        }
        with atomic_path(self._lkg_root / LKG_FILE) as tmp:
            tmp.write_text(json.dumps(pointer, indent=2), encoding="utf-8")
        self._prune_copies(keep=local.name)

    def _prune_copies(self, keep: str) -> None:
        copies = sorted(
            (p for p in self._lkg_root.glob("v*") if p.is_dir() and p.name != keep),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for old in copies[KEEP_COPIES - 1 :]:
            shutil.rmtree(old, ignore_errors=True)

    def _load_last_known_good(self) -> LoadedModel:
        pointer_file = self._lkg_root / LKG_FILE
        if not pointer_file.exists():
            raise RenewalError(f"no last-known-good copy at {pointer_file}")
        try:
            pointer = json.loads(pointer_file.read_text(encoding="utf-8"))
            local = self._lkg_root / pointer["path"]
        except (OSError, ValueError, KeyError) as exc:
            raise RenewalError(
                f"last-known-good pointer {pointer_file} unreadable: {_short(exc)}"
            ) from exc
        scorer = load_scorer(str(local))
        check_model(scorer, self.sample_vectors())
        return LoadedModel(
            scorer=scorer,
            name=pointer["name"],
            version=str(pointer["version"]),
            alias=pointer.get("alias"),
            source="last-known-good",
            uri=str(local),
            card=dict(pointer.get("card") or {}),
        )

    # -- explicit model (``renewal score --model URI``, tests) --
    def load_uri(self, uri: str) -> LoadedModel:
        """Load and serve a model from any MLflow URI or local directory (no LKG copy).

        ``models:/`` and ``runs:/`` URIs are looked up in the project's store
        (``RENEWAL_TRACKING_URI``), not in MLflow's default ``./mlflow.db``; an alias
        (``models:/renewal@champion``) is recorded as the version it points at."""
        tracking = self.settings.resolved_tracking_uri
        if uri.startswith(("models:/", "runs:/")):
            _set_tracking(tracking)
        scorer = load_scorer(uri)
        check_model(scorer, self.sample_vectors())
        version = _uri_version(uri, tracking)
        model = LoadedModel(
            scorer=scorer,
            name=self.settings.model_name,
            version=version,
            alias=None,
            source="uri",
            uri=uri,
            card={},
        )
        with self._lock:
            self._swap(model)
            self.status, self.status_reason = "ready", f"serving {uri}"
        return model

    def install(self, model: LoadedModel, status: Literal["ready", "degraded"] = "ready") -> None:
        """Serve an already built model (used by tests and by the scoring job)."""
        with self._lock:
            self._swap(model)
            self.status, self.status_reason = status, f"serving v{model.version}"

    # -- reload --
    def reload(self, force: bool = False) -> ReloadOutcome:
        """Swap in the alias's version if it changed (or ``force``); refuse a broken one.

        The outcome is kept as ``last_reload`` (shown by ``/v1/model``)."""
        outcome = self._reload(force)
        self.last_reload = outcome
        return outcome

    def _reload(self, force: bool) -> ReloadOutcome:
        with self._lock:
            previous = self._current
            previous_version = previous.version if previous else None
            s = self.settings
            try:
                target = resolve_alias(s.resolved_tracking_uri, s.model_name, s.model_alias)
            except RenewalError as exc:
                return self._refuse(None, str(exc), previous_version)
            if (
                not force
                and previous is not None
                and previous.source == "registry"
                and previous.version == target.version
            ):
                return ReloadOutcome(
                    "unchanged",
                    target.version,
                    previous_version,
                    f"v{target.version} is already served",
                )
            try:
                model = self._load_from_registry()
            except RenewalError as exc:
                return self._refuse(target.version, str(exc), previous_version)
            self._swap(model)
            self.status, self.status_reason = "ready", f"serving v{model.version} from the registry"
            log.info("model swapped: v%s -> v%s", previous_version, model.version)
            return ReloadOutcome(
                "swapped", model.version, previous_version, f"now serving v{model.version}"
            )

    def _refuse(self, version: str | None, reason: str, previous: str | None) -> ReloadOutcome:
        self.last_refusal = Refusal(version, reason, datetime.now(UTC))
        log.error("model reload refused (version %s): %s", version, reason)
        kept = f"; still serving v{previous}" if previous else "; no model is served"
        return ReloadOutcome("refused", version, previous, reason + kept)

    def _swap(self, model: LoadedModel) -> None:
        model = LoadedModel(**{**asdict_shallow(model), "card": model_card(model)})
        self._current = model  # one reference assignment: atomic for readers
        if self.on_swap is not None:
            self.on_swap(model)


def asdict_shallow(model: LoadedModel) -> dict[str, Any]:
    """Field values without deep-copying the scorer (``dataclasses.asdict`` would)."""
    return {f: getattr(model, f) for f in model.__dataclass_fields__}


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
