"""The ops web page in a real browser (Debian's Chromium, headless, driven by Playwright):
sign in, risk list, account view with its forms, cohorts; authorisation, CSRF, the cookie,
network isolation and an axe-core accessibility check of every view."""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from ui_harness import AXE, VIEWPORT, UiStack, save_screenshot, session_cookies, sign_in

pytestmark = pytest.mark.slow


def table_account_ids(page: Any) -> list[str]:
    return page.locator("#risk-results tbody th[scope=row]").all_inner_texts()


def probability_text(value: float) -> str:
    """As the page writes a renewal probability: whole percent, rounded down (templating)."""
    return f"{math.floor(100 * value + 1e-9)}%"


def api_probability(stack: UiStack, account_id: str) -> float:
    with stack.api("admin") as api:
        return api.get(f"/v1/accounts/{account_id}/renewal").json()["probability"]


def stored_value(stack: UiStack, account_id: str, feature: str) -> Any:
    row = stack.frame.loc[stack.frame["account_id"].astype(str) == account_id].iloc[0]
    return row[feature]


# -- sign-in, cookie, redirects ----------------------------------------------------------


def test_an_anonymous_visit_goes_to_the_sign_in_page(ui_stack: UiStack) -> None:
    with httpx.Client(base_url=ui_stack.base, timeout=30) as client:
        for path in ("/ui/risk-list", "/ui/cohorts", "/ui/accounts/A000001",
                     "/ui/risk-list.csv", "/ui"):
            response = client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"] == "/ui/login"
        htmx = client.post("/ui/accounts/A000001/what-if", headers={"HX-Request": "true"})
        assert htmx.status_code == 401 and htmx.headers["hx-redirect"] == "/ui/login"
        # The API keeps answering 401 problem+json: the page's cookie is not an API key.
        client.cookies.set("renewal_ui_session", ui_stack.keys["admin"])
        api = client.get("/v1/risk-list")
        assert api.status_code == 401
        assert api.headers["content-type"] == "application/problem+json"


def test_sign_in_keeps_a_session_token_not_the_key_in_a_strict_http_only_cookie(
        context: Any, ui_stack: UiStack) -> None:
    page = context.new_page()
    page.goto(f"{ui_stack.base}/ui/login")
    page.get_by_label("API key").fill("rnw_not-a-key")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Unknown or revoked API key."
    assert not [c for c in context.cookies() if c["name"] == "renewal_ui_session"]

    page = sign_in(context, ui_stack, "csm")
    (cookie,) = [c for c in context.cookies() if c["name"] == "renewal_ui_session"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/ui"
    assert cookie["value"] != ui_stack.keys["csm"]  # a server-side session's token
    assert page.evaluate("document.cookie") == ""  # no script can read it
    assert "alice" in page.locator(".who").inner_text()

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/ui/login"))
    assert not [c for c in context.cookies() if c["name"] == "renewal_ui_session"]
    page.goto(f"{ui_stack.base}/ui/risk-list")
    assert page.url.endswith("/ui/login")


def test_every_page_response_carries_the_security_headers(ui_stack: UiStack) -> None:
    cookies = session_cookies(ui_stack, "admin")
    with httpx.Client(base_url=ui_stack.base, timeout=60, cookies=cookies) as client:
        for path in ("/ui/login", "/ui/risk-list", "/ui/cohorts", "/ui/static/ui.css",
                     f"/ui/accounts/{ui_stack.accounts_of(ui_stack.csm_id)[0]}"):
            headers = client.get(path).headers
            csp = headers["content-security-policy"]
            assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["referrer-policy"] == "same-origin"


# -- CSRF ------------------------------------------------------------------------------------


def test_a_post_without_the_csrf_token_is_refused(ui_stack: UiStack) -> None:
    account = ui_stack.accounts_of(ui_stack.csm_id)[1]
    path = f"/ui/accounts/{account}/health-inputs"
    cookies = session_cookies(ui_stack, "csm")
    before = api_probability(ui_stack, account)
    with httpx.Client(base_url=ui_stack.base, timeout=30, cookies=cookies) as client:
        missing = client.post(path, data={"csm_score": "1"})
        wrong = client.post(path, data={"csm_score": "1", "csrf_token": "0" * 64})
        wrong_header = client.post(path, data={"csm_score": "1"},
                                   headers={"X-CSRF-Token": "0" * 64})
        page = client.get(f"/ui/accounts/{account}").text
    for response in (missing, wrong, wrong_header):
        assert response.status_code == 403
    assert api_probability(ui_stack, account) == before  # nothing was recorded
    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page)
    assert token is not None
    # Another session's token does not work either: it is bound to the key.
    other = session_cookies(ui_stack, "admin")
    with httpx.Client(base_url=ui_stack.base, timeout=30, cookies=other) as client:
        assert client.post(path, data={"csm_score": "1",
                                       "csrf_token": token.group(1)}).status_code == 403
    # With the token, the form works without JavaScript too: stored, then back to the page.
    with httpx.Client(base_url=ui_stack.base, timeout=30, cookies=cookies) as client:
        posted = client.post(path, data={"csm_score": "1", "csrf_token": token.group(1)})
    assert posted.status_code == 303 and posted.headers["location"] == f"/ui/accounts/{account}"
    with ui_stack.api("csm") as api:
        history = api.get(f"/v1/accounts/{account}/health-inputs").json()["data"]
    assert [h["csm_score"] for h in history] == [1]
    # The sign-in form has its own token (double-submit cookie).
    with httpx.Client(base_url=ui_stack.base, timeout=30) as client:
        forged = client.post("/ui/login", data={"api_key": ui_stack.keys["admin"]})
        assert forged.status_code == 403 and "renewal_ui_session" not in forged.cookies


# -- risk list -------------------------------------------------------------------------------


def test_a_csm_filters_sorts_and_exports_their_risk_list(context: Any,
                                                         ui_stack: UiStack) -> None:
    page = sign_in(context, ui_stack, "csm")
    own = set(ui_stack.accounts_of(ui_stack.csm_id))
    shown = table_account_ids(page)
    assert set(shown) == own  # a CSM sees exactly their book
    with ui_stack.api("csm") as api:
        api_rows = api.get("/v1/risk-list", params={"limit": 200}).json()["data"]
    assert shown == [r["account_id"] for r in api_rows]  # same order: ARR at risk
    save_screenshot(page, ui_stack, "ui-risk-list.png")

    tiers = {r["account_id"]: r["risk_tier"] for r in api_rows}
    tier = max(set(tiers.values()), key=list(tiers.values()).count)
    page.get_by_label("Risk tier").select_option(tier)
    page.wait_for_url(re.compile(rf"tier={tier}"))
    page.wait_for_function(
        "n => document.querySelectorAll('#risk-results tbody tr').length === n",
        arg=sum(1 for t in tiers.values() if t == tier))
    filtered = table_account_ids(page)
    assert set(filtered) == {a for a, t in tiers.items() if t == tier}
    assert page.locator("#risk-count").inner_text() == str(len(filtered))

    page.get_by_role("link", name="Probability", exact=True).click()
    page.wait_for_url(re.compile(r"sort=probability"))
    probabilities = [float(t.rstrip("%")) for t in
                     page.locator("#risk-results td.prob").all_inner_texts()]
    assert probabilities == sorted(probabilities)
    assert page.get_by_label("Risk tier").input_value() == tier  # filters survive sorting
    ordered = table_account_ids(page)

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["account_id"] for r in rows] == ordered
    assert {r["risk_tier"] for r in rows} == {tier}
    by_id = {r["account_id"]: r for r in api_rows}
    for row in rows:
        assert float(row["probability"]) == pytest.approx(by_id[row["account_id"]]["probability"],
                                                          abs=1e-4)


def _csv(client: httpx.Client, **params: str) -> list[dict[str, str]]:
    response = client.get("/ui/risk-list.csv", params=params)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_the_stale_and_csm_filters_agree_with_the_api(ui_stack: UiStack) -> None:
    cookies = session_cookies(ui_stack, "admin")
    with ui_stack.api("admin") as api:
        stale = api.get("/v1/stale-inputs").json()["data"]
    stale_ids = {a["account_id"] for group in stale for a in group["accounts"]}
    with httpx.Client(base_url=ui_stack.base, timeout=30, cookies=cookies) as client:
        flagged = _csv(client, stale="yes")
        fresh = _csv(client, stale="no")
        book = _csv(client, csm=ui_stack.other_csm_id)
    assert {r["account_id"] for r in flagged} == stale_ids  # one rule of staleness
    assert {r["inputs_stale"] for r in flagged} == {"true"}
    assert not stale_ids & {r["account_id"] for r in fresh}
    assert len(flagged) + len(fresh) == len(ui_stack.frame)
    assert {r["account_id"] for r in book} == set(ui_stack.accounts_of(ui_stack.other_csm_id))


def test_a_csm_cannot_ask_for_another_csms_list_or_csv(ui_stack: UiStack) -> None:
    cookies = session_cookies(ui_stack, "csm")
    with httpx.Client(base_url=ui_stack.base, timeout=30, cookies=cookies) as client:
        for path in ("/ui/risk-list", "/ui/risk-list.csv"):
            response = client.get(path, params={"csm": ui_stack.other_csm_id})
            assert response.status_code == 403, path
        exported = client.get("/ui/risk-list.csv").content.decode("utf-8-sig")
    ids = {r["account_id"] for r in csv.DictReader(io.StringIO(exported))}
    assert ids == set(ui_stack.accounts_of(ui_stack.csm_id))


# -- account view ----------------------------------------------------------------------------


def _account_without(stack: UiStack, csm_id: str, feature: str) -> str:
    """The CSM's longest-standing account whose stored ``feature`` is false (a lever can
    move it; a long history makes the fullest page)."""
    frame = stack.frame.sort_values(["tenure_days", "account_id"], ascending=[False, True])
    own = set(stack.accounts_of(csm_id))
    for account in (a for a in frame["account_id"].astype(str) if a in own):
        value = stored_value(stack, account, feature)
        if value is not None and value is not pd.NA and not bool(value):
            return account
    raise AssertionError(f"no account of {csm_id} without {feature}")


def test_changing_a_manual_input_rescores_the_account_on_the_page(context: Any,
                                                                  ui_stack: UiStack) -> None:
    page = sign_in(context, ui_stack, "csm")
    account = _account_without(ui_stack, ui_stack.csm_id, "exec_sponsor_active")
    page.get_by_role("link", name=account, exact=True).click()
    page.wait_for_url(re.compile(rf"/ui/accounts/{account}$"))
    before = page.locator("#probability").inner_text()
    assert before == probability_text(api_probability(ui_stack, account))
    assert page.locator("#current-sponsor").inner_text() == "no"

    page.get_by_label("Executive sponsor uses the product").select_option("yes")
    page.get_by_label("CSM score (1–5)").select_option("5")
    page.get_by_role("button", name="Record and re-score").click()
    page.locator("#rescored").wait_for()
    after = api_probability(ui_stack, account)
    assert page.locator("#probability").inner_text() == probability_text(after)  # htmx swap
    assert page.locator("#rescored").inner_text() == probability_text(after)
    assert probability_text(after) != before
    assert page.locator("#current-sponsor").inner_text() == "yes"
    assert page.url.endswith(f"/ui/accounts/{account}")  # no page load: a swap


def test_ticking_a_lever_shows_the_what_if_live(context: Any, ui_stack: UiStack) -> None:
    page = sign_in(context, ui_stack, "csm")
    account = _account_without(ui_stack, ui_stack.csm_id, "core_process_live")
    page.goto(f"{ui_stack.base}/ui/accounts/{account}")
    assert page.locator("#whatif-after").count() == 0
    page.get_by_label("Get the customer's core business process running in the product.").check()
    page.locator("#whatif-after").wait_for()
    with ui_stack.api("csm") as api:
        expected = api.post(f"/v1/accounts/{account}/what-if",
                            json={"levers": [{"name": "core_process_live"}]}).json()
    assert page.locator("#whatif-before").inner_text() == probability_text(
        expected["probability_before"])
    assert page.locator("#whatif-after").inner_text() == probability_text(
        expected["combined"]["probability_after"])

    page.get_by_label("Raise seat utilisation over 30 days to the given share "
                      "(never lowers it).").check()
    page.wait_for_function("() => document.querySelectorAll("
                           "'#whatif-result tbody tr').length === 2")
    with ui_stack.api("csm") as api:
        both = api.post(f"/v1/accounts/{account}/what-if", json={"levers": [
            {"name": "core_process_live"}, {"name": "raise_seat_utilization", "value": 0.8},
        ]}).json()
    assert page.locator("#whatif-after").inner_text() == probability_text(
        both["combined"]["probability_after"])
    save_screenshot(page, ui_stack, "ui-account.png")


def test_a_csm_opening_another_csms_account_gets_404(context: Any, ui_stack: UiStack) -> None:
    page = sign_in(context, ui_stack, "csm")
    foreign = ui_stack.accounts_of(ui_stack.other_csm_id)[0]
    response = page.goto(f"{ui_stack.base}/ui/accounts/{foreign}")
    assert response is not None and response.status == 404
    assert foreign not in page.locator("main").inner_text().split("'")[0]
    cookies = session_cookies(ui_stack, "csm")
    with httpx.Client(base_url=ui_stack.base, timeout=30, cookies=cookies) as client:
        token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"',
                          client.get("/ui/risk-list").text).group(1)
        for form in ("health-inputs", "what-if", "interventions"):
            posted = client.post(f"/ui/accounts/{foreign}/{form}",
                                 data={"csrf_token": token, "csm_score": "3",
                                       "lever": "exec_sponsor_active", "playbook": "qbr"})
            assert posted.status_code == 404, form


def test_a_crm_key_reads_an_account_but_has_no_forms_to_write(context: Any,
                                                               ui_stack: UiStack) -> None:
    page = sign_in(context, ui_stack, "crm")
    account = ui_stack.accounts_of(ui_stack.other_csm_id)[0]
    page.goto(f"{ui_stack.base}/ui/accounts/{account}")
    assert page.get_by_role("button", name="Record and re-score").count() == 0
    cookies = session_cookies(ui_stack, "crm")
    with httpx.Client(base_url=ui_stack.base, timeout=30, cookies=cookies) as client:
        token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"',
                          client.get("/ui/risk-list").text).group(1)
        posted = client.post(f"/ui/accounts/{account}/health-inputs",
                             data={"csrf_token": token, "csm_score": "3"})
    assert posted.status_code == 403  # the API's role rule: csm and admin only


def test_recording_an_intervention_adds_it_to_the_log(context: Any, ui_stack: UiStack) -> None:
    page = sign_in(context, ui_stack, "csm")
    account = ui_stack.accounts_of(ui_stack.csm_id)[2]
    page.goto(f"{ui_stack.base}/ui/accounts/{account}")
    page.get_by_label("Playbook").fill("exec-reengagement")
    page.get_by_label("Note (private)").fill("Call the COO on Tuesday")
    page.get_by_role("button", name="Record", exact=True).click()
    page.locator("#interventions .notice").wait_for()
    log = page.locator("#interventions tbody").inner_text()
    assert "exec-reengagement" in log and "Call the COO on Tuesday" in log
    with ui_stack.api("csm") as api:
        stored = api.get(f"/v1/accounts/{account}/interventions").json()["data"]
    assert [i["playbook"] for i in stored] == ["exec-reengagement"]


# -- cohorts -------------------------------------------------------------------------------


def test_the_cohorts_page_draws_every_chart(context: Any, ui_stack: UiStack) -> None:
    page = sign_in(context, ui_stack, "admin")
    page.get_by_role("link", name="Cohorts").click()
    page.wait_for_url(re.compile(r"/ui/cohorts"))
    for title in ("Activation rate by signing month", "Monthly activity rate",
                  "Renewal rate by month of contract end",
                  "Net dollar retention by month of contract end",
                  "Reliability: predicted probability against observed renewal",
                  "Renewal forecast by month"):
        assert page.get_by_role("img", name=title).count() == 1, title
    assert page.locator("main .empty").count() == 0
    with ui_stack.api("admin") as api:
        forecast = api.get("/v1/forecast").json()
    expected = f"{forecast['total']['expected_renewed_arr']:,.0f}"
    lede = page.locator("#c-forecast + p").inner_text()
    assert expected in lede
    logos = f"{forecast['total']['expected_logos']:.1f} of {forecast['total']['accounts']} account"
    assert logos in lede  # logos of accounts, not of contract terms
    save_screenshot(page, ui_stack, "ui-cohorts.png")


# -- network isolation and accessibility -----------------------------------------------------


def _views(stack: UiStack) -> list[str]:
    """The three views, the account view last (its what-if is used after the visit)."""
    account = stack.accounts_of(stack.csm_id)[3]
    return ["/ui/risk-list", "/ui/cohorts", f"/ui/accounts/{account}"]


def test_no_page_requests_another_host_or_breaks_its_csp(context: Any,
                                                         ui_stack: UiStack) -> None:
    requested: list[str] = []
    problems: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = sign_in(context, ui_stack, "csm")
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    for view in _views(ui_stack):
        page.goto(f"{ui_stack.base}{view}")
        page.wait_for_load_state("networkidle")
    page.get_by_label("Get the customer's executive sponsor using the product regularly.").check()
    page.locator("#whatif-after").wait_for()
    assert requested and all(url.startswith(f"{ui_stack.base}/") for url in requested), {
        url for url in requested if not url.startswith(f"{ui_stack.base}/")}
    assert any("/ui/static/vendor/htmx" in url for url in requested)
    assert problems == [], "\n".join(problems + requested)  # no CSP block, no script error


def test_every_view_passes_axe_without_serious_violations(browser: Any,
                                                          ui_stack: UiStack) -> None:
    # Playwright inlines the injected axe script; only this test's context bypasses the CSP.
    context = browser.new_context(viewport=VIEWPORT, bypass_csp=True)
    try:
        page = sign_in(context, ui_stack, "csm")
        for view in ["/ui/login", *_views(ui_stack)]:
            if view == "/ui/login":
                anonymous = browser.new_context(viewport=VIEWPORT, bypass_csp=True)
                target = anonymous.new_page()
            else:
                target = page
            target.goto(f"{ui_stack.base}{view}")
            target.add_script_tag(path=str(AXE))
            result = target.evaluate("async () => await axe.run(document)")
            serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
                       for v in result["violations"] if v["impact"] in ("serious", "critical")]
            assert serious == [], (view, serious)
            if view == "/ui/login":
                anonymous.close()
    finally:
        context.close()
