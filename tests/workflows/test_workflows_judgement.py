"""Why it moved, machine-vs-CSM disagreements and stale inputs."""

from __future__ import annotations

from datetime import date

from service.workflows.disagreements import Thresholds, disagreement
from service.workflows.history import move_in_words
from service.workflows.stale_inputs import stale_status

T = Thresholds(low_probability=0.4, high_csm_score=4, high_probability=0.85, low_csm_score=2)


def test_disagreement_boundaries_are_strict_on_probability_and_inclusive_on_score():
    assert disagreement(0.39, {"csm_score": 4}, T) == ["model_at_risk_csm_score_high"]
    assert disagreement(0.40, {"csm_score": 5}, T) == []
    assert disagreement(0.39, {"csm_score": 3}, T) == []
    assert disagreement(0.86, {"csm_score": 2}, T) == ["model_safe_csm_score_low"]
    assert disagreement(0.85, {"csm_score": 1}, T) == []
    assert disagreement(0.2, {"exec_sponsor_active": True, "core_process_live": True}, T) == [
        "model_at_risk_sponsor_and_process_fine"]
    assert disagreement(0.9, {"exec_sponsor_active": False, "core_process_live": False}, T) == [
        "model_safe_no_sponsor_no_process"]
    assert disagreement(0.2, {"csm_score": None}, T) == []


def test_stale_status_counts_days_to_the_scores_as_of():
    as_of = date(2025, 6, 30)
    assert stale_status({"health_input_age_days": 90}, as_of, 90)["stale"] is False
    status = stale_status({"health_input_age_days": 91}, as_of, 90)
    assert status == {"stale": True, "age_days": 91, "last_input_on": "2025-03-31",
                      "never_surveyed": False}
    assert stale_status({}, as_of, 90)["never_surveyed"] is True


def test_move_in_words():
    assert move_in_words(-14.2) == "probability fell 14 points"
    assert move_in_words(1.0) == "probability rose 1 point"
    assert move_in_words(0.3) == "probability unchanged"


def test_history_explains_the_move_in_words(stack):
    frame = stack.frame
    account = frame["account_id"].iloc[3]
    with stack.client(stack.keys.crm) as client:
        response = client.get(f"/v1/accounts/{account}/renewal/history")
        assert response.status_code == 200, response.text
        body = response.json()
    newest, oldest = body["data"]
    assert body["count"] == 2 and oldest["change"] is None
    change = newest["change"]
    points = round(100 * (newest["probability"] - oldest["probability"]))
    assert change["explanation"].startswith(move_in_words(points))
    # The older run had 12 more active days and an active sponsor (see conftest).
    moved = {f["feature"] for f in change["features"]}
    assert "active_days_30d" in moved
    words = [f["words"] for f in change["features"] if f["feature"] == "active_days_30d"][0]
    assert "→" in words and words.startswith("active days 30d")
    assert {"stale", "age_days"} <= set(newest["inputs"])


def test_history_respects_object_level_auth(stack):
    foreign = stack.frame[stack.frame["csm_id"] == "csm-b"]["account_id"].iloc[0]
    with stack.client(stack.keys.csm_a) as client:
        assert client.get(f"/v1/accounts/{foreign}/renewal/history").status_code == 404


def test_disagreements_list_both_views_never_an_average(stack):
    with stack.client(stack.keys.admin) as client:
        body = client.get("/v1/disagreements", params={"low_probability": 0.6,
                                                       "high_probability": 0.7}).json()
    assert body["total"] == len(body["data"]) > 0
    for item in body["data"]:
        p, score = item["model"]["probability"], item["csm"]["csm_score"]
        assert item["reasons"]
        if "model_at_risk_csm_score_high" in item["reasons"]:
            assert p <= 0.6 and score >= 4
        if "model_safe_csm_score_low" in item["reasons"]:
            assert p >= 0.7 and score <= 2  # shown rounded to 4 digits
    with stack.client(stack.keys.csm_a) as client:
        mine = client.get("/v1/disagreements", params={"low_probability": 0.6,
                                                       "high_probability": 0.7}).json()
        assert {i["csm_id"] for i in mine["data"]} <= {"csm-a"}
        assert client.get("/v1/disagreements", params={"csm_id": "csm-b"}).status_code == 403


def test_stale_inputs_per_csm(stack):
    with stack.client(stack.keys.crm) as client:
        body = client.get("/v1/stale-inputs").json()
    assert body["stale_input_days"] == 90
    listed = {a["account_id"]: a for g in body["data"] for a in g["accounts"]}
    frame = stack.frame.set_index(stack.frame["account_id"].astype(str))
    for account, age in frame["health_input_age_days"].items():
        expected = age != age or age > 90  # NaN → never surveyed
        assert (account in listed) == expected, account
    with stack.client(stack.keys.csm_a) as client:
        own = client.get("/v1/stale-inputs").json()["data"]
        assert [g["csm_id"] for g in own] == ["csm-a"]
