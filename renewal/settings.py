"""The one typed place for paths and URLs; read from the environment (prefix ``RENEWAL_``).

Nothing is read at import time: call :func:`get_settings`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where data, models and services live. Every field can be set as ``RENEWAL_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="RENEWAL_", env_file=None, extra="ignore")

    data_dir: Path = Field(Path("data"), description="Working directory for data, MLflow, DB.")
    models_dir: Path = Field(Path("models"), description="Local model cache (last-known-good).")
    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default: SQLite store under data_dir."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the score store; default: SQLite under data_dir."
    )
    model_name: str = "renewal"
    model_alias: str = "champion"
    feature_config: Path | None = Field(None, description="TOML file of feature thresholds.")

    @property
    def resolved_tracking_uri(self) -> str:
        """The MLflow store; a local SQLite file unless configured."""
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"

    @property
    def resolved_database_url(self) -> str:
        """The score store; a local SQLite file unless configured."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'renewal.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
