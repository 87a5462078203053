"""Request and response bodies of the API (pydantic 2; strict types for model inputs)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from features.registry import FEATURES
from service.config import BATCH_ACCOUNTS_LIMIT

RiskTier = Literal["high", "medium", "low"]
AccountId = Annotated[str, Field(min_length=1, max_length=200, examples=["A000042"])]
#: A what-if feature value: strict, so ``false`` is never read as 0.0 for a number.
FeatureValue = (
    StrictBool | StrictInt | StrictFloat | Annotated[StrictStr, Field(max_length=200)] | None
)
MAX_BATCH = BATCH_ACCOUNTS_LIMIT


def _integral_float_as_int(value: Any) -> Any:
    """JSON has one number type: ``4.0`` is the integer 4 (``4.5`` stays a float, refused)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def json_int(minimum: int, maximum: int) -> Any:
    """An integer in a JSON body: strict (``"4"`` and ``true`` are refused) but ``4.0`` is 4,
    as JSON Schema's ``integer`` says (found by fuzzing: ``csm_score: 4.0`` was refused).
    The bounds come before the conversion so the document shows them as minimum/maximum."""
    return Annotated[
        StrictInt, Field(ge=minimum, le=maximum), BeforeValidator(_integral_float_as_int)
    ]


_JSON_TYPES = {
    "numeric": {"type": "number"},
    "bool": {"type": "boolean"},
    "category": {"type": "string", "maxLength": 200},
}


def _with_range(json_type: dict[str, Any], feature: Any) -> dict[str, Any]:
    """A numeric feature's JSON type with the range valid data gives (features.registry)."""
    bounds = {"minimum": feature.minimum, "maximum": feature.maximum}
    return {**json_type, **{k: v for k, v in bounds.items() if v is not None}}


def _what_if_features_schema(schema: dict[str, Any]) -> None:
    """Document every feature a what-if vector may name: the feature registry, each with its
    JSON type and meaning; any other name is refused (422 ``unknown_feature``)."""
    schema.clear()
    schema.update(
        type="object",
        description="Feature values by registry name (docs/features.md); null = missing. "
        "Any other name is refused (422, `unknown_feature`, naming it). A registry feature "
        "the served model does not read (GET /v1/model lists those it reads) is accepted and "
        "cannot move the probability.",
        properties={
            f.name: {
                "anyOf": [_with_range(_JSON_TYPES[f.kind], f), {"type": "null"}],
                "description": f.definition or f.name,
            }
            for f in FEATURES
        },
        additionalProperties=False,
        examples=[{"exec_sponsor_active": True, "active_days_30d": 18}],
    )


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
    never_surveyed: bool = Field(
        description="No CSM health input was ever recorded (nothing to do with customer "
        "satisfaction surveys).")


class Renewal(BaseModel):
    """An account's renewal probability, why, and how it moved."""

    account_id: str | None = Field(examples=["A000042"])
    name: str | None = Field(
        None,
        description="The customer's name (accounts.name of the data directory at the latest "
        "scoring run); null when the data has none. In GET renewal and the health-input "
        "re-score; POST /v1/score results do not carry it.",
        examples=["Prairiestone Consulting B.V."],
    )
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
        max_length=200, json_schema_extra=_what_if_features_schema
    )


def _exactly_one_of(*names: str) -> list[dict[str, Any]]:
    """JSON Schema: exactly one of ``names`` is given as a list (the others absent or null)."""
    return [
        {
            "required": [name],
            "properties": {
                other: {"type": "array"} if other == name else {"type": "null"} for other in names
            },
        }
        for name in names
    ]


class ScoreRequest(BaseModel):
    """Exactly one of ``account_ids`` (latest features) or ``accounts`` (what-if vectors)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": _exactly_one_of("account_ids", "accounts"),
            "examples": [
                {"account_ids": ["A000042", "A000043"]},
                {
                    "accounts": [
                        {"account_id": "A000042", "features": {"exec_sponsor_active": True}}
                    ]
                },
            ],
        },
    )

    account_ids: list[AccountId] | None = Field(None, min_length=1, max_length=MAX_BATCH)
    accounts: list[WhatIfVector] | None = Field(None, min_length=1, max_length=MAX_BATCH)
    top_k: json_int(1, 20) = Field(3, description="Drivers per side.")  # type: ignore[valid-type]

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
    name: str | None = Field(
        description="The customer's name (accounts.name of the data directory at the latest "
        "scoring run); null when the data has none.",
        examples=["Prairiestone Consulting B.V."])
    csm_id: str | None
    segment: str | None
    arr: float | None
    probability: float
    risk_tier: RiskTier
    arr_at_risk: float | None = Field(
        description="arr × (1 − probability); null when arr is unknown (listed with 0)")
    change_30d: float | None
    activated: bool | None
    past_window_not_activated: bool | None
    as_of: date
    renewal_date: date | None = Field(
        None, description="Last day of the account's main term (the largest ARR in force): the "
        "renewal to win. Null when unknown.")
    days_to_renewal: int | None = Field(
        None, description="Days from as_of to renewal_date; negative: the term has ended and "
        "its renewal is still open (overdue).")
    top_risk_drivers: list[str] = Field(description="Descriptions of the top risk drivers.")


class RiskListPage(BaseModel):
    data: list[RiskListItem]
    count: int = Field(description="Accounts matching the filters (all pages); the same as "
                       "`total`, kept as the risk list always had it.")
    total: int = Field(description="Accounts matching the filters (all pages), as `total` "
                       "is on every other list.")
    limit: int
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null at the end."
    )


#: Each health input with the JSON type it has when given (not null).
_HEALTH_INPUT_TYPES = {
    "exec_sponsor_active": "boolean",
    "core_process_live": "boolean",
    "csm_score": "integer",
    "note": "string",
}


class HealthInputIn(BaseModel):
    """A CSM's judgement. Null or absent = no new judgement on that input (the last one holds);
    at least one input must be given (not null)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": kind}}}
                for name, kind in _HEALTH_INPUT_TYPES.items()
            ],
            "examples": [
                {
                    "exec_sponsor_active": True,
                    "core_process_live": False,
                    "csm_score": 3,
                    "note": "Sponsor back from leave; invoicing still in spreadsheets.",
                }
            ],
        },
    )

    exec_sponsor_active: StrictBool | None = None
    core_process_live: StrictBool | None = None
    csm_score: json_int(1, 5) | None = Field(  # type: ignore[valid-type]
        None, description="The CSM's rating, 1 (worst) to 5 (best); 4.0 is read as 4."
    )
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
    model_reads_inputs: bool = Field(
        description="Whether the served model reads any of the CSM's manual inputs. false: "
        "it was trained without them, so the input is stored but changes no score until a "
        "model trained on data with a health_inputs table is served.")


class HealthInputHistory(BaseModel):
    data: list[HealthInputOut]
    count: int


class MetricTable(BaseModel):
    metric: Literal["activation", "activity", "renewal", "ndr"]
    by: Literal["segment", "csm_id", "cohort"] | None
    as_of: date
    rows: list[dict[str, Any]]
    warnings: list[str] = Field(
        description="What the data directory says about these figures, as `renewal metrics` "
        "prints it (e.g. usage ending before as_of: the days after count as days without "
        "usage for every account); empty when nothing.",
        examples=[[]],
    )


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


class ScoringRunOut(BaseModel):
    """One `renewal score` run."""

    model_config = ConfigDict(protected_namespaces=())

    run_id: int
    as_of: date = Field(description="Date the run's features describe.")
    model_name: str
    model_version: str
    accounts_scored: int
    accounts_lost: int | None = Field(
        description="Accounts lost by as_of (last term ended, not renewed): not scored. "
        "Null for runs stored before it was recorded.")
    warnings: list[str] | None = Field(
        description="What the run said about its data (usage ending before as_of, inputs or "
        "feature thresholds the model was trained with and the data lacks). Null for runs "
        "stored before they were recorded.",
        examples=[["usage ends 2025-12-21, 10 day(s) before as-of 2025-12-31: ..."]])
    data_dir: str = Field(description="The data directory: its full path for admin keys, its "
                          "name for the others.")
    started_at: datetime
    finished_at: datetime


class ScoringRunsOut(BaseModel):
    data: list[ScoringRunOut] = Field(description="Newest first.")
    count: int


class ReloadResult(BaseModel):
    outcome: Literal["swapped", "unchanged", "refused"]
    version: str | None
    previous_version: str | None
    detail: str
    cached_accounts: int


class Liveness(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """Answers anyone: no business figure (how many customers are scored changes with every
    run; admin keys read it as ``renewal_cached_accounts`` on ``/metrics``)."""

    status: Literal["ready", "degraded", "unavailable"]
    model: dict[str, Any]
    database: dict[str, Any]
