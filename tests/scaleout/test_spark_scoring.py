"""Batch scoring on Spark gives the in-process job's scores and explanations, row for row.

One Spark session (local[2]) and one ``score_on_spark`` run per module: Spark's start-up and
its many small stages dominate, not the 80 accounts. That features from Spark equal features
from DuckDB is proven by ``tests/features/test_spark_equality.py`` and not repeated here; this
module proves the rest of the chain: a registered MLflow model, scored through
``mlflow.pyfunc.spark_udf``, equals ``RenewalScorer`` on DuckDB features to 1e-9, with
identical driver JSON and risk tiers.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from renewal.errors import DataContractError, RenewalError

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java 17 (no `java`)"),
]

T = date(2024, 10, 15)
MODEL_NAME = "renewal-scaleout-test"
MODEL_URI = f"models:/{MODEL_NAME}@champion"
TOP_K = 2  # not the pyfunc's default (3): proves the job's top_k reaches the executors



@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """User-grain usage with sites and every optional table: the widest feature set."""
    from renewal.simulator import simulate

    out = tmp_path_factory.mktemp("sim")
    simulate(out, accounts=80, seed=11, start=date(2024, 1, 1), months=10, grain="user")
    return out


def _fit_scorer(data_dir: Path):
    """A real RenewalScorer on this data's own features (several as-of dates, synthetic
    outcomes): categories, flags, optional tables and an isotonic calibrator, in seconds."""
    import lightgbm as lgb

    from features.config import FeatureConfig
    from features.registry import model_features
    from features.source import open_source
    from features.vectors import feature_vectors
    from training.calibration import fit_calibrator
    from training.config import LightGBMParams
    from training.lightgbm_model import booster_params
    from training.scorer import RenewalScorer, encode
    from training.specs import feature_specs

    source = open_source(data_dir)
    accounts = source.tables["accounts"].select("account_id", "signed_at").to_pandas()
    months = pd.to_datetime(["2024-05-31", "2024-06-30", "2024-07-31", "2024-08-31",
                             "2024-09-30"])
    spine = accounts.merge(pd.DataFrame({"as_of": months}), how="cross")
    spine = spine[pd.to_datetime(spine.signed_at) <= spine.as_of][["account_id", "as_of"]]
    rows = feature_vectors(source, spine, FeatureConfig())
    rng = np.random.default_rng(3)
    logit = (-1.0 + 3.0 * rows["activity_rate_3m"].astype(float)
             + 0.4 * (rows["csm_score"].astype(float).fillna(3) - 3))
    renewed = (rng.random(len(rows)) < 1 / (1 + np.exp(-logit))).astype(int)
    specs = feature_specs(rows, model_features(rows.columns))
    X = encode(rows, specs)
    params = booster_params(specs, LightGBMParams(min_data_in_leaf=10, num_leaves=7), 7, 1)
    categorical = [i for i, s in enumerate(specs) if s.kind == "category"]
    booster = lgb.train(
        params,
        lgb.Dataset(X, renewed, feature_name=[s.name for s in specs],
                    categorical_feature=categorical),
        num_boost_round=60,
    )
    calibrator = fit_calibrator("isotonic", booster.predict(X, raw_score=True), renewed)
    return RenewalScorer(booster, specs, calibrator, heuristic_factor=0.9,
                         metadata={"feature_config": FeatureConfig().model_dump(mode="json")})


@pytest.fixture(scope="module")
def registered_model(data_dir, tmp_path_factory):
    """The scorer logged as the project's pyfunc and registered as champion in a SQLite store;
    the job finds the store through RENEWAL_TRACKING_URI, as in production."""
    import mlflow

    from renewal.settings import get_settings
    from training.tracking import configure, log_pyfunc

    scorer = _fit_scorer(data_dir)
    store = tmp_path_factory.mktemp("mlflow")
    tracking_uri = f"sqlite:///{store / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RENEWAL_TRACKING_URI", tracking_uri)
        patch.setenv("MLFLOW_ARTIFACTS_DESTINATION", str(store / "artifacts"))
        get_settings.cache_clear()
        configure(tracking_uri, "scaleout-tests")
        from features.config import FeatureConfig
        from features.source import open_source
        from features.vectors import features_as_of

        example = features_as_of(open_source(data_dir), T, FeatureConfig()).head(5)
        with mlflow.start_run():
            model_uri = log_pyfunc(scorer, example, top_k=3)
        version = mlflow.register_model(model_uri, MODEL_NAME)
        mlflow.MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", version.version)
        yield scorer
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def spark_run(spark, data_dir, registered_model, tmp_path_factory):
    """One scoring run on Spark; the output read back with pandas."""
    from service.spark_scoring import score_on_spark

    out = tmp_path_factory.mktemp("scores") / "scores.parquet"
    steps: list[str] = []
    summary = score_on_spark(str(data_dir), T, str(out), MODEL_URI, spark=spark, top_k=TOP_K,
                             progress=lambda step, _fraction: steps.append(step))
    frame = pd.read_parquet(out).sort_values("account_id").reset_index(drop=True)
    return summary, frame, out, steps


@pytest.fixture(scope="module")
def in_process(data_dir, registered_model):
    """The reference: DuckDB features scored in process, as ``renewal score`` does it."""
    from features.config import FeatureConfig
    from features.source import open_source
    from features.vectors import features_as_of
    from service.config import ServiceSettings
    from service.lost_accounts import lost_accounts_of, split_lost
    from service.model_store import LoadedModel
    from service.predict import score_vectors

    source = open_source(data_dir)
    vectors = features_as_of(source, T, FeatureConfig())
    vectors, lost, _ = split_lost(vectors, lost_accounts_of(source, T), T)
    model = LoadedModel(scorer=registered_model, name=MODEL_NAME, version="1", alias="champion",
                        source="uri", uri=MODEL_URI, card={})
    scored = score_vectors(model, vectors, ServiceSettings(), top_k=TOP_K)
    return vectors, scored


def test_spark_scores_equal_in_process_scores(spark_run, in_process, registered_model):
    from training.pyfunc import score_frame

    summary, frame, _out, _steps = spark_run
    vectors, scored = in_process
    assert frame["account_id"].tolist() == vectors["account_id"].astype(str).tolist()

    probability = np.array([s.probability for s in scored])
    assert np.abs(frame["probability"].to_numpy() - probability).max() <= 1e-9
    heuristic = np.array([s.heuristic_probability for s in scored], dtype=float)
    np.testing.assert_allclose(frame["heuristic_probability"].to_numpy(float), heuristic,
                               rtol=0, atol=1e-12)
    assert frame["risk_tier"].tolist() == [s.risk_tier for s in scored]
    # The explanation texts, character for character (as service.scoring.write_parquet dumps).
    assert frame["risk_drivers"].tolist() == [json.dumps(s.drivers["risk_drivers"])
                                              for s in scored]
    assert frame["protective_factors"].tolist() == [
        json.dumps(s.drivers["protective_factors"]) for s in scored]
    # ... and the pyfunc's own output in process (what the UDF computed on the executors).
    pyfunc = score_frame(registered_model, vectors, top_k=TOP_K)
    assert np.abs(frame["probability"].to_numpy() - pyfunc["probability"]).max() <= 1e-9
    assert [json.dumps({"risk_drivers": json.loads(r), "protective_factors": json.loads(p)},
                       separators=(",", ":"))
            for r, p in zip(frame["risk_drivers"], frame["protective_factors"], strict=True)
            ] == pyfunc["drivers"].tolist()
    # A real comparison: drivers exist on both sides, up to top_k, and probabilities vary.
    risk = [json.loads(t) for t in frame["risk_drivers"]]
    protective = [json.loads(t) for t in frame["protective_factors"]]
    assert max(len(r) for r in risk) == max(len(p) for p in protective) == TOP_K
    assert sum(map(len, risk)) > len(frame) and sum(map(len, protective)) > len(frame)
    assert frame["probability"].nunique() > 5


def test_output_layout_and_summary(spark_run, in_process, data_dir):
    summary, frame, out, steps = spark_run
    vectors, scored = in_process
    from features.source import open_source
    from service.lost_accounts import lost_accounts_of
    from service.spark_scoring import OUTPUT_COLUMNS

    assert tuple(frame.columns) == OUTPUT_COLUMNS
    assert frame["account_id"].is_unique and len(frame) == len(vectors) == summary.accounts
    assert set(pd.to_datetime(frame["as_of"])) == {pd.Timestamp(T)}
    assert set(frame["model_name"]) == {MODEL_NAME} and set(frame["model_version"]) == {"1"}
    assert summary.model_version == "1" and summary.as_of == T and summary.out == str(out)
    expected_tiers: dict[str, int] = {}
    for s in scored:
        expected_tiers[s.risk_tier] = expected_tiers.get(s.risk_tier, 0) + 1
    assert summary.risk_tiers == expected_tiers
    assert summary.warnings == []  # the simulated usage runs to 2024-10-31, past T
    # Accounts lost by T (last term ended unrenewed) are counted, not scored, as in process.
    lost = lost_accounts_of(open_source(data_dir), T)
    assert summary.lost_accounts == len(lost) > 0
    assert not set(frame["account_id"]) & set(lost.index)
    assert steps[-1] == "done"
    assert not [p.name for p in out.parent.iterdir() if p.name != out.name]  # no leftovers


def test_rewrite_replaces_output_whole_or_not_at_all(spark, tmp_path):
    from service.spark_scoring import parquet_files, write_parquet_atomically

    out = tmp_path / "scores.parquet"
    write_parquet_atomically(spark, spark.createDataFrame([(1,), (2,), (3,)], "n int"), str(out))
    write_parquet_atomically(spark, spark.createDataFrame([(9,)], "n int"), str(out))
    assert pd.read_parquet(out)["n"].tolist() == [9]

    def refuse(written: str) -> None:
        assert spark.read.parquet(*parquet_files(spark, written)).count() == 2  # the new rows
        raise RenewalError("refused")

    with pytest.raises(RenewalError, match="refused"):
        write_parquet_atomically(spark, spark.createDataFrame([(7,), (8,)], "n int"), str(out),
                                 check=refuse)
    assert pd.read_parquet(out)["n"].tolist() == [9]  # a failed run leaves the old output
    assert [p.name for p in tmp_path.iterdir()] == ["scores.parquet"]


def test_uri_data_dir_reads_the_same_tables(spark, data_dir):
    """A file:// URI goes through Hadoop's FileSystem (the s3a:// and hdfs:// path)."""
    from features.source import open_source
    from service.spark_scoring import open_spark_source

    local = open_source(data_dir, engine="spark", spark=spark)
    remote = open_spark_source(spark, data_dir.resolve().as_uri())
    assert sorted(remote.tables) == sorted(local.tables)
    assert (remote.usage_grain, remote.has_sites) == (local.usage_grain, local.has_sites)
    for name, table in local.tables.items():
        assert remote.tables[name].schema() == table.schema(), name
    assert remote.tables["usage"].count().to_pandas() == local.tables["usage"].count().to_pandas()


def test_bad_inputs_are_named(spark, data_dir, registered_model, tmp_path):
    from service.spark_scoring import open_spark_source, score_on_spark

    with pytest.raises(DataContractError, match="no account is signed on or before 2020-01-01"):
        score_on_spark(str(data_dir), date(2020, 1, 1), str(tmp_path / "o"), MODEL_URI,
                       spark=spark)
    assert not (tmp_path / "o").exists()
    with pytest.raises(DataContractError, match="is not a directory"):
        open_spark_source(spark, (tmp_path / "nowhere").as_uri())
    with pytest.raises(RenewalError, match="not in the registry"):
        score_on_spark(str(data_dir), T, str(tmp_path / "o"), "models:/no-such-model@champion",
                       spark=spark)


def test_usage_ending_before_as_of_is_said_on_spark_too(spark, data_dir):
    from features.freshness import stale_usage_warning
    from service.spark_scoring import open_spark_source

    source = open_spark_source(spark, str(data_dir))
    said = stale_usage_warning(source, date(2024, 11, 10))
    assert said is not None and said.startswith("usage ends 2024-10-31, 10 day(s) before as-of")
    assert stale_usage_warning(source, date(2024, 10, 31)) is None


def test_not_a_renewal_model_is_refused(spark, data_dir, tmp_path):
    import mlflow.pyfunc

    from service.spark_scoring import score_on_spark

    class Doubler(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input * 2

    path = tmp_path / "doubler"
    mlflow.pyfunc.save_model(str(path), python_model=Doubler())
    with pytest.raises(RenewalError, match="is not a renewal model"):
        score_on_spark(str(data_dir), T, str(tmp_path / "o"), str(path), spark=spark)
    assert not (tmp_path / "o").exists()


def test_renewal_score_engine_spark_writes_the_same_scores(spark, spark_run, data_dir, tmp_path):
    """`renewal score --engine spark` runs the same job (the active session is reused)."""
    from typer.testing import CliRunner

    from renewal.cli import build_app

    out = tmp_path / "cli-scores.parquet"
    result = CliRunner().invoke(build_app(), [
        "score", "--engine", "spark", "--data", str(data_dir), "--as-of", T.isoformat(),
        "--out", str(out), "--model", MODEL_URI, "--top-k", str(TOP_K),
    ])
    assert result.exit_code == 0, result.output
    assert "on Spark" in result.output
    cli = pd.read_parquet(out).sort_values("account_id").reset_index(drop=True)
    _, frame, _, _ = spark_run
    pd.testing.assert_frame_equal(cli, frame)


def test_renewal_score_engine_spark_needs_out(data_dir):
    from typer.testing import CliRunner

    from renewal.cli import build_app

    result = CliRunner().invoke(build_app(), [
        "score", "--engine", "spark", "--data", str(data_dir), "--as-of", T.isoformat(),
    ])
    assert result.exit_code == 2
    assert "--out" in result.output


def test_scoring_without_a_table_or_with_other_thresholds_than_trained_says_so(
    spark, data_dir, registered_model, tmp_path
):
    """The model was trained with tickets and the default thresholds; scored on data without
    tickets, or with other thresholds, the scores move: both runs score and say why."""
    from features.config import FeatureConfig
    from renewal.settings import Settings
    from service.config import ServiceSettings
    from service.scoring import run_scoring
    from service.spark_scoring import score_on_spark

    assert any(s.table == "tickets" for s in registered_model.features)
    no_tickets = tmp_path / "data"
    shutil.copytree(data_dir, no_tickets)
    (no_tickets / "tickets.parquet").unlink()
    thresholds = tmp_path / "features.toml"
    thresholds.write_text("monthly_active_days = 20\n")
    missing = ("the model was trained with 7 input(s) this data does not give, so they are "
               "missing for every account and the scores differ from scores with them (from "
               "tickets: bugs_90d, feature_requests_90d, usage_questions_90d and 4 more); add "
               "the missing data, or train a model on data without it")
    other = ("the features are computed with other thresholds than the model was trained "
             "with (monthly_active_days 12 when trained, 20 now)")

    on_spark = score_on_spark(str(no_tickets), T, str(tmp_path / "spark.parquet"), MODEL_URI,
                              spark=spark, config_path=thresholds)
    assert on_spark.warnings[0] == missing and on_spark.warnings[1].startswith(other)
    assert len(on_spark.warnings) == 2

    end = date(2024, 10, 31)  # in process, the data may not run past the as-of
    runs = {}
    for name, directory, config in (("with", data_dir, None),
                                     ("without", no_tickets, None),
                                     ("other", data_dir, thresholds)):
        settings = Settings(database_url=f"sqlite:///{tmp_path}/{name}.db",
                            feature_config=config)
        runs[name] = run_scoring(directory, end, settings, ServiceSettings(),
                                 model_uri=MODEL_URI, out=tmp_path / f"{name}.parquet")
    assert runs["with"].warnings == []
    assert runs["without"].warnings == [missing]
    assert len(runs["other"].warnings) == 1 and runs["other"].warnings[0].startswith(other)
    assert FeatureConfig().monthly_active_days == 12
    # What the warnings are about: the same accounts score differently.
    scores = {name: pd.read_parquet(tmp_path / f"{name}.parquet").set_index("account_id")
              ["probability"] for name in runs}
    for name in ("without", "other"):
        assert scores["with"].index.equals(scores[name].index)
        assert (scores["with"] - scores[name]).abs().max() > 1e-6, name


def test_a_local_directory_is_validated_whole_before_spark_scores(spark, data_dir,
                                                                  registered_model, tmp_path):
    """Found by audit: Spark scoring did not validate at all; an evergreen term ending
    9999-12-31 was scored with days_to_renewal 2,912,992. A local directory now gets the
    contract's whole check (as renewal score) before Spark starts."""
    from service.spark_scoring import score_on_spark

    bad = tmp_path / "evergreen"
    shutil.copytree(data_dir, bad)
    contracts = pd.read_parquet(bad / "contracts.parquet")
    contracts["end_date"] = contracts["end_date"].astype("object")
    contracts.loc[contracts.index[0], "end_date"] = date(9999, 12, 31)
    contracts.to_parquet(bad / "contracts.parquet", index=False)
    with pytest.raises(DataContractError, match="contracts.end_date: dates outside"):
        score_on_spark(str(bad), T, str(tmp_path / "o"), MODEL_URI, spark=spark)
    assert not (tmp_path / "o").exists()


def test_a_uri_gets_the_contracts_core_rules_on_spark_before_scoring(spark, data_dir,
                                                                    registered_model,
                                                                    tmp_path):
    """A URI cannot be validated on the driver; Spark scoring did not check it at all (found
    by audit: it scored what renewal features --engine spark refuses). It now checks the
    contract's core rules on Spark, as that command does."""
    from service.spark_scoring import score_on_spark

    bad = tmp_path / "negative"
    shutil.copytree(data_dir, bad)
    usage = pd.read_parquet(bad / "usage.parquet")
    usage.loc[usage.index[:3], "logins"] = -1
    usage.to_parquet(bad / "usage.parquet", index=False)
    with pytest.raises(DataContractError, match="usage.logins: values must be >= 0"):
        score_on_spark(bad.as_uri(), T, str(tmp_path / "o"), MODEL_URI, spark=spark)
    assert not (tmp_path / "o").exists()
