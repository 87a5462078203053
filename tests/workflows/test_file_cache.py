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


def test_requests_asking_for_a_key_being_computed_wait_for_it():
    """Found by review: the first risk-list render of a day and a survey-list request at the
    same moment each matched every comment, seconds of work holding the interpreter."""
    import threading
    import time

    from service.workflows.file_cache import Kept

    kept: Kept[str] = Kept("table")
    calls: list[str] = []

    def slow(value: str) -> str:
        calls.append(value)
        time.sleep(0.2)
        return value.upper()

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(kept.derived("day", slow)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["TABLE"] * 4 and len(calls) == 1
    assert kept.derived("other day", lambda v: v) == "table"  # other keys still compute


def test_comment_phrases_are_found_once_per_file_version_not_per_day(tmp_path, monkeypatch):
    from datetime import date

    import pandas as pd

    from renewal.datadir import write_table
    from service.workflows.survey_comments import CommentAlarm
    from service.workflows.survey_followups import FollowUpRule, latest_surveys_in

    write_table(pd.DataFrame({"account_id": ["a", "b"],
                              "date": pd.to_datetime(["2025-06-01", "2025-06-02"]),
                              "score": [9.0, 8.0],
                              "comment": ["moving to a cheaper tool", "fine"]}),
                tmp_path, "surveys", "parquet")
    indexed: list[int] = []
    real = CommentAlarm.index

    def counted(self, comments):
        indexed.append(1)
        return real(self, comments)

    monkeypatch.setattr(CommentAlarm, "index", counted)
    rule = FollowUpRule(6.0, CommentAlarm.of(["cheaper"]))
    first = latest_surveys_in(tmp_path, date(2025, 6, 10), rule)
    second = latest_surveys_in(tmp_path, date(2025, 6, 11), rule)
    assert first is not None and second is not None
    assert first["a"].reasons == ("comment",) and second["a"].alarm_phrases == ("cheaper",)
    assert first["b"].reasons == ()
    assert len(indexed) == 1
