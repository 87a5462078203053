"""Lever what-if: the probability before and after each lever a CSM can pull, and combined.

Levers come from :data:`features.levers.LEVERS` (declared as data); this module applies them
to the account's latest stored feature vector and scores every scenario in one call to the
served model. Only the features a lever declares ever change. A lever is reported
``guaranteed_non_decreasing`` when the served model's monotone constraints prove it cannot
lower the probability: every feature it changes is constrained and moves in the safe
direction, from a known (non-missing) value.

Each lever also says why it may not move the probability, so the page never guesses:
``out_of_reach`` (the account can no longer get what it promises: ``complete_activation``
after the activation window closed, when it changes nothing), ``model_reads`` (its declared
features the served model reads; none: it cannot move p) and ``unchanged`` (the features it
left as they are, in words: the account is already at or beyond the lever's value, e.g. seat
utilisation 45 % for a target of 30 %). These are extra keys of the workflow's result; the
API's ``LeverScenario`` schema does not list them yet, so the page reads them in-process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from features.levers import Lever, get_lever
from features.registry import describe
from renewal.errors import RenewalError
from service.model_store import LoadedModel
from service.workflows.encode import matrix
from training.scorer import describe_value

MIN_DRIVER_MOVE = 0.0005  # probability points below which a contribution "did not move"


class LeverError(RenewalError):
    """A lever request cannot be applied; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class LeverRequest:
    name: str
    value: bool | float | None = None


def resolve(requests: list[LeverRequest]) -> list[tuple[Lever, float | None]]:
    """Each requested lever with its checked numeric value (None for on/off levers)."""
    seen: set[str] = set()
    out: list[tuple[Lever, float | None]] = []
    for i, request in enumerate(requests):
        field = f"body.levers[{i}]"
        try:
            lever = get_lever(request.name)
        except KeyError as exc:
            raise LeverError(f"{field}.name", str(exc.args[0])) from None
        if lever.name in seen:
            raise LeverError(f"{field}.name", f"lever {lever.name!r} is given twice")
        seen.add(lever.name)
        spec, value = lever.value, request.value
        if spec.kind == "none":
            if value is not None and value is not True:  # 1 == True, yet not "on"
                raise LeverError(f"{field}.value", f"lever {lever.name!r} takes no value (or true)")
            out.append((lever, None))
            continue
        if value is None:
            if spec.default is None:
                raise LeverError(
                    f"{field}.value", f"lever {lever.name!r} needs a value: {spec.description}"
                )
            value = spec.default
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise LeverError(f"{field}.value", f"lever {lever.name!r} needs a number")
        if not spec.minimum <= float(value) <= spec.maximum:
            raise LeverError(
                f"{field}.value",
                f"lever {lever.name!r}: value must be between {spec.minimum} and {spec.maximum}",
            )
        out.append((lever, float(value)))
    return out


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, str):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def changed_features(
    before: dict[str, Any], after: dict[str, Any], model_features: set[str]
) -> list[dict[str, Any]]:
    """Features whose value differs, with both values and whether the model reads them."""
    out = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new or (_number(old) is not None and _number(old) == _number(new)):
            continue
        out.append({"feature": name, "before": old, "after": new,
                    "used_by_model": name in model_features})
    return out


def guaranteed(model: LoadedModel, changes: list[dict[str, Any]]) -> bool:
    """True when the model's monotone constraints prove these changes cannot lower p."""
    specs = {s.name: s for s in model.scorer.features}
    for change in changes:
        spec = specs.get(change["feature"])
        if spec is None:
            continue  # the model does not read it: it cannot move p
        old, new = _number(change["before"]), _number(change["after"])
        if old is None or new is None:
            return False  # from or to missing: no constraint covers it
        step = new - old
        if (step > 0 and spec.monotone != 1) or (step < 0 and spec.monotone != -1):
            return False
    return True


def why_no_change(model: LoadedModel, lever: Lever, value: float | None, base: dict[str, Any],
                  changes: list[dict[str, Any]]) -> dict[str, Any]:
    """What the page needs to say why a lever moves nothing: out of reach, not read by the
    model, or already there (the declared features it left as they are, in words)."""
    specs = {spec.name: spec for spec in model.scorer.features}
    changed = {c["feature"] for c in changes}
    unchanged = []
    for name in lever.features:
        if name in changed:
            continue
        current = base.get(name)
        spec = specs.get(name)
        words = describe_value(spec, current) if spec is not None else describe(name, current)
        unchanged.append({"feature": name, "value": current, "description": words,
                          "used_by_model": spec is not None})
    return {
        "out_of_reach": lever.out_of_reach(base),
        "model_reads": [name for name in lever.features if name in specs],
        "unchanged": unchanged,
        "target": value if lever.target_is_value else None,
    }


def what_if(
    model: LoadedModel, vector: dict[str, Any], requests: list[LeverRequest], max_drivers: int = 10
) -> dict[str, Any]:
    """Score the vector as it is, with each lever alone, and with all levers together."""
    levers = resolve(requests)
    base = dict(vector)
    singles = []
    combined = dict(base)
    for lever, value in levers:
        single = dict(base)
        single.update(lever.apply(base, value))  # nothing when out of reach
        singles.append(single)
        if lever.out_of_reach(base) is None:
            combined.update(lever.apply(combined, value))
    scenarios = [base, *singles, combined]
    scorer = model.scorer
    X = matrix(scorer, scenarios)
    contributions, probabilities = scorer.contributions(X)
    names = set(scorer.feature_names)
    p0 = float(probabilities[0])

    def scenario(index: int, vector_after: dict[str, Any]) -> dict[str, Any]:
        changes = changed_features(base, vector_after, names)
        p = float(probabilities[index])
        return {
            "probability_after": round(p, 4),
            "change_points": round(100 * (p - p0), 2),
            "changed_features": changes,
            "guaranteed_non_decreasing": guaranteed(model, changes),
        }

    per_lever = []
    for i, ((lever, value), single) in enumerate(zip(levers, singles, strict=True), start=1):
        item = scenario(i, single)
        item.update(name=lever.name, value=value, declared_features=list(lever.features))
        item["applies"] = any(c["used_by_model"] for c in item["changed_features"])
        item.update(why_no_change(model, lever, value, base, item["changed_features"]))
        per_lever.append(item)
    last = len(scenarios) - 1
    moved = []
    delta = contributions[last] - contributions[0]
    for j in np.argsort(-np.abs(delta), kind="stable"):
        if abs(delta[j]) < MIN_DRIVER_MOVE or len(moved) >= max_drivers:
            break
        spec = scorer.features[j]
        moved.append({
            "feature": spec.name,
            "description_before": describe_value(spec, scorer.decode(spec, X[0, j])),
            "description_after": describe_value(spec, scorer.decode(spec, X[last, j])),
            "contribution_before": round(float(contributions[0, j]), 6),
            "contribution_after": round(float(contributions[last, j]), 6),
            "change_points": round(100 * float(delta[j]), 2),
        })
    return {
        "probability_before": round(p0, 4),
        "levers": per_lever,
        "combined": scenario(last, combined),
        "drivers_moved": moved,
    }
