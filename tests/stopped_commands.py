"""Run a ``renewal`` command and stop it with SIGTERM at a chosen moment, as a scheduler's
time limit or ``docker stop`` would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

RENEWAL = str(Path(sys.executable).parent / "renewal")


def terminate_when(args: list[str], ready: Callable[[], bool], what: str,
                   env: dict[str, str] | None = None, wait: float = 180) -> tuple[int, str]:
    """Start ``renewal *args``, send SIGTERM once ``ready()`` holds (failing if the command
    ends first or ``what`` never happens within ``wait`` seconds); its exit status and
    stderr."""
    process = subprocess.Popen([RENEWAL, *args], env={**os.environ, **(env or {})},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + wait
        while not ready():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, f"{what} never happened"
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, stderr
