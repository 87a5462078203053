"""Look after registered versions by hand: list them, move an alias (promote, roll back) and
compare two runs, with errors that name what does not exist and what does.

Training decides champion vs challenger by itself (:mod:`training.registry`); these are the
data scientist's overrides. Every move of an alias (by training, ``promote`` or ``rollback``)
records the version it replaced as the new holder's ``previous_<alias>`` tag, which is what
``rollback`` goes back to: rolling back twice returns to where it started, so a mistaken
rollback is undone by another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from renewal.errors import ConfigError, RenewalError
from training.registry import CHALLENGER, CHAMPION, NOT_FOUND
from training.tracking import SEGMENT_NAME_TAG, mask_uri, mlflow_error, quiet_mlflow_logs

PREVIOUS_TAG = "previous_{alias}"
#: Run metrics shown side by side by ``compare`` (all metrics are in the JSON output).
HEADLINE_METRICS = tuple(f"{model}.{metric}" for model in ("lightgbm", "logistic", "heuristic")
                         for metric in ("auc", "log_loss", "brier", "ece"))


@dataclass(frozen=True)
class AliasMove:
    """One alias moved from one version (or none) to another."""

    name: str
    alias: str
    version: str
    previous_version: str | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def registry_client(tracking_uri: str) -> Any:
    """An MlflowClient for an existing store: a SQLite file that does not exist is refused
    (MLflow would create an empty store there, and a typo would pass for "no versions")."""
    from mlflow import MlflowClient

    from renewal.sqlite import sqlite_file

    database = sqlite_file(tracking_uri)
    if database is not None and not database.expanduser().exists():
        raise ConfigError(f"no MLflow store at {mask_uri(tracking_uri)}: {database} does not "
                          "exist (check --tracking-uri / RENEWAL_TRACKING_URI)")
    quiet_mlflow_logs()
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _call(action: str, tracking_uri: str, fn: Any, *args: Any) -> Any:
    """``fn(*args)``, with any MLflow or connection failure as a readable RenewalError."""
    try:
        return fn(*args)
    except RenewalError:
        raise
    except Exception as exc:
        raise mlflow_error(action, tracking_uri, exc) from exc


def _versions(client: Any, tracking_uri: str, name: str) -> list[Any]:
    """Every version of ``name``, oldest first; refused when the model is not registered."""
    versions = _call("listing model versions", tracking_uri, client.search_model_versions,
                     f"name = '{name}'")
    if not versions:
        raise RenewalError(f"no registered model {name!r} at {mask_uri(tracking_uri)}: train "
                           "one with `renewal train` (or set RENEWAL_MODEL_NAME)")
    return sorted(versions, key=lambda v: int(v.version))


def list_versions(tracking_uri: str, name: str) -> list[dict[str, Any]]:
    """Each version with its aliases, run, test window, test metrics and why it got its alias."""
    client = registry_client(tracking_uri)
    versions = _versions(client, tracking_uri, name)
    # search_model_versions leaves a version's aliases out: the registered model has them all.
    holders = _call("reading aliases", tracking_uri, client.get_registered_model, name).aliases
    aliases: dict[str, list[str]] = {}
    for alias, version in (holders or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    rows = []
    for v in versions:
        metrics: dict[str, float] = {}
        if v.run_id:
            try:
                metrics = client.get_run(v.run_id).data.metrics
            except Exception:  # a deleted run: the version still lists
                metrics = {}
        rows.append({
            "version": str(v.version), "aliases": sorted(aliases.get(str(v.version), [])),
            "run_id": v.run_id,
            "created": v.creation_timestamp, "created_at": _iso_utc(v.creation_timestamp),
            "test_window": (v.tags or {}).get("test_window"),
            "log_loss": metrics.get("lightgbm.log_loss"), "auc": metrics.get("lightgbm.auc"),
            "alias_reason": (v.tags or {}).get("alias_reason"),
        })
    return rows


def _iso_utc(epoch_ms: int | None) -> str | None:
    """MLflow's creation time (epoch milliseconds) as ISO 8601 UTC, which people and
    spreadsheets read."""
    if epoch_ms is None:
        return None
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="seconds")


def _check_version(versions: list[Any], name: str, version: str) -> str:
    known = [str(v.version) for v in versions]
    wanted = str(version).removeprefix("v")
    if wanted not in known:
        raise RenewalError(f"model {name!r} has no version {version!r}; its versions: "
                           f"{', '.join(known)}")
    return wanted


def alias_holder(client: Any, tracking_uri: str, name: str, alias: str) -> str | None:
    """The version ``alias`` points at, or None when it is not set."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in NOT_FOUND:
            return None
        raise mlflow_error(f"reading alias {alias!r}", tracking_uri, exc) from exc
    except Exception as exc:
        raise mlflow_error(f"reading alias {alias!r}", tracking_uri, exc) from exc


def move_alias(tracking_uri: str, name: str, version: str, alias: str = CHAMPION,
               reason: str = "set by hand") -> AliasMove:
    """Point ``alias`` at ``version`` and record the version it replaced."""
    if not alias.strip():
        raise ConfigError("the alias must not be blank")
    client = registry_client(tracking_uri)
    versions = _versions(client, tracking_uri, name)
    version = _check_version(versions, name, version)
    return _move(client, tracking_uri, versions, version, alias, reason)


def rollback(tracking_uri: str, name: str, alias: str = CHAMPION) -> AliasMove:
    """Undo the last move of ``alias``: point it back at the version it replaced.

    A rollback is a move like any other: the version it leaves becomes the new holder's
    ``previous_<alias>``, so a second rollback undoes a mistaken first one (it toggles, it does
    not walk further back: for an older version, ``promote`` it).
    """
    client = registry_client(tracking_uri)
    versions = _versions(client, tracking_uri, name)
    current = alias_holder(client, tracking_uri, name, alias)
    if current is None:
        raise RenewalError(f"model {name!r} has no alias {alias!r} to roll back; set one with "
                           f"`renewal models promote VERSION --alias {alias}`")
    holder = next(v for v in versions if str(v.version) == current)
    previous = (holder.tags or {}).get(PREVIOUS_TAG.format(alias=alias))
    if previous is None:
        raise RenewalError(f"{name} v{current} holds {alias!r} but no earlier holder is recorded; "
                           f"choose one with `renewal models promote VERSION --alias {alias}` "
                           f"(versions: {', '.join(str(v.version) for v in versions)})")
    if previous not in {str(v.version) for v in versions}:
        raise RenewalError(f"{name} v{previous}, which held {alias!r} before v{current}, no "
                           "longer exists; choose another with `renewal models promote`")
    return _move(client, tracking_uri, versions, previous, alias, f"rolled back from v{current}")


def _move(client: Any, tracking_uri: str, versions: list[Any], version: str, alias: str,
          reason: str) -> AliasMove:
    """Point ``alias`` at ``version`` (one of ``versions``), recording the version it replaces
    as ``version``'s ``previous_<alias>`` tag. The tags are written first and the alias moved
    last: a failure in between leaves the alias where it was, never moved without its record.
    """
    name = versions[0].name
    previous = alias_holder(client, tracking_uri, name, alias)
    if previous == version:
        return AliasMove(name, alias, version, previous)
    tag = PREVIOUS_TAG.format(alias=alias)
    if previous is not None:
        _call("tagging the version", tracking_uri, client.set_model_version_tag, name, version,
              tag, previous)
    elif tag in (next(v for v in versions if str(v.version) == version).tags or {}):
        # left from an earlier time it held the alias: a rollback must not return there
        _call("tagging the version", tracking_uri, client.delete_model_version_tag, name,
              version, tag)
    if alias == CHAMPION:
        _call("tagging the version", tracking_uri, client.set_model_version_tag, name, version,
              "alias_reason", reason)
    _call(f"setting alias {alias!r}", tracking_uri, client.set_registered_model_alias, name,
          alias, version)
    if alias == CHAMPION and alias_holder(client, tracking_uri, name, CHALLENGER) == version:
        # the challenger won: it is no longer one (the alias would point at the champion)
        _call("removing alias 'challenger'", tracking_uri, client.delete_registered_model_alias,
              name, CHALLENGER)
    return AliasMove(name, alias, version, previous)


def _run(client: Any, tracking_uri: str, run_id: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code in NOT_FOUND:
            raise RenewalError(f"no MLflow run {run_id!r} at {mask_uri(tracking_uri)} (run ids "
                               "are printed by `renewal train` and in report.json's "
                               "mlflow.run_id)") from exc
        raise mlflow_error(f"reading run {run_id!r}", tracking_uri, exc) from exc
    except Exception as exc:
        raise mlflow_error(f"reading run {run_id!r}", tracking_uri, exc) from exc


def compare_runs(tracking_uri: str, run_a: str, run_b: str) -> dict[str, Any]:
    """Two runs side by side: every metric, and the params that differ (the feature list as
    features added and removed)."""
    client = registry_client(tracking_uri)
    a, b = _run(client, tracking_uri, run_a), _run(client, tracking_uri, run_b)
    names = sorted(set(a.data.metrics) | set(b.data.metrics))
    metrics = {k: {"a": a.data.metrics.get(k), "b": b.data.metrics.get(k)} for k in names}
    params = {k: {"a": a.data.params.get(k), "b": b.data.params.get(k)}
              for k in sorted(set(a.data.params) | set(b.data.params))
              if a.data.params.get(k) != b.data.params.get(k) and k != "features"}
    features_a = _features(a.data.params.get("features"))
    features_b = _features(b.data.params.get("features"))
    return {
        "a": {"run_id": a.info.run_id, "test_window": a.data.tags.get("test_window")},
        "b": {"run_id": b.info.run_id, "test_window": b.data.tags.get("test_window")},
        "same_test_window": a.data.tags.get("test_window") == b.data.tags.get("test_window"),
        "metrics": metrics,
        # segment.<key>.* metrics: which segment each key stands for (keys of names outside
        # letters, digits, `_ - /` and spaces carry a hash of the name)
        "segment_names": {tag.removeprefix(SEGMENT_NAME_TAG): value for run in (a, b)
                          for tag, value in sorted(run.data.tags.items())
                          if tag.startswith(SEGMENT_NAME_TAG)},
        "params_differing": params,
        "features_only_in_a": sorted(set(features_a) - set(features_b)),
        "features_only_in_b": sorted(set(features_b) - set(features_a)),
    }


def _features(value: str | None) -> list[str]:
    try:
        return list(json.loads(value)) if value else []
    except (ValueError, TypeError):
        return []
