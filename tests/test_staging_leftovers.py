"""A run killed outright (SIGKILL, a power cut) cannot remove its ``.staging-*`` directory: the
next run into the same directory does, but never the staging directory of a run still writing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from stopped_commands import RENEWAL

from renewal.datadir import (
    STALE_STAGING_SECONDS,
    pid_space,
    staged_directory,
    staging_prefix,
    sweep_staging,
)
from renewal.simulator import simulate

DAY_AND_AN_HOUR = STALE_STAGING_SECONDS + 3600


def start_simulation(out: Path) -> subprocess.Popen[str]:
    """A `renewal simulate` big enough to still be writing while the test looks at it."""
    return subprocess.Popen([RENEWAL, "simulate", "--out", str(out), "--accounts", "20000",
                             "--seed", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def wait_for_staged_accounts(out: Path, process: subprocess.Popen[str]) -> Path:
    deadline = time.monotonic() + 120
    while True:
        staged = [s for s in out.glob(".staging-*") if (s / "accounts.parquet").exists()]
        if staged:
            return staged[0]
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the simulation never staged its accounts"
        time.sleep(0.01)


def staging_dirs(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob(".staging-*"))


def make_staging(out: Path, name: str, age_seconds: float = 0) -> Path:
    staging = out / name
    staging.mkdir(parents=True)
    (staging / "accounts.parquet").write_bytes(b"half a table")
    then = time.time() - age_seconds
    for path in (staging / "accounts.parquet", staging):
        os.utime(path, (then, then))
    return staging


def test_a_killed_run_s_staging_goes_with_the_next_run_not_while_it_writes(tmp_path: Path):
    out = tmp_path / "data"
    simulate(out, accounts=30, seed=1, months=3)
    writer = start_simulation(out)
    try:
        staging = wait_for_staged_accounts(out, writer)
        assert staging.name.startswith(staging_prefix(writer.pid))

        simulate(out, accounts=40, seed=3, months=3)  # two runs into one directory at once
        assert staging_dirs(out) == [staging.name]  # the writer's staging is left alone
        assert len(pd.read_parquet(out / "accounts.parquet")) == 40

        writer.send_signal(signal.SIGKILL)  # no cleanup can run
        writer.wait(timeout=60)
        assert staging_dirs(out) == [staging.name]  # what this change is about
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait(timeout=60)

    simulate(out, accounts=50, seed=4, months=3)
    assert staging_dirs(out) == []
    assert len(pd.read_parquet(out / "accounts.parquet")) == 50


def test_a_staging_directory_of_a_live_process_is_kept_and_of_a_dead_one_swept(tmp_path: Path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait(timeout=60)
    try:
        alive = make_staging(tmp_path, staging_prefix(sleeper.pid) + "abcd1234",
                             age_seconds=DAY_AND_AN_HOUR)  # old, but its writer still runs
        dead = make_staging(tmp_path, staging_prefix(finished.pid) + "efgh5678")
        with staged_directory(tmp_path) as mine:  # this process's own: a live writer too
            with staged_directory(tmp_path) as nested:
                (nested / "report.json").write_text("{}")
            assert mine.is_dir()
        assert alive.is_dir() and (alive / "accounts.parquet").exists()
        assert not dead.exists()
        assert (tmp_path / "report.json").read_text() == "{}"
    finally:
        sleeper.kill()
        sleeper.wait(timeout=60)
    assert sweep_staging(tmp_path) == [alive]
    assert staging_dirs(tmp_path) == []


def test_a_writer_that_cannot_be_asked_is_taken_for_gone_after_a_day(tmp_path: Path):
    """Another host or container (a shared volume) or a name from before PIDs were part of it:
    only a staging directory in which nothing changed for a day goes."""
    other_space = format(int(pid_space(), 16) ^ 1, "08x")
    other_fresh = make_staging(tmp_path, f".staging-{other_space}-{os.getpid()}-abcd1234")
    other_idle = make_staging(tmp_path, f".staging-{other_space}-1-efgh5678", DAY_AND_AN_HOUR)
    unnamed_fresh = make_staging(tmp_path, ".staging-ijkl9012")
    unnamed_idle = make_staging(tmp_path, ".staging-mnop3456", DAY_AND_AN_HOUR)
    still_written = make_staging(tmp_path, ".staging-qrst7890", DAY_AND_AN_HOUR)
    with (still_written / "accounts.parquet").open("ab") as growing:  # its directory stays old
        growing.write(b" and more")
    os.utime(still_written, (time.time() - DAY_AND_AN_HOUR,) * 2)

    with staged_directory(tmp_path):
        pass
    assert staging_dirs(tmp_path) == sorted(
        p.name for p in (other_fresh, unnamed_fresh, still_written))
    assert not other_idle.exists() and not unnamed_idle.exists()
