"""The page's pure parts, without a browser: CSV export safety, sorting, chart escaping."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import date

from service.ui import charts
from service.ui.risk_rows import RiskRow, sort_rows, to_csv
from service.ui.security import csrf_token
from service.ui.templating import chance

ROW = RiskRow(
    account_id="acc-1", csm_id="csm-a", segment="smb", arr=1000.0, probability=0.4,
    change_30d=-0.1, arr_at_risk=600.0, risk_tier="high", activation="activated",
    inputs_stale=False, inputs_age_days=3, never_surveyed=False,
    top_risk_driver="4 active days in the last 30 days", as_of=date(2025, 6, 30),
)


def test_text_a_spreadsheet_would_run_as_a_formula_is_quoted_in_the_csv() -> None:
    rows = [replace(ROW, account_id='=HYPERLINK("http://x")', top_risk_driver="@SUM(A1)",
                    segment="-1+2")]
    (record,) = csv.DictReader(io.StringIO(to_csv(rows)))
    assert record["account_id"] == "'" + rows[0].account_id
    assert record["top_risk_driver"] == "'@SUM(A1)"
    assert record["segment"] == "'-1+2"
    assert record["change_30d_points"] == "-10.0"  # numbers stay numbers


def test_a_line_break_in_a_value_never_starts_a_line_of_the_csv() -> None:
    """Quoted, "a\r\n=1+1" is one cell to a spreadsheet; a tool reading the export line by
    line saw a line "=1+1"."""
    rows = [replace(ROW, name="Acme\r\n=1+1", top_risk_driver="x\n@SUM(A1)\rend")]
    text = to_csv(rows)
    assert len(text.splitlines()) == 2  # the header and one row
    (record,) = csv.DictReader(io.StringIO(text))
    assert record["name"] == "Acme =1+1"
    assert record["top_risk_driver"] == "x @SUM(A1) end"


def test_accounts_without_a_change_sort_last_in_both_directions() -> None:
    rows = [replace(ROW, account_id="a", change_30d=None),
            replace(ROW, account_id="b", change_30d=0.05),
            replace(ROW, account_id="c", change_30d=-0.2)]
    assert [r.account_id for r in sort_rows(rows, "change_30d", "asc")] == ["c", "b", "a"]
    assert [r.account_id for r in sort_rows(rows, "change_30d", "desc")] == ["b", "c", "a"]


def test_chart_text_is_escaped() -> None:
    svg = charts.signed_bars([("<script>alert(1)</script>", -2.0)], title="t<", desc="d&")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "t&lt;" in svg and "d&amp;" in svg


def test_the_csrf_token_depends_on_the_session_and_does_not_reveal_it() -> None:
    token = "s" * 43  # a session token (secrets.token_urlsafe(32))
    assert csrf_token(token) == csrf_token(token)
    assert csrf_token(token) != csrf_token(token + "x")
    assert token not in csrf_token(token) and len(csrf_token(token)) == 64


def test_a_renewal_probability_reads_on_the_side_of_its_tier() -> None:
    """Rounded, 0.4996 read "50%" beside a "High" badge (high risk is below 0.5) and 0.7496
    "75%" beside "Medium": whole percent rounded down agrees with the cut-offs."""
    assert [chance(p) for p in (0.4996, 0.5, 0.7496, 0.75, 0.57, 0.0, 1.0)] == [
        "49%", "50%", "74%", "75%", "57%", "0%", "100%"]
    assert chance(None) == "n/a" and chance(float("nan")) == "n/a"
