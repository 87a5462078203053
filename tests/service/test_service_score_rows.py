"""POST /v1/score keeps each account's encoded row on its cache entry (issue 5: the hot path
must not read and encode stored vectors each time). Kept rows must never be stale: a
re-scored account and a swapped model are encoded afresh."""

from __future__ import annotations

import service_factories as factories

from service.api.schemas import ScoreResponse


def post_score(service, ids: list[str]) -> dict[str, dict]:
    response = service.post("/v1/score", service.keys.crm, json={"account_ids": ids})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    ScoreResponse.model_validate(response.json())  # the documented shape, exactly
    return {r["account_id"]: r for r in response.json()["results"]}


def test_kept_rows_give_the_same_answer_as_a_fresh_read(service):
    ids = list(service.frame["account_id"][:10])
    cache = service.client.app.state.context.cache
    first = post_score(service, ids)
    assert all(cache.get(a).encoded is not None for a in ids)
    again = post_score(service, ids)
    for a in ids:
        assert again[a]["probability"] == first[a]["probability"]
        assert again[a]["drivers"] == first[a]["drivers"]
        assert again[a]["inputs"] == first[a]["inputs"]


def test_a_health_input_re_score_is_seen_by_the_next_post_score(service):
    account = str(service.frame.loc[service.frame["exec_sponsor_active"].astype(bool),
                                    "account_id"].iloc[0])
    before = post_score(service, [account])[account]
    put = service.put(f"/v1/accounts/{account}/health-inputs", service.keys.admin,
                      json={"exec_sponsor_active": False, "csm_score": 1})
    assert put.status_code == 200, put.text
    after = post_score(service, [account])[account]
    assert after["probability"] == put.json()["renewal"]["probability"]
    assert after["probability"] != before["probability"]
    assert after["inputs"]["age_days"] == 0


def test_a_swapped_model_re_encodes_and_scores_with_itself(service):
    ids = list(service.frame["account_id"][:5])
    old = post_score(service, ids)
    store = service.client.app.state.context.models
    store.install(factories.loaded(factories.tiny_scorer(seed=7, rounds=25), version="2"))
    new = post_score(service, ids)
    assert {r["model"]["version"] for r in new.values()} == {"2"}
    assert [new[a]["probability"] for a in ids] != [old[a]["probability"] for a in ids]
    renewal = service.get(f"/v1/accounts/{ids[0]}/renewal", service.keys.crm).json()
    assert renewal["model"]["version"] == "1"  # stored scores keep naming their model
