"""Every threshold of the domain rules, in one typed, frozen object.

Each product has its own notion of a key action and of "active", so none of these numbers is
hard-coded in the feature definitions: they all come from here (defaults = the domain file,
see ``features/default_config.toml`` for the documented defaults).
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from renewal.errors import ConfigError

Tier = Literal["zero", "low", "mid", "high"]
TIERS: tuple[Tier, ...] = ("zero", "low", "mid", "high")
Severity = Literal["low", "medium", "high"]


class FeatureConfig(BaseModel):
    """The domain's thresholds; unknown keys are refused so a typo never silently does nothing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Daily tier: low <= S*share*low_mult < mid <= S*share*mid_mult < high (+ login condition).
    active_share: float = Field(0.6, gt=0, le=1, description="Share of seats in the tier caps.")
    low_multiplier: float = Field(2, gt=0, description="Actions per active seat: low tier cap.")
    mid_multiplier: float = Field(4, gt=0, description="Actions per active seat: mid tier cap.")
    high_login_share: float = Field(
        0.6, ge=0, le=1, description="Share of seats that must log in for a high day."
    )
    active_min_tier: Literal["low", "mid", "high"] = Field(
        "low", description="Lowest tier that makes a day active."
    )
    weekly_active_days: int = Field(3, ge=1, le=7, description="Active days for an active week.")
    monthly_rule: Literal["days", "working_days"] = Field(
        "days", description="'days': >= monthly_active_days; 'working_days': share of working days."
    )
    monthly_active_days: int = Field(12, ge=1, le=31)
    working_days_share: float = Field(0.6, gt=0, le=1, description="3/5 of the working days.")
    holidays: list[date] = Field(default_factory=list, description="Excluded from working days.")
    activation_week_active_days: int = Field(3, ge=1, le=7)
    activation_window_days_small: int = Field(30, ge=1)
    activation_window_days_large: int = Field(45, ge=1)
    activation_seat_threshold: int = Field(
        50, ge=0, description="Seats <= threshold get the small activation window."
    )
    activation_window_by_segment: dict[str, int] = Field(
        default_factory=dict, description="Segment -> window in days; overrides the seat rule."
    )
    usage_history_starts: date | None = Field(
        None, description="First day the usage table covers, when it starts after some "
        "accounts signed (an export of the last year): their activation is unknown (null), "
        "not 'not activated'. None: usage covers every account from its signing.")
    north_star_threshold: float = Field(80000, ge=0)
    bug_deadline_days_by_severity: dict[Severity, int] = Field(
        default_factory=lambda: {"high": 7, "medium": 30, "low": 90}
    )
    stale_input_days: int = Field(90, ge=1, description="Manual health older than this is stale.")

    @field_validator("*", mode="before")
    @classmethod
    def _no_true_false_for_numbers(cls, value: object) -> object:
        """No field is a yes/no: pydantic would read TOML ``true`` as 1 (a 1-day window)."""
        values = value.values() if isinstance(value, dict) else (
            value if isinstance(value, list) else [value])
        if any(isinstance(v, bool) for v in values):
            raise ValueError("true/false is not a valid value here: write a number or text")
        return value

    @field_validator("mid_multiplier")
    @classmethod
    def _mid_above_low(cls, value: float, info) -> float:
        low = info.data.get("low_multiplier")
        if low is not None and value < low:
            raise ValueError(f"mid_multiplier ({value}) must be >= low_multiplier ({low})")
        return value

    @field_validator("bug_deadline_days_by_severity")
    @classmethod
    def _every_severity(cls, value: dict[str, int]) -> dict[str, int]:
        missing = {"low", "medium", "high"} - set(value)
        if missing:
            raise ValueError(f"missing deadline for severity {sorted(missing)}")
        return value

    @field_validator("activation_window_by_segment")
    @classmethod
    def _positive_windows(cls, value: dict[str, int]) -> dict[str, int]:
        bad = {k: v for k, v in value.items() if v < 1}
        if bad:
            raise ValueError(f"activation windows must be >= 1 day, got {bad}")
        return value

    def window_for(self, seats: int, segment: str | None) -> int:
        """The activation window of one account: segment override, else the seat rule."""
        if segment is not None and segment in self.activation_window_by_segment:
            return self.activation_window_by_segment[segment]
        if seats <= self.activation_seat_threshold:
            return self.activation_window_days_small
        return self.activation_window_days_large


def load_feature_config(path: Path | None) -> FeatureConfig:
    """The defaults, or the TOML file at ``path`` over them. Errors name the offending key."""
    if path is None:
        return FeatureConfig()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"feature config {path} does not exist") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"feature config {path} is not valid TOML: {exc}") from exc
    # Allow the documented layout with a [features] table, or the keys at top level.
    if set(data) == {"features"} and isinstance(data["features"], dict):
        data = data["features"]
    unknown = sorted(set(data) - set(FeatureConfig.model_fields))
    if unknown:
        raise ConfigError(
            f"feature config {path}: unknown key(s) {', '.join(unknown)}; "
            f"known keys: {', '.join(FeatureConfig.model_fields)}"
        )
    try:
        return FeatureConfig(**data)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"feature config {path}: {details}") from exc
