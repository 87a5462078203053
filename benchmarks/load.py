"""Soak of the scoring service: 2 workers, a mixed load at 70 % of peak, 60 s, memory watched.

Not a test: run it by hand (see ``benchmarks/README.md``)::

    .venv/bin/python benchmarks/load.py                       # ~4 min (+ data, once)
    .venv/bin/python benchmarks/load.py --soak 20 --accounts 2000   # quick check

One run, on loopback, driven by ``wrk`` (Debian package ``wrk``) from other processes:

1. ``renewal serve --workers 2`` on a store of ``--accounts`` scored accounts (simulated data,
   a trained and registered champion, one ``renewal score`` run; cached under
   ``benchmarks/.data/service/`` by ``benchmarks/service.py``'s preparation).
2. **Peaks**: each route alone (``--peak`` s; ``GET renewal`` best of 16/64 connections).
   The mix's peak follows from them: a request of route r takes 1/peak_r of the server, so
   at shares s_r the server saturates at ``1 / Σ s_r / peak_r`` requests per second. (70 % of
   ``GET renewal``'s own peak would overload the server as soon as batches and list pages are
   mixed in: a 10-id score costs several GETs.)
3. **Soak**: ``--soak`` s of the mix at ``--load`` (70 %) of the mix's peak, one wrk process
   per route (so each route has its own latency percentiles): ``GET renewal`` (80 % of
   requests, over 2,000 accounts), ``POST /v1/score`` with 10 ids (10 %), ``GET /v1/risk-list``
   (10 %, four filter variants). Plain wrk cannot fix a rate: each script sends on a fixed
   schedule (:func:`lua`: wrk's ``delay()`` waits for the next slot, read off the monotonic
   clock through LuaJIT's FFI), so the achieved rate is the target whatever the latency.
   The server's RSS (sum of the two workers, from ``/proc``) is sampled every second.
4. **Baseline**, same run, same way: a bare FastAPI endpoint returning a renewal body on two
   uvicorn workers: its peak, and its latency at the soak's ``GET renewal`` rate.
5. **Model baseline** (``benchmarks/queue_model.py``): an ideal time-sliced machine on the
   same cores, fed the soak's schedule with each route's cost from its measured peak: what
   p99 / p50 the cores alone allow.

wrk runs at nice 19 throughout (:data:`GENERATOR_NICE`): it shares the server's cores here.

Goals (issue 6): zero errors; p99 ≤ 3 × p50 on every route during the soak; worker RSS growth
< 5 % over the soak. Results go to ``benchmarks/results/load.json`` with the machine's load
average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "load.json"
#: Request shares of the mix (CRM reads dominate; a list page and a small batch now and then).
MIX = {"renewal": 0.8, "score": 0.1, "risk_list": 0.1}
SCORE_BATCH = 10
RISK_LIST_QUERIES = (
    "/v1/risk-list?limit=50",
    "/v1/risk-list?limit=50&segment=smb",
    "/v1/risk-list?limit=50&max_probability=0.5",
    "/v1/risk-list?limit=50&min_drop=5",
)
GOALS = {"errors": 0, "p99_over_p50": 3.0, "rss_growth": 0.05}
#: wrk shares the server's cores here: at the lowest priority it takes only what the server
#: leaves idle, the nearest a single host comes to a load generator on another machine.
GENERATOR_NICE = 19


def _sibling(name: str, as_name: str):
    """A module of ``benchmarks/`` by path (``service.py``'s name would shadow the ``service``
    package): its data preparation, wrk parsing and server helpers; the queue model."""
    spec = importlib.util.spec_from_file_location(as_name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _import_the_real_service_package() -> None:
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    sys.path.insert(0, str(ROOT))


# -- wrk scripts -------------------------------------------------------------------------------


#: wrk's Lua is LuaJIT: its FFI reads the monotonic clock, which plain wrk scripts cannot.
_CLOCK = """local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } renewal_timespec;
int clock_gettime(int clk_id, renewal_timespec *tp);
]]
local ts = ffi.new("renewal_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end"""


def lua(
    directory: Path,
    name: str,
    requests: list[tuple[str, str, str | None]],
    headers: dict[str, str],
    rate: float | None = None,
) -> Path:
    """A wrk script cycling through ``(method, path, body)`` requests; with ``rate``, sent on
    a fixed schedule of ``rate`` requests per second (over all its connections).

    Plain wrk keeps every connection busy; a per-connection pause calibrated against measured
    latency drifts as soon as latency changes (a slower server is then sent less, a faster
    one more). Here each request takes the next slot of one schedule (``1000 / rate`` ms
    apart) and ``delay()`` waits until that slot, so the rate does not depend on latency as
    long as the connections suffice (as wrk2 does; a late slot is sent at once). wrk rounds a
    delay down to whole milliseconds; the absolute schedule makes up for it on the next
    request. Latency is timed from the actual send, as wrk does.
    """
    lines = [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    lines.append(
        "reqs = {"
        + ",".join(
            "{"
            + f"{json.dumps(m)},{json.dumps(p)},"
            + (json.dumps(b) if b is not None else "nil")
            + "}"
            for m, p, b in requests
        )
        + "}"
    )
    lines += [
        "i = 0",
        "request = function()",
        "  i = i % #reqs + 1",
        "  local r = reqs[i]",
        "  return wrk.format(r[1], r[2], nil, r[3])",
        "end",
    ]
    if rate is not None:
        lines += [
            _CLOCK,
            f"local interval = {1000.0 / rate:.6f}",
            "local due = nil",
            "delay = function()",
            "  local now = now_ms()",
            "  if due == nil then due = now end",
            "  local wait = due - now",
            "  due = due + interval",
            "  if wait < 0 then return 0 end",
            "  return wait",
            "end",
        ]
    path = directory / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def route_requests(ids: list[str]) -> dict[str, list[tuple[str, str, str | None]]]:
    reads = ids[:2000]
    batches = [ids[i : i + SCORE_BATCH] for i in range(0, 2000, SCORE_BATCH)]
    return {
        "renewal": [("GET", f"/v1/accounts/{a}/renewal", None) for a in reads],
        "score": [("POST", "/v1/score", json.dumps({"account_ids": b})) for b in batches],
        "risk_list": [("GET", q, None) for q in RISK_LIST_QUERIES],
    }


def run_wrk_together(
    bench: Any, base: str, scripts: dict[str, tuple[Path, int]], seconds: int
) -> dict[str, dict[str, float]]:
    """One wrk process per route, all at once; each route's own figures."""
    results: dict[str, dict[str, float]] = {}

    def one(route: str, script: Path, connections: int) -> None:
        results[route] = bench.wrk(base, script, connections, seconds, GENERATOR_NICE)

    threads = [
        threading.Thread(target=one, args=(route, script, connections))
        for route, (script, connections) in scripts.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# -- memory ------------------------------------------------------------------------------------


def workers_of(pid: int) -> list[int]:
    """The uvicorn worker processes of ``pid`` (multiprocessing spawn children; not its
    resource tracker)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    workers = []
    for child in found:
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            workers.append(child)
    return workers


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler:
    """Every second: RSS of the server's worker processes (its children), summed."""

    def __init__(self, parent: int) -> None:
        self.parent = parent
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            workers = workers_of(self.parent)
            self.samples.append((time.monotonic() - start, sum(rss_kib(p) for p in workers)))
            self._stop.wait(1.0)

    def summary(self) -> dict[str, Any]:
        values = [kib for _, kib in self.samples]
        head, tail = sorted(values[:5]), sorted(values[-5:])
        start, end = head[len(head) // 2], tail[len(tail) // 2]
        return {
            "workers": len(workers_of(self.parent)),
            "samples": len(values),
            "start_mib": start / 1024,
            "end_mib": end / 1024,
            "max_mib": max(values) / 1024,
            "growth": (end - start) / start if start else math.nan,
        }


# -- the run -----------------------------------------------------------------------------------


def main() -> None:
    _import_the_real_service_package()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--peak", type=int, default=10, help="Seconds per peak run.")
    parser.add_argument("--soak", type=int, default=60, help="Seconds of the soak.")
    parser.add_argument("--load", type=float, default=0.7, help="Share of the mix's peak.")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    bench = _sibling("service", "benchmark_service")
    prepared = bench.prepare(args.accounts)
    settings, work = prepared["settings"], prepared["work"]
    env = bench.server_env(settings)
    key = bench.new_key(settings, "crm")
    ids = bench.account_ids(settings)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    requests = route_requests(ids)
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_generator": f"wrk 4.1 (-t1 per process) at nice {GENERATOR_NICE}, same host",
            "loadavg_before": os.getloadavg(),
        },
        "accounts_served": len(ids),
        "workers": 2,
        "mix": MIX,
        "score_batch": SCORE_BATCH,
        "soak_seconds": args.soak,
    }
    scratch = Path(tempfile.mkdtemp(prefix="bench-load-"))
    try:
        server, base = bench.start_renewal_server(env, work, workers=2)
        try:
            import httpx

            sample = httpx.get(f"{base}{requests['renewal'][0][1]}", headers=headers).json()
            print("peaks: each route alone ...", flush=True)
            peak_connections = {"renewal": (16, 64), "score": (16,), "risk_list": (16,)}
            results["peaks_alone"] = {
                r: bench.peak(
                    base,
                    lua(scratch, f"peak_{r}", requests[r], headers),
                    args.peak,
                    connections=peak_connections[r],
                    nice=GENERATOR_NICE,
                )
                for r in MIX
            }
            results["peak_renewal"] = results["peaks_alone"]["renewal"]
            # The mix's capacity at its shares: each request takes 1/peak_r of the server.
            mix_peak = 1.0 / sum(
                share / results["peaks_alone"][r]["rps"] for r, share in MIX.items()
            )
            total = args.load * mix_peak
            targets = {r: total * share for r, share in MIX.items()}
            results["targets_rps"] = {
                "total": total,
                **targets,
                "mix_peak_total": mix_peak,
                "renewal_alone_70pct": args.load * results["peak_renewal"]["rps"],
            }
            # Enough connections that each route keeps its schedule when responses slow down.
            connections = {"renewal": 16, "score": 8, "risk_list": 8}
            scripts = {
                r: (lua(scratch, f"soak_{r}", requests[r], headers, targets[r]), connections[r])
                for r in MIX
            }
            print(f"soak: {args.soak} s ...", flush=True)
            with RssSampler(server.pid) as sampler:
                soak = run_wrk_together(bench, base, scripts, args.soak)
            results["soak"] = soak
            results["rss"] = sampler.summary()
            results["rss"]["series_mib"] = [
                [round(t, 1), round(k / 1024, 1)] for t, k in sampler.samples
            ]
            status = httpx.get(f"{base}/readyz").json()
            results["after_soak_ready"] = status["status"]
        finally:
            bench.stop_server(server)

        print("baseline: bare FastAPI on 2 workers ...", flush=True)
        bare, base = bench.start_bare_server(scratch, sample, env, workers=2)
        try:
            bare_script = lua(scratch, "bare", requests["renewal"], {})
            results["bare_peak"] = bench.peak(base, bare_script, args.peak, nice=GENERATOR_NICE)
            bare_paced = lua(scratch, "bare_paced", requests["renewal"], {}, targets["renewal"])
            results["bare_at_soak_rate"] = bench.wrk(
                base, bare_paced, connections["renewal"], args.peak, GENERATOR_NICE
            )
        finally:
            bench.stop_server(bare)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results["machine"]["loadavg_after"] = os.getloadavg()
    # The model baseline: an ideal time-sliced machine given the same schedule and costs.
    results["ideal_processor_sharing"] = _sibling("queue_model", "queue_model").soak_model(
        results
    )
    summarise(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {RESULTS.relative_to(ROOT)}")


def errors(run: dict[str, float]) -> int:
    return int(run.get("non_2xx", 0) + run.get("socket_errors", 0))


def summarise(results: dict[str, Any]) -> None:
    soak, rss = results["soak"], results["rss"]
    ratios: dict[str, float] = {
        "renewal_peak_vs_bare_peak": results["peak_renewal"]["rps"] / results["bare_peak"]["rps"],
        "renewal_p50_vs_bare_p50_at_soak_rate": soak["renewal"]["p50_ms"]
        / results["bare_at_soak_rate"]["p50_ms"],
        "renewal_p99_vs_bare_p99_at_soak_rate": soak["renewal"]["p99_ms"]
        / results["bare_at_soak_rate"]["p99_ms"],
    }
    for route, run in soak.items():
        ratios[f"{route}_p99_over_p50"] = run["p99_ms"] / run["p50_ms"]
    results["ratios"] = ratios
    total_errors = sum(errors(r) for r in soak.values())
    results["goals_met"] = {
        "zero_errors": total_errors == GOALS["errors"],
        **{
            f"{route}_p99_within_3x_p50": ratios[f"{route}_p99_over_p50"] <= GOALS["p99_over_p50"]
            for route in soak
        },
        "rss_growth_below_5pct": rss["growth"] < GOALS["rss_growth"],
    }
    targets = results["targets_rps"]
    peaks = ", ".join(f"{r} {v['rps']:.0f}" for r, v in results["peaks_alone"].items())
    print(
        f"\npeaks alone (req/s): {peaks}; bare {results['bare_peak']['rps']:.0f}; "
        f"mix peak {targets['mix_peak_total']:.0f}; soak target {targets['total']:.0f}"
    )
    print(
        f"\n{'soak route':12} {'target':>8} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} "
        f"{'p99 ms':>8} {'p99/p50':>8} {'errors':>7}"
    )
    for route, run in soak.items():
        print(
            f"{route:12} {targets[route]:8.1f} {run['rps']:8.1f} {run['p50_ms']:8.2f} "
            f"{run.get('p90_ms', math.nan):8.2f} {run['p99_ms']:8.2f} "
            f"{run['p99_ms'] / run['p50_ms']:8.2f} {errors(run):7d}"
        )
    bare = results["bare_at_soak_rate"]
    print(
        f"{'bare GET':12} {targets['renewal']:8.1f} {bare['rps']:8.1f} {bare['p50_ms']:8.2f} "
        f"{bare.get('p90_ms', math.nan):8.2f} {bare['p99_ms']:8.2f} "
        f"{bare['p99_ms'] / bare['p50_ms']:8.2f} {errors(bare):7d}"
    )
    print(
        f"\nworker RSS ({rss['workers']} workers): {rss['start_mib']:.1f} MiB at the start, "
        f"{rss['end_mib']:.1f} MiB at the end ({100 * rss['growth']:+.2f} %), "
        f"max {rss['max_mib']:.1f} MiB"
    )
    print(
        f"load average before/after: {results['machine']['loadavg_before']} / "
        f"{results['machine']['loadavg_after']}"
    )
    model = results["ideal_processor_sharing"]
    print("\nideal processor sharing on the same cores, same schedule and costs (p99/p50 by "
          "route; cv: variation of each route's cost):")
    for name, routes in model.items():
        ratios = "  ".join(f"{r} {v['p99_over_p50']:.1f}x" for r, v in routes.items())
        print(f"  {name:8} {ratios}")
    print("\ngoal                               met")
    for goal, met in results["goals_met"].items():
        print(f"{goal:34} {met}")


if __name__ == "__main__":
    main()
