"""Where ``renewal features`` (and ``score``, ``report``) write: paths checked before any work.

A run of minutes must not end in a traceback at the write, replace the customer's table
(``--out data/usage.parquet``) or one output with the other, nor leave one fresh output beside
a stale one after a failure. So every output is checked up front (a ``.parquet`` file,
writable, not a file of the data directory, not the other output or an input), written to a
hidden temporary file beside its target, and all are renamed into place only at the end.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

import duckdb

from features.source import is_uri
from renewal.datadir import FORMATS, readable, temporary_beside
from renewal.errors import ConfigError
from renewal.tables import TABLES


def local_output(location: str | Path, option: str) -> Path:
    """An output location as a local path; a ``file://`` URI is one, other schemes are refused.

    The outputs are one row per account (or per account-day) and are written by the driver,
    atomically, with a rename: a remote store would need Spark's writer (not built yet).
    """
    return local_path(location, option, "the outputs are written by the driver; copy them "
                       "to the object store afterwards")


def local_path(location: str | Path, option: str, why: str) -> Path:
    """A location given as a path or a ``file://`` URI, as a local path; other schemes refused."""
    text = str(location)
    if not is_uri(text):
        return Path(text)
    parsed = urlparse(text)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return Path(unquote(parsed.path))
    raise ConfigError(f"{option} must be a local path (or file://), not {text}: {why}")


#: What an output file's suffix says it holds (for the messages).
FORMAT_NAMES = {".parquet": "Parquet", ".json": "JSON"}


def check_outputs(
    outputs: dict[str, Path],
    data_dir: str | Path,
    inputs: dict[str, str | Path | None],
    suffix: str = ".parquet",
) -> None:
    """Refuse, before any work, outputs that cannot be written or would overwrite an input.

    A run of minutes should not end in a traceback at the write, nor replace the customer's
    table (``--out data/usage.parquet``) or the other output: paths are compared resolved, so
    ``..`` and symlinks count. ``suffix``: what every output's name must end in (``.parquet``
    for the tables, ``.json`` for ``renewal report``).
    """
    for option, path in outputs.items():
        _check_writable(option, path, suffix)
    seen: dict[Path, str] = {}
    for option, path in outputs.items():
        resolved = path.resolve()
        if resolved in seen:
            first = seen[resolved]
            raise ConfigError(f"{option} {path} is the same file as {first} {outputs[first]}: "
                              "give each output its own path")
        seen[resolved] = option
    for option, path in inputs.items():
        if path is not None and not is_uri(path) and Path(path).resolve() in seen:
            clash = seen[Path(path).resolve()]
            raise ConfigError(f"{clash} {outputs[clash]} is the {option} file: it would be "
                              "overwritten; write the output elsewhere")
    local_dir = _local_data_dir(data_dir)
    if local_dir is not None:
        _check_not_in_data_dir(outputs, local_dir)


def _check_writable(option: str, path: Path, suffix: str = ".parquet") -> None:
    """A ``suffix`` file path whose directory exists (or can be made) and takes new files."""
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a directory: give a file path ending in {suffix}")
    if path.suffix.lower() != suffix:
        kind = FORMAT_NAMES.get(suffix, suffix.lstrip(".").upper())
        raise ConfigError(f"{option} {path} must end in {suffix}: the output is written as "
                          f"{kind}")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:  # the directories to be made
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"{option} {path} cannot be written: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path} cannot be written: {folder} is not writable "
                          "(permissions or a read-only file system)")


def _local_data_dir(data_dir: str | Path) -> Path | None:
    """The data directory as a local path, or None for a remote one (not listable here)."""
    try:
        return local_path(data_dir, "--data", "")
    except ConfigError:
        return None


def _check_not_in_data_dir(outputs: dict[str, Path], data_dir: Path) -> None:
    """Refuse an output that is a file of the data directory, or inside one of its tables.

    Every file under the directory counts (a table, ``truth.parquet``, a part file of a
    table written as a directory by Spark); a new file inside a table directory would be read
    as part of that table.
    """
    if not data_dir.is_dir():
        return  # reported by the validation, with the other data problems
    taken = {(Path(root) / name).resolve()
             for root, _dirs, files in os.walk(data_dir) for name in files}
    tables = [path.resolve() for name in TABLES for fmt in FORMATS
              if (path := data_dir / f"{name}.{fmt}").is_dir()]
    for option, path in outputs.items():
        resolved = path.resolve()
        if resolved in taken or any(resolved.is_relative_to(table) for table in tables):
            via = "" if resolved == path.absolute() else f" (it resolves to {resolved})"
            raise ConfigError(f"{option} {path} is a file of the data directory {data_dir}{via}: "
                              "it would overwrite your input; write the outputs elsewhere")


class StagedOutputs:
    """Output files written to hidden temporary files beside their targets, renamed at the end.

    Nothing appears under a target's name until every output is complete: a run failing before
    :meth:`publish` leaves no output (and no temporary file) behind.
    """

    def __init__(self) -> None:
        self._files: list[tuple[str, Path, Path]] = []  # option, target, temporary file

    def write(self, option: str, target: Path, writer: Callable[[Path], None]) -> None:
        """Run ``writer`` on a new temporary file for ``target``; a failure names ``option``."""
        with _unwritable(option, target):
            tmp = temporary_beside(target)
            self._files.append((option, target, tmp))
            writer(tmp)
            readable(tmp)

    def publish(self) -> None:
        """Rename every temporary file onto its target, the last output first.

        Each rename is atomic, the set is not: a process killed between two renames leaves at
        worst one complete new file beside the previous run's other file, never a partial one.
        """
        for option, target, tmp in reversed(self._files):
            with _unwritable(option, target):
                os.replace(tmp, target)

    def discard(self) -> None:
        """Remove the temporary files not renamed (all of them after a failure)."""
        for _option, _target, tmp in self._files:
            tmp.unlink(missing_ok=True)


@contextmanager
def staged_outputs() -> Iterator[StagedOutputs]:
    """:class:`StagedOutputs` published when the block succeeds, cleaned up either way."""
    staged = StagedOutputs()
    try:
        yield staged
        staged.publish()
    finally:
        staged.discard()


@contextmanager
def _unwritable(option: str, target: Path) -> Iterator[None]:
    """Turn a failed write (disk full, read-only, permissions) into an error naming the option."""
    try:
        yield
    except (OSError, duckdb.IOException) as exc:
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{option} {target} cannot be written: {reason}") from exc
