"""``renewal features --engine spark`` reads a URI, checks the contract on Spark, and writes
the same vectors as the DuckDB default.

The run's one Spark session (local[2], tests/conftest.py) is active while the CLI runs: the
job uses it and leaves it running, as it does under ``spark-submit`` or in a notebook.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from renewal.cli import build_app, main

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java 17 (no `java`)"),
]

T = "2024-07-31"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """User-grain usage with sites and the optional tables: the widest feature set."""
    from renewal.simulator import simulate

    out = tmp_path_factory.mktemp("sim")
    simulate(out, accounts=60, seed=5, start=date(2024, 1, 1), months=8, grain="user")
    return out


def _features(*args: str):
    return CliRunner().invoke(build_app(), ["features", "--as-of", T, *args])


def test_spark_on_a_uri_writes_the_duckdb_vectors(spark, data_dir, tmp_path):
    duck = _features("--data", str(data_dir), "--out", str(tmp_path / "duck.parquet"))
    assert duck.exit_code == 0, duck.output
    uri = data_dir.resolve().as_uri()  # file:///...: listed and read through Hadoop's FileSystem
    assert uri.startswith("file:///")
    on_spark = _features("--engine", "spark", "--data", uri,
                         "--out", (tmp_path / "spark.parquet").as_uri())
    assert on_spark.exit_code == 0, on_spark.output

    expected = pd.read_parquet(tmp_path / "duck.parquet")
    got = pd.read_parquet(tmp_path / "spark.parquet")
    assert len(expected) > 40
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)
    # The job used the active session and left it running (it did not start it).
    assert spark.range(3).count() == 3


def test_a_bad_usage_table_is_refused_on_spark_with_exit_code_2(spark, data_dir, tmp_path,
                                                                  capsys):
    bad = tmp_path / "bad"
    shutil.copytree(data_dir, bad)
    usage = pd.read_parquet(bad / "usage.parquet")
    usage.loc[usage.index[:3], "logins"] = -1
    usage.to_parquet(bad / "usage.parquet", index=False)
    out = tmp_path / "vectors.parquet"

    with pytest.raises(SystemExit) as stopped:
        main(["features", "--engine", "spark", "--data", bad.as_uri(), "--as-of", T,
              "--out", str(out)])
    assert stopped.value.code == 2
    message = " ".join(capsys.readouterr().err.split())
    assert "the data breaks the contract" in message
    assert "usage.logins: values must be >= 0 (3 rows" in message
    assert not out.exists()


def test_a_local_directory_gets_the_whole_contract_on_spark_too(spark, data_dir, tmp_path,
                                                                capsys):
    """Found by audit: Spark checked only the core rules, so 2.5 logins were rounded to 2 and
    written (DuckDB refuses them: "values are not of type int"). A local directory is now
    validated whole, as with DuckDB, before Spark reads it."""
    bad = tmp_path / "fractional"
    shutil.copytree(data_dir, bad)
    usage = pd.read_parquet(bad / "usage.parquet")
    usage["logins"] = usage["logins"].astype("float64")
    usage.loc[usage.index[:2], "logins"] = 2.5
    usage.to_parquet(bad / "usage.parquet", index=False)
    out = tmp_path / "vectors.parquet"
    for engine in ("duckdb", "spark"):
        with pytest.raises(SystemExit) as stopped:
            main(["features", "--engine", engine, "--data", str(bad), "--as-of", T,
                  "--out", str(out)])
        assert stopped.value.code == 2, engine
        message = " ".join(capsys.readouterr().err.split())
        assert "usage.logins: values are not of type int (2 rows" in message, engine
        assert not out.exists()


def test_one_term_under_two_contract_ids_is_said_on_spark(spark, data_dir, tmp_path):
    """The contract's warnings run on Spark as on DuckDB (features.validation), said as a
    count, and the vectors are still written."""
    twice = tmp_path / "twice"
    shutil.copytree(data_dir, twice)
    contracts = pd.read_parquet(twice / "contracts.parquet")
    copy = contracts.iloc[[0]].assign(contract_id="copy-of-the-first")
    pd.concat([contracts, copy]).to_parquet(twice / "contracts.parquet", index=False)
    out = tmp_path / "vectors.parquet"

    done = _features("--engine", "spark", "--data", twice.as_uri(), "--out", str(out))
    assert done.exit_code == 0, done.output
    message = " ".join(done.output.split())
    assert "contracts.account_id, start_date, end_date: the same term" in message
    assert "(2 rows;" in message
    assert str(contracts.iloc[0]["account_id"]) not in message
    assert out.exists()


def test_a_remote_out_is_refused_before_spark_runs(data_dir, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["features", "--engine", "spark", "--data", str(data_dir), "--as-of", T,
              "--out", "s3a://bucket/vectors.parquet"])
    assert stopped.value.code == 2
    message = " ".join(capsys.readouterr().err.split())
    assert "--out must be a local path (or file://), not s3a://bucket/vectors.parquet" in message
