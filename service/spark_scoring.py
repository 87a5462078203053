"""Batch scoring on Spark, for event data that has outgrown one machine.

The same Ibis feature definitions as the DuckDB job run on a Spark session; the registered MLflow
model scores them through ``mlflow.pyfunc.spark_udf``, so the explanations (exact TreeSHAP, the
costly part) are computed on the executors. The output has the layout of ``renewal score
--out``: probability, heuristic probability, risk tier, and the top risk drivers / protective
factors as JSON text identical to what the in-process scorer writes.

What passes through the driver is one row per account (the vectors), never the usage table.
Paths are handed to Spark as given: local paths, ``file://``, ``hdfs://`` and ``s3a://`` URIs.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from features.source import SparkUnavailableError, start_spark
from renewal.errors import ConfigError, DataContractError, Problem, RenewalError
from renewal.uri_secrets import error_line, mask_uri
from service.model_inputs import model_input_warnings

Progress = Callable[[str, float], None]

#: The pyfunc's output (``training.pyfunc.OUTPUT_COLUMNS``) as the UDF's Spark type.
RESULT_TYPE = "struct<probability: double, heuristic_probability: double, drivers: string>"
#: The Parquet columns, in order: those of ``service.scoring.write_parquet``.
OUTPUT_COLUMNS = (
    "account_id", "as_of", "probability", "heuristic_probability", "risk_tier", "model_name",
    "model_version", "risk_drivers", "protective_factors",
)
#: Rows per scoring task. Exact TreeSHAP runs at ~2,000 rows/s per core (docs/scale-out.md),
#: so a task takes seconds, not minutes: a lost executor costs little to redo.
ROWS_PER_PARTITION = 20_000


@dataclass
class SparkScoringSummary:
    """What a Spark scoring run did, with timings (seconds) per step."""

    as_of: date
    accounts: int
    model_uri: str
    model_name: str
    model_version: str
    out: str
    spark_master: str
    partitions: int
    seconds: dict[str, float] = field(default_factory=dict)
    risk_tiers: dict[str, int] = field(default_factory=dict)
    # For people, not errors: e.g. the usage ending before as_of (features.freshness).
    warnings: list[str] = field(default_factory=list)
    # Accounts lost by as_of (last term ended, not renewed): not scored (service.lost_accounts).
    lost_accounts: int = 0


def _location_key(location: str) -> str:
    """A location comparable with another: a local path (or file:// URI) resolved, else the
    URI without a trailing slash."""
    from features.outputs import local_path

    try:
        return local_path(location, "", "").resolve().as_posix().rstrip("/") or "/"
    except ConfigError:
        return location.rstrip("/")


def check_spark_output(out: str, data_dir: str) -> None:
    """Refuse an ``out`` whose replacement would delete or overwrite the input.

    The write replaces ``out`` whole (the previous one is moved aside and deleted), so
    ``--out data`` or ``--out .`` would delete the data directory, and ``--out
    data/usage.parquet`` a table. A new location under the data directory that is no table
    (``s3a://lake/renewal/scores/...``) is fine; checked before Spark starts.
    """
    from renewal.datadir import FORMATS
    from renewal.tables import TABLES

    target, data = _location_key(out), _location_key(data_dir)
    below = data.rstrip("/") + "/"
    top = target[len(below):].split("/")[0] if target.startswith(below) else None
    tables = {f"{name}.{fmt}" for name in TABLES for fmt in FORMATS}
    local_file = top is not None and Path(target).is_file()  # a remote key never is
    if target == data:
        where = "is the data directory"
    elif data.startswith(target.rstrip("/") + "/"):
        where = "contains the data directory"
    elif top in tables:
        where = "is a table of the data directory"
    elif local_file:
        where = "is a file of the data directory"
    else:
        return
    raise ConfigError(f"--out {out} {where} {data_dir}: the scores replace --out whole, "
                      "which would delete or overwrite the input; write them elsewhere")


@dataclass(frozen=True)
class ModelRef:
    """The model a run scores with: its URI and what the registry calls it."""

    uri: str
    name: str
    version: str


def score_on_spark(
    data_dir: str,
    as_of: date,
    out: str,
    model_uri: str,
    spark_master: str = "local[*]",
    spark: Any = None,
    config_path: Path | None = None,
    top_k: int = 3,
    *,
    progress: Progress | None = None,
) -> SparkScoringSummary:
    """Score every account signed on or before ``as_of`` on Spark; write Parquet to ``out``.

    ``spark`` is an existing SparkSession (kept running); without it a session is started on
    ``spark_master`` and stopped at the end. ``out`` becomes a Parquet directory (Spark's part
    files), replaced only once the whole run has succeeded.
    """
    from features.config import load_feature_config
    from service.config import get_service_settings
    from service.scoring import check_as_of

    # Before Spark starts: every account's usage would look stopped since the data's last day.
    check_as_of(as_of, "its scores would read every account's usage as stopped since the "
                "data's last day (all high risk)")
    check_spark_output(out, data_dir)
    say = progress or (lambda _step, _fraction: None)
    from features.jobs import is_local_directory

    local = is_local_directory(data_dir)
    if local:  # the whole contract, as renewal score, before Spark
        from features.validation import check_data_dir

        say("validating the data directory", 0.0)
        check_data_dir(Path(data_dir))  # rows after as_of stay allowed here (a backfill)
    config = load_feature_config(config_path)
    tiers = get_service_settings()
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now

    say(f"starting Spark ({spark_master})", 0.0)
    owns_session = spark is None
    if owns_session:
        spark, owns_session = start_spark(
            spark_master, "renewal-score", {"spark.sql.execution.arrow.pyspark.enabled": "true"}
        )
    try:
        master = spark.sparkContext.master
        lap("spark")
        say("loading the model", 0.1)
        model = resolve_model(model_uri)
        udf, feature_types, trained_config = renewal_udf(spark, model, top_k)
        lap("model")

        say(f"computing features on Spark from {data_dir}", 0.2)
        # A local directory was validated whole before Spark started; a URI gets the core
        # rules on Spark (it was not checked at all: found by audit).
        vectors, warnings, lost = spark_vectors(spark, data_dir, as_of, config,
                                                check_contract=not local)
        warnings = [*warnings, *model_input_warnings(feature_types, vectors.columns,
                                                     trained_config, config)]
        lap("features")

        partitions = max(spark.sparkContext.defaultParallelism,
                         math.ceil(len(vectors) / ROWS_PER_PARTITION))
        say(f"scoring {len(vectors):,} accounts in {partitions} Spark tasks", 0.5)
        frame = model_input_frame(spark, vectors, feature_types).repartition(partitions)
        scored = scored_frame(frame, udf, feature_types, model,
                              tiers.risk_high_below, tiers.risk_medium_below)
        counts: dict[str, int] = {}

        def check(written: str) -> None:
            """Every account scored exactly once, before the output replaces the old one."""
            say("checking the output", 0.9)
            parts = parquet_files(spark, written)
            rows = spark.read.parquet(*parts).groupBy("risk_tier").count().collect()
            counts.update({r["risk_tier"]: int(r["count"]) for r in rows})
            if sum(counts.values()) != len(vectors):
                raise RenewalError(
                    f"the scoring wrote {sum(counts.values())} rows for {len(vectors)} accounts"
                )

        write_parquet_atomically(spark, scored, out, check=check)
        lap("score_and_write")
    finally:
        if owns_session:
            spark.stop()
    say("done", 1.0)
    return SparkScoringSummary(
        as_of=as_of, accounts=len(vectors), model_uri=model.uri, model_name=model.name,
        model_version=model.version, out=out, spark_master=master, partitions=partitions,
        seconds=timings, risk_tiers=counts, warnings=warnings, lost_accounts=lost,
    )


# -- Spark session ---------------------------------------------------------------------------


# -- the model -------------------------------------------------------------------------------


def resolve_model(model_uri: str) -> ModelRef:
    """Name and version of ``model_uri``; ``models:/name@alias`` is resolved to its version.

    Registry URIs (``models:/``, ``runs:/``) go to the project's tracking store
    (``RENEWAL_TRACKING_URI``, default the SQLite file under the data dir), like the service.
    """
    from renewal.settings import get_settings

    settings = get_settings()
    if not model_uri.startswith(("models:/", "runs:/")):
        return ModelRef(model_uri, settings.model_name, "local")
    import mlflow

    tracking_uri = settings.resolved_tracking_uri
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    if model_uri.startswith("runs:/"):
        return ModelRef(model_uri, settings.model_name, model_uri.split("/")[1])
    name_and_ref = model_uri[len("models:/"):].strip("/")
    if "@" in name_and_ref:
        name, alias = name_and_ref.split("@", 1)
        try:
            found = mlflow.MlflowClient().get_model_version_by_alias(name, alias)
        except Exception as exc:
            raise RenewalError(  # the URI may carry a token: masked, also inside MLflow's text
                f"model {model_uri} is not in the registry at {mask_uri(tracking_uri)}: "
                f"{error_line(exc, tracking_uri, 200)}"
            ) from exc
        return ModelRef(model_uri, name, str(found.version))
    name, _, version = name_and_ref.partition("/")
    return ModelRef(model_uri, name, version or "latest")


def _tracking_uri() -> str:
    """The registry MLflow errors may name (its token is masked out of them)."""
    from renewal.settings import get_settings

    return get_settings().resolved_tracking_uri


def renewal_udf(
    spark: Any, model: ModelRef, top_k: int
) -> tuple[Any, dict[str, str], dict[str, Any] | None]:
    """The pyfunc as a Spark UDF, its input columns with their types ("double"/"string"), and
    the feature thresholds it was trained with (None if it did not record them).

    ``env_manager="local"``: executors use the installed project (no virtualenv built from
    the internet). A model that is not a renewal model is refused here, on the driver, before
    any Spark work.
    """
    import mlflow.models
    import mlflow.pyfunc
    from mlflow.types import DataType

    try:
        info = mlflow.models.get_model_info(model.uri)
        signature = info.signature
    except Exception as exc:
        raise RenewalError(
            f"model {model.uri} cannot be read: {error_line(exc, _tracking_uri())}"
        ) from exc
    wanted = {"probability", "heuristic_probability", "drivers"}
    outputs = signature.outputs if signature is not None else None
    if signature is None or outputs is None or not wanted <= set(outputs.input_names()):
        got = outputs.input_names() if outputs is not None else "no output signature"
        raise RenewalError(
            f"model {model.uri} is not a renewal model: its signature must output "
            f"{sorted(wanted)} (got {got})"
        )
    try:
        udf = mlflow.pyfunc.spark_udf(
            spark, model.uri, result_type=RESULT_TYPE, env_manager="local",
            params={"top_k": int(top_k)},
            # One task per core already: LightGBM's OpenMP threads would oversubscribe it.
            extra_env={"OMP_NUM_THREADS": "1"},
        )
    except Exception as exc:
        raise RenewalError(
            f"model {model.uri} cannot be used on Spark: {error_line(exc, _tracking_uri())}"
        ) from exc
    types = {spec.name: "string" if spec.type == DataType.string else "double"
             for spec in signature.inputs.inputs}
    recorded = (info.metadata or {}).get("feature_config")
    return udf, types, json.loads(recorded) if recorded else None


# -- features --------------------------------------------------------------------------------


def spark_vectors(
    spark: Any, data_dir: str, as_of: date, config: Any, check_contract: bool = False
) -> tuple[pd.DataFrame, list[str], int]:
    """``features.vectors.features_as_of`` on Spark: one row per account still a customer at
    ``as_of``, on the driver; what people should know about the data
    (``features.freshness``); and how many accounts were lost by then (not in the rows).
    ``check_contract``: first the contract's core rules on Spark (``contract_problems``, as
    ``renewal features --engine spark`` checks a URI)."""
    from features.freshness import data_warnings
    from features.source import contract_problems
    from features.vectors import features_as_of
    from service.lost_accounts import lost_accounts_of, split_lost

    source = open_spark_source(spark, data_dir)
    if check_contract:
        problems = contract_problems(source)
        if problems:
            raise DataContractError(problems)
    import ibis

    accounts = source.tables["accounts"]
    signed = accounts.filter(accounts.signed_at <= ibis.literal(as_of, "date")).count()
    signed = signed.to_pandas()
    if int(signed) == 0:
        raise DataContractError(
            [Problem("accounts", "signed_at", f"no account is signed on or before {as_of}")]
        )
    warnings = data_warnings(source, as_of, config)
    vectors = features_as_of(source, as_of, config)
    customers, lost, _ = split_lost(vectors, lost_accounts_of(source, as_of), as_of)
    return customers, warnings, len(lost)


def open_spark_source(spark: Any, data_dir: str) -> Any:
    """The data directory's tables on Spark: a local directory or any URI Hadoop can read.

    Kept for callers of this module; the listing and casts live in ``features.source``.
    """
    from features.source import open_source

    return open_source(data_dir, engine="spark", spark=spark)


# -- scoring ---------------------------------------------------------------------------------


def model_input_frame(spark: Any, vectors: pd.DataFrame, feature_types: dict[str, str]) -> Any:
    """The vectors as a Spark frame: keys plus the model's features present, in signature types.

    Flags become 0.0/1.0 and counts doubles, exactly as ``training.pyfunc.model_input`` does;
    a feature absent from the vectors (optional table missing) is left out, not filled, so the
    scorer keeps it out of the drivers, as in process.
    """
    from pyspark.sql.types import DateType, DoubleType, StringType, StructField, StructType

    present = [name for name in feature_types if name in vectors.columns]
    if not present:
        raise RenewalError("the model's features are all missing from the feature vectors")
    columns: dict[str, Any] = {
        "account_id": vectors["account_id"].astype(str).to_numpy(dtype=object),
        "as_of": pd.to_datetime(vectors["as_of"]).dt.date.to_numpy(dtype=object),
    }
    fields = [StructField("account_id", StringType(), False), StructField("as_of", DateType())]
    for name in present:
        column = vectors[name]
        if feature_types[name] == "string":
            columns[name] = column.astype(object).where(column.notna(), None).to_numpy()
            fields.append(StructField(name, StringType()))
            continue
        if pd.api.types.is_bool_dtype(column) or str(column.dtype) == "boolean":
            column = column.astype("Float64")
        columns[name] = pd.to_numeric(column, errors="raise").astype("float64").to_numpy(
            dtype="float64", na_value=float("nan"))
        fields.append(StructField(name, DoubleType()))
    frame = pd.DataFrame(columns)
    # NaN stays NaN through Arrow into the UDF, where the scorer reads it as missing.
    return spark.createDataFrame(frame, schema=StructType(fields))


def scored_frame(
    frame: Any, udf: Any, feature_types: dict[str, str], model: ModelRef,
    risk_high_below: float, risk_medium_below: float,
) -> Any:
    """Apply the model once per row and lay the result out like ``renewal score --out``."""
    from pyspark.sql import functions as F

    present = [c for c in frame.columns if c in feature_types]
    # The UDF gets one struct: a pandas frame with named columns, absent features left out
    # (several plain arguments would be matched to the signature by position instead).
    with_score = frame.select("account_id", "as_of", udf(F.struct(*present)).alias("score"))
    probability = F.col("score.probability")
    heuristic = F.col("score.heuristic_probability")
    split = _split_drivers_udf()(F.col("score.drivers"))
    return with_score.select(
        "account_id",
        "as_of",
        probability.alias("probability"),
        F.when(F.isnan(heuristic), F.lit(None).cast("double")).otherwise(heuristic)
        .alias("heuristic_probability"),
        # Same rule as service.config.ServiceSettings.risk_tier (risk of NOT renewing).
        F.when(probability < risk_high_below, "high")
        .when(probability < risk_medium_below, "medium")
        .otherwise("low").alias("risk_tier"),
        F.lit(model.name).alias("model_name"),
        F.lit(model.version).alias("model_version"),
        split["risk_drivers"].alias("risk_drivers"),
        split["protective_factors"].alias("protective_factors"),
    )


def split_drivers(drivers: pd.Series) -> pd.DataFrame:
    """The pyfunc's drivers JSON → two JSON texts, dumped exactly as the in-process job does."""
    parsed = [json.loads(text) for text in drivers]
    return pd.DataFrame({
        "risk_drivers": [json.dumps(p["risk_drivers"]) for p in parsed],
        "protective_factors": [json.dumps(p["protective_factors"]) for p in parsed],
    })


def _split_drivers_udf() -> Any:
    from pyspark.sql.functions import pandas_udf

    return pandas_udf(split_drivers, "risk_drivers string, protective_factors string")


# -- output ----------------------------------------------------------------------------------


def _hadoop_path(spark: Any, uri: str) -> tuple[Any, Any]:
    """Hadoop's FileSystem and Path for ``uri``; a Spark Connect session is refused clearly."""
    if getattr(spark, "_jvm", None) is None:
        raise SparkUnavailableError(
            "this Spark session has no JVM gateway (Spark Connect); run with a classic session"
        )
    from features.source import hadoop_path

    return hadoop_path(spark, uri)


def parquet_files(spark: Any, directory: str) -> list[str]:
    """The Parquet part files of a directory Spark wrote, listed explicitly: read as a
    directory, a hidden one (``.x``, the staging name) makes Spark warn it "ignores" it."""
    fs, path = _hadoop_path(spark, directory)
    return [status.getPath().toString() for status in fs.listStatus(path)
            if status.getPath().getName().endswith(".parquet")]


def write_parquet_atomically(
    spark: Any, frame: Any, out: str, check: Callable[[str], None] | None = None
) -> None:
    """Write ``frame`` to a hidden sibling of ``out``, ``check`` it, then rename it into place.

    A failed run (or check) leaves the previous output untouched. The rename is atomic on HDFS
    and local disks; on S3 it is a copy (use an S3 committer there, see docs/scale-out.md).
    """
    fs, target = _hadoop_path(spark, out)
    parent, name = target.getParent(), target.getName()
    token = uuid.uuid4().hex[:12]
    staging = spark._jvm.org.apache.hadoop.fs.Path(parent, f".{name}.{token}.writing")
    retired = spark._jvm.org.apache.hadoop.fs.Path(parent, f".{name}.{token}.old")
    try:
        frame.write.mode("errorifexists").parquet(staging.toString())
        if check is not None:
            check(staging.toString())
        had_previous = fs.exists(target)
        if had_previous and not fs.rename(target, retired):
            raise RenewalError(f"cannot move the previous {out} aside")
        if not fs.rename(staging, target):
            if had_previous:
                fs.rename(retired, target)
            raise RenewalError(f"cannot rename the new scores into {out}")
        if had_previous:
            fs.delete(retired, True)
    finally:
        if fs.exists(staging):
            fs.delete(staging, True)
