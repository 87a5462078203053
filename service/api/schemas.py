"""Request and response bodies of the API (pydantic 2; strict types for model inputs)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

RiskTier = Literal["high", "medium", "low"]
AccountId = Annotated[str, Field(min_length=1, max_length=200, examples=["acc-00042"])]
#: A what-if feature value: strict, so ``false`` is never read as 0.0 for a number.
FeatureValue = (
    StrictBool | StrictInt | StrictFloat | Annotated[StrictStr, Field(max_length=200)] | None
)
MAX_BATCH = 1000


class Driver(BaseModel):
    """One feature's push on the probability, said in words."""

    feature: str = Field(examples=["active_days_30d"])
    description: str = Field(examples=["4 active days in the last 30 days"])
    value: bool | float | str | None = Field(examples=[4.0])
    contribution: float = Field(
        description="Probability points this feature adds (negative: pulls renewal down).",
        examples=[-0.081],
    )


class Drivers(BaseModel):
    risk_drivers: list[Driver] = Field(description="Features pulling the probability down.")
    protective_factors: list[Driver] = Field(description="Features holding it up.")


class ModelRef(BaseModel):
    name: str = Field(examples=["renewal"])
    version: str = Field(examples=["3"])


class InputsStatus(BaseModel):
    """Whether the CSM's manual health inputs behind a score are stale (older than the
    feature config's ``stale_input_days`` at the score's as_of, or never given)."""

    stale: bool = Field(description="Older than stale_input_days, or never surveyed.")
    age_days: int | None = Field(
        description="Days from the latest input to the score's as_of (null: none).", examples=[34]
    )
    last_input_on: date | None = Field(
        description="Date of the latest input on or before as_of.", examples=["2025-05-27"]
    )
    never_surveyed: bool = Field(description="No health input was ever recorded.")


class Renewal(BaseModel):
    """An account's renewal probability, why, and how it moved."""

    account_id: str | None = Field(examples=["acc-00042"])
    probability: float = Field(
        ge=0, le=1, description="Calibrated renewal probability.", examples=[0.62]
    )
    risk_tier: RiskTier = Field(description="From the configured cut-offs.", examples=["medium"])
    heuristic_probability: float | None = Field(
        description="The rule of thumb: factor × 3-month activity rate.", examples=[0.58]
    )
    as_of: date | None = Field(description="Date the features describe.", examples=["2025-06-30"])
    model: ModelRef
    change_30d: float | None = Field(
        description="Probability now minus the score about 30 days earlier (null if unknown).",
        examples=[-0.14],
    )
    drivers: Drivers
    scored_at: datetime | None = Field(None, description="When this score was computed.")
    inputs: InputsStatus | None = Field(
        None,
        description="Staleness of the manual health inputs in the scored features (by the "
        "pipeline's stale_input_days at the score's as_of); null only for a what-if vector "
        "without account_id, which has no as_of.",
    )


class WhatIfVector(BaseModel):
    """Features to score. With ``account_id``, they override the account's latest vector."""

    model_config = ConfigDict(extra="forbid")

    account_id: AccountId | None = None
    features: dict[Annotated[str, Field(max_length=100)], FeatureValue] = Field(
        max_length=200,
        examples=[{"exec_sponsor_active": True, "active_days_30d": 18}],
    )


class ScoreRequest(BaseModel):
    """Either ``account_ids`` (latest features) or ``accounts`` (what-if vectors)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"account_ids": ["acc-00042", "acc-00043"]},
                {
                    "accounts": [
                        {"account_id": "acc-00042", "features": {"exec_sponsor_active": True}}
                    ]
                },
            ]
        },
    )

    account_ids: list[AccountId] | None = Field(None, min_length=1, max_length=MAX_BATCH)
    accounts: list[WhatIfVector] | None = Field(None, min_length=1, max_length=MAX_BATCH)
    top_k: int = Field(3, ge=1, le=20, description="Drivers per side.")

    @model_validator(mode="after")
    def _exactly_one(self) -> ScoreRequest:
        if (self.account_ids is None) == (self.accounts is None):
            raise ValueError("give exactly one of account_ids or accounts")
        return self


class ScoreResponse(BaseModel):
    results: list[Renewal]
    count: int


class RiskListItem(BaseModel):
    account_id: str
    csm_id: str | None
    segment: str | None
    arr: float | None
    probability: float
    risk_tier: RiskTier
    arr_at_risk: float = Field(description="arr × (1 − probability)")
    change_30d: float | None
    activated: bool | None
    past_window_not_activated: bool | None
    as_of: date
    top_risk_drivers: list[str] = Field(description="Descriptions of the top risk drivers.")


class RiskListPage(BaseModel):
    data: list[RiskListItem]
    count: int = Field(description="Accounts matching the filters (all pages).")
    limit: int
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null at the end."
    )


class HealthInputIn(BaseModel):
    """A CSM's judgement. Null or absent = no new judgement on that input (the last one holds)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "exec_sponsor_active": True,
                    "core_process_live": False,
                    "csm_score": 3,
                    "note": "Sponsor back from leave; invoicing still in spreadsheets.",
                }
            ]
        },
    )

    exec_sponsor_active: StrictBool | None = None
    core_process_live: StrictBool | None = None
    csm_score: Annotated[StrictInt, Field(ge=1, le=5)] | None = None
    note: Annotated[str, Field(max_length=2000)] | None = None

    @model_validator(mode="after")
    def _something(self) -> HealthInputIn:
        if all(getattr(self, f) is None for f in type(self).model_fields):
            raise ValueError(
                "give at least one of exec_sponsor_active, core_process_live, csm_score, note"
            )
        return self


class HealthInputOut(BaseModel):
    id: int
    account_id: str
    effective_date: date = Field(description="The as-of date from which scoring uses it.")
    exec_sponsor_active: bool | None
    core_process_live: bool | None
    csm_score: int | None
    note: str | None
    author: str = Field(description="Id of the API key that recorded it (never the key).")
    created_at: datetime


class HealthInputRecorded(BaseModel):
    health_input: HealthInputOut
    renewal: Renewal = Field(description="The account re-scored with the new input.")


class HealthInputHistory(BaseModel):
    data: list[HealthInputOut]
    count: int


class MetricTable(BaseModel):
    metric: Literal["activation", "activity", "renewal", "ndr"]
    by: Literal["segment", "csm_id", "cohort"] | None
    as_of: date
    rows: list[dict[str, Any]]


class RefusalOut(BaseModel):
    version: str | None
    reason: str
    at: datetime


class ModelCard(BaseModel):
    """What is served, how it was trained and how it tested against the heuristic."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    name: str
    version: str
    alias: str | None
    source: Literal["registry", "last-known-good", "uri"]
    status: Literal["ready", "degraded", "unavailable"]
    status_reason: str
    loaded_at: datetime
    training_window: Any = None
    test_metrics: Any = None
    features: list[str]
    last_refusal: RefusalOut | None


class ReloadResult(BaseModel):
    outcome: Literal["swapped", "unchanged", "refused"]
    version: str | None
    previous_version: str | None
    detail: str
    cached_accounts: int


class Liveness(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "degraded", "unavailable"]
    model: dict[str, Any]
    database: dict[str, Any]
    cached_accounts: int
