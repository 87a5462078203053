"""A ``renewal train`` stopped by SIGTERM (a scheduler's time limit, ``docker stop``) cleans up
like one stopped by Ctrl-C: no ``.staging-*`` directory and no half-published output."""

from __future__ import annotations

from pathlib import Path

from stopped_commands import terminate_when

from renewal.cli import EXIT_TERMINATED


def test_sigterm_during_training_leaves_no_staging_directory(data_dir: Path, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text('{"previous": "run"}')  # an earlier good run's output
    code, stderr = terminate_when(
        ["train", "--data", str(data_dir), "--out", str(out),
         "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"],
        lambda: bool(list(out.glob(".staging-*"))),  # the outputs are being written
        "a staging directory", env={"RENEWAL_DATA_DIR": str(tmp_path / "state")})
    assert code == EXIT_TERMINATED, stderr
    assert "stopped by SIGTERM" in stderr
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    assert (out / "report.json").read_text() == '{"previous": "run"}'
