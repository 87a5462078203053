"""Benchmark of the scoring service against a bare FastAPI ceiling and `mlflow models serve`.

Not a test: run it by hand (see ``benchmarks/README.md``)::

    .venv/bin/python benchmarks/service.py                  # ~6 min on 2 cores
    .venv/bin/python benchmarks/service.py --duration 5 --batch-rows 20000   # quick check

Side by side in one run, each server on ONE uvicorn worker in its own process, driven by
``wrk`` (Debian package ``wrk``; a C load generator) from another process on loopback:

(a) ``bare``      — a bare FastAPI endpoint returning constant JSON: the ceiling;
(b) ``renewal``   — our ``GET /v1/accounts/{id}/renewal`` (key check + in-memory score);
    also at half of its own peak rate, for p99 latency (wrk with a per-connection delay);
(c) ``score100``  — our ``POST /v1/score`` with 100 account ids (contributions on the fly),
    compared with raw ``Booster.predict(pred_contrib=True)`` on the same 100 rows in-process
    plus the HTTP overhead measured on (a);
(d) ``mlflow``    — the same registered model under ``mlflow models serve --env-manager
    local`` on ``/invocations`` with one row per request (predict + drivers JSON).

And in-process, for ``renewal score``: scoring ``--batch-rows`` accounts with top-3 drivers
against raw ``Booster.predict(pred_contrib=True)`` on the same rows, plus the time to store
them. Goals (issue 5): b ≥ 50 % of a; p99(b) ≤ 20 ms at half its peak; c within 1.5× of
raw + HTTP overhead; b ≥ 5 × d; batch within 1.5× of raw. Results go to
``benchmarks/results/service.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / ".data" / "service"
RESULTS = HERE / "results" / "service.json"
AS_OF = date(2025, 12, 31)
VENV_BIN = Path(sys.executable).parent

BARE_APP = """
from fastapi import FastAPI

app = FastAPI()
BODY = {BODY}


@app.get("/v1/accounts/{{account_id}}/renewal")
async def renewal(account_id: str) -> dict:
    return BODY
"""


# -- set-up ----------------------------------------------------------------------------------


def prepare(accounts: int) -> dict[str, Any]:
    """Simulated data, a registered champion and one scoring run (cached between runs)."""
    from renewal.settings import Settings

    work = CACHE / f"a{accounts}"
    settings = Settings(data_dir=work / "work", models_dir=work / "models")
    marker = work / "ready.json"
    if not marker.exists():
        from renewal.simulator import simulate
        from service.config import ServiceSettings
        from service.scoring import run_scoring
        from training.config import load_train_config
        from training.train import run_training

        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        previous = os.getcwd()
        os.chdir(work)
        try:
            print(f"preparing: simulate {accounts} accounts, train, score ...", flush=True)
            simulate(work / "data", accounts=accounts, seed=11, months=24)
            run_training(
                work / "data",
                work / "train",
                load_train_config(None),
                tracking_uri=settings.resolved_tracking_uri,
            )
            run_scoring(work / "data", AS_OF, settings, ServiceSettings())
        finally:
            os.chdir(previous)
        marker.write_text(json.dumps({"accounts": accounts}))
    return {"work": work, "settings": settings}


def server_env(settings: Any) -> dict[str, str]:
    """The environment of a benchmarked ``renewal serve``: the prepared data and models, the
    default SQLite store and local registry (nothing of the caller's own deployment)."""
    env = {
        **os.environ,
        "RENEWAL_DATA_DIR": str(settings.data_dir),
        "RENEWAL_MODELS_DIR": str(settings.models_dir),
    }
    for name in ("RENEWAL_DATABASE_URL", "RENEWAL_TRACKING_URI", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    return env


def new_key(settings: Any, role: str) -> str:
    from service.db.engine import make_engine, make_session_factory, transaction
    from service.keys import create_key

    engine = make_engine(settings.resolved_database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            return create_key(session, role, f"bench-{role}")[1]
    finally:
        engine.dispose()


def account_ids(settings: Any) -> list[str]:
    from service.db import scores as scores_db
    from service.db.engine import make_engine, make_session_factory

    engine = make_engine(settings.resolved_database_url)
    try:
        with make_session_factory(engine)() as session:
            return sorted(s.score.account_id for s in scores_db.latest_scores(session))
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    command: list[str], env: dict[str, str], ready_url: str, cwd: Path
) -> subprocess.Popen:
    import httpx

    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited: {process.stderr.read()[-2000:]}")
        try:
            if httpx.get(ready_url, timeout=2).status_code < 500:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"{' '.join(command)} did not become ready")


def start_renewal_server(
    env: dict[str, str], work: Path, workers: int = 1
) -> tuple[subprocess.Popen, str]:
    """``renewal serve`` on a free port, ready when /readyz answers; process and base URL."""
    port = free_port()
    command = [str(VENV_BIN / "renewal"), "serve", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    command += ["--log-level", "warning"]
    process = start_server(command, env, f"http://127.0.0.1:{port}/readyz", work)
    return process, f"http://127.0.0.1:{port}"


def start_bare_server(
    scratch: Path, sample: Any, env: dict[str, str], workers: int = 1
) -> tuple[subprocess.Popen, str]:
    """The ceiling: a bare FastAPI app returning ``sample`` as a constant body, served by
    uvicorn like ours; returns the process and its base URL."""
    (scratch / "bare_app.py").write_text(BARE_APP.format(BODY=repr(sample)))
    port = free_port()
    command = [str(VENV_BIN / "uvicorn"), "bare_app:app", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    command += ["--no-access-log", "--log-level", "warning", "--app-dir", str(scratch)]
    process = start_server(command, env, f"http://127.0.0.1:{port}/v1/accounts/x/renewal", scratch)
    return process, f"http://127.0.0.1:{port}"


def stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


# -- load generation (wrk) ---------------------------------------------------------------------


def lua_script(
    directory: Path,
    name: str,
    *,
    method: str = "GET",
    paths: list[str] | None = None,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    delay_ms: float | None = None,
) -> Path:
    lines = [f'wrk.method = "{method}"']
    for key, value in (headers or {}).items():
        lines.append(f'wrk.headers["{key}"] = "{value}"')
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(body)}")
    if paths:
        lines.append("paths = {" + ",".join(json.dumps(p) for p in paths) + "}")
        lines.append("i = 0")
        lines.append(
            "request = function() i = i % #paths + 1; return wrk.format(nil, paths[i]) end"
        )
    if delay_ms is not None:
        lines.append(f"delay = function() return {delay_ms:.3f} end")
    path = directory / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def wrk(
    url: str, script: Path, connections: int, seconds: int, nice: int = 0
) -> dict[str, float]:
    """Run wrk (at ``nice``); returns requests/s, latency percentiles (ms) and error counts."""
    done = subprocess.run(
        [*(["nice", "-n", str(nice)] if nice else []), "wrk", "-t1", f"-c{connections}",
         f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    out = done.stdout
    result: dict[str, float] = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": float(re.search(r"(\d+) requests in", out).group(1)),
        "non_2xx": float(m.group(1))
        if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out))
        else 0.0,
        "socket_errors": float(
            sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
        ),
        "connections": connections,
    }
    for percentile in ("50", "90", "99"):
        match = re.search(rf"\s{percentile}%\s+([\d.]+)(us|ms|s)\b", out)
        if match:
            value, unit = float(match.group(1)), match.group(2)
            result[f"p{percentile}_ms"] = (
                value / 1000 if unit == "us" else (value * 1000 if unit == "s" else value)
            )
    mean = re.search(r"Latency\s+([\d.]+)(us|ms|s)", out)
    if mean:
        value, unit = float(mean.group(1)), mean.group(2)
        result["mean_ms"] = (
            value / 1000 if unit == "us" else (value * 1000 if unit == "s" else value)
        )
    return result


def peak(
    url: str, script: Path, seconds: int, connections: tuple[int, ...] = (16, 64), nice: int = 0
) -> dict:
    """The best throughput over a few connection counts."""
    runs = [wrk(url, script, c, seconds, nice) for c in connections]
    return max(runs, key=lambda r: r["rps"])


def at_rate(url: str, directory: Path, name: str, rate: float, seconds: int, **script) -> dict:
    """Open-ish loop: 8 connections, each waiting so that together they send ``rate``/s."""
    connections = 8
    delay = max(0.0, 1000.0 * connections / rate)
    result = wrk(url, lua_script(directory, name, delay_ms=delay, **script), connections, seconds)
    result["target_rps"] = rate
    return result


# -- in-process measurements -----------------------------------------------------------------


def raw_contrib_seconds(
    scorer: Any, X: Any, repeat: int, num_threads: int | None = None
) -> float:
    """Best of ``repeat`` raw ``pred_contrib`` calls (LightGBM's default threads: all cores,
    unless ``num_threads``)."""
    extra = {} if num_threads is None else {"num_threads": num_threads}
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        scorer.booster.predict(X, pred_contrib=True, **extra)
        best = min(best, time.perf_counter() - start)
    return best


def batch_measurement(settings: Any, data_dir: Path, rows: int) -> dict[str, float]:
    """``renewal score``'s scoring step on ``rows`` accounts vs raw pred_contrib, and storage."""
    import pandas as pd

    from service.config import ServiceSettings
    from service.db.engine import make_engine, make_session_factory
    from service.db.migrate import upgrade
    from service.model_store import ModelStore
    from service.scoring import compute_features, score_in_parallel, store_scores

    model = ModelStore(settings).start()
    frame = compute_features(
        data_dir,
        AS_OF,
        settings,
        pd.DataFrame(
            columns=[
                "account_id",
                "date",
                "exec_sponsor_active",
                "core_process_live",
                "csm_score",
                "note",
            ]
        ),
    )
    big = pd.concat([frame] * (rows // len(frame) + 1), ignore_index=True).iloc[:rows].copy()
    big["account_id"] = pd.array([f"B{i:07d}" for i in range(rows)], dtype="string")
    X = model.scorer.prepare(big)
    raw = raw_contrib_seconds(model.scorer, X, repeat=1)
    start = time.perf_counter()
    scored = score_in_parallel(model, big, ServiceSettings(), top_k=3)
    ours = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        start = time.perf_counter()
        store_scores(make_session_factory(engine), big, scored, model, AS_OF, str(data_dir))
        stored = time.perf_counter() - start
        engine.dispose()
    return {
        "rows": rows,
        "trees": model.scorer.booster.num_trees(),
        "raw_contrib_s": raw,
        "score_s": ours,
        "ratio": ours / raw,
        "store_sqlite_s": stored,
    }


# -- the run ---------------------------------------------------------------------------------


def _import_the_real_service_package() -> None:
    """Run as a script, this file's directory comes first on sys.path and its name would
    shadow the ``service`` package: put the project root there instead."""
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    sys.path.insert(0, str(ROOT))


def main() -> None:
    _import_the_real_service_package()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--duration", type=int, default=10, help="Seconds per wrk run.")
    parser.add_argument("--batch-rows", type=int, default=200_000)
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--skip-batch", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")

    prepared = prepare(args.accounts)
    settings, work = prepared["settings"], prepared["work"]
    env = server_env(settings)
    key = new_key(settings, "crm")
    ids = account_ids(settings)
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_generator": "wrk 4.1 (-t1), same host",
        },
        "accounts_served": len(ids),
    }
    scratch = Path(tempfile.mkdtemp(prefix="bench-service-"))
    auth = {"Authorization": f"Bearer {key}"}
    try:
        # (b) and (c): our service.
        ours, base = start_renewal_server(env, work)
        try:
            import httpx

            sample = httpx.get(f"{base}/v1/accounts/{ids[0]}/renewal", headers=auth).json()
            paths = [f"/v1/accounts/{i}/renewal" for i in ids[:500]]
            get_script = lua_script(scratch, "get", paths=paths, headers=auth)
            results["renewal"] = peak(base, get_script, args.duration)
            results["renewal_half_load"] = at_rate(
                base,
                scratch,
                "get_half",
                results["renewal"]["rps"] / 2,
                args.duration,
                paths=paths,
                headers=auth,
            )
            body = json.dumps({"account_ids": ids[:100]})
            score_script = lua_script(
                scratch,
                "score",
                method="POST",
                body=body,
                headers={**auth, "Content-Type": "application/json"},
            )
            score_url = f"{base}/v1/score"
            results["score100"] = peak(score_url, score_script, args.duration, connections=(2, 4))
            results["score100_single"] = wrk(score_url, score_script, 1, args.duration)
        finally:
            stop_server(ours)

        # (a) the bare ceiling, returning a body of the same size as ours.
        bare, base = start_bare_server(scratch, sample, env)
        try:
            bare_script = lua_script(scratch, "bare", paths=paths)
            results["bare"] = peak(base, bare_script, args.duration)
            results["bare_single"] = wrk(base, bare_script, 1, args.duration)
        finally:
            stop_server(bare)

        # (d) mlflow models serve, one row per request.
        if not args.skip_mlflow:
            results["mlflow"] = mlflow_measurement(settings, env, work, scratch, args.duration)

        # (c) raw pred_contrib on the same 100 rows, in-process.
        results["score100_raw"] = raw_score100(settings, ids[:100])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not args.skip_batch:
        print(f"batch: {args.batch_rows:,} rows ...", flush=True)
        results["batch"] = batch_measurement(settings, work / "data", args.batch_rows)
    summarise(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {RESULTS.relative_to(ROOT)}")


def raw_score100(settings: Any, ids: list[str]) -> dict[str, float]:
    from service.db import scores as scores_db
    from service.db.engine import make_engine, make_session_factory
    from service.model_store import ModelStore
    from service.predict import matrix_from_vectors

    model = ModelStore(settings).start()
    engine = make_engine(settings.resolved_database_url)
    with make_session_factory(engine)() as session:
        latest = scores_db.latest_scores(session, ids)
    engine.dispose()
    X = matrix_from_vectors(model, [dict(s.score.features) for s in latest])
    # The service scores small batches on one thread (training.scorer.PARALLEL_MIN_ROWS: a
    # worker serves concurrent requests); the same call on as many threads is the fair floor.
    threads = model.scorer._threads(X)
    return {
        "rows": len(ids),
        "raw_contrib_ms": 1000 * raw_contrib_seconds(model.scorer, X, 50),
        "service_threads": threads,
        "raw_contrib_ms_service_threads": 1000 * raw_contrib_seconds(model.scorer, X, 50, threads),
    }


def mlflow_measurement(
    settings: Any, env: dict[str, str], work: Path, scratch: Path, seconds: int
) -> dict[str, float]:
    import pandas as pd

    from service.model_store import ModelStore
    from service.scoring import compute_features
    from training.pyfunc import model_input

    model = ModelStore(settings).start()
    frame = compute_features(
        work / "data",
        AS_OF,
        settings,
        pd.DataFrame(
            columns=[
                "account_id",
                "date",
                "exec_sponsor_active",
                "core_process_live",
                "csm_score",
                "note",
            ]
        ),
    )
    row = model_input(model.scorer, frame.head(1))
    payload = json.dumps({"dataframe_split": json.loads(row.to_json(orient="split", index=False))})
    port = free_port()
    serve_env = {**env, "MLFLOW_TRACKING_URI": settings.resolved_tracking_uri,
                 "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"}  # it runs `uvicorn`
    process = start_server(
        [
            str(VENV_BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            f"models:/{settings.model_name}@{settings.model_alias}",
            "--env-manager",
            "local",
            "-p",
            str(port),
            "-w",
            "1",
            "-h",
            "127.0.0.1",
        ],
        serve_env,
        f"http://127.0.0.1:{port}/ping",
        work,
    )
    try:
        script = lua_script(
            scratch,
            "mlflow",
            method="POST",
            body=payload,
            headers={"Content-Type": "application/json"},
        )
        return peak(f"http://127.0.0.1:{port}/invocations", script, seconds, connections=(4, 16))
    finally:
        stop_server(process)


def summarise(results: dict[str, Any]) -> None:
    bare, ours = results["bare"], results["renewal"]
    half = results["renewal_half_load"]
    score, single = results["score100"], results["score100_single"]
    raw_all = results["score100_raw"]["raw_contrib_ms"]
    raw = results["score100_raw"].get("raw_contrib_ms_service_threads", raw_all)
    overhead = results["bare_single"].get("mean_ms", 0.0)
    score_ratio = (single["mean_ms"] - overhead) / raw if raw else float("nan")
    ratios = {
        "renewal_vs_bare": ours["rps"] / bare["rps"],
        "renewal_p99_ms_at_half_load": half.get("p99_ms"),
        "score100_vs_raw_plus_http": score_ratio,
        # informational: against pred_contrib on all cores (the service uses one thread here)
        "score100_vs_raw_all_cores": (single["mean_ms"] - overhead) / raw_all,
    }
    if "mlflow" in results:
        ratios["renewal_vs_mlflow"] = ours["rps"] / results["mlflow"]["rps"]
    if "batch" in results:
        ratios["batch_vs_raw"] = results["batch"]["ratio"]
    results["ratios"] = ratios
    goals = {
        "renewal_vs_bare": (">=", 0.5),
        "renewal_p99_ms_at_half_load": ("<=", 20.0),
        "score100_vs_raw_plus_http": ("<=", 1.5),
        "score100_vs_raw_all_cores": ("<=", 1.5),
        "renewal_vs_mlflow": (">=", 5.0),
        "batch_vs_raw": ("<=", 1.5),
    }
    results["goals_met"] = {
        k: (v >= goals[k][1] if goals[k][0] == ">=" else v <= goals[k][1])
        for k, v in ratios.items()
        if v is not None
    }
    rows = [
        ("(a) bare FastAPI GET", bare),
        ("(b) GET /v1/accounts/{id}/renewal", ours),
        ("(b) same, at half its peak rate", half),
        ("(c) POST /v1/score, 100 ids", score),
        ("(c) same, 1 connection", single),
    ]
    if "mlflow" in results:
        rows.append(("(d) mlflow models serve /invocations", results["mlflow"]))
    print(f"\n{'measurement':44} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, r in rows:
        errors = int(r.get("non_2xx", 0) + r.get("socket_errors", 0))
        print(
            f"{name:44} {r['rps']:9.1f} {r.get('p50_ms', float('nan')):8.2f} "
            f"{r.get('p99_ms', float('nan')):8.2f} {errors:7d}"
        )
    print(
        f"\nraw pred_contrib on the same 100 rows: {raw:.2f} ms on the service's "
        f"{results['score100_raw'].get('service_threads', '?')} thread(s), "
        f"{raw_all:.2f} ms on all cores; "
        f"HTTP overhead (bare, 1 connection): {overhead:.2f} ms"
    )
    if "batch" in results:
        b = results["batch"]
        print(
            f"batch {b['rows']:,} rows ({b['trees']} trees): raw pred_contrib "
            f"{b['raw_contrib_s']:.1f} s, ours {b['score_s']:.1f} s, "
            f"storing in SQLite {b['store_sqlite_s']:.1f} s"
        )
    print("\nratio                               value    goal     met")
    for name, value in ratios.items():
        op, goal = goals[name]
        print(f"{name:34} {value:8.2f}   {op}{goal:<6} {results['goals_met'].get(name)}")


if __name__ == "__main__":
    main()
