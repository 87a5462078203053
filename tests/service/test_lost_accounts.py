"""Accounts lost by the as-of date (last term ended, not renewed) are not scored and no longer
served: the rule at its boundaries, the run's refusal when nobody is left, and the caches of
this and another worker dropping an account a later run found lost (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import service_factories as factories

from renewal.errors import DataContractError
from service.cache import ScoreCache
from service.config import ServiceSettings
from service.db.engine import make_session_factory
from service.lost_accounts import lost_accounts, split_lost
from service.predict import score_vectors
from service.scoring import store_scores

T = date(2025, 2, 1)


def _terms(*rows: tuple[str, str, str, bool | None]) -> pd.DataFrame:
    return pd.DataFrame(
        [dict(account_id=a, start_date=s, end_date=e, renewed=r) for a, s, e, r in rows]
    )


@pytest.mark.parametrize(("terms", "lost_on"), [
    # Ended Dec 31, not renewed, nothing in force on Feb 1 -> lost since Dec 31.
    ([("a", "2024-01-01", "2024-12-31", False)], "2024-12-31"),
    # Outcome still null: a renewal under way, still a customer.
    ([("a", "2024-01-01", "2024-12-31", None)], None),
    # Renewed, next term not in the export yet: still a customer.
    ([("a", "2024-01-01", "2024-12-31", True)], None),
    # The term ends on T itself: in force on T.
    ([("a", "2024-02-02", "2025-02-01", False)], None),
    # Ended the day before T, not renewed -> lost.
    ([("a", "2024-02-01", "2025-01-31", False)], "2025-01-31"),
    # Two terms ending on the same last day, one still open -> not lost.
    ([("a", "2024-01-01", "2024-12-31", False), ("a", "2024-03-01", "2024-12-31", None)], None),
    # Comes back after T (a term starting Mar 1 is not seen on Feb 1) -> lost on Feb 1.
    ([("a", "2024-01-01", "2024-12-31", False), ("a", "2025-03-01", "2026-02-28", None)],
     "2024-12-31"),
    # An older term lost, a later one in force -> customer.
    ([("a", "2023-01-01", "2023-12-31", False), ("a", "2024-06-01", "2025-05-31", None)], None),
])
def test_lost_accounts_at_the_boundaries(terms, lost_on):
    found = lost_accounts(_terms(*terms), T)
    if lost_on is None:
        assert found.empty
    else:
        assert found.to_dict() == {"a": pd.Timestamp(lost_on)}


def test_a_run_with_every_account_lost_is_refused_not_empty():
    frame = factories.feature_frame(3, T)
    lost_on = pd.Series(pd.Timestamp("2024-12-31"), index=frame["account_id"].astype(str))
    with pytest.raises(DataContractError, match="every account signed by 2025-02-01 was lost"):
        split_lost(frame, lost_on, T)
    customers, lost, _ = split_lost(frame, lost_on.iloc[:2], T)
    assert customers["account_id"].tolist() == ["acc-00002"]
    assert lost["account_id"].tolist() == ["acc-00000", "acc-00001"]


def test_a_later_run_that_finds_an_account_lost_takes_it_out_of_every_cache(engine, scorer):
    factory = make_session_factory(engine)
    model = factories.loaded(scorer)
    settings = ServiceSettings()
    first = factories.feature_frame(6, date(2025, 1, 1))
    store_scores(factory, first, score_vectors(model, first, settings, 3), model,
                 date(2025, 1, 1), "/nonexistent-data-dir")
    this_worker, other_worker = ScoreCache(factory, settings), ScoreCache(factory, settings)
    assert this_worker.load() == 6 and other_worker.load() == 6

    # A month later acc-00001 has lost its contract: the run scores the five others only.
    later = factories.feature_frame(6, T)
    is_lost = later["account_id"] == "acc-00001"
    customers, lost = later[~is_lost], later[is_lost]
    lost_on = pd.Series([pd.Timestamp("2025-01-15")], index=["acc-00001"])
    store_scores(factory, customers, score_vectors(model, customers, settings, 3), model, T,
                 "/nonexistent-data-dir", lost=lost, lost_on=lost_on)

    assert this_worker.load() == 5
    # The other worker polls: a new run means a full reload, although acc-00001 got no row.
    assert other_worker.refresh() > 0
    for cache in (this_worker, other_worker):
        assert cache.get("acc-00001") is None
        assert "acc-00001" not in {e.account_id for e in cache.risk_order}
        assert len(cache) == 5 and {e.as_of for e in cache.risk_order} == {T}

    # Back as a customer in a later run: served again.
    again = factories.feature_frame(6, date(2025, 3, 1))
    store_scores(factory, again, score_vectors(model, again, settings, 3), model,
                 date(2025, 3, 1), "/nonexistent-data-dir")
    assert other_worker.refresh() > 0 and other_worker.get("acc-00001") is not None


def test_a_backfill_of_an_older_date_changes_no_newer_snapshot(engine, scorer):
    """Found by audit (SQLite and PostgreSQL): scoring an older as_of after a newer one put
    the accounts' ARR and lost state back to the older date under their newer scores, served
    accounts lost since then again, and moved the metrics and forecast (the "latest run") to
    the older data. A backfill now adds its scores to the history and changes nothing newer."""
    from service.db import accounts as accounts_db
    from service.db import scores as scores_db

    factory = make_session_factory(engine)
    model = factories.loaded(scorer)
    settings = ServiceSettings()
    newer = factories.feature_frame(6, T)
    newer["arr"] = 2000.0
    is_lost = newer["account_id"] == "acc-00001"
    lost_on = pd.Series([pd.Timestamp("2025-01-15")], index=["acc-00001"])
    store_scores(factory, newer[~is_lost], score_vectors(model, newer[~is_lost], settings, 3),
                 model, T, "/data/newer", lost=newer[is_lost], lost_on=lost_on)
    older_day = date(2024, 10, 31)
    older = factories.feature_frame(6, older_day)
    older["arr"] = 1000.0
    store_scores(factory, older, score_vectors(model, older, settings, 3), model, older_day,
                 "/data/older")

    with factory() as session:
        snapshot = {a.account_id: a for a in accounts_db.all_accounts(session)}
        run = scores_db.latest_run(session)
    assert {a.as_of for a in snapshot.values()} == {T}
    assert {a.arr for a in snapshot.values()} == {2000.0}
    assert snapshot["acc-00001"].lost_on is not None
    assert run is not None and (run.as_of, run.data_dir) == (T, "/data/newer")
    cache = ScoreCache(factory, settings)
    assert cache.load() == 5 and cache.get("acc-00001") is None
    assert {e.as_of for e in cache.risk_order} == {T}
    # The history holds both dates; the newer date scored again still updates the snapshot.
    again = factories.feature_frame(6, T)
    again["arr"] = 3000.0
    store_scores(factory, again, score_vectors(model, again, settings, 3), model, T,
                 "/data/newer")
    with factory() as session:
        assert {a.arr for a in accounts_db.all_accounts(session)} == {3000.0}
