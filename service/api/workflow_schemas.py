"""Request and response bodies of the CS workflow routes (strict inputs, documented outputs)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

from features.levers import LEVERS, Lever
from service.api.schemas import InputsStatus, ModelRef, RiskTier, json_int

LeverName = Annotated[str, Field(min_length=1, max_length=100, examples=["exec_sponsor_active"])]
#: Subscriber URLs: http(s), a host name or IPv4 address (no credentials, no IPv6 literal),
#: an optional port 0-65535 and printable ASCII after it (percent-encode anything else).
WEBHOOK_URL_PATTERN = (
    r"^https?://[A-Za-z0-9._~-]+"
    r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?"
    r"(?:[/?#][!-~]*)?$"
)
EventName = Literal[
    "risk_tier_crossed", "probability_dropped", "activation_window_missed", "model_promoted",
    "survey_follow_up_needed",
]


class Page(BaseModel):
    count: int = Field(description="Items in this response.")


# -- what-if --------------------------------------------------------------------------------
def _lever_value_schema(lever: Lever) -> dict[str, Any]:
    spec = lever.value
    if spec.kind == "none":
        return {"anyOf": [{"const": True}, {"type": "null"}],
                "description": "On/off lever: omit, null or true."}
    number = {"type": "number", "minimum": spec.minimum, "maximum": spec.maximum,
              "description": spec.description}
    return number if spec.required else {"anyOf": [number, {"type": "null"}],
                                         "description": f"{spec.description}; default "
                                         f"{spec.default}"}


def _lever_schema(schema: dict[str, Any]) -> None:
    """Document the declared levers (``features.levers.LEVERS``): their names, and for each
    the value it takes. The server refuses anything else (422 naming the field)."""
    schema["properties"]["name"] = {
        "enum": [lever.name for lever in LEVERS],
        "description": "A lever of GET /v1/levers.",
    }
    schema["oneOf"] = [
        {
            "title": lever.name,
            "description": lever.description,
            "properties": {"name": {"const": lever.name}, "value": _lever_value_schema(lever)},
            "required": ["name", "value"] if lever.value.required else ["name"],
        }
        for lever in LEVERS
    ]


def _each_lever_once(schema: dict[str, Any]) -> None:
    """JSON Schema 2020-12: at most one item per lever name (a lever given twice is a 422)."""
    schema["allOf"] = [
        {"contains": {"properties": {"name": {"const": lever.name}}},
         "minContains": 0, "maxContains": 1}
        for lever in LEVERS
    ]
    schema["description"] = "Levers to pull, each at most once."


class LeverIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_lever_schema)

    name: LeverName
    value: StrictBool | StrictInt | StrictFloat | None = Field(
        None, description="Numeric levers: their target (e.g. 0.7 seat utilisation); on/off "
        "levers: omit or true.", examples=[0.7],
    )


class WhatIfIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"levers": [
            {"name": "exec_sponsor_active"},
            {"name": "raise_seat_utilization", "value": 0.7},
        ]}]},
    )

    levers: list[LeverIn] = Field(
        min_length=1, max_length=len(LEVERS), json_schema_extra=_each_lever_once
    )


class FeatureChange(BaseModel):
    feature: str
    before: Any
    after: Any
    used_by_model: bool = Field(description="False: the served model does not read it.")


class Scenario(BaseModel):
    probability_after: float
    change_points: float = Field(description="100 × (after − before).", examples=[6.5])
    changed_features: list[FeatureChange]
    guaranteed_non_decreasing: bool = Field(
        description="The model's monotone constraints prove this cannot lower the probability."
    )


class LeverScenario(Scenario):
    name: str
    value: float | None
    declared_features: list[str] = Field(description="All the features this lever may change.")
    applies: bool = Field(description="False: nothing the model reads changes.")
    out_of_reach: str | None = Field(
        None, description="Why the account can no longer get what the lever promises (e.g. "
        "complete_activation after its activation window closed); null when in reach.")


class DriverMove(BaseModel):
    feature: str
    description_before: str
    description_after: str
    contribution_before: float
    contribution_after: float
    change_points: float


class WhatIfOut(BaseModel):
    account_id: str
    as_of: date
    model: ModelRef
    stored_probability: float = Field(description="The stored score (possibly older model).")
    probability_before: float = Field(description="The served model on the stored features.")
    levers: list[LeverScenario]
    combined: Scenario
    drivers_moved: list[DriverMove] = Field(description="Contributions moved by all levers.")


class LeverOut(BaseModel):
    name: str
    description: str
    features: list[str]
    value: dict[str, Any]


class LeverList(Page):
    data: list[LeverOut]


# -- history --------------------------------------------------------------------------------
class FeatureMove(BaseModel):
    feature: str
    before: Any
    after: Any
    contribution_change_points: float
    words: str = Field(examples=["active days 30d 22 → 9"])


class ScoreChange(BaseModel):
    from_as_of: date
    points: float = Field(description="Stored probability change × 100.", examples=[-14.0])
    attributed_points: float = Field(description="The served model's change on both vectors.")
    model_changed: bool
    explanation: str = Field(
        examples=["probability fell 14 points: active days 30d 22 → 9, the executive sponsor "
                  "does not use the product"]
    )
    features: list[FeatureMove]


class HistoryEntry(BaseModel):
    as_of: date
    probability: float
    risk_tier: RiskTier
    model: ModelRef
    trigger: str
    scored_at: datetime
    inputs: InputsStatus
    change: ScoreChange | None = Field(description="Against the next older score; null last.")


class HistoryOut(Page):
    account_id: str
    data: list[HistoryEntry]


# -- disagreements and stale inputs -----------------------------------------------------------
class CsmJudgement(InputsStatus):
    csm_score: float | None
    exec_sponsor_active: bool | None
    core_process_live: bool | None


class ModelView(BaseModel):
    probability: float
    risk_tier: RiskTier


class Disagreement(BaseModel):
    account_id: str
    csm_id: str | None
    as_of: date
    model: ModelView
    csm: CsmJudgement
    reasons: list[str] = Field(examples=[["model_at_risk_csm_score_high"]])
    gap: float | None = Field(description="|p − (csm_score−1)/4|: only orders the list.")


class DisagreementList(Page):
    thresholds: dict[str, float]
    total: int = Field(description="Disagreements matching (all pages).")
    data: list[Disagreement]


class StaleAccount(InputsStatus):
    account_id: str
    as_of: date


class StaleGroup(BaseModel):
    csm_id: str | None
    accounts: list[StaleAccount]
    count: int


class StaleList(Page):
    stale_input_days: int
    data: list[StaleGroup]


# -- interventions ------------------------------------------------------------------------------
class InterventionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"playbook": "exec-reengagement",
                                         "note": "Call with the COO on Tuesday."}]},
    )

    playbook: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\- ]*$")
    note: str | None = Field(None, max_length=2000, description="Private; never logged.")


class InterventionOut(BaseModel):
    id: int
    account_id: str
    csm_id: str | None
    author: str = Field(description="Id of the API key that recorded it.")
    playbook: str
    note: str | None
    assigned_at: datetime
    probability_at_assignment: float
    score_as_of: date
    model_version: str


class InterventionList(Page):
    data: list[InterventionOut]


class SaveRateRow(BaseModel):
    group: str
    accounts_assigned: int
    decided: int
    pending: int = Field(description="Outcome not known yet: in no rate.")
    actual_renewals: int
    expected_renewals: float = Field(description="Σ probability at assignment (decided only).")
    uplift: float = Field(description="actual − expected renewals.")
    uplift_interval: list[float] | None = Field(description="uplift ± z·sqrt(Σ p(1−p)).")
    save_rate: float | None = Field(description="actual / decided, over every attempt.")
    expected_save_rate: float | None
    at_risk_assigned: int = Field(
        description="Accounts with an attempt made while they were at risk (probability at "
        "assignment below `at_risk_below`), each judged from its first such attempt.")
    at_risk_decided: int
    at_risk_saved: int = Field(description="Of those decided, the renewed ones.")
    at_risk_save_rate: float | None = Field(
        description="The domain's save rate: at_risk_saved / at_risk_decided (null: none "
        "decided).")
    at_risk_below: float = Field(
        description="The risk cut-off used: RENEWAL_RISK_MEDIUM_BELOW (tiers high and medium).")
    confidence: float


class SaveRateOut(BaseModel):
    by: Literal["csm", "playbook", "all"]
    outcomes_from: str = Field(description="Data directory whose contracts gave outcomes: its "
                               "full path for admin keys, its name for the others.")
    data: list[SaveRateRow]


# -- survey follow-ups ---------------------------------------------------------------------------
class SurveyFollowUp(BaseModel):
    account_id: str
    csm_id: str | None
    segment: str | None
    survey_date: date = Field(description="Day of the account's latest survey (on or before "
                              "`today`, a day of `survey_timezone`).")
    score: float = Field(description="Its score, 0-10: at or below `bad_score_at_most`, or "
                         "any score when the comment is alarming.")
    comment: str | None = Field(description="The customer's free-text answer (customer data: "
                                "never logged, never in webhooks).")
    reasons: list[Literal["score", "comment"]] = Field(
        description="Why it needs a follow-up: `score` (at or below `bad_score_at_most`), "
        "`comment` (holds an alarm phrase), or both.", examples=[["comment"]])
    alarm_phrases: list[str] = Field(
        description="The configured alarm phrases the comment holds (empty unless `comment` "
        "is a reason).", examples=[["cheaper"]])
    probability: float | None = Field(description="Renewal probability of the latest score.")
    risk_tier: RiskTier | None
    arr: float | None
    status: Literal["pending", "followed_up"]
    followed_up_at: datetime | None = Field(
        description="First intervention recorded on or after the survey's day (in "
        "`survey_timezone`); a UTC time; null while pending.")
    days_waiting: int | None = Field(description="Days since the survey; pending only.")


class SurveyFollowUpList(Page):
    status: Literal["pending", "followed_up", "all"]
    bad_score_at_most: float = Field(description="A survey scored at or below this is bad "
                                     "(RENEWAL_SURVEY_BAD_SCORE_AT_MOST).", examples=[6.0])
    alarm_phrases: list[str] = Field(
        description="Phrases that make a comment alarming at any score "
        "(RENEWAL_SURVEY_ALARM_PHRASES; empty: comments are not read).")
    today: date = Field(description="Today in `survey_timezone`: surveys dated after it are "
                        "not counted yet.")
    survey_timezone: str = Field(description="IANA time zone the survey dates are days of "
                                 "(RENEWAL_SURVEY_TIMEZONE).", examples=["UTC"])
    surveys_available: bool = Field(
        description="False: the data directory has no surveys table (the list is empty).")
    surveys_from: str = Field(description="Data directory read: its full path for admin keys, "
                              "its name for the others.")
    total: int = Field(description="Accounts matching (all pages).")
    data: list[SurveyFollowUp]


# -- forecast ------------------------------------------------------------------------------------
class ForecastGroup(BaseModel):
    key: str = Field(examples=["2026-03"])
    contracts: int
    contracts_decided: int = Field(
        description="Of `contracts`, terms whose outcome is already recorded (`renewed` set "
        "before the term ends: an early renewal or a notice): counted as known, not forecast.")
    contracts_overdue: int = Field(
        0, description="Of `contracts`, renewals running late: the account's last term ended "
        "before as_of with no outcome recorded and no term in force (its end month is before "
        "as_of under by=month).")
    accounts: int = Field(
        description="Accounts (logos) of those contracts: the most `logos_interval` can reach.")
    arr_up_for_renewal: float
    expected_renewed_arr: float
    renewed_arr_interval: list[float] = Field(description="[low, high] at `level`.")
    expected_logos: float
    logos_interval: list[int]


class UnscoredRenewals(BaseModel):
    contracts: int = Field(description="Contract terms due whose account has no score.")
    arr: float


class ForecastOut(BaseModel):
    by: Literal["month", "csm", "segment"]
    as_of: date
    level: float
    method: str
    data: list[ForecastGroup]
    total: ForecastGroup
    unscored: UnscoredRenewals = Field(description="Renewals of accounts without a score.")


# -- webhooks ------------------------------------------------------------------------------------
class WebhookIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"url": "https://hooks.example.com/renewal",
                                         "events": ["risk_tier_crossed", "probability_dropped"]}]},
    )

    url: str = Field(
        min_length=8,
        max_length=2000,
        pattern=WEBHOOK_URL_PATTERN,
        description="http(s) URL of the receiver. Checked when subscribing and before each "
        "delivery: the host must resolve (DNS), and only to public addresses (no loopback, "
        "private, link-local or reserved ones) unless RENEWAL_WEBHOOK_ALLOW_PRIVATE_URLS is "
        "set; otherwise 422 `unsafe-url`. Which hosts resolve cannot be documented here.",
        examples=["https://hooks.example.com/renewal"],
    )
    events: list[EventName] = Field(min_length=1, max_length=len(get_args(EventName)))
    secret: str | None = Field(None, min_length=16, max_length=200,
                               description="Signing secret; generated when omitted.")
    description: str | None = Field(None, max_length=500)


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str | None
    active: bool
    created_by: str
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="Shown once: verify Renewal-Signature with it.")


class WebhookSecretIn(BaseModel):
    """A new signing secret for a subscription (a leaked one, or routine rotation)."""

    model_config = ConfigDict(extra="forbid")

    secret: str | None = Field(None, min_length=16, max_length=200,
                               description="The new secret; generated when omitted.")
    keep_previous_hours: json_int(0, 168) = Field(  # type: ignore[valid-type]
        24, description="How long deliveries also carry a signature with the "
        "secret replaced (a second v1= in Renewal-Signature), so the receiver can switch "
        "without refusing any; 0 for a leaked secret: it stops signing at once.")


class WebhookSecretRotated(BaseModel):
    id: str
    secret: str = Field(description="Shown once: verify Renewal-Signature with it.")
    previous_secret_valid_until: datetime | None = Field(
        description="Until then deliveries are signed with both secrets; null: new one only.")


class WebhookList(Page):
    data: list[WebhookOut]


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    event_type: str
    status: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    attempt_log: list[dict[str, Any]]


class DeliveryList(Page):
    data: list[DeliveryOut]
    next_before_id: int | None
