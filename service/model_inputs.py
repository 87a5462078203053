"""Whether the data gives every input the model was trained with, computed the same way.

A vector lacks a feature when its source is absent: an optional table (tickets, surveys,
health inputs, ...) missing from the data directory, or usage without ``site_id``. The model
then sees that feature as missing for every account and LightGBM sends each of them down its
default branch, so scores move against a run with the table (in one check, 17 of 253 accounts
changed risk tier) while nothing looks wrong. Scoring goes on, since a customer may well stop
exporting a table, but the commands say which inputs are gone so that nobody compares such
scores with earlier ones unaware.

The same holds for the feature thresholds: a model trained with ``active_share = 0.6`` and
served vectors computed with 0.4 sees many days a tier higher than it learned them. Training
records its thresholds in the model (``metadata["feature_config"]``); scoring compares its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: Feature names listed per source before "and N more".
SHOWN_PER_SOURCE = 3


def missing_inputs(model_features: Iterable[str], columns: Iterable[str]) -> dict[str, list[str]]:
    """The model's features absent from ``columns``, grouped by the registry table they come
    from (in model order); empty when the data gives every input."""
    from features.registry import FEATURES

    table_of = {f.name: f.table for f in FEATURES}
    present = set(columns)
    missing: dict[str, list[str]] = {}
    for name in model_features:
        if name not in present:
            missing.setdefault(table_of.get(name, "unknown source"), []).append(name)
    return missing


def missing_inputs_warning(model_features: Iterable[str], columns: Iterable[str]) -> str | None:
    """A sentence for people when the vectors lack inputs of the model, else None."""
    missing = missing_inputs(model_features, columns)
    if not missing:
        return None
    total = sum(len(names) for names in missing.values())
    parts = []
    for table, names in missing.items():
        shown = ", ".join(names[:SHOWN_PER_SOURCE])
        more = len(names) - SHOWN_PER_SOURCE
        parts.append(f"from {table}: {shown}" + (f" and {more} more" if more > 0 else ""))
    return (
        f"the model was trained with {total} input(s) this data does not give, so they are "
        f"missing for every account and the scores differ from scores with them ("
        + "; ".join(parts)
        + "); add the missing data, or train a model on data without it"
    )


def judgement_features() -> list[str]:
    """The features made of the CSM's manual health inputs (registry table ``health_inputs``)."""
    from features.registry import FEATURES

    return [f.name for f in FEATURES if f.table == "health_inputs"]


def reads_judgement(model_features: Iterable[str]) -> bool:
    """Whether a model with these inputs reads any of the CSM's manual health inputs."""
    return bool(set(model_features) & set(judgement_features()))


def unread_judgement_warning(
    model_features: Iterable[str], columns: Iterable[str]
) -> str | None:
    """A sentence when the vectors carry the CSM's manual health inputs but the model reads
    none of them, else None.

    A model trained on a data directory without a ``health_inputs`` table never learned the
    CSM's judgement: inputs recorded later (through the API or the ops page) change nothing
    in its scores, while the responses still show them as fresh. Found by audit: a CSM score
    of 1 left the probability at 0.8964."""
    judgement = judgement_features()
    present = set(columns)
    if not any(name in present for name in judgement) or reads_judgement(model_features):
        return None
    return (
        "the CSM's manual health inputs are in the data, but the model was trained without "
        "them and reads none (" + ", ".join(judgement[:SHOWN_PER_SOURCE]) + "): inputs from "
        "the data directory or recorded through the API do not change its scores; train a "
        "model on data with a health_inputs table"
    )


def feature_config_warning(trained: Mapping[str, Any] | None, current: Any) -> str | None:
    """A sentence for people when ``current`` (a ``FeatureConfig``) computes features with
    other thresholds than the model was trained with (``trained``, its recorded dump); None
    when they agree or the model did not record them (trained before they were recorded)."""
    if not trained:
        return None
    now = current.model_dump(mode="json")
    # Keys only one side knows come from another release of the code, not from a choice.
    changed = [key for key in sorted(trained) if key in now and trained[key] != now[key]]
    if not changed:
        return None
    shown = "; ".join(f"{key} {trained[key]!r} when trained, {now[key]!r} now"
                      for key in changed[:SHOWN_PER_SOURCE])
    more = len(changed) - SHOWN_PER_SOURCE
    return (
        "the features are computed with other thresholds than the model was trained with ("
        + shown + (f"; and {more} more" if more > 0 else "")
        + "), so the scores read them wrongly; score with the training's feature config "
        "(RENEWAL_FEATURE_CONFIG), or train a model with this one"
    )


def model_input_warnings(
    model_features: Iterable[str], columns: Iterable[str],
    trained_config: Mapping[str, Any] | None, current_config: Any,
) -> list[str]:
    """Every sentence above that applies, for a scoring run (in process or on Spark)."""
    model_features, columns = list(model_features), list(columns)
    said = [missing_inputs_warning(model_features, columns),
            unread_judgement_warning(model_features, columns),
            feature_config_warning(trained_config, current_config)]
    return [sentence for sentence in said if sentence]
