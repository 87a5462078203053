"""The risk list's filter menus show the filter that is applied, even one typed into the URL
or kept in a bookmark that no account has any longer."""

from __future__ import annotations

import re

from service_harness import sign_in_page


def selected_option(html: str, select_id: str) -> str:
    menu = re.search(rf'<select id="{select_id}"[^>]*>(.*?)</select>', html, re.S)
    assert menu, f"no menu {select_id}"
    chosen = re.findall(r'<option value="([^"]*)" selected>', menu.group(1))
    assert len(chosen) <= 1
    return chosen[0] if chosen else ""


def test_a_segment_no_account_has_is_shown_as_chosen_not_as_all_segments(service):
    assert sign_in_page(service.client, service.keys.crm).status_code == 200
    page = service.client.get("/ui/risk-list", params={"segment": "Gone <b>Co</b>"}).text
    assert selected_option(page, "f-segment") == "Gone &lt;b&gt;Co&lt;/b&gt;"
    assert "No account matches these filters." in page


def test_a_csm_no_account_has_is_shown_as_chosen(service):
    assert sign_in_page(service.client, service.keys.admin).status_code == 200
    page = service.client.get("/ui/risk-list", params={"csm": "csm-left"}).text
    assert selected_option(page, "f-csm") == "csm-left"


def test_a_known_segment_is_offered_once_and_unfiltered_menus_choose_all(service):
    assert sign_in_page(service.client, service.keys.crm).status_code == 200
    page = service.client.get("/ui/risk-list").text
    assert selected_option(page, "f-segment") == ""
    segment = next(e.segment for e in service.client.app.state.context.cache.risk_order
                   if e.segment)
    filtered = service.client.get("/ui/risk-list", params={"segment": segment}).text
    assert selected_option(filtered, "f-segment") == segment
    assert filtered.count(f'<option value="{segment}"') == 1
