"""Shared, session-scoped fixtures: one small simulated data directory, one training set, one fit.

800 accounts over 24 months gives ~670 decided contracts: enough for every part of the time
split, small enough to keep the whole module well under two minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from training.config import TrainConfig
from training.dataset import TrainingSet, build_training_set
from training.fit import FittedModels, fit_models

ACCOUNTS = 800
MONTHS = 24
SEED = 7


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from renewal.simulator import simulate

    out = tmp_path_factory.mktemp("simulated")
    simulate(out, accounts=ACCOUNTS, seed=SEED, months=MONTHS)
    return out


@pytest.fixture(scope="session")
def train_config() -> TrainConfig:
    return TrainConfig()


@pytest.fixture(scope="session")
def training_set(data_dir: Path, train_config: TrainConfig) -> TrainingSet:
    return build_training_set(data_dir, train_config)


@pytest.fixture(scope="session")
def fitted(training_set: TrainingSet, train_config: TrainConfig) -> FittedModels:
    return fit_models(training_set, train_config)


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite MLflow store for the session (creating one costs seconds): use own names."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"

@dataclass
class Outcome:
    """What a command printed and its exit code."""

    exit_code: int
    output: str


@pytest.fixture
def cli(capsys):
    """Run the console script's entry point (errors -> message and exit code 2) in-process."""
    from renewal.cli import main

    def run(*args: str) -> Outcome:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        captured = capsys.readouterr()
        return Outcome(code, captured.out + captured.err)

    return run
