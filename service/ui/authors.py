"""Who recorded an input or an intervention, in words: the API key's name (and its CSM).

The logs store the key's public id as their author (``key_dec8dd1fab29``), which is the
API's contract and stays so; the page names the key instead, keeping the id in a tooltip.
A revoked key keeps its name and says it is revoked; a key no longer in the store shows
its id, as before. Nothing about a key but its id, name, role, CSM and revocation is read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.chunks import chunks
from service.db.models import ApiKey


@dataclass(frozen=True)
class Author:
    """An author as the page shows it."""

    key_id: str
    name: str | None = None  # None: the key is not in the store (deleted)
    csm_id: str | None = None  # a CSM key's CSM
    revoked: bool = False

    @property
    def label(self) -> str:
        """The words in the log's "By" cell."""
        if self.name is None:
            return self.key_id
        label = f"{self.name} (CSM {self.csm_id})" if self.csm_id else self.name
        return f"{label}, revoked key {self.key_id}" if self.revoked else label

    @property
    def tooltip(self) -> str:
        if self.name is None:
            return f"API key {self.key_id} (no longer in the key store)"
        return f"API key {self.key_id}{' (revoked)' if self.revoked else ''}"


def key_authors(session: Session, key_ids: Iterable[str]) -> dict[str, Author]:
    """Each id's author; an id without a key gets an author showing the bare id."""
    wanted = sorted(set(key_ids))
    found: dict[str, Author] = {}
    for chunk in chunks(wanted):
        rows = session.execute(
            select(ApiKey.id, ApiKey.name, ApiKey.role, ApiKey.csm_id, ApiKey.revoked_at)
            .where(ApiKey.id.in_(list(chunk))))
        for key_id, name, role, csm_id, revoked_at in rows:
            found[key_id] = Author(key_id, name, csm_id if role == "csm" else None,
                                   revoked_at is not None)
    return {key_id: found.get(key_id, Author(key_id)) for key_id in wanted}
