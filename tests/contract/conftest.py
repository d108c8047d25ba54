"""Fixtures of the contract suites: `target` is one `ObjectStore` adapter ready for a test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vault.storage import LocalObjectStore, ObjectStore


@dataclass
class StoreTarget:
    """An adapter under test, with what the contract needs to look behind it."""

    store: ObjectStore
    prefix: str  # every name a test uses starts with it (a real bucket may be shared)
    traces: Callable[[], list[str]]  # what is left besides committed objects: must stay empty
    multipart_size: int  # an upload this large takes the adapter's multi-part path
    clock_skew: float  # seconds between this machine's clock and the store's timestamps

    def name(self, suffix: str) -> str:
        """Return a name under this target's prefix."""
        return self.prefix + suffix


def _local_traces(root: Path, store: LocalObjectStore) -> Callable[[], list[str]]:
    def traces() -> list[str]:
        committed = {str(store._path(name).relative_to(root)) for name in store.names()}
        found = []
        for dirpath, _dirs, files in os.walk(root):
            for file in files:
                rel = str((Path(dirpath) / file).relative_to(root))
                if rel != ".tmp/.lock" and rel not in committed:
                    found.append(rel)
        return sorted(found)

    return traces


@pytest.fixture
def local_target(tmp_path: Path) -> Iterator[StoreTarget]:
    """A `LocalObjectStore` in a fresh directory."""
    root = tmp_path / "store"
    store = LocalObjectStore(root)
    yield StoreTarget(
        store=store,
        prefix=f"case-{uuid.uuid4().hex[:8]}/",
        traces=_local_traces(root, store),
        multipart_size=3 * 1024 * 1024,
        clock_skew=1.0,
    )
    store.close()


@pytest.fixture(params=["local"])
def target(request: pytest.FixtureRequest) -> StoreTarget:
    """Each `ObjectStore` adapter in turn."""
    value: StoreTarget = request.getfixturevalue(f"{request.param.replace('-', '_')}_target")
    return value
