"""Registry, generated docs and config loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.config import FeatureConfig, load_feature_config
from features.docs import DOCS_PATH, render_feature_docs
from features.registry import FEATURES, describe, get_feature, model_features
from renewal.errors import ConfigError

DEFAULT_TOML = Path(__file__).resolve().parents[2] / "features" / "default_config.toml"


def test_committed_docs_equal_the_generated_text():
    assert DOCS_PATH.read_text(encoding="utf-8") == render_feature_docs(), (
        "docs/features.md is stale: run `python -m features.docs`"
    )


def test_documented_default_config_equals_the_code_defaults():
    assert load_feature_config(DEFAULT_TOML) == FeatureConfig()
    assert load_feature_config(None) == FeatureConfig()


def test_unknown_key_names_the_key(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[features]\nactive_share = 0.5\nweekly_activ_days = 2\n")
    with pytest.raises(ConfigError, match="weekly_activ_days"):
        load_feature_config(path)


def test_invalid_value_names_the_key(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('monthly_rule = "weeks"\n')
    with pytest.raises(ConfigError, match="monthly_rule"):
        load_feature_config(path)


@pytest.mark.parametrize("line", [
    "activation_window_days_small = true",       # would be read as a 1-day window
    "monthly_active_days = false",
    "active_share = true",
    "activation_window_by_segment = {SMB = true}",
])
def test_true_or_false_is_not_a_number(tmp_path, line):
    path = tmp_path / "c.toml"
    path.write_text(line + "\n")
    with pytest.raises(ConfigError, match=line.split(" ")[0] + ".*true/false"):
        load_feature_config(path)


def test_config_overrides_and_segment_window(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("holidays = [2024-12-25]\n[activation_window_by_segment]\nENT = 60\n")
    config = load_feature_config(path)
    assert config.window_for(500, "ENT") == 60 and config.window_for(50, None) == 30
    assert config.window_for(51, "SMB") == 45


def test_registry_names_are_unique_and_described():
    names = [f.name for f in FEATURES]
    assert len(names) == len(set(names))
    for feature in FEATURES:
        assert feature.definition and feature.table
        assert not (feature.certain and feature.risk is None)


def test_model_features_keep_registry_order():
    assert model_features(["csm_score", "account_id", "active_days_30d"]) == [
        "active_days_30d", "csm_score"]


def test_describe_renders_words():
    assert describe("active_days_30d", 3.0) == "3 active days in the last 30 days"
    assert describe("activated", False) == "not activated within its window"
    assert describe("logins_change_30d", -0.25) == "logins changed -25% vs the 30 days before"
    assert describe("csm_score", None) == "csm score: unknown"
    with pytest.raises(KeyError, match="nope"):
        get_feature("nope")


def test_a_late_activation_reads_without_contradiction():
    """The audit: drivers said "activated 167 days after signing" next to "past its
    activation window and not activated". The flags are about activation WITHIN the window
    (domain §2), and their words must say so; every word of a late activator stays true."""
    late = {"activated": False, "past_window_not_activated": True, "days_to_activation": 167.0}
    words = {name: describe(name, value) for name, value in late.items()}
    assert words["days_to_activation"] == "activated 167 days after signing"
    assert words["past_window_not_activated"] == (
        "past its activation window and not activated within it")
    assert words["activated"] == "not activated within its window"
    for name in ("activated", "past_window_not_activated"):
        phrase = words[name]
        assert "not activated" not in phrase or "within" in phrase.split("not activated")[1]
    # The false case covers "still inside the window" and "activated within it".
    assert describe("past_window_not_activated", False) == (
        "still inside its activation window, or activated within it")


@pytest.mark.parametrize("grain", ["user", "account"])
def test_the_pipeline_gives_only_values_inside_each_declared_range(tmp_path, grain):
    """The API refuses a what-if value outside a feature's range, so the ranges must hold for
    every vector valid data gives: young accounts (a few days old), drops to nothing (-100 %)
    and the full windows, with and without sites."""
    from datetime import date

    import pandas as pd

    from features.registry import VALUE_RANGES
    from features.source import open_source
    from features.vectors import features_as_of
    from renewal.simulator import simulate

    simulate(tmp_path / "d", accounts=120, seed=3, start=date(2024, 1, 1), months=14,
             grain=grain)
    source = open_source(tmp_path / "d")
    checked: set[str] = set()
    at_bounds: set[tuple[str, float]] = set()
    for as_of in (date(2024, 1, 20), date(2024, 6, 30), date(2025, 2, 28)):
        vectors = features_as_of(source, as_of, FeatureConfig())
        for name, (low, high) in VALUE_RANGES.items():
            if name not in vectors:
                continue
            values = pd.to_numeric(vectors[name]).astype(float).dropna()
            checked.add(name)
            if low is not None:
                assert (values >= low).all(), (name, as_of, values.min())
                at_bounds |= {(name, low)} if (values == low).any() else set()
            if high is not None:
                assert (values <= high).all(), (name, as_of, values.max())
                at_bounds |= {(name, high)} if (values == high).any() else set()
    assert len(checked) >= len(VALUE_RANGES) - 2  # sites exist at user grain only
    # The bounds are tight where the data reaches them: a full window, a drop to nothing.
    assert {("active_days_30d", 30), ("logins_change_30d", -1), ("tier_zero_days_30d", 0),
            ("observed_weeks_12w", 12)} <= at_bounds


def test_every_range_belongs_to_a_numeric_registry_feature():
    from features.registry import VALUE_RANGES

    kinds = {f.name: f.kind for f in FEATURES}
    assert {kinds.get(name) for name in VALUE_RANGES} == {"numeric"}
    assert get_feature("active_days_30d").value_range == "0 to 30"
    assert get_feature("arr").value_range == ">= 0"
    assert get_feature("days_to_renewal").value_range == "any"
