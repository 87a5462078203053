"""Service-only settings (risk tiers, request limits, caches); read from ``RENEWAL_*``.

General paths and URLs (data dir, models dir, database and tracking URIs, model name and
alias) stay in :mod:`renewal.settings`; only what the HTTP service and the scoring job need
on top of them lives here. Nothing is read at import time: call :func:`get_service_settings`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The API's own limits, stated in its OpenAPI schema (fixed at start-up): the settings below
#: may lower them, not raise them (a higher value was taken and then met a 422 at the bound).
BATCH_ACCOUNTS_LIMIT = 1000
PAGE_SIZE_LIMIT = 200


class ServiceSettings(BaseSettings):
    """Knobs of the scoring service. Every field can be set as ``RENEWAL_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="RENEWAL_", env_file=None, extra="ignore")

    risk_high_below: float = Field(
        0.5, gt=0, lt=1, description="Renewal probability below this is tier 'high' risk."
    )
    risk_medium_below: float = Field(
        0.75, gt=0, lt=1, description="Renewal probability below this (and not high) is 'medium'."
    )
    max_body_bytes: int = Field(
        4_194_304, ge=1024,
        description="Largest request body accepted. 4 MiB leaves room for a batch of "
        "max_batch_accounts (1,000) full what-if vectors of ~2 KB each (at 1 MiB, 600 were a "
        "413: found by audit).",
    )
    max_batch_accounts: int = Field(
        BATCH_ACCOUNTS_LIMIT, ge=1, le=BATCH_ACCOUNTS_LIMIT,
        description="Most accounts per POST /v1/score (may lower the API's 1,000).",
    )
    max_page_size: int = Field(
        PAGE_SIZE_LIMIT, ge=1, le=PAGE_SIZE_LIMIT,
        description="Largest risk-list page (may lower the API's 200).",
    )
    default_page_size: int = Field(50, ge=1)
    top_k_drivers: int = Field(3, ge=1, le=20, description="Drivers per side in responses.")
    change_window_days: int = Field(30, ge=1, description="Look-back of change_30d and min_drop.")
    key_cache_seconds: float = Field(
        5.0, ge=0, description="How long a verified key is trusted before re-reading the DB."
    )
    cache_refresh_seconds: float = Field(
        5.0, gt=0, description="How often to pick up scores written by other processes."
    )
    model_poll_seconds: float | None = Field(
        None, gt=0, description="Poll the registry alias this often and reload on change."
    )
    registry_timeout_seconds: float = Field(
        10.0, gt=0, description="HTTP timeout for a remote MLflow registry at start-up/reload."
    )
    db_retry_after_seconds: int = Field(
        5, ge=1, description="Retry-After sent when the DB is down."
    )
    metrics_concurrency: int = Field(
        1, ge=1, description="Cohort-metric computations run at once per worker (each reads "
        "the whole data directory with every core)."
    )
    metrics_wait_seconds: float = Field(
        30.0, gt=0, description="How long a metrics request waits for a computation slot "
        "before it is answered 503 with Retry-After."
    )
    metrics_cached_results: int = Field(
        64, ge=1, description="Cohort-metric results kept per worker (least recently used "
        "dropped first; all dropped on a new scoring run)."
    )

    @model_validator(mode="after")
    def _tiers_ordered(self) -> ServiceSettings:
        if self.risk_high_below > self.risk_medium_below:
            raise ValueError(
                f"risk_high_below ({self.risk_high_below}) must be <= "
                f"risk_medium_below ({self.risk_medium_below})"
            )
        if self.default_page_size > self.max_page_size:
            raise ValueError(
                f"default_page_size ({self.default_page_size}) must be <= "
                f"max_page_size ({self.max_page_size})"
            )
        return self

    def risk_tier(self, probability: float) -> str:
        """'high', 'medium' or 'low' risk of NOT renewing, from the renewal probability."""
        if probability < self.risk_high_below:
            return "high"
        if probability < self.risk_medium_below:
            return "medium"
        return "low"

    def risk_tiers(self, probabilities: np.ndarray) -> list[str]:
        """:meth:`risk_tier` of each probability, at once (a batch has 200,000)."""
        tiers = np.array(["high", "medium", "low"])
        cuts = np.array([self.risk_high_below, self.risk_medium_below])
        return tiers[np.searchsorted(cuts, probabilities, side="right")].tolist()


@lru_cache(maxsize=1)
def get_service_settings() -> ServiceSettings:
    """The process-wide service settings, read once from the environment."""
    return ServiceSettings()
