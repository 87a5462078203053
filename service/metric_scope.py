"""Cohort metrics over only the accounts a key may see (a CSM sees only their own accounts).

``features.metrics`` computes over every account of a :class:`features.source.Source`; the
service narrows the Source instead of the metric code: the accounts table is filtered to the
CSM's accounts and every other table with an ``account_id`` is semi-joined to them, lazily
(the engine does the work, nothing is read into pandas). Ownership is the data directory's
``accounts.csm_id``, the same column the scores' owner comes from.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from service.problems import forbidden

if TYPE_CHECKING:
    from features.source import Source


def csm_source(source: Source, csm_id: str) -> Source:
    """``source`` restricted to the accounts whose ``csm_id`` is ``csm_id``.

    Without a ``csm_id`` column ownership is unknown: refused (403) rather than shown."""
    accounts = source.tables["accounts"]
    if "csm_id" not in accounts.columns:
        raise forbidden(
            "cohort metrics for a CSM key need accounts.csm_id in the data directory "
            "(ownership is unknown without it)"
        )
    own = accounts.filter(accounts.csm_id == csm_id)
    ids = own.select("account_id")
    tables = {}
    for name, table in source.tables.items():
        if name == "accounts":
            tables[name] = own
        elif "account_id" in table.columns:
            tables[name] = table.semi_join(ids, "account_id")
        else:
            tables[name] = table
    return dataclasses.replace(source, tables=tables)
