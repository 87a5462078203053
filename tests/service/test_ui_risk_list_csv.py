"""The risk-list CSV opens in Excel with its names intact: Excel reads a UTF-8 file without a
byte-order mark in the local code page, which garbled CSM and account names (é, 東京)."""

from __future__ import annotations

import csv
import dataclasses

from service_harness import sign_in_csrf as sign_in

from service.ui.risk_rows import CSV_COLUMNS

BOM = b"\xef\xbb\xbf"
CSM = "csm-éloïse-東京"
SEGMENT = "Île-de-France"


def test_the_csv_starts_with_the_utf8_byte_order_mark(service, monkeypatch, tmp_path):
    cache = service.client.app.state.context.cache
    victim = cache.risk_order[0]
    named = dataclasses.replace(victim, csm_id=CSM, segment=SEGMENT)
    monkeypatch.setattr(cache, "_entries", {**cache._entries, victim.account_id: named})
    monkeypatch.setattr(cache, "_order", [named if e is victim else e for e in cache.risk_order])
    sign_in(service, service.keys.crm)

    response = service.client.get("/ui/risk-list.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith(BOM + b"account_id,")  # one mark, then the header

    exported = tmp_path / "risk-list.csv"  # as the browser saves it for Excel
    exported.write_bytes(response.content)
    with exported.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == list(CSV_COLUMNS)
    assert len(rows) == len(cache.risk_order)
    (row,) = [r for r in rows if r["account_id"] == victim.account_id]
    assert row["csm_id"] == CSM and row["segment"] == SEGMENT


def test_an_empty_filtered_csv_still_starts_with_the_mark(service):
    sign_in(service, service.keys.crm)
    response = service.client.get("/ui/risk-list.csv", params={"segment": "no-such-segment"})
    assert response.status_code == 200
    assert response.content == BOM + (",".join(CSV_COLUMNS) + "\n").encode()


def test_the_renewal_date_is_on_the_list_sorts_soonest_first_and_is_exported(service,
                                                                             monkeypatch):
    """Found by audit: the API had renewal_date and days_to_renewal, the page showed no
    renewal date at all; a term ending on the as-of day surfaced only as a driver. Three
    entries made due in 40 days, overdue by 5 and unknown: the list says so, sorts the
    soonest (the overdue) first and unknown dates last, and the CSV carries date and days."""
    import re
    from datetime import timedelta

    cache = service.client.app.state.context.cache
    first, second, third = cache.risk_order[:3]
    due = {first.account_id: 40, second.account_id: -5, third.account_id: None}
    changed = {e.account_id: dataclasses.replace(e, days_to_renewal=due[e.account_id])
               for e in (first, second, third)}
    monkeypatch.setattr(cache, "_entries", {**cache._entries, **changed})
    monkeypatch.setattr(cache, "_order", [changed.get(e.account_id, e)
                                          for e in cache.risk_order])
    sign_in(service, service.keys.crm)

    page = service.client.get("/ui/risk-list").text
    as_of = first.as_of
    assert (f'<span class="nowrap" title="The term ends {as_of + timedelta(days=40)}">'
            "40&nbsp;d</span>") in page
    assert "5&nbsp;d late" in page
    listed = service.client.get("/ui/risk-list", params={"sort": "days_to_renewal"}).text
    order = re.findall(r'<th scope="row"><a href="/ui/accounts/([^"]+)">', listed)
    assert order.index(second.account_id) < order.index(first.account_id)
    unknown = [e.account_id for e in cache.risk_order if e.days_to_renewal is None]
    known = [a for a in order if a not in unknown]
    assert order[:len(known)] == known  # unknown renewal dates after every known one
    rows = list(csv.DictReader(
        service.client.get("/ui/risk-list.csv").content.decode("utf-8-sig").splitlines()))
    mine = {r["account_id"]: (r["renewal_date"], r["days_to_renewal"]) for r in rows}
    assert mine[first.account_id] == (str(as_of + timedelta(days=40)), "40")
    assert mine[second.account_id] == (str(as_of - timedelta(days=5)), "-5")
    assert mine[third.account_id] == ("", "")
