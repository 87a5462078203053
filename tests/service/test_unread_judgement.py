"""A model trained without the CSM's manual inputs cannot hear them: recording one says so,
through the API and on the account page, instead of implying the judgement moved the score
(found by audit: a CSM score of 1 left the probability where it was, and nothing said why)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lightgbm as lgb
import pytest
import service_factories as factories
from service_harness import Service, build_service
from service_harness import sign_in_csrf as sign_in

from training.calibration import Calibrator
from training.scorer import RenewalScorer

USAGE_ONLY = factories.SPECS[:2]  # active_days_30d, activity_rate_3m


def usage_only_scorer() -> RenewalScorer:
    X, y = factories.training_matrix(3000, seed=0)
    data = lgb.Dataset(X[:, :2], y, feature_name=[s.name for s in USAGE_ONLY],
                       free_raw_data=False)
    booster = lgb.train({"objective": "binary", "num_leaves": 7, "verbose": -1,
                         "num_threads": 1, "seed": 0}, data, num_boost_round=20)
    return RenewalScorer(booster, USAGE_ONLY, Calibrator("sigmoid"), heuristic_factor=0.9,
                         metadata={"test_metrics": {"auc": 0.8}, "test_window": ["a", "b"]})


@pytest.fixture
def deaf_service(tmp_path: Path) -> Iterator[Service]:
    yield from build_service(tmp_path, usage_only_scorer())


def record_score_of_one(service: Service) -> dict:
    """A CSM scores one of its accounts 1/5; the answer, with the probability before."""
    account = service.frame.loc[service.frame["csm_id"] == "csm-a", "account_id"].iloc[0]
    before = service.get(f"/v1/accounts/{account}/renewal", service.keys.crm).json()
    response = service.put(f"/v1/accounts/{account}/health-inputs", service.keys.csm_a,
                           json={"csm_score": 1})
    assert response.status_code == 200, response.text
    return {"account": account, "before": before["probability"], **response.json()}


def test_a_model_without_judgement_says_the_input_changes_nothing(deaf_service):
    recorded = record_score_of_one(deaf_service)
    assert recorded["model_reads_inputs"] is False
    assert recorded["health_input"]["csm_score"] == 1  # kept all the same
    assert recorded["renewal"]["probability"] == recorded["before"]
    sign_in(deaf_service, deaf_service.keys.csm_a)
    page = deaf_service.client.get(f"/ui/accounts/{recorded['account']}").text
    assert 'id="inputs-unread"' in page
    assert "The CSM's judgement counts in the score" not in page


def test_a_model_with_judgement_says_it_reads_it(service):
    recorded = record_score_of_one(service)
    assert recorded["model_reads_inputs"] is True
    assert recorded["renewal"]["probability"] < recorded["before"]  # monotone in csm_score
    sign_in(service, service.keys.csm_a)
    page = service.client.get(f"/ui/accounts/{recorded['account']}").text
    assert 'id="inputs-unread"' not in page
    assert "The CSM's judgement counts in the score" in page
