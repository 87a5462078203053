"""Fixtures of the reliability tests: a seeded in-process app (the service tests' factories),
a small simulated data directory, and helpers to run the console script and a real server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The service tests' factories (tiny real LightGBM model, seeded store, keys) are reused as is.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))

import service_factories as factories  # noqa: E402
from service_harness import Service, build_service  # noqa: E402


@pytest.fixture(scope="session")
def tiny_scorer():
    return factories.tiny_scorer()


@pytest.fixture
def seeded(tmp_path: Path, tiny_scorer) -> Iterator[Service]:
    """The service tests' seeded app: 60 accounts dealt to csm-a/b/c, one key per role."""
    yield from build_service(tmp_path, tiny_scorer)


@pytest.fixture(scope="session")
def small_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated data directory (60 accounts, 6 months): the base of every bad directory."""
    from renewal.simulator import simulate

    out = tmp_path_factory.mktemp("sim") / "data"
    simulate(out, accounts=60, seed=3, months=6)
    return out
