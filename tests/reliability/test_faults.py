"""Faults against a real server process: `renewal serve` in a subprocess on loopback, a real
MLflow registry (SQLite backend, file artifacts), real SQLite and PostgreSQL score stores.

- registry unreachable at start: the last-known-good copy serves, /readyz says degraded; with
  no copy either: /readyz and the scoring routes answer 503 problems, the process stays up;
- a corrupt (truncated artifact) or incompatible (needs a feature the pipeline does not
  produce) version promoted: the reload refuses it, the old version keeps serving, the refusal
  is logged and shown by /v1/model;
- the database cut mid-run (a loopback TCP proxy in front of PostgreSQL, closed and reopened):
  503 with Retry-After, and the same process answers again once it is back;
- hot reload under load: no failed request, each response names one model version, the
  versions switch once;
- 50 concurrent health-input writes (one account and many; SQLite and PostgreSQL): each stored
  exactly once;
- SIGTERM under load: requests in flight finish with 200, new connections are refused, the
  process exits.

One simulated world (registry, seeded store, keys) is shared by the whole module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import joblib
import pytest
import service_factories as factories  # tests/service (put on sys.path by conftest.py)
from live_server import free_port
from service_harness import Keys, make_keys

pytestmark = pytest.mark.slow

RENEWAL = str(Path(sys.executable).parent / "renewal")  # the installed console script
DEAD_REGISTRY = "http://127.0.0.1:9"  # nothing listens on the discard port
PG_HOST = "host=127.0.0.1 port=5432 user=postgres dbname=test"
ACCOUNTS = 400
PROBLEM = "application/problem+json"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- the server process ----------------------------------------------------------------------


class Server:
    """`renewal serve` in a subprocess; its output (stdout and stderr) kept line by line."""

    def __init__(self, env: dict[str, str], cwd: Path, *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [RENEWAL, "serve", "--port", str(self.port), *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_up(self, timeout: float = 120) -> Server:
        """Until /healthz answers (readiness is what the tests look at)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._reader.join(5)
                pytest.fail(f"renewal serve exited {self.process.returncode}:\n{self.log}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"renewal serve did not answer:\n{self.log}")

    def client(self, key: str | None = None, timeout: float = 60) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers=auth(key) if key else {}, timeout=timeout)

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)
        return self.process.returncode


# -- a TCP proxy that can be cut ---------------------------------------------------------------


class CuttableProxy:
    """A loopback TCP proxy to ``upstream``. ``cut()`` closes the listener and every open
    connection (as a stopped database would: new connections refused, old ones reset);
    ``restore()`` listens again on the same port. ``freeze()`` keeps every connection open
    but forwards nothing (a hung database: connections accepted, nothing answered) until
    ``thaw()``."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._flowing = threading.Event()
        self._flowing.set()
        self.restore()

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._stop = threading.Event()
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener, self._stop), daemon=True).start()

    def cut(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                ready, _, _ = select.select([listener], [], [], 0.1)
                if not ready:
                    continue
                client, _ = listener.accept()
            except (OSError, ValueError):
                return
            self._flowing.wait()
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if stop.is_set():
                    client.close()
                    server.close()
                    return
                self._sockets.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                for sock in (source, sink):
                    if sock in self._sockets:
                        self._sockets.discard(sock)
                        sock.close()

    def close(self) -> None:
        self.cut()


# -- the registry ------------------------------------------------------------------------------


def register(registry: Path, uri: str, scorer_or_bytes: Any, alias: str | None = None) -> str:
    """Log a pyfunc around ``scorer_or_bytes`` as training does (a joblib artifact, or raw
    bytes for a corrupt one), register it as ``renewal``; move ``alias`` to it if given."""
    import mlflow
    from mlflow import MlflowClient

    from training.pyfunc import SCORER_ARTIFACT, RenewalPyfunc

    previous = os.getcwd()
    os.chdir(registry)  # MLflow puts run artifacts under ./mlruns
    try:
        from training.tracking import configure

        configure(uri, "reliability")
        path = registry / f"scorer-{uuid.uuid4().hex[:8]}.joblib"
        if isinstance(scorer_or_bytes, bytes):
            path.write_bytes(scorer_or_bytes)
        else:
            joblib.dump(scorer_or_bytes, path)
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=RenewalPyfunc(),
                artifacts={SCORER_ARTIFACT: str(path)},
                pip_requirements=["lightgbm"],
            )
        version = str(mlflow.register_model(info.model_uri, "renewal").version)
    finally:
        os.chdir(previous)
    if alias:
        MlflowClient(uri, uri).set_registered_model_alias("renewal", alias, version)
    return version


def promote(uri: str, version: str) -> None:
    from mlflow import MlflowClient

    MlflowClient(uri, uri).set_registered_model_alias("renewal", "champion", version)


def incompatible_scorer() -> Any:
    """A real model that needs a feature the scoring pipeline does not produce."""
    import lightgbm as lgb

    from training.scorer import Calibrator, RenewalScorer

    specs = list(factories.SPECS)
    specs[0] = dataclasses.replace(specs[0], name="active_days_7d_renamed")
    names = [s.name for s in specs]
    X, y = factories.training_matrix(2000, 4)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 7, "verbose": -1, "num_threads": 1},
        lgb.Dataset(X, y, feature_name=names, categorical_feature=[5]),
        num_boost_round=10,
    )
    return RenewalScorer(booster, specs, Calibrator("sigmoid"), heuristic_factor=0.9)


# -- the world ---------------------------------------------------------------------------------


@dataclasses.dataclass
class World:
    root: Path
    registry: Path
    tracking_uri: str
    first_version: str
    sqlite_url: str
    keys: Keys
    account_ids: list[str]

    def env(self, database_url: str, tracking_uri: str, models_dir: Path, **extra: str) -> dict:
        env = {
            **os.environ,
            "RENEWAL_DATA_DIR": str(self.root / "data"),
            "RENEWAL_MODELS_DIR": str(models_dir),
            "RENEWAL_DATABASE_URL": database_url,
            "RENEWAL_TRACKING_URI": tracking_uri,
            "RENEWAL_CACHE_REFRESH_SECONDS": "1",
            "RENEWAL_KEY_CACHE_SECONDS": "60",
            "RENEWAL_DB_RETRY_AFTER_SECONDS": "7",
            **extra,
        }
        for name in ("PROMETHEUS_MULTIPROC_DIR", "RENEWAL_MODEL_POLL_SECONDS"):
            env.pop(name, None)
        return env


def seed(url: str, accounts: int) -> tuple[Keys, list[str]]:
    """Two scoring runs 30 days apart of the tiny model (as version 1), one key per role."""
    from service.db.engine import make_engine, make_session_factory
    from service.db.migrate import upgrade

    engine = make_engine(url)
    try:
        upgrade(engine)
        factory = make_session_factory(engine)
        model = factories.loaded(factories.tiny_scorer(), version="1")
        frame = factories.seed_history(factory, model, accounts, factories_latest())
        return make_keys(factory), frame["account_id"].astype(str).tolist()
    finally:
        engine.dispose()


def factories_latest():
    from service_harness import LATEST

    return LATEST


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("faults")
    registry = root / "registry"
    registry.mkdir()
    (root / "data").mkdir()
    uri = f"sqlite:///{registry / 'mlflow.db'}"
    first = register(registry, uri, factories.tiny_scorer(seed=0), alias="champion")
    sqlite_url = f"sqlite:///{root / 'store.db'}"
    keys, ids = seed(sqlite_url, ACCOUNTS)
    return World(root, registry, uri, first, sqlite_url, keys, ids)


@pytest.fixture(scope="module")
def live(world: World, pg_booting: Any) -> Iterator[Server]:
    """One worker on the SQLite store with the live registry (its champion at start); the
    PostgreSQL server boots at the same time."""
    env = world.env(world.sqlite_url, world.tracking_uri, world.root / "models-live")
    server = Server(env, world.root).wait_up()
    yield server
    server.stop()


def ready(server: Server) -> dict[str, Any]:
    response = httpx.get(f"{server.base}/readyz", timeout=30)
    return {"code": response.status_code, **response.json(), "headers": response.headers}


def served_version(server: Server, key: str) -> str:
    card = httpx.get(f"{server.base}/v1/model", headers=auth(key), timeout=30)
    assert card.status_code == 200, card.text
    return card.json()["version"]


def score_versions(response: httpx.Response) -> set[str]:
    return {r["model"]["version"] for r in response.json()["results"]}


def wait_for_log(server: Server, text: str, timeout: float = 15) -> str:
    """The server's output once it holds ``text`` (lines arrive through a reader thread)."""
    deadline = time.monotonic() + timeout
    while text not in server.log and time.monotonic() < deadline:
        time.sleep(0.1)
    return server.log


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == f"urn:renewal:problem:{slug}" and body["status"] == status
    assert body["detail"]
    return body


# -- registry unreachable at start ----------------------------------------------------------------


def test_registry_unreachable_at_start(world: World, live: Server):
    """With the last-known-good copy a previous start left: served, /readyz "degraded".
    Without any copy: /readyz and the scoring routes answer 503 problems, and the process
    keeps serving what needs no model (it does not exit, so no crash loop)."""
    lkg_root = world.root / "models-live"
    pointer = (lkg_root / "renewal" / "last-known-good.json").read_text()
    copy_version = json.loads(pointer)["version"]
    shutil.copytree(lkg_root, world.root / "models-offline")
    (world.root / "models-empty").mkdir()
    offline = Server(
        world.env(world.sqlite_url, DEAD_REGISTRY, world.root / "models-offline"), world.root
    )
    empty = Server(
        world.env(world.sqlite_url, DEAD_REGISTRY, world.root / "models-empty"), world.root
    )
    try:
        offline.wait_up()
        empty.wait_up()
        ids = world.account_ids[:20]

        state = ready(offline)
        assert state["code"] == 200 and state["status"] == "degraded", state
        assert state["model"]["source"] == "last-known-good"
        assert state["model"]["version"] == copy_version
        assert "last-known-good" in state["model"]["reason"]
        # /readyz answers anyone: the copy's path and the registry's URI stay out of it.
        assert str(world.root) not in str(state) and "127.0.0.1" not in str(state)
        with offline.client(world.keys.crm) as client:
            scored = client.post("/v1/score", json={"account_ids": ids})
            assert scored.status_code == 200, scored.text
            assert score_versions(scored) == {copy_version}
            card = client.get("/v1/model").json()
            assert (card["source"], card["status"]) == ("last-known-good", "degraded")
        assert "registry load failed" in offline.log

        state = ready(empty)
        assert state["code"] == 503 and state["status"] == "unavailable", state
        assert state["headers"]["retry-after"] == "7"
        assert state["model"]["version"] is None
        account = world.account_ids[30]
        with empty.client(world.keys.admin) as client:
            before = client.get(f"/v1/accounts/{account}/health-inputs").json()["count"]
            for response in (
                client.post("/v1/score", json={"account_ids": ids}),
                client.put(f"/v1/accounts/{account}/health-inputs", json={"csm_score": 2}),
                client.get("/v1/model"),
            ):
                body = assert_problem(response, 503, "model-unavailable")
                assert response.headers["retry-after"] == "7"
                assert "no model is loaded" in body["detail"]
            # The refused input was not stored; stored scores are still served from memory.
            assert client.get(f"/v1/accounts/{account}/health-inputs").json()["count"] == before
            assert client.get(f"/v1/accounts/{account}/renewal").status_code == 200
            assert httpx.get(f"{empty.base}/healthz").status_code == 200
        assert empty.process.poll() is None, "the server without a model exited"
        log = wait_for_log(empty, "no model available")
        assert "no model available" in log and "Traceback" not in log
    finally:
        offline.stop()
        empty.stop()


# -- a broken version promoted ------------------------------------------------------------------


def truncated_artifact() -> bytes:
    """The joblib file of a good model, cut in half (a corrupt upload)."""
    import io

    buffer = io.BytesIO()
    joblib.dump(factories.tiny_scorer(seed=5), buffer)
    data = buffer.getvalue()
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("truncated", "does not load"),
        ("incompatible", "the scoring pipeline does not produce"),
    ],
)
def test_a_broken_version_promoted_is_refused_and_the_old_one_keeps_serving(
    world: World, live: Server, kind: str, reason: str
):
    admin = world.keys.admin
    before = served_version(live, admin)
    payload = truncated_artifact() if kind == "truncated" else incompatible_scorer()
    broken = register(world.registry, world.tracking_uri, payload, alias="champion")
    try:
        with live.client(admin) as client:
            reload = client.post("/v1/admin/reload")
            assert reload.status_code == 200, reload.text
            body = reload.json()
            assert (body["outcome"], body["version"], body["previous_version"]) == (
                "refused",
                broken,
                before,
            )
            assert reason in body["detail"] and f"still serving v{before}" in body["detail"]

            scored = client.post("/v1/score", json={"account_ids": world.account_ids[:20]})
            assert scored.status_code == 200 and score_versions(scored) == {before}
            card = client.get("/v1/model").json()
            assert card["version"] == before and card["source"] == "registry"
            assert card["last_refusal"]["version"] == broken
            assert reason in card["last_refusal"]["reason"]
            assert card["last_reload"]["outcome"] == "refused"
            assert card["last_reload"]["version"] == broken
            assert ready(live)["status"] == "ready"
        line = f"model reload refused (version {broken})"
        assert line in wait_for_log(live, line)
    finally:
        promote(world.tracking_uri, before)


# -- hot reload under load ------------------------------------------------------------------------


@dataclasses.dataclass
class Call:
    kind: str
    worker: int
    started: float
    ended: float
    status: int | None  # None: a transport error
    versions: tuple[str, ...] = ()


def hammer(
    server: Server,
    key: str,
    ids: list[str],
    stop: threading.Event,
    calls: list[Call],
    threads_per_kind: int = 3,
) -> list[threading.Thread]:
    """Threads sending GET renewal and POST /v1/score (20 ids) until ``stop``."""

    def run(kind: str, worker: int) -> None:
        with server.client(key, timeout=60) as client:
            i = worker
            while not stop.is_set():
                i += 1
                started = time.monotonic()
                try:
                    if kind == "renewal":
                        response = client.get(f"/v1/accounts/{ids[i % len(ids)]}/renewal")
                    else:
                        start = (i * 20) % (len(ids) - 20)
                        response = client.post(
                            "/v1/score", json={"account_ids": ids[start : start + 20]}
                        )
                except httpx.TransportError:
                    calls.append(Call(kind, worker, started, time.monotonic(), None))
                    continue
                versions: tuple[str, ...] = ()
                if response.status_code == 200:
                    body = response.json()
                    results = [body] if kind == "renewal" else body["results"]
                    versions = tuple(sorted({r["model"]["version"] for r in results}))
                calls.append(
                    Call(kind, worker, started, time.monotonic(), response.status_code, versions)
                )

    threads = [
        threading.Thread(target=run, args=(kind, n), daemon=True)
        for kind in ("renewal", "score")
        for n in range(threads_per_kind)
    ]
    for thread in threads:
        thread.start()
    return threads


def wait_for_calls(calls: list[Call], count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(calls) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(calls) >= count, f"only {len(calls)} calls in {timeout} s"


def test_hot_reload_under_load_fails_no_request(world: World, live: Server):
    old = served_version(live, world.keys.admin)
    new = register(world.registry, world.tracking_uri, factories.tiny_scorer(seed=7))
    calls: list[Call] = []
    stop = threading.Event()
    threads = hammer(live, world.keys.crm, world.account_ids, stop, calls)
    try:
        wait_for_calls(calls, 120)
        promote(world.tracking_uri, new)
        reload_started = time.monotonic()
        reload = httpx.post(
            f"{live.base}/v1/admin/reload", headers=auth(world.keys.admin), timeout=60
        )
        reload_ended = time.monotonic()
        assert reload.status_code == 200 and reload.json()["outcome"] == "swapped", reload.text
        wait_for_calls(calls, len(calls) + 120)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)

    failed = [c for c in calls if c.status != 200]
    assert not failed, f"{len(failed)} of {len(calls)} requests failed: {failed[:5]}"
    assert all(len(c.versions) == 1 for c in calls), "a response named several versions"
    scores = [c for c in calls if c.kind == "score"]
    assert {c.versions[0] for c in scores} == {old, new}
    for worker in {c.worker for c in scores}:  # per connection: old ... old new ... new
        sequence = [
            c.versions[0] for c in sorted(scores, key=lambda c: c.started) if c.worker == worker
        ]
        switches = sum(1 for a, b in zip(sequence, sequence[1:], strict=False) if a != b)
        assert switches <= 1 and sequence[0] in (old, new), sequence
    assert all(c.versions == (old,) for c in scores if c.ended < reload_started)
    assert all(c.versions == (new,) for c in scores if c.started > reload_ended)
    # GET renewal serves stored scores: they name the version that scored them (unchanged).
    renewals = [c for c in calls if c.kind == "renewal"]
    assert renewals and all(c.versions for c in renewals)
    assert served_version(live, world.keys.admin) == new
    overlapping = [c for c in calls if c.started < reload_ended and c.ended > reload_started]
    print(
        f"\nhot reload: {len(calls)} requests, {len(overlapping)} overlapping the reload "
        f"({1000 * (reload_ended - reload_started):.0f} ms), versions {old} -> {new}"
    )


# -- PostgreSQL behind a proxy that can be cut ----------------------------------------------------


def postgres_answers() -> bool:
    import psycopg

    try:
        with psycopg.connect(PG_HOST, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


@dataclasses.dataclass
class PgStack:
    server: Server
    proxy: CuttableProxy
    keys: Keys
    account_ids: list[str]
    url: str  # direct, not through the proxy


@pytest.fixture(scope="module")
def pg_booting(world: World) -> Iterator[PgStack | None]:
    """One worker on a PostgreSQL schema of its own, reached through :class:`CuttableProxy`,
    started (not waited for) with the SQLite server, so the two boot side by side. Keys stay
    trusted for an hour once verified, so routes served from memory can be told apart from
    routes that need the database. None without a PostgreSQL server."""
    import psycopg

    if not postgres_answers():
        yield None
        return
    schema = f"faults_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_HOST, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    proxy = CuttableProxy(("127.0.0.1", 5432))
    server = None
    try:
        options = f"options=-csearch_path%3D{schema}"
        direct = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?{options}"
        keys, ids = seed(direct, ACCOUNTS)
        proxied = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/test?{options}"
        env = world.env(
            proxied, world.tracking_uri, world.root / "models-pg", RENEWAL_KEY_CACHE_SECONDS="3600"
        )
        server = Server(env, world.root)
        yield PgStack(server, proxy, keys, ids, direct)
    finally:
        if server is not None:
            server.stop()
        proxy.close()
        with psycopg.connect(PG_HOST, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="module")
def pg(pg_booting: PgStack | None) -> PgStack:
    if pg_booting is None:
        pytest.skip("no PostgreSQL server answers at 127.0.0.1:5432 (database test)")
    pg_booting.server.wait_up()
    return pg_booting


# -- 50 concurrent health-input writes ------------------------------------------------------------


def latest_features(url: str, account_id: str) -> dict[str, Any]:
    """The stored feature vector behind the account's served score (read directly)."""
    from service.db import scores as scores_db
    from service.db.engine import make_engine, make_session_factory

    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            return dict(scores_db.latest_scores(session, [account_id])[0].score.features)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_fifty_concurrent_health_input_writes_are_each_stored_once(
    world: World, backend: str, request: pytest.FixtureRequest
):
    if backend == "sqlite":
        server: Server = request.getfixturevalue("live")
        key, ids, url = world.keys.admin, world.account_ids, world.sqlite_url
    else:
        stack: PgStack = request.getfixturevalue("pg")
        server, key, ids, url = stack.server, stack.keys.admin, stack.account_ids, stack.url
    tag = uuid.uuid4().hex[:8]
    one, many = ids[100], ids[101:126]
    targets = [one] * 25 + many  # 25 writes to one account, 25 to 25 others, all at once
    barrier = threading.Barrier(len(targets))

    def put(i: int) -> int | str:
        body = {"csm_score": i % 5 + 1, "exec_sponsor_active": i % 2 == 0, "note": f"{tag}-{i}"}
        with server.client(key) as client:
            barrier.wait()
            try:
                response = client.put(f"/v1/accounts/{targets[i]}/health-inputs", json=body)
            except httpx.TransportError as exc:
                return type(exc).__name__
            return response.status_code if response.status_code == 200 else response.text

    with ThreadPoolExecutor(len(targets)) as pool:
        outcomes = list(pool.map(put, range(len(targets))))
    assert outcomes == [200] * len(targets), [o for o in outcomes if o != 200][:3]

    with server.client(key) as client:
        history = {
            account: client.get(f"/v1/accounts/{account}/health-inputs?limit=500").json()["data"]
            for account in [one, *many]
        }
    expected = Counter(f"{tag}-{i}" for i in range(len(targets)))
    stored = Counter(
        h["note"] for rows in history.values() for h in rows if (h["note"] or "").startswith(tag)
    )
    assert stored == expected  # every write once: none lost, none doubled
    for account, rows in history.items():
        mine = [h for h in rows if h["note"].startswith(tag)]
        assert {targets[int(h["note"].split("-")[1])] for h in mine} == {account}
        stamps = [h["created_at"] for h in rows]
        assert stamps == sorted(stamps, reverse=True)  # newest first, as documented
    # No lost update of the score: the account's served score applies its newest input.
    newest = history[one][0]
    features = latest_features(url, one)
    assert features["csm_score"] == newest["csm_score"]
    assert features["exec_sponsor_active"] == newest["exec_sponsor_active"]


# -- the database down mid-run ------------------------------------------------------------------


def test_database_down_mid_run_answers_503_and_recovers_without_restart(pg: PgStack):
    server, keys, ids = pg.server, pg.keys, pg.account_ids
    account = ids[200]
    what_if = {"accounts": [{"features": {"active_days_30d": 3, "segment": "smb"}}]}
    with server.client(keys.admin) as admin:
        assert admin.get(f"/v1/accounts/{account}/renewal").status_code == 200  # key verified
        assert ready(server)["code"] == 200
        pg.proxy.cut()
        cut_at = time.monotonic()
        try:
            state = ready(server)
            assert state["code"] == 503 and state["status"] == "unavailable"
            assert state["database"]["ok"] is False and state["headers"]["retry-after"] == "7"
            for response in (
                admin.post("/v1/score", json={"account_ids": ids[:20]}),
                admin.put(f"/v1/accounts/{account}/health-inputs", json={"csm_score": 1}),
                admin.get(f"/v1/accounts/{account}/health-inputs"),
            ):
                assert_problem(response, 503, "database-unavailable")
                assert response.headers["retry-after"] == "7"
            # A key not verified before the outage cannot be checked: 503, not 401.
            unverified = httpx.get(
                f"{server.base}/v1/risk-list", headers=auth(keys.crm), timeout=60
            )
            assert_problem(unverified, 503, "database-unavailable")
            # Served from memory: the latest scores, the risk list, the model card, what-ifs.
            assert admin.get(f"/v1/accounts/{account}/renewal").status_code == 200
            assert admin.get("/v1/risk-list").status_code == 200
            assert admin.get("/v1/model").status_code == 200
            assert admin.post("/v1/score", json=what_if).status_code == 200
            assert httpx.get(f"{server.base}/healthz").status_code == 200
            outage_answers = time.monotonic() - cut_at
        finally:
            pg.proxy.restore()
        restored_at = time.monotonic()
        deadline = time.monotonic() + 60
        while ready(server)["code"] != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert ready(server)["code"] == 200, "not ready again after the database came back"
        print(
            f"\ndatabase cut: 10 requests answered in {outage_answers:.2f} s; ready again "
            f"{time.monotonic() - restored_at:.2f} s after the database came back"
        )
        assert admin.post("/v1/score", json={"account_ids": ids[:20]}).status_code == 200
        put = admin.put(f"/v1/accounts/{account}/health-inputs", json={"csm_score": 4})
        assert put.status_code == 200, put.text
    recovered = httpx.get(f"{server.base}/v1/risk-list", headers=auth(keys.crm), timeout=60)
    assert recovered.status_code == 200
    assert server.process.poll() is None and server.log.count("Started server process") == 1
    log = server.log
    assert "database unavailable: OperationalError" in log and "Traceback" not in log


def test_a_hung_database_does_not_hang_readiness(pg: PgStack):
    """The database accepts connections but answers nothing (frozen): /readyz still answers
    503 (its check gives up after 2 s and never piles up threads), what is served from memory
    keeps answering, and everything is ready again once the database answers."""
    server, keys, ids = pg.server, pg.keys, pg.account_ids
    with server.client(keys.admin) as admin:
        assert admin.get(f"/v1/accounts/{ids[210]}/renewal").status_code == 200
        assert ready(server)["code"] == 200
        pg.proxy.freeze()
        try:
            for _ in range(3):
                state = ready(server)
                assert state["code"] == 503 and state["database"]["ok"] is False, state
            assert admin.get(f"/v1/accounts/{ids[210]}/renewal").status_code == 200
            assert admin.get("/v1/risk-list").status_code == 200
            assert httpx.get(f"{server.base}/healthz").status_code == 200
        finally:
            pg.proxy.thaw()
        deadline = time.monotonic() + 60
        while ready(server)["code"] != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert ready(server)["code"] == 200
        put = admin.put(f"/v1/accounts/{ids[210]}/health-inputs", json={"csm_score": 4})
        assert put.status_code == 200, put.text


# -- SIGTERM under load (last: it stops the shared server) ----------------------------------------


def test_sigterm_under_load_lets_in_flight_requests_finish(world: World, live: Server):
    """Health inputs are held in flight deterministically: this test takes SQLite's write lock,
    so their transactions wait for it inside the server. SIGTERM arrives while they wait (and
    right after a load of reads and scores); the listener closes at once, the waiting requests
    finish with 200 once the lock is released, then the process exits."""
    import sqlite3

    calls: list[Call] = []
    stop = threading.Event()
    threads = hammer(live, world.keys.crm, world.account_ids, stop, calls)
    puts: dict[str, Any] = {}

    def put(account: str) -> None:
        with live.client(world.keys.admin) as client:
            response = client.put(
                f"/v1/accounts/{account}/health-inputs", json={"csm_score": 3, "note": "sigterm"}
            )
            puts[account] = response.status_code

    lock = sqlite3.connect(world.root / "store.db", isolation_level=None, timeout=30)
    writers = []
    try:
        wait_for_calls(calls, 100)
        lock.execute("BEGIN IMMEDIATE")  # every writer of the store now waits for this one
        writers = [
            threading.Thread(target=put, args=(account,), daemon=True)
            for account in world.account_ids[300:305]
        ]
        for writer in writers:
            writer.start()
        time.sleep(1.0)  # let them reach the server (they cannot finish: the lock is held)
        stop.set()
        for thread in threads:
            thread.join(60)
        assert not puts, "a write finished while the database was locked"
        live.process.send_signal(signal.SIGTERM)
        refused = False
        deadline = time.monotonic() + 20
        while not refused and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", live.port), timeout=2).close()
                time.sleep(0.05)
            except ConnectionRefusedError:
                refused = True
        assert refused, "new connections still accepted after SIGTERM"
        assert not puts and live.process.poll() is None  # the writes are still in flight
    finally:
        lock.rollback()
        lock.close()
        for writer in writers:
            writer.join(60)
    assert puts == dict.fromkeys(world.account_ids[300:305], 200)
    assert all(c.status == 200 for c in calls), [c for c in calls if c.status != 200][:3]
    assert live.process.wait(timeout=40) == 0  # within the grace period (30 s)
    log = wait_for_log(live, "Finished server process")
    assert "Application shutdown complete" in log and "Traceback" not in log


def concurrent_score_versions(server: Server, world: World, connections: int = 16) -> set[str]:
    """Versions named by ``connections`` simultaneous requests, each on a new connection (so
    both workers accept some: a sequential client keeps reaching the same one)."""
    barrier = threading.Barrier(connections)
    seen: set[str] = set()

    def one() -> None:
        barrier.wait()
        response = httpx.post(f"{server.base}/v1/score", headers=auth(world.keys.crm),
                              json={"account_ids": world.account_ids[:3]}, timeout=30)
        assert response.status_code == 200, response.text
        seen.update(score_versions(response))

    threads = [threading.Thread(target=one) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return seen


def test_with_several_workers_a_promotion_reaches_every_worker(world: World):
    """POST /v1/admin/reload reaches one worker; with --workers 2 each worker polls the alias
    (every 30 s by default, see the next test; 2 s here), so both end up serving the new
    champion without a restart."""
    env = world.env(world.sqlite_url, world.tracking_uri, world.root / "models-workers",
                    RENEWAL_MODEL_POLL_SECONDS="2")
    server = Server(env, world.root, "--workers", "2").wait_up()
    try:
        new = register(world.registry, world.tracking_uri, factories.tiny_scorer(seed=11))
        promote(world.tracking_uri, new)
        reload = httpx.post(f"{server.base}/v1/admin/reload", headers=auth(world.keys.admin),
                            timeout=60)
        assert reload.status_code == 200 and reload.json()["outcome"] == "swapped", reload.text
        deadline = time.monotonic() + 45
        rounds: list[set[str]] = []
        while time.monotonic() < deadline:
            rounds.append(concurrent_score_versions(server, world))
            if rounds[-3:] == [{new}] * 3:
                break  # three rounds of 16 simultaneous connections name the new version only
            time.sleep(0.2)
        recent = rounds[-3:]
        assert recent == [{new}] * 3, rounds
    finally:
        assert server.stop() == 0


def test_several_workers_poll_the_model_alias_unless_told_otherwise():
    from renewal.commands.serve import multi_worker_environment

    environ: dict[str, str] = {}
    said = multi_worker_environment(2, environ)
    assert environ["RENEWAL_MODEL_POLL_SECONDS"] == "30" and environ["PROMETHEUS_MULTIPROC_DIR"]
    assert said == ["2 workers: each polls the model alias every 30 s (RENEWAL_MODEL_POLL_SECONDS)"]
    told = {"RENEWAL_MODEL_POLL_SECONDS": "5", "PROMETHEUS_MULTIPROC_DIR": "/tmp/x"}
    assert multi_worker_environment(4, told) == [] and told["RENEWAL_MODEL_POLL_SECONDS"] == "5"
    alone: dict[str, str] = {}
    assert multi_worker_environment(1, alone) == [] and alone == {}
