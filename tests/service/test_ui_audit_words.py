"""Words on the ops page that must be true (an audit of the page): a late activation is not
"not activated", "never surveyed" means no CSM input (not a customer survey), and a what-if
lever that moves nothing says whether the model does not read it, the account is already
there, or the gain is out of reach.

A real app on a real SQLite store, serving a small real LightGBM model on the lever model's
features (it reads seat utilisation, being activated and being past the window) with the
feature registry's own words, and three crafted accounts of CSM csm-a stored by the scoring
job's own code."""

from __future__ import annotations

import dataclasses
import html
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import service_factories as factories
from service_harness import LATEST, Service, build_service
from service_harness import sign_in_csrf as sign_in

from features.registry import get_feature
from service.predict import score_vectors
from service.scoring import store_scores
from training.scorer import Calibrator, RenewalScorer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflows"))
import workflow_factories as wf  # noqa: E402

LATE, NO_INPUT, OPEN = "acc-late", "acc-no-input", "acc-open"


def late_aware_scorer(rows: int = 4000) -> RenewalScorer:
    """The lever model's features, trained where being past the window weighs on its own
    (in the lever model it is always "not activated", so no tree reads it), with the feature
    registry's words, as training copies them into a model."""
    X6, _ = factories.training_matrix(rows, 0)
    extra = wf.lever_columns(rows, 1)
    rng = np.random.default_rng(2)
    extra["past_window_not_activated"] = rng.random(rows) < 0.5
    X = np.column_stack([X6] + [np.asarray(extra[n], dtype=float) for n in wf.NAMES[6:]])
    index = {name: i for i, name in enumerate(wf.NAMES)}
    logit = (-2.0 + 0.1 * X[:, 0] + 1.0 * X[:, 2] + 2.0 * X[:, index["seat_utilization_30d"]]
             + 1.0 * X[:, index["activated"]] - 1.5 * X[:, index["past_window_not_activated"]])
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 7, "learning_rate": 0.1, "verbose": -1,
         "monotone_constraints": [s.monotone for s in wf.LEVER_SPECS], "seed": 0,
         "num_threads": 1, "min_data_in_leaf": 20},
        lgb.Dataset(X, y, feature_name=wf.NAMES, categorical_feature=[5]),
        num_boost_round=40)
    specs = [dataclasses.replace(spec, description=get_feature(spec.name).description,
                                 description_false=get_feature(spec.name).description_false)
             for spec in wf.LEVER_SPECS]
    return RenewalScorer(booster, specs, Calibrator("sigmoid"), heuristic_factor=0.9)


def crafted() -> pd.DataFrame:
    frame = wf.lever_frame(3, LATEST, seed=5)
    frame["account_id"] = pd.Series([LATE, NO_INPUT, OPEN], dtype="string")
    frame["csm_id"] = pd.Series(["csm-a"] * 3, dtype="string")
    frame["arr"] = 1_000_000.0  # riskiest ARR first: on the list's first page
    frame["tenure_days"] = [400.0, 300.0, 10.0]
    frame["activation_window_days"] = 30.0
    frame["activated"] = pd.Series([False, True, False], dtype="boolean")
    frame["past_window_not_activated"] = pd.Series([True, False, False], dtype="boolean")
    frame["days_to_activation"] = [167.0, 12.0, np.nan]
    frame["seat_utilization_30d"] = 0.45
    frame["exec_sponsor_active"] = pd.Series([False] * 3, dtype="boolean")
    frame["health_input_age_days"] = [10.0, np.nan, 10.0]  # NaN: no CSM input ever
    return frame


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    scorer = late_aware_scorer()
    for service in build_service(tmp_path_factory.mktemp("words"), scorer, n_accounts=30):
        model = service.client.app.state.context.models.current
        frame = crafted()
        # Every driver kept (the batch job keeps the top few), so all activation words show.
        scored = score_vectors(model, frame, service.service_settings, top_k=20)
        store_scores(service.factory, frame, scored, model, LATEST, "/nonexistent-data-dir")
        service.client.app.state.context.cache.load()
        yield service


def row_of(listing: str, account_id: str) -> str:
    row = re.search(rf'<tr>\s*<th scope="row"><a href="/ui/accounts/{account_id}">.*?</tr>',
                    listing, re.S)
    assert row, f"{account_id} not listed"
    return row.group(0)


def text(fragment: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment))).strip()


# -- activation ------------------------------------------------------------------------------


def test_a_late_activation_is_not_listed_as_not_activated(page):
    sign_in(page, page.keys.csm_a)
    listing = page.client.get("/ui/risk-list").text
    assert "Window missed" not in listing
    assert "Activated late, day 167" in text(row_of(listing, LATE))
    assert "Not yet, window open" in text(row_of(listing, OPEN))
    # The filter keeps its URL value, with the same words.
    assert re.search(r'<option value="past_window">Not activated within window</option>',
                     listing)
    missed = page.client.get("/ui/risk-list", params={"activation": "past_window"}).text
    assert LATE in missed and OPEN not in missed
    summary = page.client.get(f"/ui/accounts/{LATE}").text
    assert re.search(r"<dt>Activation</dt><dd>Activated late, day 167</dd>", summary)


def test_the_drivers_of_a_late_activation_do_not_contradict_each_other(page):
    sign_in(page, page.keys.csm_a)
    account = page.client.get(f"/ui/accounts/{LATE}").text
    listed = re.search(r"<summary>The drivers as a list</summary>\s*<ul>(.*?)</ul>", account,
                       re.S)
    assert listed
    words = [text(w) for w, _points in re.findall(r"<li>([^<]*): ([^<]*)</li>",
                                                  listed.group(1))]
    activation = [w for w in words if "activat" in w]
    assert "activated 167 days after signing" in activation
    assert "past its activation window and not activated within it" in activation
    assert "not activated within its window" in activation
    for phrase in activation:  # "not activated" only ever WITHIN the window
        assert all(rest.startswith(" within") for rest in phrase.split("not activated")[1:])


# -- no CSM input ----------------------------------------------------------------------------


def test_no_health_input_reads_no_csm_input_not_never_surveyed(page):
    sign_in(page, page.keys.csm_a)
    listing = page.client.get("/ui/risk-list", params={"stale": "yes"}).text
    assert "never surveyed" not in listing.lower()
    assert "No CSM input" in text(row_of(listing, NO_INPUT))
    assert "Stale · 10 d" not in text(row_of(listing, NO_INPUT))
    assert re.search(r'<option value="yes" selected>Stale or no CSM input</option>', listing)
    account = page.client.get(f"/ui/accounts/{NO_INPUT}").text
    assert "never surveyed" not in account.lower()
    summary = re.search(r'<section id="summary".*?</section>', account, re.S)
    inputs = re.search(r'<section id="inputs".*?</section>', account, re.S)
    assert summary and "No CSM input" in text(summary.group(0))
    assert inputs and "No CSM input" in text(inputs.group(0))
    # The API's key is a contract and stays.
    served = page.get(f"/v1/accounts/{NO_INPUT}/renewal", page.keys.csm_a).json()
    assert served["inputs"]["never_surveyed"] is True


# -- what-if notes ---------------------------------------------------------------------------


def what_if_notes(page, account_id: str, csrf: str, **levers: str | None) -> dict[str, str]:
    """The lever table of the what-if answer (htmx): lever words → note."""
    data: dict[str, object] = {"csrf_token": csrf, "lever": list(levers)}
    data.update({f"value_{name}": value for name, value in levers.items() if value})
    answer = page.client.post(f"/ui/accounts/{account_id}/what-if", data=data,
                              headers={"HX-Request": "true"})
    assert answer.status_code == 200, answer.text[:300]
    rows = re.findall(r"<tr>\s*<td>(.*?)</td>\s*<td class=\"num\">(.*?)</td>\s*"
                      r"<td class=\"small lever-note\">(.*?)</td>", answer.text, re.S)
    assert len(rows) == len(levers), answer.text
    return {text(name): (text(alone), text(note)) for name, alone, note in rows}


def test_a_target_already_met_is_not_called_unread(page):
    csrf = sign_in(page, page.keys.csm_a)
    notes = what_if_notes(page, LATE, csrf, raise_seat_utilization="0.3")
    alone, note = notes["raise seat utilization to 30%"]
    assert alone == "0 pts"
    assert note == ("No effect: already at or above the target of 30%: now 45% of seats used "
                    "in the last 30 days.")
    assert "does not read" not in note


def test_complete_activation_after_the_window_is_out_of_reach(page):
    csrf = sign_in(page, page.keys.csm_a)
    notes = what_if_notes(page, LATE, csrf, complete_activation=None,
                          exec_sponsor_active=None)
    alone, note = notes["complete activation"]
    assert alone == "0 pts"
    assert note.startswith("Out of reach: it activated 167 days after signing, after its "
                           "30-day activation window had closed")
    inside = what_if_notes(page, OPEN, csrf, complete_activation=None)["complete activation"]
    assert "Out of reach" not in inside[1] and inside[0].startswith("+")


def test_an_unread_feature_is_still_called_unread(service):
    """The tiny model reads no seat utilisation: that note stays (service fixture)."""
    csrf = sign_in(service, service.keys.csm_a)
    account = next(e.account_id for e in service.client.app.state.context.cache.risk_order
                   if e.csm_id == "csm-a")
    (alone, note), = what_if_notes(service, account, csrf,
                                   raise_seat_utilization="0.3").values()
    assert note == "No effect: the model does not read seat utilization 30d."


# -- one percentage for one score ------------------------------------------------------------


def test_the_list_the_account_page_and_the_chart_show_one_percentage_for_a_score(page):
    """Found by audit: the list rounded down the raw probability (0.66996 -> 66 %) while the
    account page rounded down the served one (0.6700 -> 67 %), and the history chart rounded
    to nearest (0.8168 -> 82 % beside a summary of 81 %)."""
    from service.ui.account_view import history_chart
    from service.ui.risk_rows import row_of as list_row
    from service.ui.templating import chance

    entry = dataclasses.replace(page.client.app.state.context.cache.get(OPEN),
                                probability=0.66996)
    assert chance(list_row(entry).probability) == "67%"  # as the API serves it: 0.67
    chart = str(history_chart([{"as_of": LATEST, "probability": 0.8168, "risk_tier": "low",
                                "model": {"version": "1"}}], 0.5, 0.75))
    assert "latest 81%" in chart and ": 81% (low risk" in chart
    assert "82%" not in chart
