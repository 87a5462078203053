"""The ops page as a CS user meets it, without a browser: empty states, numbers that must
read the same wherever they stand, form messages in the form's own words.

Signed in through the page's own form (the hidden ``login_token``), as in
``test_ui_run_warnings.py``."""

from __future__ import annotations

import csv
import dataclasses
import io
import re

import pytest
from service_harness import sign_in_csrf as sign_in

from service.db.engine import transaction
from service.keys import create_key
from service.ui.templating import templates


def empty_message(html: str) -> str:
    found = re.search(r'<p class="empty"[^>]*>(.*?)</p>', html, re.S)
    assert found, "no empty-state message"
    return re.sub(r"<[^>]+>", "", found.group(1))


def cache_of(service):
    return service.client.app.state.context.cache


def an_account_of(service, csm_id: str = "csm-a") -> str:
    return next(e.account_id for e in cache_of(service).risk_order if e.csm_id == csm_id)


# -- empty states ----------------------------------------------------------------------------


def test_a_csm_without_accounts_is_told_so_not_that_filters_match_nothing(service):
    with transaction(service.factory) as session:
        key = create_key(session, "csm", "carol", "csm-new")[1]
    sign_in(service, key)
    page = service.client.get("/ui/risk-list").text
    message = empty_message(page)
    assert "filters" not in message
    assert "No scored account is assigned to CSM csm-new" in message


def test_no_scores_yet_says_so(service, monkeypatch):
    sign_in(service, service.keys.crm)
    cache = cache_of(service)
    monkeypatch.setattr(cache, "_order", [])
    monkeypatch.setattr(cache, "_entries", {})
    message = empty_message(service.client.get("/ui/risk-list").text)
    assert "No account has been scored yet" in message and "filters" not in message


def test_filters_that_match_nothing_still_say_so(service):
    sign_in(service, service.keys.crm)
    page = service.client.get("/ui/risk-list", params={"segment": "no-such-segment"}).text
    assert empty_message(page) == "No account matches these filters."


# -- unknown ARR -----------------------------------------------------------------------------


@pytest.fixture
def unknown_arr(service, monkeypatch) -> str:
    """One account whose snapshot has no ARR (the cache counts its ARR at risk as 0)."""
    cache = cache_of(service)
    victim = cache.risk_order[0]
    changed = dataclasses.replace(victim, arr=None)
    assert changed.arr_at_risk == 0.0
    monkeypatch.setattr(cache, "_entries", {**cache._entries, victim.account_id: changed})
    monkeypatch.setattr(cache, "_order", [changed if e is victim else e
                                          for e in cache.risk_order])
    return victim.account_id


def _cells(page: str, account_id: str) -> list[str]:
    row = re.search(rf'<tr>\s*<th scope="row"><a href="/ui/accounts/{account_id}">.*?</tr>',
                    page, re.S)
    assert row, f"{account_id} not listed"
    return [re.sub(r"<[^>]+>", "", c).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.S)]


def test_an_account_without_arr_has_no_arr_at_risk_rather_than_zero(service, unknown_arr):
    sign_in(service, service.keys.crm)
    # ARR ascending-at-risk: an unknown ARR is a missing value (last), not "0 at risk" (first).
    page = service.client.get("/ui/risk-list", params={"sort": "arr_at_risk",
                                                       "dir": "asc"}).text
    first = re.search(r'<th scope="row"><a href="/ui/accounts/([^"]+)"', page)
    assert first and first.group(1) != unknown_arr
    csm_id = cache_of(service).get(unknown_arr).csm_id
    listed = service.client.get("/ui/risk-list", params={"csm": csm_id}).text
    cells = _cells(listed, unknown_arr)
    # name, csm, segment, probability, change, ARR, ARR at risk, ...
    assert cells[5] == "n/a" and cells[6] == "n/a"
    account = service.client.get(f"/ui/accounts/{unknown_arr}").text
    assert re.search(r"<dt>ARR at risk</dt><dd><strong>n/a</strong>", account)
    exported = service.client.get("/ui/risk-list.csv").content.decode("utf-8-sig")
    (record,) = [r for r in csv.DictReader(io.StringIO(exported))
                 if r["account_id"] == unknown_arr]
    assert record["arr"] == "" and record["arr_at_risk"] == ""


# -- what-if without JavaScript --------------------------------------------------------------


def test_the_what_if_slider_keeps_a_chosen_zero_without_javascript(service):
    csrf = sign_in(service, service.keys.admin)
    account = an_account_of(service)
    page = service.client.post(
        f"/ui/accounts/{account}/what-if",
        data={"csrf_token": csrf, "lever": "raise_seat_utilization",
              "value_raise_seat_utilization": "0"},
    )
    assert page.status_code == 200, page.text[:300]
    slider = re.search(r'id="value-raise_seat_utilization"[^>]*value="([^"]+)"', page.text)
    output = re.search(r'<output id="out-raise_seat_utilization"[^>]*>([^<]*)</output>',
                       page.text)
    assert slider and output
    assert float(slider.group(1)) == 0.0 and output.group(1) == "0%"
    assert "raise seat utilization to 0%" in page.text  # what was computed, as shown


def test_the_what_if_change_is_coloured_as_it_is_shown():
    """A change that rounds to "0 pts" is neither up nor down."""
    result = {"probability_before": 0.5,
              "combined": {"probability_after": 0.5003, "change_points": 0.03},
              "levers": [], "inputs_changed": []}
    html = templates().get_template("partials/whatif_result.html").render(what_if=result)
    delta = re.search(r'<div class="delta ([^"]*)" id="whatif-delta">([^<]*)</div>', html)
    assert delta and delta.group(2) == "0 pts"
    assert delta.group(1).strip() == ""


# -- forms -----------------------------------------------------------------------------------


def test_recording_no_input_names_the_form_s_fields_not_the_api_s(service):
    csrf = sign_in(service, service.keys.csm_a)
    account = an_account_of(service)
    answer = service.client.post(
        f"/ui/accounts/{account}/health-inputs", data={"csrf_token": csrf},
        headers={"HX-Request": "true", "HX-Target": "inputs"})
    assert answer.status_code == 422
    assert answer.headers["hx-retarget"] == "#inputs-status"
    assert "exec_sponsor_active" not in answer.text and "csm_score" not in answer.text
    assert "executive sponsor" in answer.text and "CSM score" in answer.text
    # The heading is the user's words too, not HTTP's phrase.
    assert "Please check what you entered:" in answer.text
    assert "Unprocessable" not in answer.text


def test_recorded_times_say_their_time_zone(service):
    csrf = sign_in(service, service.keys.csm_a)
    account = an_account_of(service)
    for path, data in (("health-inputs", {"csm_score": "4"}),
                       ("interventions", {"playbook": "qbr"})):
        answer = service.client.post(f"/ui/accounts/{account}/{path}",
                                     data={"csrf_token": csrf, **data})
        assert answer.status_code == 200, answer.text[:300]  # after the 303 to the page
    page = service.client.get(f"/ui/accounts/{account}").text
    assert page.count('<th scope="col">When (UTC)</th>') == 2


# -- drivers ---------------------------------------------------------------------------------


def test_the_drivers_list_reads_the_same_points_as_the_chart(service):
    sign_in(service, service.keys.crm)
    checked = 0
    for entry in cache_of(service).risk_order[:20]:
        page = service.client.get(f"/ui/accounts/{entry.account_id}").text
        bars = dict(re.findall(r"<rect [^>]*><title>([^<]*): ([^<]*)</title></rect>", page))
        listed = re.search(r"<summary>The drivers as a list</summary>\s*<ul>(.*?)</ul>", page,
                           re.S)
        assert listed
        for words, amount in re.findall(r"<li>([^<]*): ([^<]*)</li>", listed.group(1)):
            assert bars[words] == amount, (entry.account_id, words)
            checked += 1
    assert checked > 20


def test_the_api_says_unknown_arr_at_risk_too(service, unknown_arr):
    """The API said 0 at risk where the page says n/a: both say unknown now (null)."""
    csm_id = cache_of(service).get(unknown_arr).csm_id
    page = service.get("/v1/risk-list", service.keys.admin,
                       params={"csm_id": csm_id, "limit": 200}).json()
    [item] = [i for i in page["data"] if i["account_id"] == unknown_arr]
    assert item["arr"] is None and item["arr_at_risk"] is None
    assert all(i["arr_at_risk"] is not None for i in page["data"] if i["arr"] is not None)


def test_a_fresh_judgement_takes_the_account_off_the_page_s_stale_list(service):
    """Found by review: the page kept each score's stale status by score_id, which a health
    input's re-score keeps, so a just-surveyed account stayed in "Stale or no CSM input"
    until a restart, while the API already said fresh."""
    csrf = sign_in(service, service.keys.csm_a)

    def stale_listed() -> list[str]:
        page = service.client.get("/ui/risk-list", params={"stale": "yes"}).text
        return re.findall(r'<th scope="row"><a href="/ui/accounts/([^"]+)"', page)

    before = stale_listed()
    assert before, "the seeded accounts have stale inputs: the check would prove nothing"
    account = before[0]
    posted = service.client.post(f"/ui/accounts/{account}/health-inputs",
                                 data={"csrf_token": csrf, "csm_score": "4"},
                                 follow_redirects=False)
    assert posted.status_code in (200, 303), posted.text[:300]
    assert account not in stale_listed()
