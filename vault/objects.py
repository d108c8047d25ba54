"""Names of item objects in the object store: unguessable, and dated for the sweep."""

from __future__ import annotations

from datetime import UTC, datetime

from vault.ids import new_id

PREFIX = "items/"


def object_name(now: datetime) -> str:
    """Return a fresh object name: `items/<UTC time>-<128 random bits>`.

    The time lets the sweep tell an abandoned object from a deposit still in flight; the random
    part makes the name unguessable (and unrelated to the item id).
    """
    return f"{PREFIX}{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{new_id()}"


def created_at(name: str) -> datetime | None:
    """Return the time in an item object's `name`, or None if it is not one of ours."""
    if not name.startswith(PREFIX):
        return None
    stamp = name[len(PREFIX) :].split("-", 1)[0]
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
