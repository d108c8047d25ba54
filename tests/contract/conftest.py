"""Fixtures of the contract suites: `target` is one `ObjectStore` adapter ready for a test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.s3server import S3Server, admin_client, moto_s3, real_s3, s3_bucket
from vault.storage import LocalObjectStore, ObjectStore
from vault.storage.adapters.s3 import S3ObjectStore

__all__ = ["StoreTarget", "moto_s3", "real_s3", "s3_bucket"]

S3_PART_SIZE = 5 * 1024 * 1024  # S3's minimum, so multipart tests stay small


@dataclass
class StoreTarget:
    """An adapter under test, with what the contract needs to look behind it."""

    store: ObjectStore
    prefix: str  # every name a test uses starts with it (a real bucket may be shared)
    traces: Callable[[], list[str]]  # what is left besides committed objects: must stay empty
    multipart_size: int  # an upload this large takes the adapter's multi-part path
    clock_skew: float  # seconds between this machine's clock and the store's timestamps
    locks: bool = True  # `lock` makes `delete` refuse (False: an S3 bucket without lock)

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


def _s3_traces(server: S3Server, bucket: str, prefix: str) -> Callable[[], list[str]]:
    def traces() -> list[str]:
        with admin_client(server) as client:
            found = [
                f"version {o.object_name} {o.version_id}"
                + (" (delete marker)" if o.is_delete_marker else " (not latest)")
                for o in client.list_objects(
                    bucket, prefix=prefix, recursive=True, include_version=True
                )
                if o.is_delete_marker or str(o.is_latest).lower() != "true"
            ]
            # No public call lists multipart uploads in minio 7.2.20; the test may use this one.
            uploads = client._list_multipart_uploads(bucket, prefix=prefix).uploads
            found += [f"multipart upload {u.object_name} {u.upload_id}" for u in uploads]
        return sorted(found)

    return traces


def _s3_target(server: S3Server, bucket: str) -> Iterator[StoreTarget]:
    prefix = f"test-{uuid.uuid4().hex[:12]}/"
    store = S3ObjectStore(
        server.endpoint,
        server.access_key,
        server.secret_key,
        bucket,
        secure=server.secure,
        ca_file=server.ca_file,
        object_lock=server.object_lock,
        # One day in GOVERNANCE mode: what tests lock on a real bucket expires tomorrow.
        retention_days=1,
        retention_mode="GOVERNANCE",
        part_size=S3_PART_SIZE,
    )
    try:
        yield StoreTarget(
            store=store,
            prefix=prefix,
            traces=_s3_traces(server, bucket, prefix),
            multipart_size=S3_PART_SIZE + 1,
            clock_skew=2.0 if server.bucket is None else 300.0,
            locks=server.object_lock,
        )
    finally:
        store.close()


@pytest.fixture
def s3_moto_target(moto_s3: S3Server, s3_bucket: str) -> Iterator[StoreTarget]:
    """An `S3ObjectStore` on a fresh object-lock bucket of the moto server."""
    yield from _s3_target(moto_s3, s3_bucket)


@pytest.fixture
def s3_real_target(real_s3: S3Server) -> Iterator[StoreTarget]:
    """An `S3ObjectStore` on the real endpoint's bucket, under a fresh prefix."""
    assert real_s3.bucket is not None
    yield from _s3_target(real_s3, real_s3.bucket)


@pytest.fixture(
    params=[
        "local",
        pytest.param("s3-moto", marks=pytest.mark.s3),
        pytest.param("s3-real", marks=pytest.mark.s3),
    ]
)
def target(request: pytest.FixtureRequest) -> StoreTarget:
    """Each `ObjectStore` adapter in turn."""
    value: StoreTarget = request.getfixturevalue(f"{request.param.replace('-', '_')}_target")
    return value
