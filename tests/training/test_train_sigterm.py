"""A ``renewal train`` stopped by SIGTERM (a scheduler's time limit, ``docker stop``) cleans up
like one stopped by Ctrl-C: no ``.staging-*`` directory and no half-published output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from renewal.cli import EXIT_TERMINATED

VENV_BIN = Path(sys.executable).parent


def test_sigterm_during_training_leaves_no_staging_directory(data_dir: Path, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text('{"previous": "run"}')  # an earlier good run's output
    env = {**os.environ, "RENEWAL_DATA_DIR": str(tmp_path / "state")}
    process = subprocess.Popen(
        [str(VENV_BIN / "renewal"), "train", "--data", str(data_dir), "--out", str(out),
         "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not list(out.glob(".staging-*")):  # the outputs are being written
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no staging directory appeared"
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == EXIT_TERMINATED, stderr
    assert "stopped by SIGTERM" in stderr
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    assert (out / "report.json").read_text() == '{"previous": "run"}'
