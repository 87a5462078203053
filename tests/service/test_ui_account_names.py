"""The ops page names the customer: a Name column in the risk list (sortable, escaped), the
name in the account page's heading, a ``name`` column in the CSV (formula-quoted); a CSM
sees only their own customers' names. The data: ``account_name_data``."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
from account_name_data import ACCENTED, BOBS, FORMULA, SCRIPT, UNNAMED, with_names
from service_harness import sign_in_csrf as sign_in


@pytest.fixture
def named(service, tmp_path, monkeypatch):
    return with_names(service, tmp_path, monkeypatch)


def name_cells(page: str) -> dict[str, str]:
    """Account id → the text of the Name cell beside its row header."""
    rows = re.findall(r'<th scope="row"><a href="/ui/accounts/([^"]+)">[^<]*</a></th>\s*'
                      r"<td>(.*?)</td>", page, re.S)
    return {account: html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for account, cell in rows}


def heading(page: str) -> str:
    found = re.search(r"<h1>(.*?)</h1>", page, re.S)
    assert found
    return found.group(1)


def test_the_risk_list_shows_each_name_beside_its_id(named):
    sign_in(named, named.keys.admin)
    page = named.client.get("/ui/risk-list").text
    assert '<th scope="col"' in page and ">Name<" in page
    cells = name_cells(page)
    assert len(cells) == 50  # one page
    everything = name_cells(named.client.get("/ui/risk-list", params={"page": 2}).text)
    cells.update(everything)
    assert cells["acc-00006"] == ACCENTED and cells["acc-00001"] == BOBS
    assert cells[UNNAMED] == "—"
    assert cells["acc-00012"] == "Prairiestone Consulting B.V."


def test_a_name_is_text_never_markup(named):
    sign_in(named, named.keys.csm_a)
    page = named.client.get("/ui/risk-list", params={"sort": "name"}).text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Sons" in page
    account = named.client.get("/ui/accounts/acc-00000").text
    assert "<script>alert(1)</script>" not in account
    assert "&lt;script&gt;" in heading(account)


def test_the_list_sorts_by_name_whatever_the_case_unnamed_last(named):
    sign_in(named, named.keys.csm_a)
    ascending = named.client.get("/ui/risk-list", params={"sort": "name"}).text
    names = list(name_cells(ascending).values())
    assert names[-1] == "—"  # the unnamed account, last
    assert names[:-1] == sorted(names[:-1], key=str.casefold)
    descending = named.client.get("/ui/risk-list", params={"sort": "name", "dir": "desc"}).text
    assert list(name_cells(descending).values()) == [*reversed(names[:-1]), "—"]


def test_the_account_page_is_headed_by_the_name_with_the_id_beside_it(named):
    sign_in(named, named.keys.crm)
    page = named.client.get("/ui/accounts/acc-00006").text
    assert heading(page) == f'{ACCENTED} <span class="account-id">Account acc-00006</span>'
    assert f"<title>{ACCENTED} · acc-00006 · Renewal ops</title>" in page
    unnamed = named.client.get(f"/ui/accounts/{UNNAMED}").text
    assert heading(unnamed) == f"Account {UNNAMED}"


def test_the_csv_has_the_name_column_formula_quoted(named):
    sign_in(named, named.keys.admin)
    exported = named.client.get("/ui/risk-list.csv").content.decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(exported))
    assert reader.fieldnames is not None and reader.fieldnames[:2] == ["account_id", "name"]
    rows = {r["account_id"]: r for r in reader}
    assert rows["acc-00003"]["name"] == "'" + FORMULA  # a spreadsheet shows it, never runs it
    assert rows["acc-00000"]["name"] == SCRIPT  # as written: a CSV is no web page
    assert rows["acc-00006"]["name"] == ACCENTED
    assert rows[UNNAMED]["name"] == ""
    assert rows["acc-00001"]["name"] == BOBS


def test_a_csm_sees_only_their_own_customers_names(named):
    sign_in(named, named.keys.csm_a)
    page = named.client.get("/ui/risk-list").text
    exported = named.client.get("/ui/risk-list.csv").content.decode("utf-8-sig")
    for text in (page, exported):
        assert "Bob" not in text
    assert ACCENTED in page and ACCENTED in exported
    foreign = named.client.get("/ui/accounts/acc-00001")
    assert foreign.status_code == 404 and "Bob" not in foreign.text
