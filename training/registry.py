"""MLflow model registry: register each trained model, and decide champion vs challenger.

The rule: a new model becomes ``champion`` only if it beats the current champion **on the same
test window** — a lower log loss, and lower beyond the window's noise: a paired bootstrap of the
test rows must be ``confidence`` sure of it (:func:`clearly_better`) — so the current champion
is re-scored on the new test rows (old reports are on old windows and not comparable).
Otherwise it gets ``challenger``. ``promote=True`` forces champion. Aliases, not the
deprecated stages.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from renewal.errors import RenewalError
from training.evaluate import model_metrics

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class Registration:
    """What happened to the new model in the registry, and why."""

    name: str
    version: str
    alias: str
    reason: str
    champion_version: str | None = None
    champion_metrics: dict[str, float] | None = None
    #: The paired bootstrap against the champion (:class:`Comparison`), when it was run.
    comparison: dict[str, float] | None = None
    #: The version ``alias`` pointed at before (None: unset); for :func:`undo_registration`.
    replaced_version: str | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "replaced_version"}


def beats(new: dict[str, float], old: dict[str, float], tolerance: float = 1e-9) -> bool:
    """Lower log loss wins; within ``tolerance`` it is a tie broken by strictly higher AUC."""
    if new["log_loss"] < old["log_loss"] - tolerance:
        return True
    if abs(new["log_loss"] - old["log_loss"]) <= tolerance:
        return new["auc"] > old["auc"] + tolerance
    return False


#: Resamples of the paired bootstrap: the interval's ends move by ~0.0002 nats between seeds.
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Comparison:
    """The new model's log loss minus the champion's on the same test rows, with the paired
    bootstrap's one-sided bound: below 0 at ``confidence`` means clearly better."""

    difference: float
    upper_bound: float
    confidence: float

    @property
    def clearly_better(self) -> bool:
        return self.upper_bound < 0

    def words(self) -> str:
        return (f"difference {self.difference:+.4f}, {self.confidence:.0%} sure it is below "
                f"{self.upper_bound:+.4f}")

    def as_dict(self) -> dict[str, float]:
        return {"log_loss_difference": self.difference, "upper_bound": self.upper_bound,
                "confidence": self.confidence}


def clearly_better(renewed: np.ndarray, new: np.ndarray, old: np.ndarray,
                   confidence: float, clusters: np.ndarray | None = None,
                   seed: int = 0) -> Comparison:
    """Paired bootstrap of the per-row log-loss difference (new - old) over the test rows.

    Found by audit: two models differing only in their seed took the champion from each other
    on differences of 0.0025 nats, inside the window's noise (their seeds spread 0.0011 sd),
    and the one promoted was the further from the simulator's true probabilities. Rows are
    resampled together for both models, so what they share (an easy or hard window) cancels.
    ``clusters`` (one label per row, e.g. the account): rows of one cluster are resampled
    together. An account's rows (several contracts, several horizons of one contract with one
    label) are not independent; resampled one by one they made the bound too tight, and
    noise won 15 of 60 times with three horizons (found by review)."""
    from training.evaluate import LOG_LOSS_EPS

    y = np.asarray(renewed, dtype=float)

    def row_loss(p: np.ndarray) -> np.ndarray:
        q = np.clip(np.asarray(p, dtype=float), LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
        return -(y * np.log(q) + (1 - y) * np.log(1 - q))

    diff = row_loss(new) - row_loss(old)
    if clusters is None:
        sums, sizes = diff, np.ones_like(diff)
    else:
        codes, _ = pd.factorize(pd.Series(clusters))
        sums = np.bincount(codes, weights=diff)
        sizes = np.bincount(codes).astype(float)
    rng = np.random.default_rng(seed)
    n = len(sums)
    # Resamples per block: at most 2 M indices (and their gathered values) at a time, ~32 MB.
    block = max(1, min(100, 2_000_000 // max(n, 1)))
    means: list[np.ndarray] = []
    while sum(len(m) for m in means) < BOOTSTRAP_RESAMPLES:
        draws = rng.integers(0, n, size=(block, n))
        means.append(sums[draws].sum(axis=1) / sizes[draws].sum(axis=1))
    bound = np.quantile(np.concatenate(means)[:BOOTSTRAP_RESAMPLES], confidence)
    return Comparison(float(diff.mean()), float(bound), confidence)


def beats_heuristic(new: dict[str, float], heuristic: dict[str, float]) -> bool:
    """Lower log loss **and** lower Brier score than the activity heuristic.

    Log loss alone is no gate against this rule: it says exactly 0 % for every inactive
    account (and 100 % once the fitted factor reaches 1 / activity), and one such account
    that renews anyway costs it ~7 nats after clipping, so almost any model "beats" it. The
    Brier score weighs that miss as 1, and asks the model to be better where the rule is right
    too (the training issue's goal: better than the heuristic on log loss and Brier)."""
    return (new["log_loss"] < heuristic["log_loss"]) and (new["brier"] < heuristic["brier"])


# What MLflow answers when the model or the alias does not exist (yet): nothing else means that.
NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def current_champion(client: Any, name: str) -> Any | None:
    """The model version holding the champion alias, or None when there is none yet.

    Any other failure (store unreachable, permission denied) is raised: taken for "no champion"
    it used to make the new model champion without comparing it to the one it replaced.
    """
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as exc:
        if exc.error_code in NOT_FOUND:
            return None
        raise


def fitted_on_test_window(champion: Any, test_window: str | None) -> str | None:
    """Why re-scoring ``champion`` on ``test_window`` would flatter it, or None when it is fair.

    A model is fitted (trees, early stopping, calibrator) on contracts ending before its own
    test window. When the new test window starts earlier (a longer ``test_months``, an earlier
    ``test_start``, older data), the champion has seen some of the new test outcomes: its log
    loss there is in-sample, and the comparison would keep it for the wrong reason.
    """
    champion_window = (getattr(champion, "tags", None) or {}).get("test_window")
    if not champion_window or not test_window:
        return None
    champion_start, new_start = champion_window.split("..")[0], test_window.split("..")[0]
    if new_start >= champion_start:  # ISO dates compare as text
        return None
    return (f"it was fitted on contracts ending before {champion_start}, inside this test window "
            f"({test_window})")


def champion_metrics_on(
    name: str, version: Any, test_features: pd.DataFrame, renewed: np.ndarray
) -> tuple[dict[str, float], np.ndarray]:
    """Load the current champion and score it on the new test rows: metrics, probabilities."""
    import mlflow.pyfunc

    try:
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version.version}")
        output = model.predict(test_features)
    except Exception as exc:  # an unloadable champion must not block training: report it
        raise RenewalError(
            f"the current champion {name} v{version.version} cannot score the new test window: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}; use --promote to replace it"
        ) from exc
    probabilities = output["probability"].to_numpy(dtype=float)
    return model_metrics(renewed, probabilities, f"champion v{version.version}"), probabilities


def register_model(
    model_uri: str,
    new_metrics: dict[str, float],
    test_features: pd.DataFrame,
    renewed: np.ndarray,
    name: str = "renewal",
    promote: bool = False,
    tags: dict[str, str] | None = None,
    heuristic_metrics: dict[str, float] | None = None,
    new_probabilities: np.ndarray | None = None,
    confidence: float = 0.95,
    clusters: np.ndarray | None = None,
) -> Registration:
    """Register ``model_uri`` under ``name`` and set champion or challenger by the rule.

    A model that does not beat the activity heuristic on its own test window (log loss and
    Brier, :func:`beats_heuristic`) is never promoted automatically, not even as the first
    version: serving it would be worse than the rule of thumb it is meant to replace.
    ``new_probabilities``: the new model's on the test rows, for :func:`clearly_better` at
    ``confidence``, resampling the rows by ``clusters`` (their accounts); None: the point
    comparison alone, :func:`beats`.
    """
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    champion = current_champion(client, name)
    old_metrics = None
    comparison: Comparison | None = None
    if promote:
        alias, reason = CHAMPION, "forced by --promote"
    elif heuristic_metrics is not None and not beats_heuristic(new_metrics, heuristic_metrics):
        alias = CHALLENGER
        reason = (f"does not beat the activity heuristic on this test window: log loss "
                  f"{new_metrics['log_loss']:.4f} vs {heuristic_metrics['log_loss']:.4f}, "
                  f"Brier {new_metrics['brier']:.4f} vs {heuristic_metrics['brier']:.4f}")
    elif champion is None:
        alias, reason = CHAMPION, "no champion yet"
    elif (overlap := fitted_on_test_window(champion, (tags or {}).get("test_window"))):
        alias = CHALLENGER
        reason = (f"not comparable with champion v{champion.version}: {overlap}; "
                  "use --promote to replace it")
    else:
        old_metrics, old_probabilities = champion_metrics_on(name, champion, test_features,
                                                             renewed)
        figures = (f"log loss {new_metrics['log_loss']:.4f} vs {old_metrics['log_loss']:.4f}, "
                   f"AUC {new_metrics['auc']:.4f} vs {old_metrics['auc']:.4f}")
        if new_probabilities is not None:
            comparison = clearly_better(renewed, new_probabilities, old_probabilities,
                                        confidence, clusters)
            figures += f" ({comparison.words()})"
        if not beats(new_metrics, old_metrics):
            alias = CHALLENGER
            reason = f"does not beat champion v{champion.version} on this test window: {figures}"
        elif comparison is not None and not comparison.clearly_better:
            alias = CHALLENGER
            reason = (f"not clearly better than champion v{champion.version} on this test "
                      f"window: {figures}; use --promote to replace it")
        else:
            alias = CHAMPION
            reason = f"beats champion v{champion.version} on this test window: {figures}"
    replaced = champion if alias == CHAMPION else _alias_version(client, name, alias)
    version = mlflow.register_model(model_uri, name, tags=tags or None)
    registration = Registration(
        name=name, version=str(version.version), alias=alias, reason=reason,
        champion_version=str(champion.version) if champion is not None else None,
        champion_metrics=old_metrics,
        comparison=comparison.as_dict() if comparison is not None else None,
        replaced_version=str(replaced.version) if replaced is not None else None,
    )
    # The caller can only undo a registration it got back: one failing in here (a tag write,
    # the store gone, SIGTERM) undoes itself. The alias moves last, once the version is
    # complete, so the service never sees a version without its reason.
    try:
        client.set_model_version_tag(name, registration.version, "alias_reason", reason)
        if alias == CHAMPION and champion is not None:  # what `renewal models rollback` returns to
            client.set_model_version_tag(name, registration.version, f"previous_{CHAMPION}",
                                         str(champion.version))
        client.set_registered_model_alias(name, alias, registration.version)
    except BaseException:
        undo_registration(registration)
        raise
    return registration


def _alias_version(client: Any, name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in NOT_FOUND:
            return None
        raise


def undo_registration(registration: Registration) -> None:
    """Put the alias back where it was (or remove it) and delete the new version: the run
    that registered it failed, in :func:`register_model` or afterwards (its report never
    reached --out, the run is marked FAILED), and the service must not start serving a model
    from a failed run. Putting back an alias that had not moved yet changes nothing. Best
    effort: the failure that got us here (a store gone, SIGTERM) is the error to report, not
    one of these calls."""
    from mlflow import MlflowClient

    client = MlflowClient()
    name, alias = registration.name, registration.alias
    steps = [
        (lambda: client.set_registered_model_alias(name, alias, registration.replaced_version))
        if registration.replaced_version is not None
        else (lambda: client.delete_registered_model_alias(name, alias)),
        lambda: client.delete_model_version(name, registration.version),
    ]
    for step in steps:
        with contextlib.suppress(Exception):  # best effort, see the docstring
            step()
