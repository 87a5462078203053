"""What an ideal server would show under the load soak's schedule: a queueing model, not a test.

``benchmarks/load.py`` asks for p99 ≤ 3 × p50 per route at 70 % of the mix's peak on the
benchmark host's cores. This module answers "is that reachable at all on this many cores?"
with the soak's own inputs: each route's fixed-rate schedule (as the wrk scripts send it) and
its cost per request (``cores / peak_r``, from the peaks measured in the same run), served by
an ideal time-sliced machine, egalitarian processor sharing on ``cores`` cores: no
interpreter, no network, no load generator, no scheduling delay. Service times are drawn from
a gamma distribution of the given coefficient of variation (0: every request of a route costs
the same). Whatever the real server adds comes on top.

    .venv/bin/python benchmarks/queue_model.py     # reads benchmarks/results/load.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "load.json"
VARIATIONS = (0.0, 0.5, 1.0)


def processor_sharing(
    rates: dict[str, float],
    service_s: dict[str, float],
    cores: int,
    seconds: float,
    variation: float = 0.0,
    seed: int = 1,
) -> dict[str, dict[str, float]]:
    """p50 / p99 response time (ms) per route, and their ratio, on an ideal PS machine.

    Every route sends at its fixed rate from a random phase (the wrk schedule). With n
    requests in the machine each runs at min(1, cores / n) of a core.
    """
    rng = np.random.default_rng(seed)
    arrivals: list[tuple[float, str]] = []
    for route, rate in rates.items():
        count = int(rate * seconds)
        times = rng.uniform(0, 1 / rate) + np.arange(count) / rate
        arrivals += [(float(t), route) for t in times]
    arrivals.sort()
    # Each request's work: fixed mean per route, gamma-distributed around it.
    if variation:
        shape = 1 / variation**2
        work = rng.gamma(shape, 1 / shape, len(arrivals))
    else:
        work = np.ones(len(arrivals))
    in_service: list[list] = []  # [remaining work, arrival time, route]
    done: dict[str, list[float]] = {route: [] for route in rates}
    now, nxt = 0.0, 0
    while nxt < len(arrivals) or in_service:
        speed = min(1.0, cores / len(in_service)) if in_service else 0.0
        arrival = arrivals[nxt][0] if nxt < len(arrivals) else float("inf")
        first = min(range(len(in_service)), key=lambda i: in_service[i][0], default=None)
        finish = now + in_service[first][0] / speed if first is not None else float("inf")
        step = min(arrival, finish) - now
        for request in in_service:
            request[0] -= step * speed
        now += step
        if arrival <= finish:
            route = arrivals[nxt][1]
            in_service.append([service_s[route] * float(work[nxt]), now, route])
            nxt += 1
        else:
            request = in_service.pop(first)
            done[request[2]].append(now - request[1])
    out = {}
    for route, times in done.items():
        ms = np.array(times) * 1000
        p50, p99 = float(np.percentile(ms, 50)), float(np.percentile(ms, 99))
        out[route] = {"p50_ms": round(p50, 3), "p99_ms": round(p99, 3),
                      "p99_over_p50": round(p99 / p50, 2)}
    return out


def soak_model(results: dict, seconds: float | None = None) -> dict[str, dict]:
    """:func:`processor_sharing` of a ``load.json`` run's schedule and measured peaks, for
    each coefficient of variation in :data:`VARIATIONS`."""
    cores = results["machine"]["cpus"]
    rates = {route: results["targets_rps"][route] for route in results["mix"]}
    # A peak of P req/s on all the cores: one request costs cores / P core-seconds.
    service_s = {route: cores / results["peaks_alone"][route]["rps"] for route in rates}
    seconds = seconds or results.get("soak_seconds", 20)
    return {f"cv_{variation}": processor_sharing(rates, service_s, cores, seconds, variation)
            for variation in VARIATIONS}


def main() -> None:
    results = json.loads((Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS).read_text())
    for name, routes in soak_model(results).items():
        print(name, "  ".join(f"{r} {v['p50_ms']:.2f}/{v['p99_ms']:.2f} ms "
                              f"({v['p99_over_p50']:.1f}x)" for r, v in routes.items()))


if __name__ == "__main__":
    main()
