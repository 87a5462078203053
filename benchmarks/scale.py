"""DuckDB and Spark (local mode) on the same ~50-million-row usage set: the whole feature pipeline.

Not a test: run it by hand, on a machine as quiet as you can get::

    .venv/bin/python benchmarks/scale.py                   # ~50 M user-day rows (cached data)
    .venv/bin/python benchmarks/scale.py --rows 2000000    # quick check (~2 min)

The data is ``benchmarks/features.py``'s (generated once, cached under ``benchmarks/.data/``).
Each engine runs ``features.vectors.features_as_of`` (every feature of every account) in its own
fresh interpreter, one after the other. Measured: wall time of the pipeline (imports and, for
Spark, the JVM start-up are outside the clock and reported apart), and peak memory of the whole
process tree (Spark's JVM is a child of the Python process), sampled every 0.2 s. Both vector
frames are compared (they must be equal). From Spark's measured per-core throughput the run
estimates a cluster size for 10 billion rows. Figures go to ``benchmarks/results/scale.json``
and are quoted in ``docs/scale-out.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "scale.json"
ENGINES = ("duckdb", "spark")
SPARK_DRIVER_MEMORY = "6g"  # local mode: the one JVM is driver and executor; 50 M rows fit
SPARK_LOCAL_SHUFFLE_PARTITIONS = "8"  # as features.jobs starts a local session

# Assumptions of the cluster estimate (stated in the output and in docs/scale-out.md).
TARGET_ROWS = 10_000_000_000
TARGET_WALL_SECONDS = (1800, 3600, 7200)
EXECUTOR_CORES = 4
EXECUTOR_MEMORY_GB = 16
SCALING_EFFICIENCY = 0.6  # network shuffles, object-store reads and stragglers vs local mode


def _bench_features():
    """``benchmarks/features.py`` as a module (its name would shadow the ``features`` package)."""
    spec = importlib.util.spec_from_file_location("benchmark_features_data", HERE / "features.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------------
# Child side: one engine, one fresh interpreter
# --------------------------------------------------------------------------------------------


class TreeMemorySampler:
    """Peak resident memory of this process plus all its descendants (the JVM, Python workers)."""

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.peak_bytes = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        sizes = tree_rss_bytes(os.getpid())
        total = sum(sizes)
        if total > self.peak_bytes:
            self.peak_bytes, self.peak_processes = total, len(sizes)


def tree_rss_bytes(pid: int) -> list[int]:
    """RSS of ``pid`` and every descendant, with psutil when installed, else from /proc."""
    try:
        import psutil
    except ImportError:
        return _proc_tree_rss(pid)
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return []
    sizes = []
    for process in processes:
        try:
            sizes.append(process.memory_info().rss)
        except psutil.Error:
            continue
    return sizes


def _proc_tree_rss(pid: int) -> list[int]:
    page = os.sysconf("SC_PAGE_SIZE")
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        rss[int(entry.name)] = int(fields[21]) * page
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in tree]
        tree.update(children)
        frontier.extend(children)
    return [rss[p] for p in tree if p in rss]


def start_local_spark():
    """A local session sized for the benchmark: all cores, a 6 GB heap, UTC dates."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[*]")
        .appName("renewal-scale-benchmark")
        .config("spark.driver.memory", SPARK_DRIVER_MEMORY)
        .config("spark.sql.shuffle.partitions", SPARK_LOCAL_SHUFFLE_PARTITIONS)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def run_engine(engine: str, data_dir: Path, as_of: date, out: Path) -> dict:
    """Child side: the whole pipeline on one engine; returns the figures (vectors to ``out``)."""
    import ibis  # noqa: F401 - imports are not what is measured
    import pandas  # noqa: F401

    from features.config import FeatureConfig
    from features.source import open_source
    from features.vectors import features_as_of

    figures: dict = {"engine": engine}
    with TreeMemorySampler() as memory:
        spark = None
        if engine == "spark":
            started = time.perf_counter()
            spark = start_local_spark()
            figures["startup_seconds"] = time.perf_counter() - started
            figures["spark_cores"] = spark.sparkContext.defaultParallelism
        started = time.perf_counter()
        source = open_source(data_dir, engine=engine, spark=spark)
        vectors = features_as_of(source, as_of, FeatureConfig())
        figures["seconds"] = time.perf_counter() - started
        if spark is not None:
            spark.stop()
    figures["peak_tree_rss_gb"] = memory.peak_bytes / 1024**3
    figures["processes_at_peak"] = memory.peak_processes
    figures["python_max_rss_gb"] = _bench_features().own_peak_rss_kib() / 1024**2
    figures["accounts_out"] = len(vectors)
    vectors.to_parquet(out, index=False)
    return figures


# --------------------------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------------------------


def measure(engine: str, data_dir: Path, as_of: date, scratch: Path) -> dict:
    """Run one engine in a fresh interpreter; return its figures (or the error)."""
    out = scratch / f"scale-{engine}.parquet"
    command = [sys.executable, __file__, "--child", engine, "--data", str(data_dir),
               "--as-of", as_of.isoformat(), "--child-out", str(out)]
    print(f"running {engine} ...", flush=True)
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        tail = [line for line in done.stderr.strip().splitlines() if line.strip()][-5:]
        return {"engine": engine, "error": tail or ["failed"]}
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["output"] = str(out)
    return figures


def same_vectors(results: dict[str, dict]) -> bool | None:
    """Whether both engines produced the same vectors (floats to 1e-12 relative)."""
    import pandas as pd

    if not all("output" in results.get(e, {}) for e in ENGINES):
        return None
    duck, spark = (pd.read_parquet(results[e]["output"]) for e in ENGINES)
    try:
        pd.testing.assert_frame_equal(duck, spark, check_exact=False, rtol=1e-12)
    except AssertionError as exc:
        print(f"!! the engines' vectors differ: {str(exc)[:500]}", file=sys.stderr)
        return False
    return True


def cluster_estimate(spark: dict, usage_rows: int, small: dict | None = None) -> dict:
    """Executors for 10 billion rows, from the measured local per-core throughput.

    With a run on a small set too, the throughput is the marginal one, (rows_big - rows_small) /
    (seconds_big - seconds_small): Spark's fixed cost per query (planning, scheduling ~100 tiny
    stages) is then left out, as it is negligible at 10 billion rows. Otherwise the average.
    """
    cores = spark["spark_cores"]
    average = usage_rows / (spark["seconds"] * cores)
    per_core, basis = average, "average of the large run"
    if small and "seconds" in small and spark["seconds"] > small["seconds"]:
        per_core = (usage_rows - small["usage_rows"]) / ((spark["seconds"] - small["seconds"])
                                                         * cores)
        basis = (f"marginal between {small['usage_rows']:,} and {usage_rows:,} rows "
                 f"(fixed cost {small['seconds'] - small['usage_rows'] / (per_core * cores):.0f} s"
                 " per run left out)")
    sizes = []
    for target in TARGET_WALL_SECONDS:
        needed = TARGET_ROWS / (per_core * target * SCALING_EFFICIENCY)
        executors = math.ceil(needed / EXECUTOR_CORES)
        sizes.append({"target_wall_minutes": target // 60, "cores": math.ceil(needed),
                      "executors": executors})
    return {
        "rows": TARGET_ROWS,
        "measured_local_cores": cores,
        "rows_per_core_second": round(per_core),
        "rows_per_core_second_basis": basis,
        "average_rows_per_core_second": round(average),
        "assumptions": {
            "executor_cores": EXECUTOR_CORES,
            "executor_memory_gb": EXECUTOR_MEMORY_GB,
            "scaling_efficiency": SCALING_EFFICIENCY,
            "throughput": "per-core rows/s of the local run holds per executor core",
        },
        "core_seconds": round(TARGET_ROWS / per_core),
        "sizes": sizes,
    }


def render(results: dict[str, dict], same: bool | None, facts: dict) -> str:
    """The side-by-side table with Spark/DuckDB ratios."""
    lines = [f"usage rows {facts['usage_rows']:,}, accounts {facts['accounts']:,}", "",
             f"{'engine':<8}{'seconds':>10}{'rows/s':>14}{'peak RSS GB':>13}{'start-up s':>12}"]
    for engine in ENGINES:
        f = results.get(engine, {})
        if "seconds" not in f:
            lines.append(f"{engine:<8}{'failed':>10}  {f.get('error')}")
            continue
        startup = f"{f['startup_seconds']:.1f}" if "startup_seconds" in f else "-"
        lines.append(f"{engine:<8}{f['seconds']:>10.1f}{facts['usage_rows'] / f['seconds']:>14,.0f}"
                     f"{f['peak_tree_rss_gb']:>13.2f}{startup:>12}")
    duck, spark = results.get("duckdb", {}), results.get("spark", {})
    if "seconds" in duck and "seconds" in spark:
        lines.append(f"{'spark/duckdb':<8}{spark['seconds'] / duck['seconds']:>9.1f}x"
                     f"{'':>14}{spark['peak_tree_rss_gb'] / duck['peak_tree_rss_gb']:>12.1f}x")
    lines.append(f"identical vectors: {same}")
    return "\n".join(lines)


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("duckdb", "ibis-framework", "pyspark", "pandas", "pyarrow")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000_000, help="User-day rows of usage.")
    parser.add_argument("--only", nargs="*", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--small-rows", type=int, default=2_000_000,
                        help="Also run Spark on this many rows, to separate its fixed cost from "
                             "its per-row cost (0: skip).")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file.")
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--as-of", type=date.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_engine(args.child, args.data, args.as_of, args.child_out)))
        return 0

    data = _bench_features()
    started = time.perf_counter()
    data_dir = data.generate(args.rows)
    facts = data.data_facts(data_dir)
    print(f"data: {data_dir} ({facts['usage_rows']:,} usage rows, {facts['accounts']:,} "
          f"accounts; ready in {time.perf_counter() - started:.1f} s)", flush=True)
    scratch = data_dir / "outputs"
    scratch.mkdir(exist_ok=True)
    results = {e: measure(e, data_dir, data.AS_OF, scratch) for e in args.only}
    same = same_vectors(results)
    print(render(results, same, facts))
    small = None
    if args.small_rows and "spark" in args.only and args.small_rows < facts["usage_rows"]:
        small_dir = data.generate(args.small_rows)
        small = measure("spark", small_dir, data.AS_OF, small_dir / "outputs")
        small.pop("output", None)
        small["usage_rows"] = data.data_facts(small_dir)["usage_rows"]
        print(f"spark on {small['usage_rows']:,} rows: {small.get('seconds', float('nan')):.1f} s")
    estimate = None
    if "seconds" in results.get("spark", {}):
        estimate = cluster_estimate(results["spark"], facts["usage_rows"], small)
        print(f"\n10 billion rows at {estimate['rows_per_core_second']:,} rows/s per core "
              f"({estimate['rows_per_core_second_basis']}), {SCALING_EFFICIENCY:.0%} scaling "
              f"efficiency, {EXECUTOR_CORES}-core executors:")
        for size in estimate["sizes"]:
            print(f"  within {size['target_wall_minutes']:>3} min: {size['cores']:>5} cores = "
                  f"{size['executors']:>4} executors")
    payload = {
        "date": date.today().isoformat(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(),
                    "load_average_at_end": os.getloadavg()},
        "versions": versions(),
        "data": facts,
        "as_of": data.AS_OF.isoformat(),
        "spark": {"master": "local[*]", "driver_memory": SPARK_DRIVER_MEMORY,
                  "shuffle_partitions": SPARK_LOCAL_SHUFFLE_PARTITIONS},
        "measurements": {e: {k: v for k, v in f.items() if k != "output"}
                         for e, f in results.items()},
        "identical_vectors": same,
        "spark_small_run": small,
        "cluster_estimate": estimate,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"written {args.out}")
    failed = [e for e, f in results.items() if "error" in f]
    for engine in failed:
        print(f"!! {engine} failed: {results[engine]['error']}", file=sys.stderr)
    return 1 if failed or same is False else 0


if __name__ == "__main__":
    # Run as a script, this folder comes first on sys.path, and benchmarks/features.py would
    # shadow the ``features`` package: put the project root there instead.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
