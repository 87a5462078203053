"""GET /v1/survey-follow-ups checked by hand: a surveys table written into the data directory
of the real app, interventions recorded through the API as a CSM would."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import update

from renewal.datadir import write_table
from service.db.engine import transaction
from service.db.workflow_models import Intervention
from service.workflows.survey_followups import (
    first_interventions_since,
    is_bad,
    latest_surveys,
)

SECRET = "CONFIDENTIAL-our-CFO-hates-the-new-pricing-7f3a"


def today() -> date:
    return datetime.now(UTC).date()


def write_surveys(stack, rows: list[dict], fmt: str = "parquet") -> None:
    """Replace the data directory's surveys table (one file per table: drop the other format)."""
    for old in stack.data_dir.glob("surveys.*"):
        old.unlink()
    frame = pd.DataFrame(rows, columns=["account_id", "date", "score", "comment"])
    if fmt == "parquet":
        frame["date"] = pd.to_datetime(frame["date"])
        frame["score"] = frame["score"].astype("float64")
    write_table(frame, stack.data_dir, "surveys", fmt)


def survey(account: str, days_ago: int, score: float | str, comment: str | None = None) -> dict:
    return {
        "account_id": account,
        "date": today() - timedelta(days=days_ago),
        "score": score,
        "comment": comment,
    }


def accounts_of(stack, csm: str) -> list[str]:
    frame = stack.frame
    return frame.loc[frame["csm_id"] == csm, "account_id"].astype(str).tolist()


def listed(stack, key: str, **params) -> dict:
    with stack.client(key) as client:
        response = client.get("/v1/survey-follow-ups", params=params)
    assert response.status_code == 200, response.text
    return response.json()


# -- the rules, without the app ---------------------------------------------------------------
def test_a_score_at_the_threshold_is_bad_and_just_above_is_not():
    assert is_bad(6.0, 6.0) and is_bad(0.0, 6.0)
    assert not is_bad(6.5, 6.0) and not is_bad(10.0, 6.0)


def test_only_the_latest_survey_up_to_today_counts():
    day = date(2025, 6, 30)
    surveys = pd.DataFrame(
        {
            "account_id": ["a", "a", "b", "b", "c", "c", "d", "d"],
            # a: bad then good; b: bad, good tomorrow; c: two answers one day; d: undated row
            "date": pd.to_datetime(
                ["2025-05-01", "2025-06-01", "2025-05-01", "2025-07-01"]
                + ["2025-06-30", "2025-06-30", "2025-06-01", None]
            ),
            "score": pd.array([2.0, 9.0, 3.0, 10.0, 8.0, 4.0, 5.0, 1.0], dtype="Float64"),
            "comment": pd.array(
                ["slow", None, "bugs", "great", "ok", "meh", None, "x"], dtype="string"
            ),
        }
    )
    latest = latest_surveys(surveys, day)
    assert latest["a"].score == 9.0 and latest["a"].survey_date == date(2025, 6, 1)
    # Tomorrow's answer is not in yet: the bad one stands.
    assert (latest["b"].score, latest["b"].comment) == (3.0, "bugs")
    # A broken key (two answers one day): the worse one, so no follow-up is missed.
    assert (latest["c"].score, latest["c"].comment) == (4.0, "meh")
    assert latest["d"].survey_date == date(2025, 6, 1) and latest["d"].comment is None


def test_an_intervention_the_day_before_the_survey_does_not_count_one_that_day_does(stack):
    """UTC days, to the second: 23:59:59 the day before is too early, 00:00:00 counts."""
    day = date(2025, 3, 10)
    midnight = datetime(2025, 3, 10, tzinfo=UTC)
    rows = [
        ("early", midnight - timedelta(seconds=1)),
        ("on-time", midnight),
        ("both", midnight - timedelta(days=1)),
        ("both", midnight + timedelta(hours=15)),
    ]
    with transaction(stack.factory) as session:
        for account, at in rows:
            session.add(
                Intervention(
                    account_id=f"unit-{account}",
                    csm_id=None,
                    author="test",
                    playbook="call",
                    note=None,
                    assigned_at=at,
                    probability_at_assignment=0.5,
                    score_as_of=day,
                    model_version="1",
                )
            )
    with stack.factory() as session:
        first = first_interventions_since(
            session, {f"unit-{a}": day for a in ("early", "on-time", "both", "none")}
        )
    assert first == {"unit-on-time": midnight, "unit-both": midnight + timedelta(hours=15)}


def test_the_surveys_time_zone_decides_an_intervention_s_day(stack):
    """Found by review: survey dates are local days, interventions were compared by their
    UTC day. In Tokyo a callback at 08:30 on the survey's day (23:30 UTC the day before) is
    its follow-up; in Los Angeles one at 20:00 the evening before the survey (03:00 UTC on the
    survey's day) is not."""
    from zoneinfo import ZoneInfo

    day = date(2025, 4, 10)
    tokyo, los_angeles = ZoneInfo("Asia/Tokyo"), ZoneInfo("America/Los_Angeles")
    callback = datetime(2025, 4, 10, 8, 30, tzinfo=tokyo)
    before = datetime(2025, 4, 9, 20, 0, tzinfo=los_angeles)
    with transaction(stack.factory) as session:
        for account, at in (("tokyo", callback), ("la", before)):
            session.add(Intervention(
                account_id=f"zone-{account}", csm_id=None, author="test", playbook="call",
                note=None, assigned_at=at.astimezone(UTC), probability_at_assignment=0.5,
                score_as_of=day, model_version="1"))
    with stack.factory() as session:
        in_tokyo = first_interventions_since(session, {"zone-tokyo": day}, tokyo)
        in_la = first_interventions_since(session, {"zone-la": day}, los_angeles)
        by_utc = first_interventions_since(session, {"zone-tokyo": day, "zone-la": day})
    assert list(in_tokyo) == ["zone-tokyo"] and in_la == {}
    assert list(by_utc) == ["zone-la"]  # what the UTC rule said: both wrong


def test_an_unknown_survey_time_zone_is_refused_at_start_up():
    from pydantic import ValidationError

    from service.workflows.config import WorkflowSettings

    assert WorkflowSettings(survey_timezone="Asia/Tokyo").survey_zone.key == "Asia/Tokyo"
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        WorkflowSettings(survey_timezone="Mars/Olympus")


# -- the route --------------------------------------------------------------------------------
def test_a_missing_surveys_table_is_an_empty_list_not_an_error(stack):
    for old in stack.data_dir.glob("surveys.*"):
        old.unlink()
    for key in (stack.keys.admin, stack.keys.crm, stack.keys.csm_a):
        body = listed(stack, key, status="all")
        assert body["surveys_available"] is False
        assert body["data"] == [] and body["total"] == 0 and body["count"] == 0
        assert body["bad_score_at_most"] == 6.0


def test_the_follow_up_list_at_its_boundaries(stack):
    a = accounts_of(stack, "csm-a")
    b = accounts_of(stack, "csm-b")
    write_surveys(
        stack,
        [
            survey(a[0], 0, 6.0, "renewal is on hold"),  # at the threshold: bad
            survey(a[1], 0, 6.5, "fine"),  # just above: not bad
            survey(a[2], 10, 3.0, "slow"),  # superseded by...
            survey(a[2], 2, 9.0),  # ...a later good one
            survey(a[3], 10, 9.0),  # a good one, then...
            survey(a[3], 3, 2.0, "support never answers"),  # ...a later bad one
            survey(a[4], 0, 4.0, "too expensive"),  # followed up today
            survey(a[5], 0, 5.0, "missing export"),  # attempt the day before
            survey(a[6], -1, 1.0, "tomorrow"),  # dated tomorrow: not yet
            survey(a[7], 5, 2.0, "angry"),  # bad, and...
            survey(a[7], -1, 10.0),  # ...a good one tomorrow: not in yet
            survey(b[0], 1, 0.0, SECRET),  # another CSM's account
            survey("never-scored", 1, 0.0, "who?"),  # not scored: never listed
        ],
    )
    with stack.client(stack.keys.csm_a) as client:
        recorded = client.post(f"/v1/accounts/{a[4]}/interventions", json={"playbook": "call"})
        assert recorded.status_code == 201, recorded.text
        early = client.post(f"/v1/accounts/{a[5]}/interventions", json={"playbook": "call"})
        assert early.status_code == 201, early.text
    with transaction(stack.factory) as session:  # as if recorded yesterday
        session.execute(
            update(Intervention)
            .where(Intervention.id == early.json()["id"])
            .values(assigned_at=datetime.now(UTC) - timedelta(days=1))
        )

    admin = listed(stack, stack.keys.admin, status="all")
    assert admin["surveys_available"] is True and admin["bad_score_at_most"] == 6.0
    assert admin["today"] == today().isoformat()
    rows = {r["account_id"]: r for r in admin["data"]}
    assert set(rows) == {a[0], a[3], a[4], a[5], a[7], b[0]}
    assert rows[a[0]]["score"] == 6.0 and rows[a[0]]["status"] == "pending"
    assert rows[a[0]]["days_waiting"] == 0 and rows[a[0]]["comment"] == "renewal is on hold"
    assert rows[a[3]]["days_waiting"] == 3 and rows[a[3]]["score"] == 2.0
    assert rows[a[5]]["status"] == "pending" and rows[a[5]]["followed_up_at"] is None
    assert rows[a[7]]["days_waiting"] == 5
    done = rows[a[4]]
    assert done["status"] == "followed_up" and done["days_waiting"] is None
    assert datetime.fromisoformat(done["followed_up_at"]) == datetime.fromisoformat(
        recorded.json()["assigned_at"]
    )
    assert rows[b[0]]["comment"] == SECRET
    with stack.client(stack.keys.admin) as client:
        score = client.get(f"/v1/accounts/{a[3]}/renewal").json()
    assert rows[a[3]]["probability"] == score["probability"]
    assert rows[a[3]]["risk_tier"] == score["risk_tier"] and rows[a[3]]["csm_id"] == "csm-a"
    # Pending first, lowest probability then oldest survey; followed-up ones after.
    statuses = [r["status"] for r in admin["data"]]
    assert statuses == ["pending"] * 5 + ["followed_up"]
    pending = admin["data"][:5]
    assert pending == sorted(pending, key=lambda r: (r["probability"], r["survey_date"]))

    default = listed(stack, stack.keys.admin)
    assert default["status"] == "pending" and default["total"] == 5
    assert {r["account_id"] for r in default["data"]} == {a[0], a[3], a[5], a[7], b[0]}
    followed = listed(stack, stack.keys.admin, status="followed_up")
    assert [r["account_id"] for r in followed["data"]] == [a[4]]
    paged = listed(stack, stack.keys.crm, limit=2, offset=1)
    assert paged["total"] == 5 and [r["account_id"] for r in paged["data"]] == [
        r["account_id"] for r in default["data"][1:3]
    ]
    only_b = listed(stack, stack.keys.crm, csm_id="csm-b", status="all")
    assert [r["account_id"] for r in only_b["data"]] == [b[0]]


def test_an_alarming_comment_needs_a_follow_up_whatever_the_score(stack, monkeypatch):
    """The domain: the free-text answer matters more than the score. A 9 that says "moving
    to a cheaper tool" is listed, with the phrase that raised it; a calm 9 is not."""
    a = accounts_of(stack, "csm-a")
    write_surveys(stack, [
        survey(a[15], 1, 9.0, "Love it, but we are moving to a cheaper tool next quarter"),
        survey(a[16], 1, 2.0, "Support is useless"),          # bad score and an alarm phrase
        survey(a[17], 1, 9.0, "Core to our daily work."),     # calm: not listed
        survey(a[18], 1, 10.0, "We cancelled the old vendor"),  # "cancel*" at a 10: listed
    ])
    try:
        body = listed(stack, stack.keys.admin, status="all")
        assert "cheaper" in body["alarm_phrases"] and "cancel*" in body["alarm_phrases"]
        rows = {r["account_id"]: r for r in body["data"]}
        assert set(rows) == {a[15], a[16], a[18]}
        assert (rows[a[15]]["reasons"], rows[a[15]]["alarm_phrases"]) == (
            ["comment"], ["moving to", "cheaper"])
        assert rows[a[15]]["status"] == "pending" and rows[a[15]]["days_waiting"] == 1
        assert (rows[a[16]]["reasons"], rows[a[16]]["alarm_phrases"]) == (
            ["score", "comment"], ["useless"])
        assert rows[a[18]]["reasons"] == ["comment"]

        # The team's own list replaces the defaults; an empty list reads no comment.
        monkeypatch.setattr(stack.settings, "survey_alarm_phrases", ["next quarter"])
        tuned = listed(stack, stack.keys.admin, status="all")
        assert {r["account_id"]: r["alarm_phrases"] for r in tuned["data"]} == {
            a[15]: ["next quarter"], a[16]: []}
        monkeypatch.setattr(stack.settings, "survey_alarm_phrases", [])
        off = listed(stack, stack.keys.admin, status="all")
        assert off["alarm_phrases"] == []
        assert [(r["account_id"], r["reasons"]) for r in off["data"]] == [(a[16], ["score"])]
    finally:
        for old in stack.data_dir.glob("surveys.*"):
            old.unlink()


def test_a_csm_key_lists_only_its_own_accounts(stack):
    a = accounts_of(stack, "csm-a")
    b = accounts_of(stack, "csm-b")
    write_surveys(stack, [survey(a[10], 2, 1.0, "mine"), survey(b[10], 2, 1.0, SECRET)])
    for status in ("pending", "followed_up", "all"):
        body = listed(stack, stack.keys.csm_a, status=status)
        assert {r["csm_id"] for r in body["data"]} <= {"csm-a"}
        assert b[10] not in {r["account_id"] for r in body["data"]}
        assert SECRET not in str(body)
    assert [r["account_id"] for r in listed(stack, stack.keys.csm_a)["data"]] == [a[10]]
    assert [r["account_id"] for r in listed(stack, stack.keys.csm_b)["data"]] == [b[10]]
    with stack.client(stack.keys.csm_a) as client:
        foreign = client.get("/v1/survey-follow-ups", params={"csm_id": "csm-b"})
        unknown = client.get("/v1/survey-follow-ups", params={"status": "done"})
    assert foreign.status_code == 403
    assert SECRET not in foreign.text
    assert unknown.status_code == 422


def test_the_comment_is_never_logged(stack, caplog):
    a = accounts_of(stack, "csm-a")
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="service")
    write_surveys(stack, [survey(a[11], 1, 0.0, SECRET)])
    for key in (stack.keys.admin, stack.keys.crm, stack.keys.csm_a):
        body = listed(stack, key, status="all")
        assert [r["comment"] for r in body["data"]] == [SECRET]
    # A table that breaks the contract (a score that is no number): 503, and still nothing
    # of the comment in the logs or in the answer.
    write_surveys(stack, [survey(a[11], 1, "terrible", SECRET)], fmt="csv")
    for key in (stack.keys.admin, stack.keys.crm):
        with stack.client(key) as client:
            broken = client.get("/v1/survey-follow-ups")
        assert broken.status_code == 503, broken.text
        assert broken.json()["type"].endswith(":data-unavailable")
        assert SECRET not in broken.text
    assert caplog.records, "the requests logged nothing: the check would prove nothing"
    assert SECRET not in caplog.text
    assert all(SECRET not in str(r.args) for r in caplog.records)
    for old in stack.data_dir.glob("surveys.*"):
        old.unlink()


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_both_table_formats_are_read(stack, fmt):
    a = accounts_of(stack, "csm-a")
    write_surveys(stack, [survey(a[12], 4, 5.5, "so-so")], fmt=fmt)
    body = listed(stack, stack.keys.admin)
    assert [(r["account_id"], r["score"], r["days_waiting"]) for r in body["data"]] == [
        (a[12], 5.5, 4)
    ]


@pytest.mark.parametrize("columns, score", [
    (["account_id", "date", "comment"], None),            # no score column
    (["account_id", "date", "score", "comment"], 60.0),   # a 0-100 scale: 60 is never "bad"
])
def test_a_surveys_table_the_contract_refuses_is_a_503_not_a_500(stack, columns, score):
    """Found by review: a missing column was a KeyError (500) on the API and on every page
    of the ops site; a table on another scale was read as if 0-10."""
    a = accounts_of(stack, "csm-a")
    for old in stack.data_dir.glob("surveys.*"):
        old.unlink()
    row = {"account_id": a[13], "date": today() - timedelta(days=2), "score": score,
           "comment": "x"}
    write_table(pd.DataFrame([row])[columns], stack.data_dir, "surveys", "csv")
    try:
        with stack.client(stack.keys.admin) as client:
            refused = client.get("/v1/survey-follow-ups")
        assert refused.status_code == 503, refused.text
        assert refused.json()["type"].endswith(":data-unavailable")
    finally:
        for old in stack.data_dir.glob("surveys.*"):
            old.unlink()


def test_a_configured_outcomes_directory_that_is_not_there_is_a_503(stack, monkeypatch):
    """A mistyped RENEWAL_OUTCOMES_DATA_DIR read as "no surveys table" (200, empty list):
    the follow-up duty silently vanished. The contracts' readers share the check."""
    monkeypatch.setattr(stack.settings, "outcomes_data_dir",
                        stack.data_dir.parent / "no-such-directory")
    with stack.client(stack.keys.admin) as client:
        for route in ("/v1/survey-follow-ups", "/v1/save-rate", "/v1/forecast"):
            answer = client.get(route)
            assert answer.status_code == 503, (route, answer.text)
            assert answer.json()["type"].endswith(":data-unavailable")


def test_the_route_takes_today_and_the_follow_up_s_day_in_the_surveys_time_zone(
        stack, monkeypatch):
    """Through the API: with Asia/Tokyo, a survey dated Tokyo's today and a callback at
    00:30 Tokyo time that day (15:30 UTC the day before) is followed up. By UTC days the
    callback came the day before, and the survey may even lie after UTC's today."""
    from zoneinfo import ZoneInfo

    from service.workflows.survey_followups import today_in

    tokyo = ZoneInfo("Asia/Tokyo")
    monkeypatch.setattr(stack.settings, "survey_timezone", "Asia/Tokyo")
    a = accounts_of(stack, "csm-a")
    account, day = a[14], today_in(tokyo)
    write_surveys(stack, [{"account_id": account, "date": day, "score": 2.0,
                           "comment": "call me"}])
    callback = datetime.combine(day, datetime.min.time(), tokyo) + timedelta(minutes=30)
    with transaction(stack.factory) as session:
        session.add(Intervention(
            account_id=account, csm_id="csm-a", author="test", playbook="call", note=None,
            assigned_at=callback.astimezone(UTC), probability_at_assignment=0.5,
            score_as_of=day, model_version="1"))
    try:
        body = listed(stack, stack.keys.admin, status="all")
        assert body["survey_timezone"] == "Asia/Tokyo" and body["today"] == day.isoformat()
        mine = [r for r in body["data"] if r["account_id"] == account]
        assert [(r["status"], r["survey_date"]) for r in mine] == [
            ("followed_up", day.isoformat())]
    finally:
        with transaction(stack.factory) as session:
            session.query(Intervention).filter(Intervention.account_id == account).delete()
        for old in stack.data_dir.glob("surveys.*"):
            old.unlink()


def test_a_region_name_is_no_time_zone():
    from pydantic import ValidationError

    from service.workflows.config import WorkflowSettings

    with pytest.raises(ValidationError, match="unknown time zone 'America'"):
        WorkflowSettings(survey_timezone="America")
