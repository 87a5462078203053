"""Alarm phrases in survey comments, checked by hand at the edges of the phrase syntax: whole
words, a trailing '*', spaces, case, apostrophes, scripts without spaces."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from service.workflows.config import WorkflowSettings
from service.workflows.survey_comments import DEFAULT_ALARM_PHRASES, CommentAlarm
from service.workflows.survey_followups import FollowUpRule, LatestSurvey


@pytest.mark.parametrize("phrase, comment, found", [
    ("cancel", "We will cancel.", True),
    ("cancel", "CANCEL now", True),                 # case ignored
    ("cancel", "uncancel the order", False),        # whole words only
    ("cancel", "cancelled last week", False),       # ...without '*'
    ("cancel*", "cancelled last week", True),       # '*' takes any ending
    ("cancel*", "cancellation", True),
    ("cancel*", "uncancelled", False),              # ...but not a beginning
    ("not renew*", "we will not\n  renew this year", True),  # spaces match any whitespace
    ("not renew*", "we will not be renewing", False),
    ("won't renew*", "we won\u2019t renew", True),  # a typographic apostrophe
    ("too expensive", "far too expensive!", True),
    ("too expensive", "not too-expensive", False),
    ("取消", "我们打算取消合同", True),                # no spaces: anywhere in the text
    ("cancel*", "我们想cancel合同", True),            # a Latin word between CJK characters
    ("competitor*", None, False),
    ("competitor*", "", False),
])
def test_a_phrase_matches_at_its_edges(phrase, comment, found):
    assert CommentAlarm.of([phrase]).matches(comment) == ((phrase,) if found else ())


def test_every_phrase_found_is_named_in_the_configured_order():
    alarm = CommentAlarm.of(["cheaper", "competitor*", "refund*"])
    assert alarm.matches("A competitor is cheaper.") == ("cheaper", "competitor*")
    assert CommentAlarm.of([]).matches("cancel everything") == ()


def test_the_defaults_read_the_simulator_s_unhappy_comment_and_not_the_happy_ones():
    alarm = CommentAlarm(DEFAULT_ALARM_PHRASES)
    assert alarm.matches("Considering a cheaper tool.") == ("cheaper",)
    assert alarm.matches("We hardly use it any more.") == ("hardly use*",)
    for happy in ("Core to our daily work.", "Great support team.", "Easy to use.",
                  "Rolled out to all sites, very happy."):
        assert alarm.matches(happy) == (), happy


def survey(score: float, comment: str | None) -> LatestSurvey:
    return LatestSurvey("acc", date(2025, 6, 1), score, comment)


def test_the_rule_gives_its_reasons():
    rule = FollowUpRule(6.0, CommentAlarm.of(["switch* to"]))
    assert rule.judge(survey(6.0, "fine")).reasons == ("score",)
    assert rule.judge(survey(6.5, "fine")).reasons == ()
    calm_score = rule.judge(survey(9.0, "We are switching to another tool"))
    assert calm_score.reasons == ("comment",) and calm_score.alarm_phrases == ("switch* to",)
    assert calm_score.needs_follow_up
    assert rule.judge(survey(2.0, "switch to X")).reasons == ("score", "comment")


@pytest.mark.parametrize("phrases, message", [
    (["*"], "has no text"),
    (["  "], "has no text"),
    (["can*cel"], "may only end a word"),
    (["cancel**"], "may only end a word"),
])
def test_a_phrase_that_cannot_match_stops_start_up(phrases, message):
    with pytest.raises(ValidationError, match=message):
        WorkflowSettings(survey_alarm_phrases=phrases)


def test_the_phrases_come_from_the_environment_as_json(monkeypatch):
    monkeypatch.setenv("RENEWAL_SURVEY_ALARM_PHRASES", '["budget cut*", "取消"]')
    settings = WorkflowSettings()
    assert settings.survey_rule.alarm.phrases == ("budget cut*", "取消")
    monkeypatch.setenv("RENEWAL_SURVEY_ALARM_PHRASES", "[]")
    assert WorkflowSettings().survey_rule.judge(survey(9.0, "cancel")).reasons == ()
