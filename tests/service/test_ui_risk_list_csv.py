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
