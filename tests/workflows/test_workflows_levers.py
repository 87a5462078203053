"""Lever what-if: only declared features change; a monotone lever never lowers the probability."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
import workflow_factories as wf

from features.levers import LEVERS, get_lever
from service.predict import vectors_as_json
from service.workflows.levers import LeverError, LeverRequest, what_if


@pytest.fixture(scope="module")
def vectors():
    frame = wf.lever_frame(300, date(2025, 6, 30), seed=7)
    return vectors_as_json(frame)


def test_a_lever_changes_nothing_but_its_declared_features(lever_model, vectors):
    rng = np.random.default_rng(0)
    for vector in vectors[:150]:
        for lever in LEVERS:
            value = float(rng.random()) if lever.value.kind == "number" else None
            result = what_if(lever_model, vector, [LeverRequest(lever.name, value)])
            changed = {c["feature"] for c in result["levers"][0]["changed_features"]}
            assert changed <= set(lever.features), (lever.name, changed)
            assert {c["feature"] for c in result["combined"]["changed_features"]} == changed


# Levers whose every feature is monotone-constrained in this model and moved the safe way;
# raise_tier_mix lowers tier_low_days_30d (no risk direction) and complete_activation moves
# days_to_activation from missing, which no constraint covers.
PROVABLE = {"exec_sponsor_active", "core_process_live", "resolve_high_bugs",
            "raise_seat_utilization"}


def test_monotone_levers_never_lower_the_probability(lever_model, vectors):
    """Every lever whose features have a "risk when low/high" certain direction, over many
    accounts and values (seeded), never lowers the probability under the monotone model."""
    rng = np.random.default_rng(42)
    checked = 0
    for vector in vectors:
        for lever in LEVERS:
            values = rng.random(4).tolist() if lever.value.kind == "number" else [None]
            for value in values:
                result = what_if(lever_model, vector, [LeverRequest(lever.name, value)])
                item = result["levers"][0]
                known = all(c["before"] is not None for c in item["changed_features"])
                if lever.name in PROVABLE and known:
                    assert item["guaranteed_non_decreasing"], (lever.name, item)
                if item["guaranteed_non_decreasing"]:
                    checked += 1
                    assert item["probability_after"] >= result["probability_before"] - 1e-9
    assert checked > 1000


def test_raising_seat_utilisation_further_never_lowers_the_probability(lever_model, vectors):
    targets = np.linspace(0, 1, 11)
    for vector in vectors[:100]:
        results = [what_if(lever_model, vector, [LeverRequest("raise_seat_utilization", t)])
                   for t in targets]
        after = [r["levers"][0]["probability_after"] for r in results]
        assert all(b >= a - 1e-9 for a, b in zip(after, after[1:], strict=False))


def test_lever_declarations_follow_their_promise():
    vector = {"tier_low_days_30d": 10.0, "tier_mid_days_30d": 2.0, "open_high_bugs": 3,
              "overdue_high_bugs": 2, "overdue_bugs": 5, "seat_utilization_30d": 0.8,
              "activated": False, "past_window_not_activated": False, "tenure_days": 20,
              "days_to_activation": None, "activation_window_days": 45}
    assert get_lever("raise_tier_mix").apply(vector, 0.5) == {
        "tier_low_days_30d": 5.0, "tier_mid_days_30d": 7.0}
    assert get_lever("resolve_high_bugs").apply(vector) == {
        "open_high_bugs": 0.0, "overdue_high_bugs": 0.0, "overdue_bugs": 3.0}
    assert get_lever("raise_seat_utilization").apply(vector, 0.5) == {
        "seat_utilization_30d": 0.8}  # raising to 50 % never lowers 80 %
    assert get_lever("complete_activation").apply(vector) == {  # 20 days into a 45-day window
        "activated": True, "past_window_not_activated": False, "days_to_activation": 45.0}


# Activation WITHIN the window (domain §2) cannot be reached once the window has closed: the
# features say so (past_window_not_activated, or tenure_days >= activation_window_days).
WINDOW_CLOSED = {
    "never activated": ({"activated": False, "past_window_not_activated": True,
                         "days_to_activation": None, "activation_window_days": 30.0,
                         "tenure_days": 200}, "its 30-day activation window has closed"),
    "activated late": ({"activated": False, "past_window_not_activated": True,
                        "days_to_activation": 167.0, "activation_window_days": 30.0,
                        "tenure_days": 400}, "it activated 167 days after signing"),
    "unknown, window over": ({"activated": None, "past_window_not_activated": None,
                              "days_to_activation": None, "activation_window_days": 45.0,
                              "tenure_days": 45}, "its 45-day activation window has closed"),
}


@pytest.mark.parametrize("case", WINDOW_CLOSED)
def test_complete_activation_is_out_of_reach_once_the_window_closed(case):
    vector, words = WINDOW_CLOSED[case]
    lever = get_lever("complete_activation")
    assert lever.apply(vector) == {}
    reason = lever.out_of_reach(vector)
    assert reason is not None and words in reason
    assert "can no longer become true" in reason


@pytest.mark.parametrize("vector", [
    {"activated": False, "past_window_not_activated": False, "days_to_activation": None,
     "activation_window_days": 30.0, "tenure_days": 29},  # the last day of the window
    {"activated": True, "past_window_not_activated": False, "days_to_activation": 12.0,
     "activation_window_days": 30.0, "tenure_days": 400},  # activated in time: nothing to do
])
def test_complete_activation_is_in_reach_inside_the_window_or_once_done(vector):
    assert get_lever("complete_activation").out_of_reach(vector) is None


def _account(vectors, **values):
    """A stored vector of the lever frame, with ``values`` changed."""
    return {**vectors[0], **values}


def test_an_out_of_reach_lever_promises_no_gain(lever_model, vectors):
    """The audit: an account 167 days late was offered the gain of "activated" (within the
    window), which no real score could ever show. Now it moves nothing, alone or combined,
    and says why; inside the window the same lever still gains."""
    late = _account(vectors, activated=False, past_window_not_activated=True,
                    days_to_activation=167.0, activation_window_days=30.0, tenure_days=400)
    result = what_if(lever_model, late, [LeverRequest("complete_activation"),
                                         LeverRequest("exec_sponsor_active")])
    activation, sponsor = result["levers"]
    assert activation["changed_features"] == [] and activation["change_points"] == 0
    assert activation["applies"] is False
    assert "activated 167 days after signing" in activation["out_of_reach"]
    assert sponsor["out_of_reach"] is None
    assert result["combined"]["probability_after"] == sponsor["probability_after"]
    assert {c["feature"] for c in result["combined"]["changed_features"]} == {
        c["feature"] for c in sponsor["changed_features"]}

    open_window = _account(vectors, activated=False, past_window_not_activated=False,
                           days_to_activation=None, activation_window_days=30.0,
                           tenure_days=10)
    (inside,) = what_if(lever_model, open_window,
                        [LeverRequest("complete_activation")])["levers"]
    assert inside["out_of_reach"] is None and inside["applies"] is True
    assert inside["change_points"] > 0


def test_a_lever_that_moves_nothing_says_why(lever_model, vectors):
    """The audit: "No effect: the model does not read seat utilization 30d" for an account at
    45 % with a 30 % target, while the model reads it (its top risk driver)."""
    above = _account(vectors, seat_utilization_30d=0.45)
    (lever,) = what_if(lever_model, above,
                       [LeverRequest("raise_seat_utilization", 0.3)])["levers"]
    assert lever["applies"] is False
    assert lever["model_reads"] == ["seat_utilization_30d"]
    assert lever["target"] == 0.3
    assert lever["unchanged"] == [{"feature": "seat_utilization_30d", "value": 0.45,
                                   "description": "45% of seats used", "used_by_model": True}]
    (raised,) = what_if(lever_model, above,
                        [LeverRequest("raise_seat_utilization", 0.6)])["levers"]
    assert raised["applies"] is True and raised["unchanged"] == []

    sponsor = _account(vectors, exec_sponsor_active=True)
    (on,) = what_if(lever_model, sponsor, [LeverRequest("exec_sponsor_active")])["levers"]
    assert on["target"] is None  # on/off: nothing to be "above"
    assert [u["description"] for u in on["unchanged"]] == [
        "the executive sponsor uses the product"]


def test_a_lever_the_model_cannot_read_says_so(vectors):
    """The tiny model reads no seat utilisation: the lever is "not read", not "already"."""
    import service_factories as factories

    tiny = factories.loaded(factories.tiny_scorer())
    (lever,) = what_if(tiny, _account(vectors, seat_utilization_30d=0.45),
                       [LeverRequest("raise_seat_utilization", 0.3)])["levers"]
    assert lever["applies"] is False and lever["model_reads"] == []
    assert lever["unchanged"][0]["used_by_model"] is False
    # Words from the feature registry when the model has none.
    assert lever["unchanged"][0]["description"] == "45% of seats used in the last 30 days"


def test_bad_lever_requests_name_the_field(lever_model, vectors):
    cases = [
        ([LeverRequest("fire_the_customer")], "body.levers[0].name"),
        ([LeverRequest("raise_seat_utilization")], "body.levers[0].value"),
        ([LeverRequest("raise_seat_utilization", 1.5)], "body.levers[0].value"),
        ([LeverRequest("exec_sponsor_active", 3.0)], "body.levers[0].value"),
        ([LeverRequest("core_process_live"), LeverRequest("core_process_live")],
         "body.levers[1].name"),
    ]
    for requests, field in cases:
        with pytest.raises(LeverError) as caught:
            what_if(lever_model, vectors[0], requests)
        assert caught.value.field == field


def test_what_if_over_http(stack):
    frame = stack.frame
    own = frame[frame["csm_id"] == "csm-a"]["account_id"].iloc[0]
    foreign = frame[frame["csm_id"] == "csm-b"]["account_id"].iloc[0]
    body = {"levers": [{"name": "exec_sponsor_active"}, {"name": "core_process_live"},
                       {"name": "raise_seat_utilization", "value": 0.9}]}
    with stack.client(stack.keys.csm_a) as client:
        response = client.post(f"/v1/accounts/{own}/what-if", json=body)
        assert response.status_code == 200, response.text
        result = response.json()
        assert [lv["name"] for lv in result["levers"]] == [
            "exec_sponsor_active", "core_process_live", "raise_seat_utilization"]
        declared = {f for lv in result["levers"] for f in lv["declared_features"]}
        assert {c["feature"] for c in result["combined"]["changed_features"]} <= declared
        assert result["combined"]["probability_after"] >= result["probability_before"]
        hidden = client.post(f"/v1/accounts/{foreign}/what-if", json=body)
        assert hidden.status_code == 404
        assert hidden.headers["content-type"] == "application/problem+json"
        bad = client.post(f"/v1/accounts/{own}/what-if", json={"levers": [{"name": "x"}]})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.levers[0].name"
        strict = client.post(f"/v1/accounts/{own}/what-if",
                             json={"levers": [{"name": "raise_seat_utilization", "value": "0.9"}]})
        assert strict.status_code == 422
        assert client.get("/v1/levers").json()["count"] == len(LEVERS)
    with stack.client(None) as anonymous:
        assert anonymous.post(f"/v1/accounts/{own}/what-if", json=body).status_code == 401


def test_the_api_offers_no_gain_after_the_activation_window(stack):
    """Same lever name, same JSON keys: for an account past its window the lever changes
    nothing and gains nothing (the served model reads activated)."""
    frame = stack.frame
    missed = frame[(frame["csm_id"] == "csm-a")
                   & frame["past_window_not_activated"].astype(bool)]["account_id"].iloc[0]
    with stack.client(stack.keys.csm_a) as client:
        response = client.post(f"/v1/accounts/{missed}/what-if",
                               json={"levers": [{"name": "complete_activation"}]})
    assert response.status_code == 200, response.text
    (lever,) = response.json()["levers"]
    assert lever["name"] == "complete_activation"
    assert {"probability_after", "change_points", "changed_features",
            "guaranteed_non_decreasing", "value", "declared_features", "applies"} <= set(lever)
    assert lever["changed_features"] == [] and lever["change_points"] == 0
    assert lever["applies"] is False
    assert "activation window" in lever["out_of_reach"]  # and the API says why


def test_levers_are_reachable_from_the_feature_registry():
    """Issue 8: levers are declared in terms of registry features, and the registry says, per
    feature, which levers change it."""
    from features.levers import LEVERS
    from features.registry import FEATURES, get_feature, levers_for

    declared = {(lever.name, f) for lever in LEVERS for f in lever.features}
    for _lever, feature in declared:
        get_feature(feature)  # KeyError for a lever on an unknown feature
    from_registry = {(name, f.name) for f in FEATURES for name in f.levers}
    assert from_registry == declared
    assert levers_for("exec_sponsor_active") == ("exec_sponsor_active",)
    assert levers_for("tenure_days") == ()  # nothing a CSM can do about it
