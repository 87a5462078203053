"""Knobs of the CS workflows, read from ``RENEWAL_*`` like the service's own settings.

Kept apart from :class:`service.config.ServiceSettings` so the workflows can be wired in
without touching it; nothing is read at import time (call :func:`get_workflow_settings`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.workflows.survey_comments import DEFAULT_ALARM_PHRASES, CommentAlarm, phrase_problem
from service.workflows.survey_followups import FollowUpRule


class WorkflowSettings(BaseSettings):
    """Every threshold of the workflows; each can be set as ``RENEWAL_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="RENEWAL_", env_file=None, extra="ignore")

    # -- disagreements: model vs the CSM's latest judgement (never averaged) --
    disagreement_low_probability: float = Field(
        0.4, gt=0, lt=1, description="Model says at risk below this renewal probability..."
    )
    disagreement_high_csm_score: int = Field(
        4, ge=1, le=5, description="...while the CSM scores the account at least this."
    )
    disagreement_high_probability: float = Field(
        0.85, gt=0, lt=1, description="Model says safe above this probability..."
    )
    disagreement_low_csm_score: int = Field(
        2, ge=1, le=5, description="...while the CSM scores the account at most this."
    )
    # -- save rate --
    save_rate_confidence: float = Field(
        0.95, gt=0, lt=1, description="Confidence level of the uplift interval."
    )
    # -- survey follow-ups --
    survey_bad_score_at_most: float = Field(
        6.0, ge=0, le=10,
        description="A satisfaction survey scored (0-10) at or below this is bad and needs a "
        "follow-up. 6 closes the detractor range (0-6) of a 0-10 scale, as in NPS.",
    )
    survey_timezone: str = Field(
        "UTC", min_length=1,
        description="IANA time zone the surveys' dates are days of (e.g. Asia/Tokyo): today "
        "and an intervention's day are taken in it, so a callback on the survey's local day "
        "counts as its follow-up.",
    )
    survey_alarm_phrases: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ALARM_PHRASES),
        description="Phrases that make a survey comment alarming, whatever its score (the "
        "free-text answer matters more than the score): whole words, case ignored, '*' ends "
        "a word with any ending ('cancel*'). As JSON in the environment, e.g. "
        "RENEWAL_SURVEY_ALARM_PHRASES='[\"cancel*\", \"competitor*\"]'; '[]' turns it off.",
    )
    survey_event_max_age_days: int = Field(
        14, ge=0, le=366,
        description="survey_follow_up_needed is sent for surveys at most this many days older "
        "than the scoring run's as_of (a first run does not announce every old survey).",
    )
    # -- forecast --
    forecast_level: float = Field(0.9, gt=0, lt=1, description="Prediction interval level.")
    forecast_draws: int = Field(
        10_000, ge=1000, le=200_000, description="Monte Carlo draws of the ARR interval."
    )
    forecast_seed: int = Field(0, description="Seed of the ARR simulation (reproducible).")
    outcomes_data_dir: Path | None = Field(
        None,
        description="Data directory whose contracts give renewal dates, ARR and outcomes; "
        "default: the data directory of the latest scoring run.",
    )
    # -- webhooks --
    probability_drop_points: float = Field(
        10.0, gt=0, le=100,
        description="probability_dropped fires at a drop of more than this many points.",
    )
    webhook_allow_private_urls: bool = Field(
        False,
        description="Allow subscriber URLs on loopback, private, link-local or reserved "
        "addresses (off: SSRF protection). Development and tests only.",
    )
    webhook_max_attempts: int = Field(8, ge=1, le=50, description="Attempts before 'failed'.")
    webhook_backoff_seconds: float = Field(
        30.0, gt=0, description="Wait before the 2nd attempt; doubles after each failure."
    )
    webhook_backoff_max_seconds: float = Field(3600.0, gt=0, description="Longest wait.")
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=60, description="Per delivery request.")
    webhook_poll_seconds: float = Field(
        2.0, gt=0, description="How often the in-app worker looks for due deliveries."
    )
    webhook_batch: int = Field(50, ge=1, le=1000, description="Deliveries per worker pass.")
    webhook_lease_seconds: float = Field(
        60.0, gt=0, description="A claimed delivery is not taken by another worker this long."
    )
    webhook_signature_tolerance_seconds: int = Field(
        300, ge=1, description="Receivers should refuse signatures older than this (documented)."
    )
    webhook_worker: bool = Field(True, description="Run the delivery worker inside the app.")

    @field_validator("survey_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America", a folder
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as "
                             "'Europe/Berlin' or 'UTC')") from None
        return value

    @field_validator("survey_alarm_phrases")
    @classmethod
    def _usable_phrases(cls, value: list[str]) -> list[str]:
        problems = [p for p in map(phrase_problem, value) if p]
        if problems:
            raise ValueError("; ".join(problems))
        return [p.strip() for p in value]

    @property
    def survey_zone(self) -> ZoneInfo:
        return ZoneInfo(self.survey_timezone)

    @property
    def survey_rule(self) -> FollowUpRule:
        """When a survey needs a follow-up (built once: the phrases are compiled)."""
        return _rule(self.survey_bad_score_at_most, tuple(self.survey_alarm_phrases))

    @model_validator(mode="after")
    def _consistent(self) -> WorkflowSettings:
        if self.disagreement_low_probability >= self.disagreement_high_probability:
            raise ValueError(
                f"disagreement_low_probability ({self.disagreement_low_probability}) must be "
                f"< disagreement_high_probability ({self.disagreement_high_probability})"
            )
        if self.disagreement_low_csm_score >= self.disagreement_high_csm_score:
            raise ValueError(
                f"disagreement_low_csm_score ({self.disagreement_low_csm_score}) must be "
                f"< disagreement_high_csm_score ({self.disagreement_high_csm_score})"
            )
        if self.webhook_lease_seconds <= self.webhook_timeout_seconds:
            # A send may last the whole timeout: a shorter lease lets another worker claim
            # the delivery mid-send and send it a second time.
            raise ValueError(
                f"webhook_lease_seconds ({self.webhook_lease_seconds}) must be > "
                f"webhook_timeout_seconds ({self.webhook_timeout_seconds})"
            )
        if self.webhook_backoff_seconds > self.webhook_backoff_max_seconds:
            raise ValueError("webhook_backoff_seconds must be <= webhook_backoff_max_seconds")
        return self


@lru_cache(maxsize=1)
def get_workflow_settings() -> WorkflowSettings:
    """The process-wide workflow settings, read once from the environment."""
    return WorkflowSettings()


@lru_cache(maxsize=8)
def _rule(bad_score_at_most: float, phrases: tuple[str, ...]) -> FollowUpRule:
    return FollowUpRule(bad_score_at_most, CommentAlarm(phrases))
