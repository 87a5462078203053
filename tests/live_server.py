"""Helpers for tests that run a real server process on loopback (importable from any test
package: pytest puts ``tests/`` on ``sys.path`` for its ``conftest.py``)."""

from __future__ import annotations

import socket
import subprocess
import time

import httpx


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(server: subprocess.Popen, base: str, timeout: float) -> None:
    """Wait for ``GET {base}/readyz`` to answer 200; fail with the server's output if it
    exits first or does not get ready within ``timeout`` seconds (then it is killed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if server.poll() is not None:
            raise AssertionError(f"the server exited ({server.returncode}):\n{_output(server)}")
        time.sleep(0.3)
    server.kill()
    raise AssertionError(f"the server did not get ready in {timeout:.0f} s:\n{_output(server)}")


def _output(server: subprocess.Popen) -> str:
    out, _ = server.communicate(timeout=30)
    return out or ""
