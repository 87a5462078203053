"""The console script turns a setting to fix into a message and exit 2, never a traceback, and
never prints a password it was given."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

RENEWAL = str(Path(sys.executable).parent / "renewal")


@pytest.mark.parametrize("command", [["keys", "list"], ["db", "current"],
                                     ["keys", "create", "--role", "crm"]])
def test_an_unreachable_score_store_is_a_clear_error(tmp_path, command):
    env = {**os.environ, "RENEWAL_DATABASE_URL": "postgresql://nobody:s3cret-pw@127.0.0.1:1/x",
           "RENEWAL_DATA_DIR": str(tmp_path)}
    done = subprocess.run([RENEWAL, *command], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "cannot reach the score store (RENEWAL_DATABASE_URL)" in done.stderr
    assert "port 1" in done.stderr
    assert "Traceback" not in done.stderr and "s3cret-pw" not in done.stdout + done.stderr


def test_read_only_commands_do_not_create_a_score_store(tmp_path):
    """A misspelt RENEWAL_DATA_DIR used to get a new directory and an empty store, and
    `keys list` answered "no keys" from it; now the commands say where they looked."""
    store = tmp_path / "typo" / "renewal.db"
    env = {**os.environ, "RENEWAL_DATA_DIR": str(tmp_path / "typo")}
    env.pop("RENEWAL_DATABASE_URL", None)

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([RENEWAL, *command], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)

    listed = run("keys", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"no keys: there is no score store at {store} yet" in " ".join(listed.stderr.split())
    current = run("db", "current")
    assert current.returncode == 0, current.stderr
    assert f"current: (no database at {store}); head: " in current.stdout
    revoked = run("keys", "revoke", "key_abc")
    assert revoked.returncode == 2
    assert "no API key with id 'key_abc': there is no score store at" in revoked.stderr
    assert "Traceback" not in revoked.stderr
    assert not (tmp_path / "typo").exists()

    created = run("keys", "create", "--role", "crm")  # writing creates it, as before
    assert created.returncode == 0, created.stderr
    assert store.exists()
    assert "crm" in run("keys", "list").stdout


def test_the_report_save_rate_does_not_create_a_score_store(tmp_path):
    from rich.console import Console

    from renewal.commands.report import save_rate_section
    from renewal.settings import Settings

    store = tmp_path / "nowhere" / "renewal.db"
    console = Console(record=True, width=200)
    settings = Settings(database_url=f"sqlite:///{store}")
    assert save_rate_section(settings, tmp_path / "data", console) == {}
    assert f"save rate: no score store at {store}" in console.export_text()
    assert not store.parent.exists()


def test_after_sigterm_an_engine_error_is_the_stop_not_bad_data(tmp_path, monkeypatch, capsys):
    """DuckDB answers SIGTERM mid-query with its own "Query interrupted" error, which the
    contract check reported as bad data (exit 2, "the data breaks the contract"): once the
    signal has arrived, any error is the stop, exit status 143, with no error message."""
    from renewal import cli

    monkeypatch.setattr(cli, "TERMINATED", threading.Event())
    cli.TERMINATED.set()
    with pytest.raises(SystemExit) as stopped:
        cli.main(["metrics", "--data", str(tmp_path / "missing"), "--as-of", "2024-04-15"])
    assert stopped.value.code == cli.EXIT_TERMINATED
    assert "error" not in capsys.readouterr().err
    cli.TERMINATED.clear()
    with pytest.raises(SystemExit) as refused:  # without the signal: the usual message
        cli.main(["metrics", "--data", str(tmp_path / "missing"), "--as-of", "2024-04-15"])
    assert refused.value.code == 2 and "is not a directory" in capsys.readouterr().err
