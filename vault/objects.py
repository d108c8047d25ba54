"""Names of item objects in the object store: unguessable, under one prefix the sweep owns."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from vault.ids import new_id
from vault.storage import ObjectInfo

PREFIX = "items/"
# Names looked up per query by `orphans`: a sweep of a large store asks the database a few
# hundred times, not once per object.
LOOKUP_BATCH = 500


def object_name() -> str:
    """Return a fresh object name: `items/<128 random bits>`, unrelated to the item id."""
    return f"{PREFIX}{new_id()}"


def orphans(
    sessions: sessionmaker[Session], column: Any, entries: Iterable[ObjectInfo]
) -> Iterator[ObjectInfo]:
    """Yield the `entries` whose name no row holds in `column` (a unique object-name column)."""
    pending = iter(entries)
    while batch := list(islice(pending, LOOKUP_BATCH)):
        names = [info.name for info in batch]
        with sessions() as session:
            known = set(session.scalars(select(column).where(column.in_(names))))
        yield from (info for info in batch if info.name not in known)
