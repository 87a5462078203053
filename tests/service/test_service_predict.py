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
