"""Names of item objects in the object store: unguessable, under one prefix the sweep owns."""

from __future__ import annotations

from vault.ids import new_id

PREFIX = "items/"


def object_name() -> str:
    """Return a fresh object name: `items/<128 random bits>`, unrelated to the item id."""
    return f"{PREFIX}{new_id()}"
