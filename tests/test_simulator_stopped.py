"""A simulation stopped half-way (SIGTERM from a scheduler, Ctrl-C) leaves the directory as it
was: an earlier simulation stays whole, never its usage beside a new run's accounts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
from stopped_commands import terminate_when

from renewal.cli import EXIT_TERMINATED
from renewal.simulator import simulate


def digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.iterdir())}


def test_sigterm_mid_simulation_keeps_the_earlier_simulation_whole(tmp_path: Path):
    out = tmp_path / "data"
    simulate(out, accounts=30, seed=1, months=3)
    before = digests(out)
    # Stopped once the new accounts are written, while its usage is being drawn.
    code, stderr = terminate_when(
        ["simulate", "--out", str(out), "--accounts", "20000", "--seed", "2"],
        lambda: any((s / "accounts.parquet").exists() for s in out.glob(".staging-*")),
        "the new accounts' staging", wait=120)
    assert code == EXIT_TERMINATED, stderr
    assert digests(out) == before  # no staging directory, no new table, nothing changed


def test_a_finished_simulation_replaces_the_earlier_one_and_leaves_no_staging(tmp_path: Path):
    out = tmp_path / "data"
    simulate(out, accounts=30, seed=1, months=3)
    summary = simulate(out, accounts=40, seed=2, months=3)
    assert summary.out_dir == out
    assert not list(out.glob(".staging-*"))
    assert len(pd.read_parquet(out / "accounts.parquet")) == 40
