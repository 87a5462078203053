"""The sentence a scoring run prints when the data lacks inputs the model was trained with
(the runs themselves, in process and on Spark: tests/scaleout/test_spark_scoring.py)."""

from __future__ import annotations

from features.config import FeatureConfig
from service.model_inputs import (
    feature_config_warning,
    missing_inputs,
    missing_inputs_warning,
)

MODEL = ["active_days_30d", "bugs_90d", "feature_requests_90d", "usage_questions_90d",
         "open_high_bugs", "overdue_high_bugs", "last_survey_score", "active_site_share_30d"]


def test_every_input_present_says_nothing():
    assert missing_inputs(MODEL, [*MODEL, "account_id", "as_of"]) == {}
    assert missing_inputs_warning(MODEL, MODEL) is None


def test_missing_inputs_are_grouped_by_their_source_in_model_order():
    columns = ["account_id", "active_days_30d", "last_survey_score"]
    assert missing_inputs(MODEL, columns) == {
        "tickets": ["bugs_90d", "feature_requests_90d", "usage_questions_90d",
                    "open_high_bugs", "overdue_high_bugs"],
        "usage": ["active_site_share_30d"],  # usage without site_id
    }
    said = missing_inputs_warning(MODEL, columns)
    assert said is not None
    assert said.startswith("the model was trained with 6 input(s) this data does not give")
    # Three names per source, then a count: the sentence stays one line.
    assert ("from tickets: bugs_90d, feature_requests_90d, usage_questions_90d and 2 more; "
            "from usage: active_site_share_30d)") in said
    assert "open_high_bugs" not in said


def test_a_feature_unknown_to_the_registry_is_still_named():
    said = missing_inputs_warning(["retired_feature"], ["active_days_30d"])
    assert said is not None and "from unknown source: retired_feature" in said


def test_the_same_thresholds_or_none_recorded_say_nothing():
    trained = FeatureConfig().model_dump(mode="json")
    assert feature_config_warning(trained, FeatureConfig()) is None
    assert feature_config_warning(None, FeatureConfig(active_share=0.4)) is None  # older model


def test_other_thresholds_are_named_with_both_values():
    trained = FeatureConfig().model_dump(mode="json")
    said = feature_config_warning(trained, FeatureConfig(active_share=0.4, weekly_active_days=2))
    assert said is not None
    assert said.startswith("the features are computed with other thresholds than the model "
                           "was trained with (active_share 0.6 when trained, 0.4 now; "
                           "weekly_active_days 3 when trained, 2 now)")
    assert "RENEWAL_FEATURE_CONFIG" in said


def test_a_threshold_only_one_release_knows_is_no_difference():
    """A model from a release without a newer setting (or with a dropped one) is not told
    that it differs: the setting did not exist for it."""
    trained = FeatureConfig().model_dump(mode="json")
    trained["a_setting_since_removed"] = 7
    del trained["weekly_active_days"]
    assert feature_config_warning(trained, FeatureConfig()) is None


def test_judgement_in_the_data_that_the_model_does_not_read_is_said():
    """Found by audit: a model trained without a health_inputs table ignores every CSM input,
    while the API still records them and shows them as fresh."""
    from service.model_inputs import model_input_warnings, unread_judgement_warning

    with_judgement = [*MODEL, "csm_score", "exec_sponsor_active", "health_input_age_days"]
    said = unread_judgement_warning(MODEL, with_judgement)
    assert said is not None and said.startswith(
        "the CSM's manual health inputs are in the data, but the model was trained without "
        "them and reads none (exec_sponsor_active, core_process_live, csm_score)")
    assert said in model_input_warnings(MODEL, with_judgement, None, FeatureConfig())
    # A model reading any of them, or data without them: nothing to say.
    assert unread_judgement_warning([*MODEL, "csm_score"], with_judgement) is None
    assert unread_judgement_warning(MODEL, MODEL) is None
