"""The console script turns a setting to fix into a message and exit 2, never a traceback, and
never prints a password it was given."""

from __future__ import annotations

import os
import subprocess
import sys
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
