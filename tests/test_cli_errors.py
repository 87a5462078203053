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


@pytest.mark.parametrize(("setting", "said"), [
    # Above the API's own bound: was taken, then every batch over 1,000 met a 422 anyway.
    (("RENEWAL_MAX_BATCH_ACCOUNTS", "2000"),
     "RENEWAL_MAX_BATCH_ACCOUNTS: Input should be less than or equal to 1000"),
    (("RENEWAL_MAX_PAGE_SIZE", "500"),
     "RENEWAL_MAX_PAGE_SIZE: Input should be less than or equal to 200"),
    (("RENEWAL_WEBHOOK_MAX_ATTEMPTS", "many"), "RENEWAL_WEBHOOK_MAX_ATTEMPTS: Input should be"),
])
def test_serve_refuses_a_setting_out_of_range_in_one_line_not_a_traceback(tmp_path, setting,
                                                                          said):
    """Each worker raised pydantic's traceback while importing the app (found by audit)."""
    name, value = setting
    env = {**os.environ, "RENEWAL_DATA_DIR": str(tmp_path), name: value}
    env.pop("RENEWAL_DATABASE_URL", None)
    done = subprocess.run([RENEWAL, "serve", "--port", "1"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "error: a setting is refused" in done.stderr
    assert said in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


def test_an_error_keeps_its_bracketed_words(tmp_path):
    """The console read "[lightgbm]" in a message as markup and dropped it: "both  and ;
    keep one" (found by audit)."""
    config = tmp_path / "train.toml"
    config.write_text("[lightgbm]\nmax_rounds = 3\n[training.lightgbm]\nmax_rounds = 3\n")
    done = subprocess.run([RENEWAL, "train", "--data", str(tmp_path / "none"), "--out",
                           str(tmp_path / "out"), "--train-config", str(config)],
                          env={**os.environ, "RENEWAL_DATA_DIR": str(tmp_path)}, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "both [lightgbm] and [training.lightgbm]; keep one" in done.stderr


def test_a_sigterm_after_the_command_succeeded_does_not_kill_the_process(tmp_path):
    """Found by audit: `renewal train` registered its model, printed its report, and a
    SIGTERM during the interpreter's shut-down killed it with the signal; a scheduler retrying
    on 143 would register the model twice. Here the signal arrives right after the command
    (`keys list`) returned, as it would during the shut-down."""
    script = (
        "import os, signal, sys, time\n"
        "from renewal.cli import main\n"
        "sys.argv = ['renewal', 'keys', 'list']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    print('the command printed this', flush=False)\n"
        "    raise\n"
        "finally:\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(30)  # a shut-down that hangs: the signal still ends it\n"
    )
    done = _python(script, tmp_path)
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert "no keys" in " ".join(done.stderr.split())
    assert "the command printed this" in done.stdout  # flushed before the process ends


def test_a_sigterm_in_the_last_clean_up_after_success_does_not_kill_the_process(tmp_path):
    """Found by review: Python puts its signal handlers back to the default before tearing
    down modules, so a SIGTERM there (a slow __del__, the final garbage collection) killed a
    command that had succeeded with 143. The exit callback registered on import ignores it."""
    script = (
        "import os, signal, sys, time\n"
        "from renewal.cli import main\n"
        "class SlowToClose:\n"
        "    def __del__(self):\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        time.sleep(0.3)\n"
        "closing = SlowToClose()\n"
        "sys.argv = ['renewal', 'keys', 'list']\n"
        "main()\n"
    )
    done = _python(script, tmp_path)
    assert done.returncode == 0, (done.returncode, done.stderr)


def _python(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``script`` run by this Python, on an empty data directory and the default store."""
    env = {**os.environ, "RENEWAL_DATA_DIR": str(tmp_path)}
    env.pop("RENEWAL_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)

