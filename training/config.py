"""Every knob of a training run, in one typed, frozen object loaded from TOML.

Defaults are the issue's: snapshots 90 days before expiry (the domain's "3 months before
expiry"), the last 3 months of contract ends for test, the 3 months before for calibration.
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from renewal.errors import ConfigError

CalibrationMethod = Literal["auto", "isotonic", "sigmoid"]
MAX_SEED = 2**32 - 1  # numpy's and scikit-learn's upper bound for a random_state
TOP_LEVEL_TABLES = ("lightgbm",)  # may sit next to [training] (docs/model.md's layout)


def _a_number(value: object) -> object:
    """Refuse TOML true/false and quoted numbers, which pydantic would quietly read as numbers.

    ``horizon_days = true`` would otherwise train with a 1-day horizon, ``"60"`` hide a typo.
    """
    if isinstance(value, bool):
        raise ValueError("true/false is not a valid value here: write a number")
    if isinstance(value, str):
        raise ValueError(f"{value!r} is text: write the number without quotes")
    return value


Int = Annotated[int, BeforeValidator(_a_number)]
Float = Annotated[float, BeforeValidator(_a_number)]


class LightGBMParams(BaseModel):
    """The booster's hyper-parameters: small trees, strong regularisation (a few thousand rows).

    Chosen on a simulation with another seed (1) by the calibration window's cross-fitted log
    loss, never on the test window of the data they are reported on (see docs/model.md).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    learning_rate: Float = Field(0.03, gt=0, le=1)
    num_leaves: Int = Field(15, ge=2)
    min_data_in_leaf: Int = Field(100, ge=1)
    feature_fraction: Float = Field(0.5, gt=0, le=1)
    bagging_fraction: Float = Field(0.8, gt=0, le=1)
    bagging_freq: Int = Field(1, ge=0)
    lambda_l2: Float = Field(10.0, ge=0)
    max_rounds: Int = Field(2000, ge=1, description="Upper bound; early stopping picks the count.")
    early_stopping_rounds: Int = Field(100, ge=1)
    monotone: bool = Field(
        True, strict=True, description="Monotone constraints from the registry (certain).")


class TrainConfig(BaseModel):
    """How the training set is cut, which models are fitted, and how the result is calibrated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    horizon_days: Int = Field(90, ge=1, description="Features as of end_date - horizon_days.")
    extra_horizons_days: list[Int] = Field(
        default_factory=list, description="More snapshots per contract, e.g. [180, 270]: one "
        "row per contract and horizon, so the model sees (and is measured at) the lead times "
        "it is served at. Empty: one row per contract, as of horizon_days."
    )
    test_months: Int = Field(3, ge=1, description="Last months of contract ends: test window.")
    calibration_months: Int = Field(3, ge=1, description="Months before test: calibration window.")
    test_start: date | None = Field(None, description="Explicit test window start (overrides).")
    calibration_start: date | None = Field(None, description="Explicit calibration start.")
    seed: Int = Field(42, ge=0, le=MAX_SEED, description="Random seed of every model.")
    calibration: CalibrationMethod = Field(
        "auto", description="'auto' picks isotonic or sigmoid by cross-fitted log loss."
    )
    calibration_folds: Int = Field(5, ge=2, description="Folds of the cross-fit that picks it.")
    logistic_c: Float = Field(1.0, gt=0, description="Inverse L2 strength of the baseline.")
    train_threads: Int = Field(
        1, ge=0, description="LightGBM threads while fitting (0 = all cores). One is fastest for "
        "a few thousand rows and immune to OpenMP stalls on a busy machine."
    )
    scoring_threads: Int = Field(0, ge=0, description="Threads of the shipped scorer; 0 = all.")
    explain_top_k: Int = Field(3, ge=1)
    min_rows_per_part: Int = Field(20, ge=1, description="Refuse to fit on fewer rows.")
    champion_confidence: Float = Field(
        0.95, ge=0.5, lt=1, description="How sure a paired bootstrap of the test rows must be "
        "that the new model's log loss is lower before it replaces the champion: a lower log "
        "loss within the test window's noise (another seed) is no reason to switch models."
    )
    lightgbm: LightGBMParams = Field(default_factory=LightGBMParams)

    @field_validator("extra_horizons_days")
    @classmethod
    def _positive_and_distinct(cls, days: list[int]) -> list[int]:
        too_short = [d for d in days if d < 1]
        if too_short:
            raise ValueError(f"{too_short[0]} is not a horizon: each must be at least 1 day")
        twice = sorted({d for d in days if days.count(d) > 1})
        if twice:
            raise ValueError(f"{twice[0]} is listed twice: each horizon once")
        return days

    @model_validator(mode="after")
    def _extras_are_extra(self) -> TrainConfig:
        if self.horizon_days in self.extra_horizons_days:
            raise ValueError(
                f"extra_horizons_days: {self.horizon_days} is horizon_days itself (the primary "
                "horizon, always included); list only the additional ones"
            )
        return self

    @property
    def horizons_days(self) -> list[int]:
        """Every snapshot horizon, shortest first: horizon_days and the extra ones."""
        return sorted([self.horizon_days, *self.extra_horizons_days])


def read_toml(path: Path) -> dict:
    """The TOML at ``path``; every way it cannot be read is a ConfigError, not a traceback."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"training config {path} does not exist") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"training config {path} is a directory, not a TOML file") from exc
    except OSError as exc:
        raise ConfigError(f"training config {path} cannot be read: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"training config {path} is not valid TOML: {exc}") from exc


def training_keys(data: dict, path: Path) -> dict:
    """The TrainConfig keys of a file: its top level, or its ``[training]`` table.

    With a ``[training]`` table, a sibling ``[lightgbm]`` table is its booster settings (the
    layout docs/model.md shows); any other top-level key is refused, because it used to be
    dropped silently (``seed = 7`` above ``[training]`` trained with seed 42).
    """
    if "training" not in data:
        return data
    training = data["training"]
    if not isinstance(training, dict):
        raise ConfigError(f"training config {path}: 'training' must be a [training] table")
    stray = sorted(k for k in data if k not in ("training", *TOP_LEVEL_TABLES))
    if stray:
        raise ConfigError(
            f"training config {path}: key(s) {', '.join(stray)} sit at top level next to a "
            "[training] table; move them into [training] (or drop the [training] header)"
        )
    training = dict(training)
    for table in TOP_LEVEL_TABLES:
        if table in data:
            if table in training:
                raise ConfigError(f"training config {path}: both [{table}] and "
                                  f"[training.{table}]; keep one")
            training[table] = data[table]
    return training


def _describe(err: dict) -> str:
    """One pydantic error as ``key: message``, naming unknown keys as such."""
    where = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        model = LightGBMParams if err["loc"][0] == "lightgbm" else TrainConfig
        return f"{where}: unknown key (known: {', '.join(model.model_fields)})"
    message = err["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message  # a check across keys names its own


def load_train_config(path: Path | None, **overrides: object) -> TrainConfig:
    """Defaults, or the TOML at ``path`` (top level or a ``[training]`` table), then overrides.

    ``overrides`` with value None are ignored, so CLI options that were not given keep the file's
    value.
    """
    data: dict = {}
    if path is not None:
        path = Path(path)
        data = training_keys(read_toml(path), path)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return TrainConfig(**data)
    except ValidationError as exc:
        details = "; ".join(_describe(err) for err in exc.errors())
        where = f"training config {path}" if path is not None else "training config"
        raise ConfigError(f"{where}: {details}") from exc
