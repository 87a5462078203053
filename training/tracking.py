"""MLflow tracking: where runs go, and what a training run records.

The tracking and registry URIs are set explicitly (never left to MLflow's environment defaults),
so a run always lands in the store the user named or in the project's SQLite file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import pandas as pd

from renewal.datadir import missing_directories, remove_empty_directories
from renewal.errors import ConfigError, RenewalError
from renewal.uri_secrets import error_line, mask_uri, scrub  # noqa: F401 (scrub: re-exported)
from training.scorer import RenewalScorer

PIP_REQUIREMENTS_PACKAGES = ("lightgbm", "numpy", "pandas", "scikit-learn", "joblib", "mlflow")
SERVER_DATABASES = ("postgresql", "mysql", "mssql")  # SQLAlchemy stores MLflow retries ~2 min
# The up-front check must fail in seconds: MLflow's defaults retry a dead server for minutes.
QUICK_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}
ARTIFACTS_SUFFIX = "-artifacts"  # mlflow.db -> mlflow-artifacts/ beside it
DEFAULT_EXPERIMENT_ID = "0"  # MLflow's built-in Default experiment, made with every store
SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")  # what SQLite may keep beside a database
PARAM_VALUE_MAX = 6000  # MLflow 3's limit for a param value (mlflow.utils.validation)
SEGMENT_NAME_TAG = "segment_name."  # run tag: segment_name.<key> = the segment's name
SEGMENT_HASH_LENGTH = 8  # hex digits of SHA-1 appended to a sanitised segment key


def mlflow_error(action: str, uri: str, exc: BaseException) -> RenewalError:
    """A RenewalError for a failed MLflow call: what, where (masked), and MLflow's first line."""
    return RenewalError(f"{action} at MLflow tracking URI {mask_uri(uri)} failed: "
                        f"{error_line(exc, uri)}")


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


def check_tracking(tracking_uri: str, experiment: str, register: bool = True, *,
                   create: bool = True) -> None:
    """Fail in seconds, before minutes of training, when the run could not be logged.

    Checks the experiment name, that the store answers, that the experiment is not deleted and
    (when registering) that the model registry answers. A SQLite store that does not exist yet
    is created (:func:`create_store`), or with ``create=False`` only tried: a scratch database
    where it would be. :func:`~training.train.run_training` creates it when the run logs, so a
    run refused before (bad data, too few rows) leaves no empty store behind, and no other run
    starts using a new store that a failing run would then remove under it.
    """
    if not experiment.strip():
        raise ConfigError("the MLflow experiment name (--experiment) must not be blank")
    if "://" not in tracking_uri and tracking_uri.endswith((".db", ".sqlite", ".sqlite3")):
        # MLflow reads a bare path as a file store and answers with a migration notice.
        raise ConfigError(f"tracking URI {tracking_uri!r} is a plain path, which MLflow reads as "
                          f"a file store: for a SQLite file write sqlite:///{tracking_uri}")
    from mlflow import MlflowClient

    quiet_mlflow_logs()  # the first contact creates the store's tables, with INFO lines
    new_database = None if create else _new_sqlite_file(tracking_uri)
    try:
        if new_database is not None:
            _try_creating(new_database)  # no experiment, no registry to ask yet
            return
        with _quick_http():
            _check_database(tracking_uri)
            create_store(tracking_uri)
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


def _new_sqlite_file(tracking_uri: str) -> Path | None:
    """The file of a SQLite store that does not exist yet, or None (another store, or it
    exists)."""
    if urlsplit(tracking_uri).scheme.split("+")[0] != "sqlite":
        return None
    from renewal.sqlite import sqlite_file

    database = sqlite_file(tracking_uri)
    if database is None or database.exists():
        return None
    return database.resolve()


def _try_creating(database: Path) -> None:
    """Create and remove a scratch SQLite database beside ``database`` (with the directories
    MLflow would make for it): what would make creating the store fail, fails now."""
    made = missing_directories(database.parent)
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{database.name}.", suffix=".try",
                                    dir=database.parent)
        os.close(fd)
        try:
            with contextlib.closing(sqlite3.connect(name)) as connection:
                connection.execute("CREATE TABLE tried (x INTEGER)")
                connection.commit()
        finally:
            for path in (name, *(name + side for side in SQLITE_SIDE_FILES)):
                Path(path).unlink(missing_ok=True)
    finally:
        remove_empty_directories(made)


def artifact_root(tracking_uri: str) -> Path | None:
    """Where new experiments of a database store keep their artifacts, or None to let the store
    decide (a file store keeps them inside itself, a tracking server has its own root).

    With a database URI the MLflow client itself picks the artifact root: ``./mlruns`` of
    whatever directory the command ran in, so runs from two directories scatter their models and
    a run moved away from its working directory loses them. Instead: beside a SQLite file
    (``mlflow.db`` -> ``mlflow-artifacts/``), or for a database server under the project's
    ``RENEWAL_DATA_DIR``.
    """
    scheme = urlsplit(tracking_uri).scheme.split("+")[0]
    if scheme == "sqlite":
        from renewal.sqlite import sqlite_file

        database = sqlite_file(tracking_uri)  # a malformed URI: check_tracking reports it
        if database is None:
            return None
        path = database.expanduser().resolve()
        return path.with_name(path.stem + ARTIFACTS_SUFFIX)
    if scheme in SERVER_DATABASES:
        from renewal.settings import get_settings

        return (get_settings().data_dir / ("mlflow" + ARTIFACTS_SUFFIX)).resolve()
    return None


@dataclass(frozen=True)
class CreatedStore:
    """A SQLite store a run created, and what was there before it: what a failed run takes
    back (:func:`remove_created_store`)."""

    uri: str
    database: Path
    artifacts: Path
    artifacts_before: frozenset[str] | None  # names in ``artifacts``; None: it did not exist
    directories: tuple[Path, ...]  # the database's parents made for it, innermost first


def create_store(tracking_uri: str) -> CreatedStore | None:
    """Create a new database store's tables with :func:`artifact_root` as its default root;
    return what was created when it was a SQLite file (None for an existing store).

    The store's built-in ``Default`` experiment (id 0) gets its artifact location once, when the
    tables are created, from whichever client created them; the MLflow client uses ``./mlruns``
    of the working directory, so ``--experiment Default`` scattered artifacts into
    ``<cwd-of-the-first-command>/mlruns/0``. Created here, it is ``<artifact root>/0``. An
    existing store is left as it is (:func:`artifact_location_warning` tells). A creation that
    fails (SIGTERM during MLflow's migrations) removes its half-made store: it is of no use.
    """
    root = artifact_root(tracking_uri)
    if root is None:
        return None
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    database = _new_sqlite_file(tracking_uri)
    created = None if database is None else CreatedStore(
        tracking_uri, database, root,
        frozenset(p.name for p in root.iterdir()) if root.is_dir() else None,
        tuple(missing_directories(database.parent)))
    try:
        SqlAlchemyStore(tracking_uri, str(root))  # creates the tables and Default when new
    except BaseException:
        if created is not None:
            with contextlib.suppress(Exception):
                _remove_store(created)
        raise
    return created


def remove_created_store(store: CreatedStore, experiment: str, run_id: str | None,
                         model_name: str | None) -> bool:
    """Remove a store that a failed run created, unless it holds what that run did not put
    there; return whether it was removed.

    The run's own are: the Default experiment, ``experiment``, the run ``run_id`` and the
    registered model ``model_name`` with versions of that run only (none, once the
    registration was undone). Anything else (another experiment, run or model) means another
    process uses the store: it stays. The database file, the artifacts the run wrote (the whole
    directory when the store made it) and the directories made for the database go. Best
    effort, like undoing a registration: the failure that got here is the error to report.
    """
    try:
        if not _holds_only(store.uri, experiment, run_id, model_name):
            return False
        _remove_store(store)
    except Exception:
        return False
    return True


def _holds_only(uri: str, experiment: str, run_id: str | None, model_name: str | None) -> bool:
    """Whether the store at ``uri`` holds only what :func:`remove_created_store` calls the
    run's own."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiments = client.search_experiments(view_type=ViewType.ALL)
    if any(e.experiment_id != DEFAULT_EXPERIMENT_ID and e.name != experiment
           for e in experiments):
        return False
    runs = client.search_runs([e.experiment_id for e in experiments],
                              run_view_type=ViewType.ALL, max_results=2)
    if any(r.info.run_id != run_id for r in runs):
        return False
    if any(m.name != model_name for m in client.search_registered_models()):
        return False
    return all(v.run_id == run_id for v in client.search_model_versions())


def _remove_store(store: CreatedStore) -> None:
    """Delete a created store's files, once this process holds no connection to it."""
    _forget_engines(store.database)
    for side in ("", *SQLITE_SIDE_FILES):
        Path(f"{store.database}{side}").unlink(missing_ok=True)
    if store.artifacts_before is None:
        shutil.rmtree(store.artifacts, ignore_errors=True)
    elif store.artifacts.is_dir():
        for path in store.artifacts.iterdir():
            if path.name not in store.artifacts_before:
                shutil.rmtree(path, ignore_errors=True)
    remove_empty_directories(store.directories)


def _forget_engines(database: Path) -> None:
    """Close and drop MLflow's engines on ``database`` and the stores cached on them.

    MLflow keeps one engine per database URI for the life of the process, its connections
    open: after the file is removed they would write into the removed file, and a later run in
    this process (a notebook, a test) would log into nothing and report success. No public API
    does this, hence MLflow's internals; if they change, this fails and the store stays.
    """
    from mlflow.store.model_registry.sqlalchemy_store import (
        SqlAlchemyStore as RegistrySqlAlchemyStore,
    )
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from mlflow.tracking._model_registry.registry import ModelRegistryStoreRegistry
    from mlflow.tracking._tracking_service.registry import TrackingStoreRegistry

    from renewal.sqlite import sqlite_file

    for store_class in (SqlAlchemyStore, RegistrySqlAlchemyStore):
        with store_class._engine_map_lock:
            for uri in list(store_class._engine_map):
                path = sqlite_file(uri)
                if path is not None and path.resolve() == database:
                    store_class._engine_map.pop(uri).dispose()
    TrackingStoreRegistry._get_store_with_resolved_uri.cache_clear()
    ModelRegistryStoreRegistry._get_store_with_resolved_uri.cache_clear()


def artifact_location_warning(tracking_uri: str, experiment_id: str) -> str | None:
    """Why the run's artifacts will not sit beside the store, or None when they will.

    An experiment keeps the artifact location it was created with. MLflow's ``Default``
    experiment of a store created by another tool (``mlflow ui``, a notebook) points at
    ``./mlruns/0`` of the directory that tool ran in: a run there is fine, but its model is
    not where ``mlflow-artifacts/`` promises and moves with nothing.
    """
    root = artifact_root(tracking_uri)
    if root is None:
        return None
    from mlflow import MlflowClient

    found = MlflowClient(tracking_uri=tracking_uri).get_experiment(experiment_id)
    location = found.artifact_location or ""
    scheme = urlsplit(location).scheme
    if scheme not in ("", "file"):
        return None  # a remote root (s3://, ...) chosen on purpose
    path = Path(unquote(urlsplit(location).path) if scheme == "file" else location)
    if path.resolve().is_relative_to(root):
        return None
    return (f"MLflow experiment {found.name!r} keeps its artifacts (report, plots, the model) in "
            f"{location}, fixed when it was created, not beside the tracking store in {root}; "
            "use another --experiment (created in the right place) to keep them together")


def experiment_folder(name: str) -> str:
    """A file-system-safe folder name for an experiment (its artifacts' directory)."""
    folder = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()).strip("._") or "experiment"
    return folder[:100]


def _not_the_pickle_notice(record: logging.LogRecord) -> bool:
    """MLflow warns on every log_model that a Python object is pickled. Ours is a class of
    this package, loaded only from the project's own registry: the notice is noise."""
    return "CloudPickle" not in record.getMessage()


def quiet_mlflow_logs() -> None:
    """MLflow's INFO lines (creating tables, validating the input example) and its pickle
    notice drown the run's own report on the console; its warnings and errors stay."""
    mlflow_log = logging.getLogger("mlflow")
    if mlflow_log.getEffectiveLevel() < logging.WARNING:
        mlflow_log.setLevel(logging.WARNING)
    pyfunc_log = logging.getLogger("mlflow.pyfunc")
    if _not_the_pickle_notice not in pyfunc_log.filters:
        pyfunc_log.addFilter(_not_the_pickle_notice)


def configure(tracking_uri: str, experiment: str) -> str:
    """Point MLflow's tracking and registry at ``tracking_uri``; return the experiment id.

    A new experiment of a database store gets its artifact location from
    :func:`artifact_root`; an existing experiment keeps the location it was created with.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    quiet_mlflow_logs()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    root = artifact_root(tracking_uri)
    if found is None and root is not None:
        try:
            client.create_experiment(
                experiment, artifact_location=str(root / experiment_folder(experiment)))
        except MlflowException as exc:  # created meanwhile by another run: use that one
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
    return mlflow.set_experiment(experiment).experiment_id


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        text = str(value)
        # MLflow refuses longer values; cut visibly, never silently (report.json has it all).
        out[prefix] = text if len(text) <= PARAM_VALUE_MAX else text[:PARAM_VALUE_MAX - 1] + "…"


def flat_params(params: dict[str, Any]) -> dict[str, str]:
    """Nested config → MLflow params (``lightgbm.num_leaves`` = "15")."""
    out: dict[str, str] = {}
    _flatten("", params, out)
    return out


def segment_metric_names(segments: dict[str, dict]) -> dict[str, float]:
    """report.json's ``segments`` as MLflow metrics: ``segment.<key>.<model>.<metric>`` (and
    ``segment.<key>.n``, ``.observed_rate``), so runs compare per segment in the UI; ``<key>``
    is :func:`segment_keys`' key of the segment name."""
    metrics: dict[str, float] = {}
    for segment, key_part in segment_keys(segments).items():
        values = segments[segment]
        key = f"segment.{key_part}"
        metrics[f"{key}.n"] = values["n"]
        metrics[f"{key}.observed_rate"] = values["observed_rate"]
        for model, model_values in values["models"].items():
            for name, value in model_values.items():
                if value is not None and np.isfinite(value):
                    metrics[f"{key}.{model}.{name}"] = value
    return metrics


def segment_name_tags(segments: Iterable[str]) -> dict[str, str]:
    """``segment_name.<key>`` = the segment's name, for every segment: what a hashed key
    (``segment._1a2b3c4d``) stands for, in the MLflow UI and in ``renewal models compare``."""
    return {f"{SEGMENT_NAME_TAG}{key}": segment for segment, key in segment_keys(segments).items()}


def segment_keys(segments: Iterable[str]) -> dict[str, str]:
    """Each segment name → its part of an MLflow metric key, one key per segment.

    A name made of letters, digits, ``_ - /`` and spaces is its own key (keys stay what they
    were). Any other name is sanitised and gets ``_`` + the first 8 hex digits of its name's
    SHA-1: sanitising alone mapped "大客户" and "中小企业" both to ``_`` and one segment's
    metrics silently overwrote the other's. The hash depends on the name only, so a segment
    has the same key in every run.
    """
    keys = {name: name if metric_key(name) == name else _hashed_key(name)
            for name in dict.fromkeys(segments)}
    # Still a clash only when a plain name looks like another's hashed key: hash it too.
    counts = Counter(keys.values())
    return {name: _hashed_key(name) if counts[key] > 1 and key == name else key
            for name, key in keys.items()}


def metric_key(name: str) -> str:
    """A segment name as an MLflow metric key part (letters, digits, ``_ - /`` and spaces;
    ``//`` is refused by MLflow, which reads keys as paths)."""
    return re.sub(r"[^A-Za-z0-9_\- /]+|/{2,}", "_", name).strip() or "_"


def _hashed_key(name: str) -> str:
    readable = metric_key(name).strip("_ ")
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:SEGMENT_HASH_LENGTH]
    return f"{readable}_{digest}"


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
                      "features": json.dumps(scorer.feature_names),
                      # None when unknown (a model fitted on a given training set)
                      "feature_config": json.dumps(scorer.metadata.get("feature_config"))},
        )
    return info.model_uri
