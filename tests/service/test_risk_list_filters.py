"""The risk list's filters a CS ops team pulls over REST: accounts past their activation window
and not activated (domain §2), risk tiers, stale manual inputs. A real uvicorn server on
loopback serves a real SQLite store holding a hand-built book of accounts, so each filter's
answer is known in advance."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import service_factories as factories
from service_harness import DEAD_REGISTRY, LATEST, Keys, make_keys

from renewal.settings import Settings
from service.app import create_app
from service.config import ServiceSettings
from service.db.engine import make_engine, make_session_factory
from service.db.migrate import upgrade
from service.model_store import ModelStore
from service.predict import ScoredVector
from service.scoring import store_scores

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflows"))
from workflow_factories import ThreadedServer  # noqa: E402

#: Not the default 90: the filter must follow the feature config, as GET renewal does.
STALE_INPUT_DAYS = 60
NA = None


@dataclass(frozen=True)
class Account:
    account_id: str
    csm_id: str
    arr: float
    probability: float  # default cut-offs: high < 0.5 <= medium < 0.75 <= low
    activated: bool | None
    past_window_not_activated: bool | None
    input_age_days: float | None  # None: never surveyed

    @property
    def arr_at_risk(self) -> float:
        return self.arr * (1 - self.probability)


BOOK = [
    # Past its window, not activated: the one §2 says must be raised. Fresh inputs.
    Account("acc-window-missed", "csm-a", 100_000, 0.20, False, True, 10),
    # Not activated either, but its window is still open: not "past window".
    Account("acc-in-window", "csm-a", 80_000, 0.60, False, False, None),
    # Past its window too, another CSM's; its input (75 days) is stale only at 60 days.
    Account("acc-missed-b", "csm-b", 50_000, 0.55, False, True, 75),
    Account("acc-active-stale", "csm-b", 40_000, 0.30, True, False, 200),
    Account("acc-active-fresh", "csm-a", 30_000, 0.90, True, False, 5),
    # Activation unknown (no usage history for its first weeks); input exactly 60 days old.
    Account("acc-unknown", "csm-c", 20_000, 0.80, NA, NA, 60),
]
TIER = {a.account_id: ServiceSettings().risk_tier(a.probability) for a in BOOK}
#: Days from LATEST to each main term's end (negative: ended, renewal still open; None:
#: unknown).
TO_RENEWAL = {"acc-window-missed": 45, "acc-in-window": 90, "acc-missed-b": 91,
              "acc-active-stale": -5, "acc-active-fresh": 300, "acc-unknown": None}


def ids(*wanted: str) -> list[str]:
    """The accounts in risk-list order (largest ARR at risk first)."""
    book = sorted(BOOK, key=lambda a: (-a.arr_at_risk, a.account_id))
    return [a.account_id for a in book if a.account_id in wanted]


def book_frame() -> pd.DataFrame:
    frame = factories.feature_frame(len(BOOK), LATEST, seed=3)
    frame["account_id"] = pd.Series([a.account_id for a in BOOK], dtype="string")
    frame["csm_id"] = pd.Series([a.csm_id for a in BOOK], dtype="string")
    frame["segment"] = pd.Series(["smb"] * len(BOOK), dtype="string")
    frame["arr"] = [a.arr for a in BOOK]
    frame["activated"] = pd.Series([a.activated for a in BOOK], dtype="boolean")
    frame["past_window_not_activated"] = pd.Series(
        [a.past_window_not_activated for a in BOOK], dtype="boolean")
    frame["health_input_age_days"] = [
        np.nan if a.input_age_days is None else float(a.input_age_days) for a in BOOK]
    frame["days_to_renewal"] = pd.array([TO_RENEWAL[a.account_id] for a in BOOK],
                                        dtype="Int64")
    return frame


@dataclass
class Server:
    base: str
    keys: Keys

    def get(self, path: str, key: str) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", headers={"Authorization": f"Bearer {key}"})

    def listed(self, query: str, key: str | None = None) -> list[str]:
        response = self.get(f"/v1/risk-list?limit=200&{query}", key or self.keys.crm)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["count"] == len(body["data"])
        return [item["account_id"] for item in body["data"]]


@pytest.fixture
def server(tmp_path: Path, scorer) -> Iterator[Server]:
    """The hand-built book stored by the scoring job's own writer (its probabilities and
    tiers as given), served by the real app."""
    config = tmp_path / "features.toml"
    config.write_text(f"stale_input_days = {STALE_INPUT_DAYS}\n")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    settings = Settings(data_dir=tmp_path, models_dir=tmp_path / "models", database_url=url,
                        tracking_uri=DEAD_REGISTRY, feature_config=config)
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    model = factories.loaded(scorer)
    no_drivers = {"risk_drivers": [], "protective_factors": []}
    scored = [ScoredVector(a.probability, None, TIER[a.account_id], no_drivers) for a in BOOK]
    store_scores(factory, book_frame(), scored, model, LATEST, "/nonexistent-data-dir")
    keys = make_keys(factory)
    store = ModelStore(settings)
    store.install(model)
    app = create_app(settings, ServiceSettings(key_cache_seconds=0), models=store,
                     background=False)
    with ThreadedServer(app) as running:
        yield Server(running.base, keys)
    engine.dispose()


def test_past_window_not_activated_lists_the_missed_windows_not_the_open_ones(server):
    missed = server.listed("past_window_not_activated=true")
    assert missed == ids("acc-window-missed", "acc-missed-b")
    assert "acc-in-window" not in missed
    # not_activated keeps its meaning: every account not activated, the open window included.
    assert server.listed("not_activated=true") == ids(
        "acc-window-missed", "acc-in-window", "acc-missed-b")
    # false: the accounts known not to have missed it; unknown activation passes neither.
    assert server.listed("past_window_not_activated=false") == ids(
        "acc-in-window", "acc-active-stale", "acc-active-fresh")


def test_risk_tier_keeps_the_tiers_asked_for_once_or_repeated(server):
    assert TIER == {"acc-window-missed": "high", "acc-in-window": "medium",
                    "acc-missed-b": "medium", "acc-active-stale": "high",
                    "acc-active-fresh": "low", "acc-unknown": "low"}
    assert server.listed("risk_tier=high") == ids("acc-window-missed", "acc-active-stale")
    assert server.listed("risk_tier=low") == ids("acc-active-fresh", "acc-unknown")
    both = ids("acc-window-missed", "acc-active-stale", "acc-in-window", "acc-missed-b")
    assert server.listed("risk_tier=high&risk_tier=medium") == both
    assert server.listed("risk_tier=medium&risk_tier=high&risk_tier=high") == both
    for item in server.get("/v1/risk-list?risk_tier=medium", server.keys.crm).json()["data"]:
        assert item["risk_tier"] == "medium"


def test_an_unknown_risk_tier_is_refused_naming_the_parameter(server):
    response = server.get("/v1/risk-list?risk_tier=high&risk_tier=critical", server.keys.crm)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    # The second value is the one refused.
    assert [e["field"] for e in problem["errors"]] == ["query.risk_tier[1]"], problem
    assert "'critical'" in problem["detail"], problem
    for query in ("inputs_stale=maybe", "past_window_not_activated=soon"):
        refused = server.get(f"/v1/risk-list?{query}", server.keys.crm)
        assert refused.status_code == 422, query
    # Single-valued filters stay single-valued.
    twice = server.get("/v1/risk-list?inputs_stale=true&inputs_stale=false", server.keys.crm)
    assert twice.status_code == 422
    assert twice.json()["errors"][0]["type"] == "multiple_values"


def test_inputs_stale_follows_the_configured_age_and_the_renewal_answer(server):
    stale = server.listed("inputs_stale=true")
    # never surveyed; 75 > 60 days; 200 days. Exactly 60 days is not older than 60.
    assert stale == ids("acc-in-window", "acc-missed-b", "acc-active-stale")
    assert server.listed("inputs_stale=false") == ids(
        "acc-window-missed", "acc-active-fresh", "acc-unknown")
    # The same notion as GET renewal's inputs.stale, account by account.
    for account in BOOK:
        renewal = server.get(f"/v1/accounts/{account.account_id}/renewal", server.keys.crm)
        assert renewal.json()["inputs"]["stale"] is (account.account_id in stale)


def test_filters_combine_and_a_csm_key_sees_only_its_own_accounts(server):
    assert server.listed("past_window_not_activated=true&inputs_stale=true") == ["acc-missed-b"]
    assert server.listed("risk_tier=high&inputs_stale=false") == ["acc-window-missed"]
    assert server.listed("risk_tier=low&past_window_not_activated=true") == []
    assert server.listed("past_window_not_activated=true", server.keys.csm_a) == [
        "acc-window-missed"]
    assert server.listed("inputs_stale=true&risk_tier=medium", server.keys.csm_b) == [
        "acc-missed-b"]
    other = server.get("/v1/risk-list?csm_id=csm-b&past_window_not_activated=true",
                       server.keys.csm_a)
    assert other.status_code == 403


def test_a_fresh_judgement_takes_the_account_off_the_stale_list(server):
    assert "acc-active-stale" in server.listed("inputs_stale=true")
    put = httpx.put(f"{server.base}/v1/accounts/acc-active-stale/health-inputs",
                    headers={"Authorization": f"Bearer {server.keys.csm_b}"},
                    json={"csm_score": 4})
    assert put.status_code == 200, put.text
    assert put.json()["renewal"]["inputs"]["stale"] is False
    assert server.listed("inputs_stale=true") == ids("acc-in-window", "acc-missed-b")
    assert "acc-active-stale" in server.listed("inputs_stale=false")


def pages(server: Server, query: str, limit: int) -> tuple[list[str], list[int], list[str]]:
    """Every page of a filtered list: the accounts in order, each page's count, the cursors."""
    seen, counts, cursors, cursor = [], [], [], None
    while True:
        url = f"/v1/risk-list?{query}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        response = server.get(url, server.keys.crm)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["data"]) <= limit
        seen += [item["account_id"] for item in body["data"]]
        counts.append(body["count"])
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, counts, cursors
        cursors.append(cursor)


def test_new_filters_page_with_the_cursor_and_a_cursor_keeps_to_its_filters(server):
    query = "risk_tier=high&risk_tier=medium"
    seen, counts, cursors = pages(server, query, limit=1)
    assert seen == ids("acc-window-missed", "acc-active-stale", "acc-in-window", "acc-missed-b")
    assert counts == [4, 4, 4, 4]
    seen, counts, _ = pages(server, "past_window_not_activated=true&inputs_stale=false", 1)
    assert seen == ["acc-window-missed"] and counts == [1]
    seen, _, _ = pages(server, "inputs_stale=true", limit=2)
    assert seen == ids("acc-in-window", "acc-missed-b", "acc-active-stale")

    tiered, _, cursors = pages(server, query, limit=1)
    first = cursors[0]
    # The same tiers in another order are the same filters: the cursor goes on.
    same = server.get(f"/v1/risk-list?risk_tier=medium&risk_tier=high&limit=1&cursor={first}",
                      server.keys.crm)
    assert same.status_code == 200
    assert [i["account_id"] for i in same.json()["data"]] == [tiered[1]]
    for foreign in ("risk_tier=high", "risk_tier=high&risk_tier=medium&inputs_stale=true",
                    "risk_tier=high&risk_tier=medium&past_window_not_activated=false", ""):
        refused = server.get(f"/v1/risk-list?{foreign}&cursor={first}", server.keys.crm)
        assert refused.status_code == 422, foreign
        assert refused.json()["errors"][0]["field"] == "query.cursor"
    unfiltered = server.get("/v1/risk-list?limit=1", server.keys.crm).json()["next_cursor"]
    for query in ("inputs_stale=false", "past_window_not_activated=true", "risk_tier=low"):
        refused = server.get(f"/v1/risk-list?{query}&cursor={unfiltered}", server.keys.crm)
        assert refused.status_code == 422, query


def test_a_cursor_issued_before_the_new_filters_existed_still_pages(server):
    """Clients hold cursors across a deployment: one the earlier API issued for the original
    five filters (its digest of those alone) must go on, not 422."""
    digest = hashlib.sha256(json.dumps(["csm-a", None, None, None, True]).encode())
    first = next(a for a in BOOK if a.account_id == ids("acc-window-missed", "acc-in-window")[0])
    raw = json.dumps([first.arr_at_risk, first.account_id, digest.hexdigest()[:16]],
                     separators=(",", ":"))
    cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    response = server.get(f"/v1/risk-list?csm_id=csm-a&not_activated=true&cursor={cursor}",
                          server.keys.crm)
    assert response.status_code == 200, response.text
    assert [i["account_id"] for i in response.json()["data"]] == ["acc-in-window"]


def test_renewals_due_within_a_horizon_overdue_included(server):
    """CS ops plan the quarter's renewals: each item says its renewal date, and
    max_days_to_renewal keeps those due within N days of as_of, the overdue ones (the term
    ended, the renewal still open) included; an unknown date is never "due"."""
    response = server.get("/v1/risk-list?limit=200", server.keys.crm)
    items = {i["account_id"]: i for i in response.json()["data"]}
    assert items["acc-window-missed"]["days_to_renewal"] == 45
    assert items["acc-window-missed"]["renewal_date"] == str(LATEST + timedelta(days=45))
    assert items["acc-active-stale"]["renewal_date"] == str(LATEST - timedelta(days=5))
    assert items["acc-unknown"]["renewal_date"] is None
    assert server.listed("max_days_to_renewal=90") == ids(
        "acc-window-missed", "acc-in-window", "acc-active-stale")
    assert server.listed("max_days_to_renewal=0") == ["acc-active-stale"]
    assert server.listed("max_days_to_renewal=90&csm_id=csm-b") == ["acc-active-stale"]
    refused = server.get("/v1/risk-list?max_days_to_renewal=soon", server.keys.crm)
    assert refused.status_code == 422



def test_a_filter_added_later_leaves_the_digests_of_cursors_without_it():
    """Found by review: max_days_to_renewal, appended to the list of the filters before it,
    changed the digest of every cursor issued with risk_tier (and the others) set, so their
    next page was a 422. Each later filter joins the digest only when given."""
    from service.api.risk_list import filters_digest
    from service.risk_index import RiskFilters

    def digest(named: list) -> str:
        return hashlib.sha256(json.dumps(named).encode()).hexdigest()[:16]

    five = ["csm-a", None, None, None, None]
    assert filters_digest(RiskFilters(csm_id="csm-a")) == digest(five)
    assert filters_digest(RiskFilters(csm_id="csm-a", risk_tiers=("high",))) == digest(
        [*five, None, ["high"], None])
    with_days = filters_digest(RiskFilters(csm_id="csm-a", risk_tiers=("high",),
                                           max_days_to_renewal=90))
    assert with_days != digest([*five, None, ["high"], None])
