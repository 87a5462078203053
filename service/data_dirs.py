"""Which data directory a route reads, and that it is there: outcomes (contracts, surveys) come
from ``RENEWAL_OUTCOMES_DATA_DIR`` or the latest scoring run's directory, cohort metrics from
the latter. A directory that is not readable here is a 503, never read as empty."""

from __future__ import annotations

from pathlib import Path

from service.context import ServiceContext
from service.db import scores as scores_db
from service.problems import ProblemError


def readable_dir(ctx: ServiceContext, path: Path, detail: str) -> Path:
    """``path`` if it is a directory, else 503 ``data-unavailable`` saying ``detail``."""
    if not path.is_dir():
        raise ProblemError(
            503, "data-unavailable", detail,
            headers={"Retry-After": str(ctx.service_settings.db_retry_after_seconds)},
        )
    return path


def outcomes_dir(ctx: ServiceContext, configured: Path | None) -> Path:
    """The data directory whose contracts hold the outcomes (setting, else latest run's).
    Either must be a readable directory (503 otherwise): a mistyped setting must not read
    as "no surveys table" or "no contracts"."""
    if configured is not None:
        return readable_dir(ctx, Path(configured),
                            "the outcomes data directory (RENEWAL_OUTCOMES_DATA_DIR) is not a "
                            "readable directory here")
    with ctx.sessions() as session:
        run = scores_db.latest_run(session)
    if run is None:
        raise ProblemError(404, "no-scoring-run", "no scoring run yet: run `renewal score` first")
    return readable_dir(ctx, Path(run.data_dir),
                        "the data directory of the latest scoring run is not readable here; "
                        "set RENEWAL_OUTCOMES_DATA_DIR")
