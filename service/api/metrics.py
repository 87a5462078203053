"""GET /v1/metrics/{metric}: cohort metrics of the scored data, cached per as_of.

A CSM key gets the metrics of its own accounts only (crm and admin: all accounts). Each answer
carries what ``renewal metrics`` warns about the data directory (usage ending before the as_of,
beginning after accounts signed, the data contract's warnings): without them, months after the
usage ends read as a real fall of the activity rate to 0."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BeforeValidator

from service.api.schemas import MetricTable
from service.auth import Reader
from service.context import Ctx, ServiceContext
from service.data_dirs import readable_dir
from service.db import scores as scores_db
from service.keys import Principal
from service.metric_results import MetricsBusy
from service.problems import ProblemError, problem_responses

router = APIRouter(prefix="/v1/metrics", tags=["metrics"])

MetricName = Literal["activation", "activity", "renewal", "ndr"]
#: ``csm`` is taken for ``csm_id``: the forecast and the save rate say ``by=csm`` (a client
#: written against one was refused by the other); answers say ``csm_id``.
GroupBy = Literal["segment", "csm_id", "cohort", "csm"]
#: ``as_of`` as the document states it: ISO 8601 ``YYYY-MM-DD``, years 1900-2099 (and, said
#: in the description, not after today). Fuzzing found ``?as_of=0.0`` read as 1970-01-01 (lax
#: pydantic date), and 500s for years the pipeline's nanosecond timestamps cannot hold.
AS_OF_PATTERN = r"^(19|20)[0-9]{2}-[0-9]{2}-[0-9]{2}$"
_AS_OF = re.compile(AS_OF_PATTERN)


def _as_of_text(value: Any) -> Any:
    if isinstance(value, str) and _AS_OF.fullmatch(value):
        return value
    raise ValueError("must be a date as YYYY-MM-DD, years 1900-2099")


MetricDate = Annotated[date, BeforeValidator(_as_of_text)]


def metric_scope(principal: Principal) -> str | None:
    """Whose accounts the caller's metrics cover: a CSM's id, or None for all accounts."""
    return (principal.csm_id or "") if principal.role == "csm" else None


def compute_metric(
    ctx: ServiceContext,
    data_dir: Path,
    as_of: date,
    metric: str,
    by: str | None,
    csm_id: str | None = None,
) -> list[dict[str, Any]]:
    """One cohort metric table as JSON rows (features.metrics does the work), over the
    accounts of ``csm_id`` only when given."""
    from features.config import load_feature_config
    from features.metrics import cohort_metrics, to_records
    from features.source import open_source
    from service.metric_scope import csm_source

    config = load_feature_config(ctx.settings.feature_config)
    source = open_source(data_dir)
    if csm_id is not None:
        source = csm_source(source, csm_id)
    return to_records(cohort_metrics(source, as_of, config, metric, by))  # type: ignore[arg-type]


@dataclass(frozen=True)
class DataFacts:
    """What ``features.freshness.data_warnings`` reads from a data directory, split into what
    depends on the as_of (only where the usage ends) and the sentences that do not: one read
    per scoring run answers every metric, grouping, scope and date."""

    usage_end: date | None
    #: The usage-start and data-contract sentences, in data_warnings' order.
    undated: tuple[str, ...]

    def warnings(self, as_of: date) -> list[str]:
        """``data_warnings(source, as_of, config)``: the same sentences, in the same order."""
        from features.freshness import usage_ends_sentence

        end = usage_ends_sentence(as_of, self.usage_end)
        return [w for w in (end,) if w is not None] + list(self.undated)


def data_facts(ctx: ServiceContext, data_dir: Path) -> DataFacts:
    """The data directory's :class:`DataFacts`, over all its accounts: they describe the
    export, as ``renewal metrics`` and the scoring run say them (a scoring run's warnings
    are shown to every key too), and a CSM's own usage ending early is not the export's."""
    from features.config import load_feature_config
    from features.freshness import contract_warning_sentences, usage_span, usage_start_warning
    from features.source import open_source

    config = load_feature_config(ctx.settings.feature_config)
    source = open_source(data_dir)
    start, end = usage_span(source)
    started = usage_start_warning(source, config, start)
    undated = [w for w in (started,) if w is not None] + contract_warning_sentences(source)
    return DataFacts(end, tuple(undated))


def kept_or_computed(ctx: ServiceContext, key: tuple[Any, ...],
                     compute: Callable[[], Any], facts: bool = False) -> Any:
    """``ctx.metric_results``' kept or newly computed result (``facts``: data-directory
    facts); 503 ``metrics-busy`` when no computation slot frees up in time (see
    :mod:`service.metric_results`)."""
    results = ctx.metric_results
    try:
        if facts:
            return results.facts_or_compute(key, compute)
        return results.get_or_compute(key, compute)
    except MetricsBusy:
        raise ProblemError(
            503, "metrics-busy",
            "other cohort metrics are being computed; retry shortly (results are kept, so a "
            "retry of one already computed answers at once)",
            headers={"Retry-After": str(ctx.service_settings.db_retry_after_seconds)},
        ) from None


@router.get(
    "/{metric}",
    response_model=MetricTable,
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="Cohort metric: activation, activity, renewal or NDR",
)
def get_metric(
    metric: MetricName,
    principal: Reader,
    ctx: Ctx,
    by: Annotated[GroupBy | None, Query(
        description="Split by segment, CSM (csm_id; csm is taken for it) or cohort.")] = None,
    as_of: Annotated[
        MetricDate | None,
        Query(
            description="YYYY-MM-DD, not after today (UTC), else 422. Default: the as_of of "
            "the latest scoring run.",
            json_schema_extra={"pattern": AS_OF_PATTERN},
        ),
    ] = None,
) -> dict[str, Any]:
    """Computed from the data directory of the latest scoring run; results are cached per
    metric, grouping and as_of until the next run. A CSM key's metrics cover only its own
    accounts (accounts.csm_id of the data directory). ``warnings``: what the data directory
    says about these figures, as ``renewal metrics`` prints it (empty when nothing)."""
    by = "csm_id" if by == "csm" else by
    if as_of is not None and as_of > datetime.now(UTC).date():
        raise ProblemError(
            422,
            "validation-error",
            f"invalid query.as_of: must not be after today (UTC) (got '{as_of.isoformat()}')",
            errors=[{"field": "query.as_of", "type": "date_future", "message": "after today"}],
        )
    with ctx.sessions() as session:
        run = scores_db.latest_run(session)
    if run is None:
        raise ProblemError(404, "no-scoring-run", "no scoring run yet: run `renewal score` first")
    when = as_of or run.as_of
    scope = metric_scope(principal)
    key = (run.id, metric, by, when, scope)
    facts_key = (run.id, "data-facts")

    def data_dir() -> Path:
        return readable_dir(ctx, Path(run.data_dir),
                            "the data directory of the latest scoring run is not readable here")

    rows = ctx.metric_results.get(key)
    if rows is None:
        rows_from = data_dir()
        rows = kept_or_computed(
            ctx, key, lambda: compute_metric(ctx, rows_from, when, metric, by, scope))
    facts = ctx.metric_results.kept_facts(facts_key)
    if facts is None:
        facts_from = data_dir()
        facts = kept_or_computed(ctx, facts_key, lambda: data_facts(ctx, facts_from), facts=True)
    return {"metric": metric, "by": by, "as_of": when, "rows": rows,
            "warnings": facts.warnings(when)}
