"""A data directory's table is read once per file version, and what is derived from it once
per key of that version."""

from __future__ import annotations

from service.workflows.file_cache import FileVersionCache


def test_a_file_is_read_again_only_when_it_changes(tmp_path):
    path = tmp_path / "surveys.csv"
    path.write_text("a\n1\n")
    cache: FileVersionCache[str] = FileVersionCache()
    reads: list[str] = []

    def read() -> str:
        reads.append(path.read_text())
        return reads[-1]

    first = cache.get(path, read)
    assert cache.get(path, read) is first and len(reads) == 1
    derived: list[int] = []
    assert first.derived("day-1", lambda text: derived.append(1) or len(text)) == 4
    assert first.derived("day-1", lambda text: derived.append(1) or -1) == 4
    assert len(derived) == 1
    path.write_text("a\n12\n")  # a new export; its size differs even within one mtime tick
    second = cache.get(path, read)
    assert second is not first and second.value == "a\n12\n" and len(reads) == 2
    assert second.derived("day-1", len) == 5
