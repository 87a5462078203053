"""What a keyboard or screen-reader user meets after the page swaps a part of itself
(htmx): focus stays where they were, and the outcome is said by a live region that was
already on the page (a region inserted together with its text is not announced)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from ui_harness import UiStack, sign_in

pytestmark = pytest.mark.slow

#: Marks every live region now on the page, so that after a swap the test can tell the
#: regions that survived it (announced by screen readers) from ones inserted with it.
MARK_LIVE_REGIONS = """() => {
  document.querySelectorAll('[aria-live], [role=status], [role=alert]')
    .forEach(e => { e.dataset.auditBefore = '1'; });
}"""
SURVIVING_LIVE_TEXT = """() => Array.from(document.querySelectorAll(
    '[data-audit-before][aria-live], [data-audit-before][role=status]'))
  .map(e => e.textContent.trim()).join(' | ')"""


def focused(page: Any) -> str:
    return page.evaluate("() => document.activeElement === document.body ? 'body' : "
                         "document.activeElement.tagName + ':' + "
                         "document.activeElement.textContent.trim()")


def test_recording_inputs_keeps_focus_and_announces_the_new_probability(
        context: Any, ui_stack: UiStack) -> None:
    page = sign_in(context, ui_stack, "csm")
    account = ui_stack.accounts_of(ui_stack.csm_id)[1]
    page.goto(f"{ui_stack.base}/ui/accounts/{account}")
    page.get_by_label("CSM score (1–5)").select_option("2")
    page.evaluate(MARK_LIVE_REGIONS)
    button = page.get_by_role("button", name="Record and re-score")
    button.focus()
    page.keyboard.press("Enter")
    page.locator("#rescored").wait_for()
    page.wait_for_timeout(100)  # htmx settles (and restores focus) after the swap
    assert focused(page) == "BUTTON:Record and re-score"
    page.wait_for_function(f"() => ({SURVIVING_LIVE_TEXT})().includes('Recorded')")
    said = page.evaluate(SURVIVING_LIVE_TEXT)
    assert page.locator("#rescored").inner_text() in said


def test_recording_an_intervention_keeps_focus_and_announces_it(
        context: Any, ui_stack: UiStack) -> None:
    page = sign_in(context, ui_stack, "csm")
    account = ui_stack.accounts_of(ui_stack.csm_id)[3]
    page.goto(f"{ui_stack.base}/ui/accounts/{account}")
    page.get_by_label("Playbook").fill("training")
    page.evaluate(MARK_LIVE_REGIONS)
    page.get_by_role("button", name="Record", exact=True).focus()
    page.keyboard.press("Enter")
    page.locator("#interventions .notice").wait_for()
    page.wait_for_timeout(100)
    assert focused(page) == "BUTTON:Record"
    page.wait_for_function(f"() => ({SURVIVING_LIVE_TEXT})().includes('training')")


def test_changing_a_filter_announces_how_many_accounts_are_listed(
        context: Any, ui_stack: UiStack) -> None:
    page = sign_in(context, ui_stack, "crm")
    page.evaluate(MARK_LIVE_REGIONS)
    page.get_by_label("Risk tier").focus()
    page.get_by_label("Risk tier").select_option("high")
    page.wait_for_url(re.compile(r"tier=high"))
    count = page.locator("#risk-count").inner_text()
    page.wait_for_function(
        f"n => ({SURVIVING_LIVE_TEXT})().includes(n + ' account')", arg=count)
    assert focused(page).startswith("SELECT:")  # still on the menu the user changed


LONG_NAME = ("Grupo Internacional de Distribución y Logística Avanzada del Noroeste S.A. de C.V. "
             "División Comercial " + "ACCT" + "X" * 120)  # words, then one unbroken id


def test_a_very_long_account_name_wraps_instead_of_widening_the_page(
        context: Any, ui_stack: UiStack) -> None:
    """Checked on the page's real stylesheet, with the name written into the page. As
    served, the crm list must fit a 1280-px window too (it used to scroll sideways by its
    unwrappable activation column)."""
    page = sign_in(context, ui_stack, "crm")
    fits = ("() => { const w = document.querySelector('.table-wrap'); "
            "return w.scrollWidth <= w.clientWidth; }")
    assert page.evaluate(fits), page.evaluate(
        "() => { const w = document.querySelector('.table-wrap'); "
        "return [w.scrollWidth, w.clientWidth]; }")  # the list fits a 1280-px window as served
    page.evaluate("n => { document.querySelector('#risk-results tbody th a').textContent = n; }",
                  LONG_NAME)
    assert page.evaluate(fits), "the account column pushes the numbers off-screen"
    page.locator("#risk-results tbody th a").first.click()
    page.wait_for_url(re.compile(r"/ui/accounts/"))
    page.evaluate("n => { document.querySelector('h1').textContent = 'Account ' + n; }",
                  LONG_NAME)
    assert page.evaluate("() => document.documentElement.scrollWidth "
                         "<= document.documentElement.clientWidth")


def test_a_server_error_on_a_form_is_shown(context: Any, ui_stack: UiStack) -> None:
    """Found by audit: htmx swapped 4xx answers only, so a 503 (the database locked, no
    model) left the form silent, with no error and no "Recorded". The answer is the app's
    own error fragment for an htmx request (``app.error_page``: retargeted to the part's
    status line). The button is not disabled meanwhile: a disabled button loses the
    keyboard focus (the test above keeps it), and a second click records nothing twice."""
    page = sign_in(context, ui_stack, "csm")
    account = ui_stack.accounts_of(ui_stack.csm_id)[2]
    page.goto(f"{ui_stack.base}/ui/accounts/{account}")
    held: list[Any] = []
    page.route("**/health-inputs", lambda route: held.append(route))
    page.get_by_label("CSM score (1–5)").select_option("3")
    button = page.get_by_role("button", name="Record and re-score")
    button.click()
    page.wait_for_function("() => document.querySelector('#inputs form.htmx-request')")
    assert held, "the form did not post"
    held[0].fulfill(status=503, headers={
        "Content-Type": "text/html; charset=utf-8", "HX-Retarget": "#inputs-status",
        "HX-Reswap": "innerHTML"},
        body='<p class="alert" role="alert">Not available right now: the score database '
             'is not reachable.</p>')
    page.locator("#inputs-status .alert").wait_for()
    assert "Not available right now" in page.locator("#inputs-status").inner_text()


def test_a_refused_filter_is_said_and_not_pushed_to_the_address_bar(
        context: Any, ui_stack: UiStack) -> None:
    """Found by audit: a filter value the server refuses (422) was thrown away by the form's
    hx-select, the list stayed as it was under a menu naming the bad value, and the bad URL
    was pushed (reloading it gave the 422 page)."""
    page = sign_in(context, ui_stack, "crm")
    before = page.url
    page.evaluate("() => { const s = document.querySelector('#f-tier'); "
                  "const o = document.createElement('option'); o.value = 'bogus'; "
                  "o.textContent = 'bogus'; s.appendChild(o); }")
    page.locator("#f-tier").select_option("bogus")
    page.locator("#risk-results-status .alert").wait_for()
    assert "tier" in page.locator("#risk-results-status").inner_text()
    assert "bogus" not in page.url and page.url == before
