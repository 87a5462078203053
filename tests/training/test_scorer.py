"""The serve-time scorer: encoding, calibrated probabilities, explanations, behaviour."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from renewal.errors import RenewalError
from training.scorer import Calibrator, FeatureSpec, describe_value, encode, first_k


def test_encode_orders_columns_encodes_categories_and_refuses_garbage():
    specs = [
        FeatureSpec("active_days_30d"),
        FeatureSpec("segment", kind="category", categories=("enterprise", "smb")),
        FeatureSpec("activated", kind="bool"),
        FeatureSpec("csm_score", table="health_inputs", optional_table=True),
    ]
    frame = pd.DataFrame({
        "segment": pd.array(["smb", "unknown-segment", None], dtype="string"),
        "activated": pd.array([True, False, None], dtype="boolean"),
        "active_days_30d": [3, 0, 30],
        "account_id": ["a", "b", "c"],  # extra columns are ignored
    })
    X = encode(frame, specs)
    np.testing.assert_array_equal(X[:, 0], [3, 0, 30])
    np.testing.assert_array_equal(X[:, 1], [1, np.nan, np.nan])  # unknown -> missing
    np.testing.assert_array_equal(X[:, 2], [1, 0, np.nan])
    assert np.isnan(X[:, 3]).all()  # absent column -> missing
    with pytest.raises(RenewalError, match="active_days_30d: 1 value"):
        encode(frame.assign(active_days_30d=["3", "many", "1"]), specs)


def test_calibrators_are_monotone_and_bounded():
    margin = np.linspace(-8, 8, 50)
    iso = Calibrator("isotonic", x=(-1.0, 0.0, 1.0), y=(0.0, 0.5, 1.0))
    platt = Calibrator("sigmoid", a=0.8, b=0.2)
    for calibrator in (iso, platt):
        p = calibrator.transform(margin)
        assert (np.diff(p) >= 0).all()
        assert p.min() >= 1e-3 and p.max() <= 1 - 1e-3


def test_bool_and_missing_values_are_described_in_words():
    activated = FeatureSpec("activated", kind="bool", description="activated within its window",
                            description_false="not activated within its window")
    assert describe_value(activated, False) == "not activated within its window"
    days = FeatureSpec("active_days_30d", description="{value:.0f} active days in the last 30 days")
    assert describe_value(days, 4.0) == "4 active days in the last 30 days"
    assert describe_value(days, None) == "active days 30d: unknown"


def test_contributions_add_up_to_probability_minus_base(fitted, training_set):
    scorer = fitted.scorer
    X = scorer.prepare(training_set.part("test"))
    contributions, p = scorer.contributions(X)
    # The margin is the contributions' sum: predict()'s probability to the last digits.
    np.testing.assert_allclose(p, scorer.predict(X), rtol=0, atol=1e-12)
    flat = np.abs(p - scorer.base_probability) < 1e-9
    np.testing.assert_allclose(contributions.sum(axis=1)[~flat],
                               (p - scorer.base_probability)[~flat], atol=1e-9)


def test_explanations_rank_drivers_down_and_protective_factors_up(fitted, training_set):
    scorer = fitted.scorer
    test = training_set.part("test")
    X = scorer.prepare(test)
    explanations = scorer.explain(X, top_k=3)
    assert len(explanations) == len(test)
    seen_drivers = 0
    for e in explanations:
        drivers = [d["contribution"] for d in e.risk_drivers]
        factors = [d["contribution"] for d in e.protective_factors]
        assert all(c < 0 for c in drivers) and drivers == sorted(drivers)
        assert all(c > 0 for c in factors) and factors == sorted(factors, reverse=True)
        assert len(drivers) <= 3 and len(factors) <= 3
        for item in e.risk_drivers + e.protective_factors:
            assert set(item) == {"feature", "description", "value", "contribution"}
            assert "{value" not in item["description"]
        seen_drivers += len(drivers)
    assert seen_drivers > 0
    riskiest = int(np.argmin([e.probability for e in explanations]))
    assert len(explanations[riskiest].risk_drivers) == 3


def test_each_driver_is_described_from_its_own_row_and_zero_has_no_sign(fitted, training_set):
    """Descriptions are memoised per (feature, value) within a call: every row must still
    get its own value's words, and a negative zero reads as zero."""
    scorer = fitted.scorer
    X = scorer.prepare(training_set.part("test"))
    for e in scorer.explain(X, top_k=len(scorer.features)):
        for item in e.risk_drivers + e.protective_factors:
            spec = next(s for s in scorer.features if s.name == item["feature"])
            assert item["description"] == describe_value(spec, item["value"])
    j = next(i for i, s in enumerate(scorer.features) if s.kind == "numeric")
    spec = scorer.features[j]
    words = scorer._item(j, -0.0, -0.5)
    assert words["value"] == 0.0 and str(words["value"]) == "0.0"
    assert words["description"] == describe_value(spec, 0.0)


def test_absent_optional_tables_never_appear_in_explanations(fitted, training_set):
    scorer = fitted.scorer
    test = training_set.part("test")
    optional = [s.name for s in scorer.features if s.optional_table]
    assert optional, "the simulated data has optional tables"
    X = scorer.prepare(test.drop(columns=optional))
    for e in scorer.explain(X, top_k=len(scorer.features)):
        named = {d["feature"] for d in e.risk_drivers + e.protective_factors}
        assert not named & set(optional)


def test_more_activity_never_lowers_the_probability(fitted, training_set):
    """Behavioural: the monotone model must not punish an account for being more active."""
    scorer = fitted.scorer
    rising = [s.name for s in scorer.features if s.monotone == 1 and s.table == "usage"
              and s.kind == "numeric"]
    assert "active_days_30d" in rising
    test = training_set.part("test")
    base = scorer.predict(scorer.prepare(test))
    for name in rising:
        more = test.copy()
        more[name] = more[name].astype("float64") + (1.0 if "rate" not in name and
                                                       "share" not in name else 0.25)
        assert (scorer.predict(scorer.prepare(more)) >= base - 1e-12).all(), name


def test_scorer_survives_pickling_bit_for_bit(fitted, training_set):
    scorer = fitted.scorer
    copy = pickle.loads(pickle.dumps(scorer))
    X = scorer.prepare(training_set.part("test"))
    np.testing.assert_array_equal(scorer.predict(X), copy.predict(X))
    assert [e.to_dict() for e in scorer.explain(X[:20])] == [
        e.to_dict() for e in copy.explain(X[:20])]


def test_heuristic_is_factor_times_activity_clipped(fitted):
    scorer = fitted.scorer
    frame = pd.DataFrame({"activity_rate_3m": [0.0, 1 / 3, 1.0, np.nan]})
    expected = np.clip(scorer.heuristic_factor * np.array([0, 1 / 3, 1.0]), 0, 1)
    np.testing.assert_allclose(scorer.heuristic(frame)[:3], expected)
    assert np.isnan(scorer.heuristic(frame)[3])


@pytest.mark.parametrize("k", [1, 3, 4, 5, 8])
def test_first_k_picks_what_a_stable_sort_puts_first_ties_by_position(k):
    """The drivers' selection: ties (a hidden feature's 0.0, equal contributions) go to the
    lower feature position on both sides, as a stable argsort would."""
    rng = np.random.default_rng(k)
    values = rng.choice([-0.2, -0.1, 0.0, 0.1, 0.2], size=(500, 9))
    values[0] = [0.1, -0.1, 0.1, 0.0, -0.1, 0.1, 0.0, 0.0, -0.1]
    down = first_k(values, k, largest=False)
    up = first_k(values, k, largest=True)
    np.testing.assert_array_equal(down, np.argsort(values, axis=1, kind="stable")[:, :k])
    np.testing.assert_array_equal(up, np.argsort(-values, axis=1, kind="stable")[:, :k])
    # By hand: the three 0.1s at positions 0, 2, 5 and the three -0.1s at 1, 4, 8.
    assert up[0].tolist() == [0, 2, 5, 3, 6, 7, 1, 4][:k]
    assert down[0].tolist() == [1, 4, 8, 3, 6, 7, 0, 2][:k]
