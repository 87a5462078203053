"""The ``renewal score`` job: features as of a date → champion model → score history (+ Parquet).

Health inputs recorded through the API are merged into the data directory's
``health_inputs`` table first (per input, the latest dated value wins; on the same date the
API's value wins), so a CSM's judgement counts in every run after it was recorded.
Contributions (exact TreeSHAP) dominate the cost; LightGBM computes them on every core.
The run's webhook events (risk tier crossed, probability dropped, activation window missed)
are stored in the transaction that writes the scores (an outbox): the app's worker sends them.
The cheap checks (an --as-of not after today, a writable --out that is no input) come before
any work; the Parquet file is staged and renamed into place only once the scores are stored.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from renewal.datadir import read_table
from renewal.errors import ConfigError, DataContractError, Problem
from renewal.settings import Settings
from service.account_names import account_names
from service.config import ServiceSettings
from service.db import accounts as accounts_db
from service.db import scores as scores_db
from service.db.engine import make_engine, make_session_factory, transaction
from service.db.health_inputs import last_input_id, stored_inputs_as_table
from service.db.migrate import upgrade
from service.db.models import ScoringRun, utc_now
from service.health_vectors import INPUT_FEATURES
from service.late_inputs import InputsRead, apply_late_inputs
from service.lost_accounts import lost_accounts_of, split_lost
from service.model_inputs import model_input_warnings
from service.model_store import LoadedModel, ModelStore
from service.predict import (
    ScoredVector,
    encode_frame,
    json_value,
    score_encoded,
    score_records,
    score_vectors,
    vectors_as_json,
)
from service.workflows.config import WorkflowSettings, get_workflow_settings
from service.workflows.survey_events import (
    ScoredNow,
    SurveyAlerts,
    emit_survey_events,
    survey_alerts,
)
from service.workflows.webhooks.events import emit_score_events

if TYPE_CHECKING:
    from features.source import Source

Progress = Callable[[str, float], None]
#: Columns of the accounts snapshot taken from the feature frame; the customer's ``name``
#: comes from the data directory's accounts table (:mod:`service.account_names`).
ACCOUNT_COLUMNS = ("csm_id", "segment", "arr", "seats", "activated", "past_window_not_activated")
#: Below this many rows one call is faster than splitting the rows.
PARALLEL_FROM_ROWS = 20_000
#: Rows per chunk of :func:`score_in_threads` (small enough to keep both cores busy).
BATCH_CHUNK_ROWS = 10_000


@dataclass
class ScoringSummary:
    """What a run did, with timings (seconds) per step."""

    as_of: date
    accounts: int
    model_name: str
    model_version: str
    run_id: int | None
    out: Path | None
    seconds: dict[str, float] = field(default_factory=dict)
    risk_tiers: dict[str, int] = field(default_factory=dict)
    # For people, not errors: e.g. the usage ending before as_of (features.freshness).
    warnings: list[str] = field(default_factory=list)
    # Accounts lost by as_of (last term ended, not renewed): kept out of the scores
    # (service.lost_accounts), counted here so that none disappears unseen.
    lost_accounts: int = 0


def merged_health_inputs(data_dir: Path, stored: pd.DataFrame) -> pd.DataFrame | None:
    """The data directory's health inputs with the API's stored inputs on top.

    The data directory's rows of one account and day first collapse as the features read
    them: per input the minimum, the more worrying value (features/windows/manual_health.py),
    and a row without any input (a note alone) is no judgement. Then per (account, date) and
    per input the API's value, when not null, wins over it, so an API value on the same date
    overrides and an API null leaves it alone. (Collapsing everything with "last" took the
    data directory's last row of a day, whatever the features' rule: found by review.)
    """
    from_dir = read_table(data_dir, "health_inputs")
    if from_dir is None and stored.empty:
        return None
    parts = [p for p in (from_dir, stored) if p is not None and not p.empty]
    if not parts:
        return from_dir
    columns = ["account_id", "date", *INPUT_FEATURES]
    frames = [
        p.reindex(columns=columns).astype(
            {
                "account_id": "string",
                "date": "datetime64[ns]",
                "exec_sponsor_active": "boolean",
                "core_process_live": "boolean",
                "csm_score": "Int64",
            }
        ).dropna(subset=list(INPUT_FEATURES), how="all")
        for p in parts
    ]
    if from_dir is not None and not from_dir.empty:
        keys = ["account_id", "date"]
        frames[0] = frames[0].groupby(keys, sort=True, dropna=False).min().reset_index()
    combined = pd.concat(frames, ignore_index=True)
    merged = combined.groupby(["account_id", "date"], sort=True, dropna=False).last()
    return merged.reset_index()[columns]


def _install_health_inputs(source: Source, merged: pd.DataFrame | None) -> None:
    """Replace the source's health_inputs table with the merged one (same types as the reader)."""
    if merged is None:
        return
    import ibis

    frame = pd.DataFrame(
        {
            "account_id": merged["account_id"].astype(str),
            "date": pd.to_datetime(merged["date"]).dt.date,
            "exec_sponsor_active": merged["exec_sponsor_active"]
            .astype("object")
            .where(merged["exec_sponsor_active"].notna(), None),
            "core_process_live": merged["core_process_live"]
            .astype("object")
            .where(merged["core_process_live"].notna(), None),
            "csm_score": merged["csm_score"]
            .astype("object")
            .where(merged["csm_score"].notna(), None),
            "note": None,
        }
    )
    source.tables["health_inputs"] = ibis.memtable(
        frame,
        schema={
            "account_id": "string",
            "date": "date",
            "exec_sponsor_active": "boolean",
            "core_process_live": "boolean",
            "csm_score": "int64",
            "note": "string",
        },
    )


def compute_features(
    data_dir: Path, as_of: date, settings: Settings, stored_inputs: pd.DataFrame
) -> pd.DataFrame:
    """Feature vectors of every account signed by ``as_of``, with the stored health inputs."""
    return features_with_warnings(data_dir, as_of, settings, stored_inputs)[0]


def features_with_warnings(
    data_dir: Path, as_of: date, settings: Settings, stored_inputs: pd.DataFrame
) -> tuple[pd.DataFrame, list[str]]:
    """:func:`compute_features`, and what people should know about the data it read."""
    return _features_of(_scoring_source(data_dir, stored_inputs), as_of, settings)


def customer_features(
    data_dir: Path, as_of: date, settings: Settings, stored_inputs: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, list[str]]:
    """What a scoring run scores: the vectors of the customers at ``as_of``, those of the
    accounts lost by then with their ``lost_on`` (service.lost_accounts), and the warnings;
    all from one opened data directory."""
    source = _scoring_source(data_dir, stored_inputs)
    frame, warnings = _features_of(source, as_of, settings)
    if frame.empty:
        raise DataContractError(
            [Problem("accounts", "signed_at", f"no account is signed on or before {as_of}")]
        )
    customers, lost, lost_on = split_lost(frame, lost_accounts_of(source, as_of), as_of)
    return customers, lost, lost_on, warnings


def _scoring_source(data_dir: Path, stored_inputs: pd.DataFrame) -> Source:
    """The data directory's tables, its health inputs merged with the API's stored ones."""
    from features.source import open_source

    source = open_source(data_dir)
    _install_health_inputs(source, merged_health_inputs(data_dir, stored_inputs))
    return source


def _features_of(
    source: Source, as_of: date, settings: Settings
) -> tuple[pd.DataFrame, list[str]]:
    """Every signed account's vector as of ``as_of``, and what the usage's reach warns of."""
    from features.config import load_feature_config
    from features.freshness import data_warnings
    from features.vectors import features_as_of

    config = load_feature_config(settings.feature_config)
    warnings = data_warnings(source, as_of, config)
    return features_as_of(source, as_of, config), warnings


def _score_chunk(
    model: LoadedModel, frame: pd.DataFrame, settings: ServiceSettings, top_k: int
) -> list[ScoredVector]:
    model.scorer.num_threads = 1  # one process per core; no OpenMP oversubscription
    return score_vectors(model, frame, settings, top_k)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def score_in_threads(
    model: LoadedModel, frame: pd.DataFrame, settings: ServiceSettings, top_k: int
) -> list[ScoredVector]:
    """Score chunks of rows on one thread per core, each chunk's contributions on one thread.

    LightGBM releases the GIL, so while one thread puts a chunk's drivers into words (Python)
    the others compute contributions: both cores stay busy with either. One call over all rows
    with OpenMP threads left the cores idle during the words (measured on 200,000 rows,
    2 cores: 1.37× raw ``pred_contrib`` against 1.2× this way).
    """
    encoded = encode_frame(model, frame)  # once: pandas per chunk would cost more
    cores = _cores()
    chunks = max(2 * cores, len(frame) // BATCH_CHUNK_ROWS)
    bounds = np.linspace(0, len(frame), chunks + 1, dtype=int)
    parts = [encoded.rows(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    with ThreadPoolExecutor(max_workers=cores, thread_name_prefix="score") as pool:
        results = pool.map(
            lambda part: score_encoded(model, part, settings, top_k, num_threads=1), parts
        )
        return [item for result in results for item in result]


def score_in_parallel(
    model: LoadedModel,
    frame: pd.DataFrame,
    settings: ServiceSettings,
    top_k: int,
    n_jobs: int | None = None,
) -> list[ScoredVector]:
    """Score ``frame`` on every core.

    By default one process scores chunks of rows on one thread per core
    (:func:`score_in_threads`). ``n_jobs > 1`` splits rows over that many processes instead,
    which pays only on machines with many idle cores (the results travel back by pickle).
    """
    if len(frame) < PARALLEL_FROM_ROWS:
        return score_vectors(model, frame, settings, top_k)
    if not n_jobs or n_jobs <= 1:
        return score_in_threads(model, frame, settings, top_k)
    from joblib import Parallel, delayed

    bounds = np.linspace(0, len(frame), n_jobs + 1, dtype=int)
    chunks = [frame.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    results = Parallel(n_jobs=n_jobs, backend="loky")(
        delayed(_score_chunk)(model, chunk, settings, top_k) for chunk in chunks
    )
    return [item for part in results for item in part]


def load_batch_model(settings: Settings, model_uri: str | None) -> LoadedModel:
    """The model to score with: ``--model URI`` or the registry alias (else last-known-good)."""
    store = ModelStore(settings)
    if model_uri:
        return store.load_uri(model_uri)
    model = store.start()
    if model is None:
        from renewal.errors import ModelUnavailableError

        raise ModelUnavailableError(f"no model to score with: {store.status_reason}")
    return model


def _score_rows(
    frame: pd.DataFrame,
    scored: list[ScoredVector],
    model: LoadedModel,
    as_of: date,
    created_at: datetime,
) -> list[dict[str, Any]]:
    vectors = vectors_as_json(frame)
    ids = frame["account_id"].astype(str).tolist()
    return [
        {
            "account_id": ids[i],
            "as_of": as_of,
            "model_name": model.name,
            "model_version": model.version,
            "probability": s.probability,
            "heuristic_probability": s.heuristic_probability,
            "risk_tier": s.risk_tier,
            "drivers": s.drivers,
            "features": vectors[i],
            "trigger": "batch",
            "created_at": created_at,
        }
        for i, s in enumerate(scored)
    ]


def account_rows(
    frame: pd.DataFrame,
    as_of: date,
    now: datetime,
    lost_on: pd.Series | None = None,
    names: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The accounts snapshot from the feature frame (owner, segment, stakes, activation), with
    ``lost_on`` per lost account id (null for the others: a customer again is one again) and
    the customer's name by id (null when unknown: a name removed from the data goes too)."""
    lost = {} if lost_on is None else {str(k): v.date() for k, v in lost_on.items()}
    names = names or {}
    columns = {
        c: frame[c].tolist() if c in frame.columns else [None] * len(frame) for c in ACCOUNT_COLUMNS
    }
    ids = frame["account_id"].astype(str).tolist()
    return [
        {
            "account_id": ids[i],
            "as_of": as_of,
            "updated_at": now,
            **{c: json_value(columns[c][i]) for c in ACCOUNT_COLUMNS},
            "lost_on": lost.get(ids[i]),
            "name": names.get(ids[i]),
        }
        for i in range(len(frame))
    ]


def store_scores(
    factory: Any,
    frame: pd.DataFrame,
    scored: list[ScoredVector],
    model: LoadedModel,
    as_of: date,
    data_dir: str,
    started: datetime | None = None,
    drop_points: float | None = None,
    lost: pd.DataFrame | None = None,
    lost_on: pd.Series | None = None,
    warnings: Sequence[str] = (),
    survey_alerts: SurveyAlerts | None = None,
    names: Mapping[str, str] | None = None,
    inputs_read: InputsRead | None = None,
) -> int:
    """Write one run in one transaction: accounts snapshot, score rows, their webhook events,
    the run itself. ``drop_points``: the ``probability_dropped`` threshold (default: the
    process's workflow settings, ``RENEWAL_PROBABILITY_DROP_POINTS``). ``lost``: feature rows
    of the accounts lost by ``as_of``, which get a snapshot marked with ``lost_on`` (so that
    the service stops serving their earlier scores) and no score. ``warnings``: what the run
    said about its data, kept with the run (``GET /v1/scoring-runs``). ``survey_alerts``:
    the surveys for ``survey_follow_up_needed`` events (None: none are emitted). ``names``:
    the customers' names by account id (None: read from ``data_dir``'s accounts table, before
    the transaction opens; none without the table or its ``name`` column). ``inputs_read``:
    the stored health inputs the run's features read; inputs recorded since are applied to
    their accounts' scores (:mod:`service.late_inputs`)."""
    if names is None:
        names = account_names(data_dir)
    if drop_points is None:
        drop_points = get_workflow_settings().probability_drop_points
    ids = frame["account_id"].astype(str).tolist()
    with transaction(factory) as session:
        # No re-score commits while the run stores; its clock is read once it may write, so
        # its rows are not older than a re-score committed before it (the caches' watermark).
        scores_db.lock_all_accounts(session)
        now = utc_now()
        accounts_db.upsert_accounts(session, account_rows(frame, as_of, now, names=names))
        if lost is not None and len(lost):
            accounts_db.upsert_accounts(session, account_rows(lost, as_of, now, lost_on, names))
        rows = _score_rows(frame, scored, model, as_of, now)
        if inputs_read is not None:
            apply_late_inputs(session, rows, inputs_read, as_of)
        scores_db.upsert_scores(session, rows)
        emit_score_events(session, drop_points, ids)
        if survey_alerts is not None:
            emit_survey_events(session, survey_alerts, {
                account: ScoredNow(s.probability, s.risk_tier, model.version)
                for account, s in zip(ids, scored, strict=True)
            }, as_of)
        run = scores_db.record_run(
            session,
            ScoringRun(
                as_of=as_of,
                data_dir=data_dir,
                model_name=model.name,
                model_version=model.version,
                accounts_scored=len(frame),
                started_at=started or now,
                finished_at=utc_now(),
                accounts_lost=0 if lost is None else len(lost),
                warnings=list(warnings),
            ),
        )
        return run.id


#: Why run_scoring refuses a future as_of.
FUTURE_AS_OF = ("a score of a future day would be served as the newest one and sent to webhook "
                "subscribers")


def check_as_of(as_of: date, why: str = FUTURE_AS_OF) -> None:
    """Refuse an as_of after today (UTC), as the API does for its metrics.

    Every account's usage would look stopped since the data's last day (all high risk), and
    the run's scores would be served as the newest ones and sent to webhook subscribers.
    """
    today = datetime.now(UTC).date()
    if as_of > today:
        raise ConfigError(
            f"--as-of {as_of} is after today ({today}, UTC): {why}; score as of today or an "
            "earlier day"
        )


def check_score_output(out: Path, data_dir: str | Path) -> None:
    """Refuse, before anything is computed or stored, an ``--out`` that is not a writable
    ``.parquet`` file path, or that is a file of the data directory (it would be replaced)."""
    from features.outputs import check_outputs

    check_outputs({"--out": Path(out)}, data_dir, {}, suffix=".parquet")


def scores_table(
    frame: pd.DataFrame, scored: list[ScoredVector], model: LoadedModel, as_of: date
) -> pd.DataFrame:
    """The run's scores as the ``--out`` Parquet file's rows."""
    return pd.DataFrame(
        {
            "account_id": frame["account_id"].astype("string").to_numpy(),
            # A date, as the Spark job writes it (a timestamp before: found by audit).
            "as_of": pd.array([as_of] * len(frame), dtype="date32[pyarrow]"),
            "probability": [s.probability for s in scored],
            "heuristic_probability": pd.array([s.heuristic_probability for s in scored], "Float64"),
            "risk_tier": [s.risk_tier for s in scored],
            "model_name": model.name,
            "model_version": model.version,
            "risk_drivers": [json.dumps(s.drivers["risk_drivers"]) for s in scored],
            "protective_factors": [json.dumps(s.drivers["protective_factors"]) for s in scored],
        }
    )


def run_scoring(
    data_dir: Path,
    as_of: date,
    settings: Settings,
    service_settings: ServiceSettings,
    *,
    model_uri: str | None = None,
    out: Path | None = None,
    top_k: int = 3,
    n_jobs: int | None = None,
    progress: Progress | None = None,
    workflow_settings: WorkflowSettings | None = None,
) -> ScoringSummary:
    """Score every account as of ``as_of`` and store the results (with their webhook events,
    thresholds from ``workflow_settings``, default the environment); returns a summary.

    ``as_of`` after today and a bad ``out`` are refused before any work; ``out`` is written
    to a temporary file before the scores are stored and renamed into place after, so a run
    failing anywhere stores nothing or leaves no output (nor a half-written one)."""
    from features.outputs import staged_outputs
    from features.validation import check_data_dir

    check_as_of(as_of)
    if out is not None:
        check_score_output(out, data_dir)

    workflow = workflow_settings or get_workflow_settings()
    drop_points = workflow.probability_drop_points
    say = progress or (lambda _step, _fraction: None)
    timings: dict[str, float] = {}
    started = utc_now()
    clock = time.perf_counter()

    say("validating the data directory", 0.0)
    check_data_dir(Path(data_dir), as_of)
    engine = make_engine(settings.resolved_database_url)
    try:
        upgrade(engine)
        factory = make_session_factory(engine)
        timings["validate"] = time.perf_counter() - clock

        say("loading the model", 0.1)
        clock = time.perf_counter()
        model = load_batch_model(settings, model_uri)
        timings["model"] = time.perf_counter() - clock

        say("computing features", 0.2)
        clock = time.perf_counter()
        with factory() as session:
            # Read while no re-score is under way: every input up to the mark is committed.
            scores_db.lock_all_accounts(session)
            last_input = last_input_id(session)
            stored = stored_inputs_as_table(session, as_of)
        frame, lost, lost_on, warnings = customer_features(Path(data_dir), as_of, settings,
                                                           stored)
        timings["features"] = time.perf_counter() - clock
        from features.config import load_feature_config

        feature_config = load_feature_config(settings.feature_config)
        warnings = [*warnings, *model_input_warnings(
            model.scorer.feature_names, frame.columns,
            model.scorer.metadata.get("feature_config"), feature_config)]
        inputs_read = InputsRead(
            last_input, feature_config.stale_input_days,
            lambda vectors: score_records(model, vectors, service_settings, top_k),
            lambda stored: merged_health_inputs(Path(data_dir), stored))

        say(f"scoring {len(frame):,} accounts", 0.5)
        clock = time.perf_counter()
        scored = score_in_parallel(model, frame, service_settings, top_k, n_jobs)
        timings["score"] = time.perf_counter() - clock
        alerts = survey_alerts(Path(data_dir), as_of, workflow)
        warnings = [*warnings, *([alerts.problem] if alerts.problem else [])]

        with staged_outputs() as staged:
            if out is not None:  # staged first: a failed write stores nothing
                say("writing the scores", 0.75)
                clock = time.perf_counter()
                table = scores_table(frame, scored, model, as_of)
                staged.write("--out", Path(out),
                             lambda tmp: table.to_parquet(tmp, index=False))
                timings["parquet"] = time.perf_counter() - clock
            say("writing the score history", 0.8)
            clock = time.perf_counter()
            run_id = store_scores(
                factory,
                frame,
                scored,
                model,
                as_of,
                str(Path(data_dir).resolve()),
                started,
                drop_points=drop_points,
                lost=lost,
                lost_on=lost_on,
                warnings=warnings,
                survey_alerts=alerts,
                inputs_read=inputs_read,
            )
            timings["store"] = time.perf_counter() - clock
    finally:
        engine.dispose()
    tiers: dict[str, int] = {}
    for s in scored:
        tiers[s.risk_tier] = tiers.get(s.risk_tier, 0) + 1
    say("done", 1.0)
    return ScoringSummary(as_of=as_of, accounts=len(frame), model_name=model.name,
                          model_version=model.version, run_id=run_id, out=out, seconds=timings,
                          risk_tiers=tiers, warnings=warnings, lost_accounts=len(lost))
