"""Benchmark of the feature pipeline against a raw DuckDB floor and a hand-written pandas version.

Not a test: run it by hand (see ``benchmarks/README.md``)::

    .venv/bin/python benchmarks/features.py            # ~50 M user-day rows (cached)
    .venv/bin/python benchmarks/features.py --rows 2000000   # quick check

It measures, side by side in one run and each in its own fresh subprocess (so that peak RSS
is per measurement and no cache is shared):

1. ``pipeline_full``   — ``features.vectors.features_as_of``: every feature, every account;
2. ``pipeline_tiers``  — the pipeline's own 30-day tier counts (``tier_*_days_30d``) alone
   (``features.windows.activity.tier_counts_30d``);
3. ``duckdb_floor``    — one hand-written DuckDB SQL query computing just those tier counts
   straight from the Parquet file (the floor);
4. ``duckdb_reads``    — hand-written DuckDB SQL of the reads every feature needs (the
   look-back days, the older history per account-week, the 30-day distinct users), plus the
   tier counts from them: a lower bound of (1), not a goal;
5. ``pandas_tiers``    — the same tier counts written in pandas, as a user would by hand.

(2) to (5) must give identical tier counts (asserted). Figures are printed as a table
and written to ``benchmarks/results/features.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / ".data"
RESULTS = HERE / "results" / "features.json"
AS_OF = date(2026, 6, 30)
HISTORY_DAYS = 365
TIER_COLUMNS = ["tier_zero_days_30d", "tier_low_days_30d", "tier_mid_days_30d",
                "tier_high_days_30d"]
MEASUREMENTS = ("pipeline_full", "pipeline_tiers", "duckdb_floor", "duckdb_reads",
                "pandas_tiers")
GOALS = {"pipeline_tiers": 1.3, "pipeline_full": 3.0}
MEMORY_GOAL_GB = 6.0

# Usage rows per account, a low estimate (seats x login probability x days): sizes the pool.
_ROWS_PER_ACCOUNT = 1_500


# --------------------------------------------------------------------------------------------
# Synthetic data (generated once per size, cached under benchmarks/.data/, git-ignored)
# --------------------------------------------------------------------------------------------

def data_dir_for(rows: int) -> Path:
    return CACHE / f"features-{rows}"


def generate(rows: int, seed: int = 7) -> Path:
    """Write accounts, contracts and per-user-day usage of about ``rows`` rows; reuse if cached.

    Usage is generated inside DuckDB from ``range()`` with hash-based pseudo-random draws (no
    Python loop), written sorted by date, as a daily-appended event export would be.
    """
    import duckdb
    import numpy as np
    import pandas as pd

    out = data_dir_for(rows)
    done = out / ".complete"
    if done.exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    CACHE.mkdir(exist_ok=True)
    (CACHE / ".gitignore").write_text("*\n")

    rng = np.random.default_rng(seed)
    # Draw a generous pool of accounts, then keep the prefix whose expected rows reach ``rows``.
    n_accounts = max(40, 2 * rows // _ROWS_PER_ACCOUNT)
    ids = [f"A{i:07d}" for i in range(n_accounts)]
    seats = np.clip(np.round(rng.lognormal(np.log(14), 0.9, n_accounts)), 3, 500).astype(int)
    # Signed between ~2.5 years and 5 days before AS_OF: some young accounts, most with history.
    signed_days_ago = rng.integers(5, 900, n_accounts)
    signed_at = [AS_OF - timedelta(days=int(d)) for d in signed_days_ago]
    login_prob = rng.uniform(0.15, 0.85, n_accounts)
    actions_per_user = rng.integers(0, 6, n_accounts)
    accounts = pd.DataFrame({
        "account_id": ids,
        "signed_at": pd.to_datetime(signed_at),
        "seats": seats,
        "segment": np.where(seats <= 50, "SMB", "mid-market"),
        "csm_id": [f"csm{i % 40:02d}" for i in range(n_accounts)],
    })

    contracts, usage_end = [], []
    for i, account_id in enumerate(ids):
        start, k, end_of_usage = signed_at[i], 0, AS_OF
        arr = float(seats[i] * 600)
        while True:
            end = start + timedelta(days=365)
            decided = end <= AS_OF
            renewed = bool(rng.random() < 0.85) if decided else None
            next_arr = round(arr * rng.uniform(0.85, 1.25), 2) if renewed else None
            contracts.append((f"C{i:07d}-{k}", account_id, start, end, arr, renewed, next_arr))
            if renewed is False:
                end_of_usage = end
            if not renewed:
                break
            start, k, arr = end, k + 1, next_arr
        usage_end.append(end_of_usage)
    contracts_df = pd.DataFrame(contracts, columns=["contract_id", "account_id", "start_date",
                                                    "end_date", "arr", "renewed", "next_arr"])
    for column in ("start_date", "end_date"):
        contracts_df[column] = pd.to_datetime(contracts_df[column])
    contracts_df["renewed"] = contracts_df["renewed"].astype("boolean")
    contracts_df["next_arr"] = contracts_df["next_arr"].astype("Float64")

    first_day = AS_OF - timedelta(days=HISTORY_DAYS - 1)
    plan = pd.DataFrame({
        "a": np.arange(n_accounts),
        "account_id": ids,
        "seats": seats,
        "start_day": [(max(s, first_day) - first_day).days for s in signed_at],
        "end_day": [(e - first_day).days for e in usage_end],
        "p": np.round(login_prob * 1000).astype(int),
        "k": actions_per_user,
    })
    weekly_share = (5 + 2 / 4) / 7  # weekend days keep a quarter of the login probability
    expected = (plan["seats"] * (plan["end_day"] - plan["start_day"] + 1).clip(lower=0)
                * plan["p"] / 1000 * weekly_share).cumsum()
    keep = min(n_accounts, int(np.searchsorted(expected.to_numpy(), rows)) + 1)
    kept_ids = set(ids[:keep])
    plan = plan.iloc[:keep]
    accounts = accounts.iloc[:keep]
    contracts_df = contracts_df[contracts_df["account_id"].isin(kept_ids)]
    n_accounts = keep
    accounts.to_parquet(out / "accounts.parquet", index=False)
    contracts_df.to_parquet(out / "contracts.parquet", index=False)

    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET memory_limit = '3GB'")
    con.execute(f"SET temp_directory = '{out / '.tmp'}'")
    con.register("plan", plan)
    # Each candidate user-day is kept with the account's login probability (lower at weekends);
    # key actions per user-day are uniform in [0, 2k]; 8 % of kept rows have no login.
    con.execute(f"""
        COPY (
            WITH days AS (
                SELECT a, account_id, seats, p, k, unnest(range(start_day, end_day + 1)) AS d
                FROM plan WHERE end_day >= start_day
            ), users AS (
                SELECT a, account_id, p, k, d, unnest(range(seats)) AS u FROM days
            )
            SELECT account_id,
                   DATE '{first_day.isoformat()}' + CAST(d AS INTEGER) AS date,
                   'u' || u AS user_id,
                   CAST(CASE WHEN hash(a, u, d, 2) % 100 < 8 THEN 0
                        ELSE 1 + hash(a, u, d, 3) % 3 END AS BIGINT) AS logins,
                   CAST(hash(a, u, d, 4) % (2 * k + 1) AS BIGINT) AS key_actions
            FROM users
            WHERE hash(a, u, d, {seed}) % 1000
                  < CASE WHEN dayofweek(DATE '{first_day.isoformat()}' + CAST(d AS INTEGER))
                             IN (0, 6) THEN p / 4 ELSE p END
            ORDER BY date, account_id, user_id
        ) TO '{out / "usage.parquet"}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)
    """)
    n = con.execute(f"SELECT count(*) FROM '{out / 'usage.parquet'}'").fetchone()[0]
    done.write_text(json.dumps({"usage_rows": n, "accounts": n_accounts, "as_of": str(AS_OF)}))
    return out


def data_facts(data_dir: Path) -> dict:
    return json.loads((data_dir / ".complete").read_text())


# --------------------------------------------------------------------------------------------
# The four measurements. Each returns a DataFrame of account_id + the four tier counts
# (pipeline_full returns the whole vector frame).
# --------------------------------------------------------------------------------------------

def tier_counts_sql(data_dir: Path, as_of: date, first_use: str, day_use: str) -> str:
    """The floor's SQL: 30-day tier counts from ``day_use`` (account_id, date, key_actions,
    active_users of the 30 days) and ``first_use`` (account_id, first_date)."""
    from features.config import FeatureConfig

    c = FeatureConfig()
    low, mid = c.active_share * c.low_multiplier, c.active_share * c.mid_multiplier
    start = as_of - timedelta(days=29)
    return f"""
        WITH acc AS (
            SELECT account_id, seats, CAST(signed_at AS DATE) AS signed_at
            FROM '{data_dir / "accounts.parquet"}' WHERE CAST(signed_at AS DATE) <= DATE '{as_of}'
        ), first_use AS ({first_use}
        ), day_use AS ({day_use}
        ), tiers AS (
            SELECT d.account_id,
                   CASE WHEN d.key_actions = 0 THEN 'zero'
                        WHEN d.key_actions <= a.seats * {low} THEN 'low'
                        WHEN d.key_actions <= a.seats * {mid} THEN 'mid'
                        WHEN d.active_users >= a.seats * {c.high_login_share} THEN 'high'
                        ELSE 'mid' END AS tier
            FROM day_use d JOIN acc a USING (account_id)
        ), counts AS (
            SELECT account_id,
                   count(*) FILTER (tier = 'low') AS tier_low_days_30d,
                   count(*) FILTER (tier = 'mid') AS tier_mid_days_30d,
                   count(*) FILTER (tier = 'high') AS tier_high_days_30d,
                   count(*) FILTER (tier <> 'zero') AS nonzero
            FROM tiers GROUP BY account_id
        )
        SELECT a.account_id,
               -- days observed in the window (from signing or first usage), minus non-zero days
               CAST(greatest(0, DATE '{as_of}' - greatest(DATE '{start}',
                        least(a.signed_at, coalesce(f.first_date, a.signed_at))) + 1)
                    - coalesce(c.nonzero, 0) AS BIGINT) AS tier_zero_days_30d,
               coalesce(c.tier_low_days_30d, 0) AS tier_low_days_30d,
               coalesce(c.tier_mid_days_30d, 0) AS tier_mid_days_30d,
               coalesce(c.tier_high_days_30d, 0) AS tier_high_days_30d
        FROM acc a LEFT JOIN counts c USING (account_id) LEFT JOIN first_use f USING (account_id)
        ORDER BY a.account_id
    """


def duckdb_floor(data_dir: Path, as_of: date):
    """The floor: one SQL query over the Parquet files, same rules as the pipeline.

    The usage key is (account_id, date, user_id) and this data has no site_id, so one row is one
    user-day and "distinct users with a login" is a filtered count: the fastest correct form
    (COUNT(DISTINCT ...) gives the same counts, 2-3x slower).
    """
    import duckdb

    usage, start = f"'{data_dir / 'usage.parquet'}'", as_of - timedelta(days=29)
    sql = tier_counts_sql(
        data_dir,
        as_of,
        first_use=f"""SELECT account_id, min(date) AS first_date FROM {usage}
                      WHERE date <= DATE '{as_of}' GROUP BY account_id""",
        day_use=f"""SELECT account_id, date, sum(key_actions) AS key_actions,
                           count(*) FILTER (logins > 0) AS active_users
                    FROM {usage} WHERE date BETWEEN DATE '{start}' AND DATE '{as_of}'
                    GROUP BY account_id, date""",
    )
    return duckdb.connect().execute(sql).df()


def duckdb_reads(data_dir: Path, as_of: date):
    """The reads every feature needs, as hand-written DuckDB SQL: a lower bound of the full
    pipeline, not a competitor (it computes no feature but the tier counts).

    Each is a temp table, as the pipeline keeps its own: the look-back days (per account-day
    sums from ``lookback_start(as_of)``, the windows' input), per account-week active weekday
    masks and first days of the older usage (what first days and activations need), and the
    distinct users with a login in the last 30 days (seat utilisation). The tier counts are
    then computed from the first two by the floor's own SQL, so that the run is checked.
    """
    import duckdb

    from features.windows import lookback_start

    usage, since = f"'{data_dir / 'usage.parquet'}'", lookback_start(as_of)
    start = as_of - timedelta(days=29)
    con = duckdb.connect()
    con.execute(f"""
        CREATE TEMP TABLE days AS
        SELECT account_id, date, sum(key_actions) AS key_actions, sum(logins) AS logins,
               count(*) FILTER (logins > 0) AS active_users
        FROM {usage} WHERE date BETWEEN DATE '{since}' AND DATE '{as_of}'
        GROUP BY account_id, date
    """)
    con.execute(f"""
        CREATE TEMP TABLE weeks AS
        SELECT account_id, (date - DATE '1900-01-01') // 7 AS week, min(date) AS first_day,
               bit_or(CASE WHEN key_actions > 0
                      THEN 1::BIGINT << ((date - DATE '1900-01-01') % 7) ELSE 0 END) AS mask
        FROM {usage} WHERE date < DATE '{since}'
        GROUP BY account_id, week
    """)
    con.execute(f"""
        CREATE TEMP TABLE users AS
        SELECT account_id, count(DISTINCT user_id) AS users_30d
        FROM {usage}
        WHERE date BETWEEN DATE '{start}' AND DATE '{as_of}' AND logins > 0
        GROUP BY account_id
    """)
    sql = tier_counts_sql(
        data_dir,
        as_of,
        first_use="""SELECT account_id, min(first_day) AS first_date FROM (
                         SELECT account_id, first_day FROM weeks
                         UNION ALL SELECT account_id, date FROM days
                     ) GROUP BY account_id""",
        day_use=f"SELECT * FROM days WHERE date >= DATE '{start}'",
    )
    return con.execute(sql).df()


def pandas_tiers(data_dir: Path, as_of: date):
    """What a user would write by hand in pandas (reading only the needed columns)."""
    import numpy as np
    import pandas as pd

    from features.config import FeatureConfig

    c = FeatureConfig()
    as_of_ts = pd.Timestamp(as_of)
    start = as_of_ts - pd.Timedelta(days=29)
    accounts = pd.read_parquet(data_dir / "accounts.parquet",
                               columns=["account_id", "signed_at", "seats"])
    accounts["signed_at"] = pd.to_datetime(accounts["signed_at"])
    accounts = accounts[accounts["signed_at"] <= as_of_ts]
    usage = pd.read_parquet(data_dir / "usage.parquet",
                            columns=["account_id", "date", "user_id", "logins", "key_actions"])
    usage["date"] = pd.to_datetime(usage["date"])
    usage = usage[usage["date"] <= as_of_ts]
    first_date = usage.groupby("account_id")["date"].min().rename("first_date")
    window = usage[usage["date"] >= start]
    # One row per user-day (no site_id): users with a login = rows with logins > 0.
    window = window.assign(logged_in=window["logins"] > 0)
    daily = window.groupby(["account_id", "date"]).agg(
        key_actions=("key_actions", "sum"), active_users=("logged_in", "sum")
    ).reset_index().merge(accounts[["account_id", "seats"]], on="account_id")
    seats = daily["seats"].astype(float)
    low_cap = seats * c.active_share * c.low_multiplier + 1e-9  # 10 * 0.6 * 2 may be 11.9999
    mid_cap = seats * c.active_share * c.mid_multiplier + 1e-9
    high = daily["active_users"] >= seats * c.high_login_share - 1e-9
    daily["tier"] = np.select(
        [daily["key_actions"] == 0, daily["key_actions"] <= low_cap,
         daily["key_actions"] <= mid_cap, high],
        ["zero", "low", "mid", "high"], default="mid")
    counts = pd.crosstab(daily["account_id"], daily["tier"]).reindex(
        columns=["zero", "low", "mid", "high"], fill_value=0)
    out = accounts.merge(first_date, on="account_id", how="left").merge(
        counts, left_on="account_id", right_index=True, how="left")
    observed_from = np.maximum(start, np.minimum(out["signed_at"],
                                                 out["first_date"].fillna(out["signed_at"])))
    observed = ((as_of_ts - observed_from).dt.days + 1).clip(lower=0)
    nonzero = out[["low", "mid", "high"]].fillna(0).sum(axis=1)
    result = pd.DataFrame({
        "account_id": out["account_id"],
        "tier_zero_days_30d": (observed - nonzero).astype("int64"),
        "tier_low_days_30d": out["low"].fillna(0).astype("int64"),
        "tier_mid_days_30d": out["mid"].fillna(0).astype("int64"),
        "tier_high_days_30d": out["high"].fillna(0).astype("int64"),
    })
    return result.sort_values("account_id").reset_index(drop=True)


def pipeline_tiers(data_dir: Path, as_of: date):
    """The pipeline's own 30-day tier counts, nothing else.

    Same path as ``feature_vectors`` (spine at ``as_of`` -> ``usage_days`` of the days the
    window reads -> ``lookback_rows`` -> the tier counts, zero days from each account's first
    day), through ``features.windows.activity.tier_counts_30d``. The vectors take the
    account's first day from their whole-history pass (which also finds activations); alone,
    the tier counts take it from one ``MIN(date)`` per account (``account_starts``), as the
    floor does.
    """
    import ibis

    from features.config import FeatureConfig
    from features.daily import accounts_as_of, usage_days
    from features.source import open_source
    from features.windows import Window
    from features.windows.activity import tier_counts_30d
    from features.windows.history import account_starts

    config = FeatureConfig()
    source = _profiled(open_source(data_dir))
    spine = accounts_as_of(source, as_of).select("account_id", as_of=ibis.literal(as_of, "date"))
    days = usage_days(source, as_of, config, since=as_of - timedelta(days=29))
    window = Window(source, spine, days, account_starts(source, as_of), config, as_of, as_of)
    frame = source.backend.to_pandas(tier_counts_30d(window).select("account_id", *TIER_COLUMNS))
    return frame.sort_values("account_id").reset_index(drop=True)


def pipeline_full(data_dir: Path, as_of: date):
    """Every feature for every account signed on or before ``as_of``."""
    from features.config import FeatureConfig
    from features.source import open_source
    from features.vectors import features_as_of

    return features_as_of(_profiled(open_source(data_dir)), as_of, FeatureConfig())


def _profiled(source):
    """With ``--profile``, DuckDB writes a JSON profile of each query (the last one is kept)."""
    source.backend.con.execute("SET enable_progress_bar = false")
    target = os.environ.get("FEATURES_BENCH_PROFILE")
    if target:
        source.backend.con.execute("PRAGMA enable_profiling = 'json'")
        source.backend.con.execute(f"PRAGMA profiling_output = '{target}'")
    return source


def _slowest_pipeline_calls(profiler, top: int = 8) -> list[dict]:
    """Wall time per function of the pipeline's own modules (cumulative): which step, and so
    which query, the time goes to when the pipeline runs several queries."""
    import pstats

    stats = pstats.Stats(profiler).stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
    rows = [
        {"function": f"{Path(file).relative_to(ROOT)}:{line} {function}",
         "seconds": round(timing[3], 3)}
        for (file, line, function), timing in stats.items()
        if file.startswith(str(ROOT / "features"))
    ]
    return sorted(rows, key=lambda r: -r["seconds"])[:top]


def profile_summary(path: Path, top: int = 8) -> dict:
    """CPU time of the profiled query and its costliest operators (timings summed over threads),
    from DuckDB's JSON profile: where the time goes, for the pipeline's owner."""
    profile = json.loads(Path(path).read_text())
    operators = []

    def walk(node: dict) -> None:
        info = node.get("extra_info", {})
        detail = {k: str(info[k])[:120] for k in ("Table", "Groups", "Aggregates", "Join Type",
                                                  "Conditions", "CTE Name", "Filters")
                  if k in info}
        operators.append({"operator": node.get("type"), "seconds": round(node["timing"], 3),
                          "estimated_rows": info.get("Estimated Cardinality"), **detail})
        for child in node.get("children", []):
            walk(child)

    for node in profile["operator"]:
        walk(node)
    operators.sort(key=lambda o: -o["seconds"])
    return {"cpu_seconds": round(profile["query"]["cpu_time"], 2),
            "peak_buffer_memory_gb": round(profile["system"]["peak_buffer_memory"] / 1024**3, 2),
            "top_operators": operators[:top]}


FUNCTIONS = {"pipeline_full": pipeline_full, "pipeline_tiers": pipeline_tiers,
             "duckdb_floor": duckdb_floor, "duckdb_reads": duckdb_reads,
             "pandas_tiers": pandas_tiers}


def measure_in_this_process(name: str, data_dir: Path, as_of: date, out: Path) -> None:
    """Child side: run one measurement, save its tier counts, print seconds and peak RSS."""
    _import_outside_the_clock(name)
    profiler = None
    if os.environ.get("FEATURES_BENCH_PROFILE"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    frame = FUNCTIONS[name](data_dir, as_of)
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.disable()
    rss_kib = own_peak_rss_kib()
    columns = ["account_id", *TIER_COLUMNS]
    frame[columns].to_parquet(out, index=False)
    figures = {"name": name, "seconds": seconds, "peak_rss_gb": rss_kib / 1024**2,
               "rows_out": len(frame)}
    profile = os.environ.get("FEATURES_BENCH_PROFILE")
    if profile and Path(profile).exists():
        figures["profile"] = profile_summary(Path(profile))
    if profiler is not None:
        figures.setdefault("profile", {})["python_calls"] = _slowest_pipeline_calls(profiler)
    print(json.dumps(figures))


def own_peak_rss_kib() -> int:
    """This process's peak RSS since it started its program (VmHWM).

    Not ``getrusage``'s ``ru_maxrss``: Linux carries the forking parent's peak over into the
    child's at ``exec``, so a measurement started after the parent generated the data (3 GB)
    would report the parent's peak instead of its own.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _import_outside_the_clock(name: str) -> None:
    """Interpreter start-up and imports are not what is measured: load them first."""
    import duckdb  # noqa: F401
    import numpy  # noqa: F401
    import pandas  # noqa: F401

    import features.config  # noqa: F401

    if name == "duckdb_reads":
        import features.windows  # noqa: F401 - lookback_start (it imports ibis)
    if name.startswith("pipeline"):
        import ibis  # noqa: F401
        import ibis.backends.duckdb  # noqa: F401

        import features.vectors  # noqa: F401


def measure(name: str, data_dir: Path, as_of: date, scratch: Path, profile: bool) -> dict:
    """Parent side: run one measurement in a fresh interpreter; return its figures."""
    out = scratch / f"{name}.parquet"
    cmd = [sys.executable, __file__, "--child", name, "--data", str(data_dir),
           "--as-of", as_of.isoformat(), "--child-out", str(out)]
    env = dict(os.environ)
    if profile and name.startswith("pipeline"):
        env["FEATURES_BENCH_PROFILE"] = str(scratch / f"{name}.profile.json")
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if done.returncode != 0:
        return {"name": name, "error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["output"] = str(out)
    return figures


def compare_tier_counts(results: dict[str, dict]) -> dict[str, bool]:
    """Tier counts of every finished measurement must equal the floor's, account by account."""
    import pandas as pd

    floor = pd.read_parquet(results["duckdb_floor"]["output"])
    floor = floor.sort_values("account_id").reset_index(drop=True)
    floor["account_id"] = floor["account_id"].astype(str)
    same = {}
    for name, figures in results.items():
        if name == "duckdb_floor" or "output" not in figures:
            continue
        other = pd.read_parquet(figures["output"]).sort_values("account_id")
        other = other.reset_index(drop=True)
        other["account_id"] = other["account_id"].astype(str)
        for column in TIER_COLUMNS:
            other[column] = other[column].astype("int64")
            floor[column] = floor[column].astype("int64")
        equal = other.equals(floor)
        if not equal:
            diff = other.merge(floor, on="account_id", how="outer", suffixes=("", "_floor"),
                               indicator=True)
            print(f"!! {name} differs from the floor; first differences:\n"
                  f"{diff[diff['_merge'] != 'both'].head()}", file=sys.stderr)
            for column in TIER_COLUMNS:
                bad = diff[diff[column] != diff[f"{column}_floor"]]
                if len(bad):
                    print(bad[["account_id", column, f"{column}_floor"]].head(), file=sys.stderr)
        same[name] = equal
    return same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000_000, help="User-day rows of usage.")
    parser.add_argument("--only", nargs="*", choices=MEASUREMENTS, default=list(MEASUREMENTS))
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file.")
    parser.add_argument("--repeat", type=int, default=1,
                        help="Runs per measurement; the fastest counts (the machine is shared).")
    parser.add_argument("--profile", action="store_true",
                        help="Profile the pipeline's queries (DuckDB JSON profile); print the "
                             "costliest operators. Profiling slows the measured runs.")
    parser.add_argument("--child", choices=MEASUREMENTS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--as-of", type=date.fromisoformat, default=AS_OF, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        measure_in_this_process(args.child, args.data, args.as_of, args.child_out)
        return 0

    started = time.perf_counter()
    data_dir = generate(args.rows)
    facts = data_facts(data_dir)
    print(f"data: {data_dir} ({facts['usage_rows']:,} usage rows, {facts['accounts']:,} "
          f"accounts; ready in {time.perf_counter() - started:.1f} s)")
    scratch = data_dir / "outputs"
    scratch.mkdir(exist_ok=True)
    load_before = os.getloadavg()[0]
    results = {}
    for name in args.only:
        runs = [measure(name, data_dir, AS_OF, scratch, args.profile) for _ in range(args.repeat)]
        ok = [r for r in runs if "seconds" in r]
        if not ok:
            results[name] = runs[0]
            continue
        best = min(ok, key=lambda r: r["seconds"])
        best["peak_rss_gb"] = max(r["peak_rss_gb"] for r in ok)
        best["all_seconds"] = [round(r["seconds"], 3) for r in ok]
        results[name] = best
    load_after = os.getloadavg()[0]
    for figures in results.values():
        if "error" in figures:
            print(f"!! {figures['name']} failed: {figures['error']}", file=sys.stderr)
    same = compare_tier_counts(results) if "output" in results.get("duckdb_floor", {}) else {}
    report = render(results, same, facts)
    print(report["table"])
    print(f"(1-minute load average {load_before:.1f} before, {load_after:.1f} after, on "
          f"{os.cpu_count()} CPUs: other work on the machine slows every measurement)")
    for name, figures in results.items():
        if "profile" in figures:
            p = figures["profile"]
            print(f"\n{name}: last query {p.get('cpu_seconds')} CPU s, DuckDB peak buffer "
                  f"{p.get('peak_buffer_memory_gb')} GB; costliest operators (CPU s, all threads):")
            for op in p.get("top_operators", []):
                rest = {k: v for k, v in op.items() if k not in ("operator", "seconds")}
                print(f"  {op['seconds']:>8.2f}  {op['operator']}  {rest}")
            print(f"{name}: slowest pipeline functions (wall s, cumulative):")
            for call in p.get("python_calls", []):
                print(f"  {call['seconds']:>8.2f}  {call['function']}")
    payload = {
        "date": date.today().isoformat(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(),
                    "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                                       / 1024**3, 1),
                    "load_average_1min": {"before": load_before, "after": load_after}},
        "repeat": args.repeat,
        "versions": versions(),
        "data": facts,
        "as_of": AS_OF.isoformat(),
        "measurements": {n: {k: v for k, v in f.items() if k != "output"}
                         for n, f in results.items()},
        "identical_tier_counts": same,
        "goals": report["goals"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"written {args.out}")
    assert all(same.values()), f"tier counts differ from the floor: {same}"
    return 0


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("duckdb", "ibis-framework", "pandas", "pyarrow")}


def render(results: dict[str, dict], same: dict[str, bool], facts: dict) -> dict:
    """The side-by-side table, ratios to the floor, and each goal's verdict."""
    floor = results.get("duckdb_floor", {}).get("seconds")
    lines = [f"{'measurement':<16}{'seconds':>9}{'x floor':>9}{'peak RSS GB':>13}  same counts"]
    for name, f in results.items():
        if "seconds" not in f:
            lines.append(f"{name:<16}{'failed':>9}")
            continue
        ratio = f["seconds"] / floor if floor else float("nan")
        f["ratio_to_floor"] = round(ratio, 3)
        check = "floor" if name == "duckdb_floor" else ("yes" if same.get(name) else
                                                          "n/a" if name not in same else "NO")
        lines.append(f"{name:<16}{f['seconds']:>9.2f}{ratio:>9.2f}{f['peak_rss_gb']:>13.2f}"
                     f"  {check}")
    goals = {}
    for name, limit in GOALS.items():
        if "ratio_to_floor" in results.get(name, {}):
            goals[f"{name} <= {limit}x floor"] = results[name]["ratio_to_floor"] <= limit
    full, pandas_ = results.get("pipeline_full", {}), results.get("pandas_tiers", {})
    if "seconds" in full and "seconds" in pandas_:
        goals["pipeline_full faster than pandas_tiers"] = full["seconds"] < pandas_["seconds"]
    peaks = [f["peak_rss_gb"] for n, f in results.items()
             if n.startswith("pipeline") and "peak_rss_gb" in f]
    if peaks:
        goals[f"pipeline peak RSS < {MEMORY_GOAL_GB} GB"] = max(peaks) < MEMORY_GOAL_GB
    reads = results.get("duckdb_reads", {})
    if "seconds" in full and "seconds" in reads:
        lines.append(f"(pipeline_full / duckdb_reads, the pipeline against the raw SQL of its "
                     f"reads: {full['seconds'] / reads['seconds']:.2f}x)")
    lines.append("")
    lines += [f"goal {'met ' if ok else 'MISSED'}  {goal}" for goal, ok in goals.items()]
    return {"table": "\n".join(lines), "goals": goals}


if __name__ == "__main__":
    # Run as a script, this file's folder comes first on sys.path, and this file is itself
    # named ``features``: put the project root there instead so the package is found.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
