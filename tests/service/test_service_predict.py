"""The request path's encoder agrees exactly with the model's own (pandas) encoder."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from service_factories import feature_frame, loaded

from renewal.errors import RenewalError
from service.config import ServiceSettings
from service.predict import (
    heuristic_from_vectors,
    matrix_from_vectors,
    score_records,
    score_vectors,
    vectors_as_json,
)
from service.scoring import PARALLEL_FROM_ROWS, score_in_parallel


def test_json_vectors_encode_and_score_exactly_like_the_feature_frame(scorer):
    model = loaded(scorer)
    frame = feature_frame(40, date(2025, 6, 30), seed=9)
    frame.loc[3, "segment"] = None
    frame.loc[4, "segment"] = "a segment never seen in training"
    frame.loc[5, "exec_sponsor_active"] = None
    vectors = vectors_as_json(frame)
    np.testing.assert_array_equal(matrix_from_vectors(model, vectors), scorer.prepare(frame))
    np.testing.assert_array_equal(heuristic_from_vectors(model, vectors), scorer.heuristic(frame))
    settings = ServiceSettings()
    assert score_records(model, vectors, settings, 3) == score_vectors(model, frame, settings, 3)


def test_a_string_where_a_number_belongs_is_refused_by_name(scorer):
    with pytest.raises(RenewalError, match="active_days_30d"):
        matrix_from_vectors(loaded(scorer), [{"active_days_30d": "many"}])


def test_a_batch_scored_in_chunks_on_threads_equals_one_call(scorer):
    """``renewal score`` splits large batches over threads (service.scoring.score_in_threads):
    same probabilities, tiers, heuristic and drivers, in the same order, as one call."""
    model = loaded(scorer)
    frame = feature_frame(PARALLEL_FROM_ROWS + 537, date(2025, 6, 30), seed=4)
    frame.loc[7, "segment"] = None
    frame.loc[11, "activity_rate_3m"] = np.nan
    settings = ServiceSettings()
    threaded = score_in_parallel(model, frame, settings, 3)
    assert len(threaded) == len(frame)
    assert threaded == score_vectors(model, frame, settings, 3)


def test_risk_tiers_at_once_follow_the_one_at_a_time_rule():
    settings = ServiceSettings(risk_high_below=0.4, risk_medium_below=0.7)
    probabilities = np.array([0.0, 0.3999999, 0.4, 0.6999999, 0.7, 1.0, np.nan])
    assert settings.risk_tiers(probabilities) == [
        settings.risk_tier(float(p)) for p in probabilities
    ]
    assert settings.risk_tiers(probabilities)[:6] == [
        "high", "high", "medium", "medium", "low", "low"
    ]
