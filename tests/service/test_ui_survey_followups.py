"""Survey follow-ups on the ops page, without a browser: the account view's "Latest survey"
part and the risk list's "Survey follow-up: pending" filter, from a surveys table written
into the data directory of the latest scoring run (the seeded run names none that exists).

Signed in through the page's own form, as in ``test_ui_audit.py``."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from service_harness import sign_in_csrf as sign_in
from sqlalchemy import update

from renewal.datadir import write_table
from service.db import scores as scores_db
from service.db.engine import transaction
from service.db.workflow_models import Intervention

SCRIPT = '<script>alert("x")</script> & the "new" pricing'
SECRET = "CONFIDENTIAL-bob-only-comment-41c9"


def today() -> date:
    return datetime.now(UTC).date()


def accounts_of(service, csm_id: str) -> list[str]:
    order = service.client.app.state.context.cache.risk_order
    return [e.account_id for e in order if e.csm_id == csm_id]


@pytest.fixture
def data_dir(service, tmp_path: Path):
    """The latest scoring run reads ``tmp_path / "data"`` (put back afterwards)."""
    directory = tmp_path / "data"
    directory.mkdir()
    with transaction(service.factory) as session:
        run = scores_db.latest_run(session)
        before, run.data_dir = run.data_dir, str(directory)
    yield directory
    with transaction(service.factory) as session:
        scores_db.latest_run(session).data_dir = before


def write_surveys(directory: Path, rows: list[tuple[str, int, float, str | None]]) -> None:
    """(account, days ago, score, comment) rows as the data directory's surveys table."""
    frame = pd.DataFrame(
        [(a, today() - timedelta(days=ago), score, comment) for a, ago, score, comment in rows],
        columns=["account_id", "date", "score", "comment"],
    )
    frame["date"] = pd.to_datetime(frame["date"])
    frame["score"] = frame["score"].astype("float64")
    write_table(frame, directory, "surveys", "parquet")


def survey_part(html: str) -> str:
    found = re.search(r'<section id="survey".*?</section>', html, re.S)
    assert found, "no survey part on the page"
    return found.group(0)


def words(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def listed(html: str) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/ui/accounts/([^"]+)"', html)


def test_a_pending_bad_survey_shows_its_days_waiting_and_its_comment_as_text(service, data_dir):
    account = accounts_of(service, "csm-a")[0]
    write_surveys(data_dir, [(account, 20, 9.0, "great"), (account, 5, 3.0, SCRIPT)])
    sign_in(service, service.keys.csm_a)
    page = service.client.get(f"/ui/accounts/{account}")
    assert page.status_code == 200, page.text[:300]
    part = survey_part(page.text)
    assert "Follow-up pending for 5 days" in words(part)
    assert f"Answered {today() - timedelta(days=5)} · score 3 out of 10" in words(part)
    # Customer input: escaped, never markup (and the CSP would refuse it anyway).
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; the &#34;new&#34;" in part
    # A crm key reads the account too: the same part, without the interventions form.
    sign_in(service, service.keys.crm)
    assert "Follow-up pending for 5 days" in words(
        survey_part(service.client.get(f"/ui/accounts/{account}").text))


def test_an_intervention_on_or_after_the_survey_day_marks_it_followed_up(service, data_dir):
    early, late = accounts_of(service, "csm-a")[:2]
    write_surveys(data_dir, [(early, 0, 2.0, "angry"), (late, 2, 6.0, "at the threshold")])
    csrf = sign_in(service, service.keys.csm_a)
    assert "Follow-up pending for 2 days" in words(
        survey_part(service.client.get(f"/ui/accounts/{late}").text))

    # Through the page's form with htmx: the survey part comes along, swapped out of band.
    answer = service.client.post(
        f"/ui/accounts/{late}/interventions", data={"csrf_token": csrf, "playbook": "call"},
        headers={"HX-Request": "true", "HX-Target": "interventions"})
    assert answer.status_code == 200, answer.text[:300]
    part = survey_part(answer.text)
    assert 'hx-swap-oob="true"' in part
    assert f"Followed up on {today()} (UTC)" in words(part)
    assert "pending" not in words(part)
    reloaded = survey_part(service.client.get(f"/ui/accounts/{late}").text)
    assert f"Followed up on {today()} (UTC)" in words(reloaded)

    # One recorded the day before the survey does not count.
    posted = service.client.post(f"/ui/accounts/{early}/interventions",
                                 data={"csrf_token": csrf, "playbook": "call"},
                                 follow_redirects=False)
    assert posted.status_code == 303
    with transaction(service.factory) as session:
        session.execute(update(Intervention).where(Intervention.account_id == early)
                        .values(assigned_at=datetime.now(UTC) - timedelta(days=1)))
    part = survey_part(service.client.get(f"/ui/accounts/{early}").text)
    assert "Follow-up pending for 0 days" in words(part) and "Followed up" not in part


def test_an_alarming_comment_at_a_good_score_is_pending_and_names_its_phrase(service, data_dir):
    """The free-text answer matters more than the score: a 9 saying the customer is looking
    at a cheaper tool gets the pending badge, the account view names the phrase, and the
    risk list's pending filter lists it."""
    account = accounts_of(service, "csm-a")[0]
    write_surveys(data_dir, [(account, 4, 9.0, "Looking at a cheaper tool for next year")])
    sign_in(service, service.keys.csm_a)
    part = words(survey_part(service.client.get(f"/ui/accounts/{account}").text))
    assert "Follow-up pending for 4 days" in part
    assert "The comment mentions cheaper" in part
    assert "a follow-up is needed whatever the score" in part
    assert part.endswith("score 9 out of 10")  # neither "(bad: ...)" nor "no follow-up needed"
    pending = service.client.get("/ui/risk-list", params={"survey": "pending"})
    assert listed(pending.text) == [account]


def test_a_score_just_above_the_threshold_needs_no_follow_up(service, data_dir):
    account = accounts_of(service, "csm-a")[0]
    write_surveys(data_dir, [(account, 3, 6.5, "fine"), (account, -1, 1.0, "tomorrow")])
    sign_in(service, service.keys.csm_a)
    part = words(survey_part(service.client.get(f"/ui/accounts/{account}").text))
    assert "score 6.5 out of 10" in part and "fine" in part
    assert "no follow-up needed" in part
    assert "pending" not in part and "Followed up" not in part and "tomorrow" not in part
    listing = service.client.get("/ui/risk-list", params={"survey": "pending"}).text
    assert listed(listing) == []


def test_the_risk_list_filter_lists_only_pending_follow_ups_of_the_keys_accounts(
        service, data_dir):
    a = accounts_of(service, "csm-a")
    b = accounts_of(service, "csm-b")
    write_surveys(data_dir, [
        (a[0], 4, 1.0, "pending"),
        (a[1], 3, 5.0, "followed up below"),
        (a[2], 3, 8.0, "happy"),
        (a[3], 9, 2.0, "pending too"),
        (b[0], 1, 0.0, SECRET),
    ])
    csrf = sign_in(service, service.keys.csm_a)
    service.client.post(f"/ui/accounts/{a[1]}/interventions",
                        data={"csrf_token": csrf, "playbook": "call"})

    page = service.client.get("/ui/risk-list", params={"survey": "pending"})
    assert page.status_code == 200
    assert set(listed(page.text)) == {a[0], a[3]}
    assert SECRET not in page.text and b[0] not in page.text
    assert re.search(r'<option value="pending" selected>Pending</option>', page.text)
    assert "Bad survey · 4 d" in page.text and "Bad survey · 9 d" in page.text
    # The export is the same filtered list, with the days waiting.
    link = re.search(r'id="csv-link"[^>]*href="([^"]+)"', page.text)
    assert link and "survey=pending" in link.group(1)
    exported = service.client.get(link.group(1).replace("&amp;", "&"))
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [r["account_id"] for r in rows] == listed(page.text)
    assert {r["account_id"]: r["survey_follow_up_days_waiting"] for r in rows} == {
        a[0]: "4", a[3]: "9"}
    # Unfiltered, only the pending ones carry the badge.
    everything = service.client.get("/ui/risk-list").text
    assert {a[0], a[3], a[1], a[2]} <= set(listed(everything))
    assert everything.count("Bad survey ·") == 2
    # Another CSM's list stays refused, filter or not.
    foreign = service.client.get("/ui/risk-list", params={"survey": "pending", "csm": "csm-b"})
    assert foreign.status_code == 403 and SECRET not in foreign.text

    sign_in(service, service.keys.crm)
    every = service.client.get("/ui/risk-list", params={"survey": "pending"}).text
    assert set(listed(every)) == {a[0], a[3], b[0]}
    only_b = service.client.get("/ui/risk-list", params={"survey": "pending", "csm": "csm-b"})
    assert listed(only_b.text) == [b[0]]


def test_an_unknown_survey_filter_is_a_422_page(service):
    sign_in(service, service.keys.crm)
    for path in ("/ui/risk-list", "/ui/risk-list.csv"):
        answer = service.client.get(path, params={"survey": "done"})
        assert answer.status_code == 422, answer.text[:300]
        assert "invalid query.survey: must be one of pending" in answer.text
        assert answer.headers["content-type"].startswith("text/html")


def test_without_a_surveys_table_the_pages_still_render_and_say_so(service, data_dir):
    account = accounts_of(service, "csm-a")[0]
    sign_in(service, service.keys.csm_a)
    page = service.client.get(f"/ui/accounts/{account}")
    assert page.status_code == 200
    assert "No survey: the data directory has no surveys table." in words(survey_part(page.text))
    listing = service.client.get("/ui/risk-list", params={"survey": "pending"})
    assert listing.status_code == 200 and listed(listing.text) == []
    assert "the data directory has no surveys table" in listing.text
    assert "Bad survey" not in service.client.get("/ui/risk-list").text
    exported = service.client.get("/ui/risk-list.csv", params={"survey": "pending"})
    assert exported.status_code == 200 and exported.text.count("\n") == 1  # the header only


def test_an_unreadable_data_directory_leaves_the_page_up(service):
    """The seeded run names a directory that does not exist here: the survey part says why,
    the unfiltered list is the usual one, the filtered export refuses rather than mislead."""
    account = accounts_of(service, "csm-a")[0]
    sign_in(service, service.keys.csm_a)
    page = service.client.get(f"/ui/accounts/{account}")
    assert page.status_code == 200
    assert "No survey: the data directory of the latest scoring run is not readable" in words(
        survey_part(page.text))
    unfiltered = service.client.get("/ui/risk-list").text
    assert listed(unfiltered)
    # No badge must not read as "none pending" (found by review), on the page or in the CSV.
    assert 'id="survey-caveat"' in unfiltered and "unknown, not" in words(unfiltered)
    exported = service.client.get("/ui/risk-list.csv")
    assert exported.status_code == 200
    import csv

    rows = csv.DictReader(exported.text.lstrip("\ufeff").splitlines())
    days = [row["survey_follow_up_days_waiting"] for row in rows]
    assert days and set(days) == {"unknown"}
    filtered = service.client.get("/ui/risk-list", params={"survey": "pending"})
    assert filtered.status_code == 200
    assert "Survey follow-ups cannot be read" in filtered.text
    assert service.client.get("/ui/risk-list.csv", params={"survey": "pending"}).status_code == 503


def test_a_surveys_table_the_contract_refuses_leaves_the_pages_up(service, data_dir):
    """Found by review: a surveys file without its score column was a 500 on the risk list,
    every account page and the CSV."""
    account = accounts_of(service, "csm-a")[0]
    pd.DataFrame({"account_id": [account], "date": [today().isoformat()],
                  "comment": ["no score"]}).to_csv(data_dir / "surveys.csv", index=False)
    sign_in(service, service.keys.csm_a)
    page = service.client.get(f"/ui/accounts/{account}")
    assert page.status_code == 200
    assert "No survey: the data cannot be read" in words(survey_part(page.text))
    listing = service.client.get("/ui/risk-list")
    assert listing.status_code == 200 and 'id="survey-caveat"' in listing.text
    assert service.client.get("/ui/risk-list.csv").status_code == 200


def test_the_page_reads_days_in_the_surveys_time_zone(service, data_dir, monkeypatch):
    """With Asia/Tokyo: a survey dated Tokyo's today and a callback at 00:30 Tokyo time that
    day (the UTC day before) read "Followed up on <that day> (Asia/Tokyo)"."""
    from zoneinfo import ZoneInfo

    from service.workflows.survey_followups import today_in

    tokyo = ZoneInfo("Asia/Tokyo")
    monkeypatch.setattr(service.client.app.state.workflows.settings, "survey_timezone",
                        "Asia/Tokyo")
    account = accounts_of(service, "csm-a")[3]
    day = today_in(tokyo)
    frame = pd.DataFrame({"account_id": [account], "date": pd.to_datetime([day]),
                          "score": [1.0], "comment": ["call me"]})
    write_table(frame, data_dir, "surveys", "parquet")
    sign_in(service, service.keys.csm_a)
    assert service.client.post(f"/ui/accounts/{account}/interventions",
                               data={"csrf_token": sign_in(service, service.keys.csm_a),
                                     "playbook": "call"},
                               follow_redirects=False).status_code == 303
    callback = datetime.combine(day, datetime.min.time(), tokyo) + timedelta(minutes=30)
    with transaction(service.factory) as session:
        session.execute(update(Intervention).where(Intervention.account_id == account)
                        .values(assigned_at=callback.astimezone(UTC)))
    part = words(survey_part(service.client.get(f"/ui/accounts/{account}").text))
    assert f"Followed up on {day} (Asia/Tokyo)" in part
