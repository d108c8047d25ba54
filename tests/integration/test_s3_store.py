"""What the S3 adapter does beyond the port contract, against the moto server on loopback.

moto honours: object lock buckets, retention set per version, refusal to delete a version under
retention, multipart uploads and their abort. It does NOT enforce, unlike real servers: that
COMPLIANCE retention cannot be shortened, nor governance-bypass permissions; those rules are the
server's, and are checked only against a real endpoint (`TVAULT_TEST_S3_ENDPOINT`) if at all.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import urllib3
from minio.commonconfig import GOVERNANCE
from minio.error import S3Error, ServerError
from minio.objectlockconfig import DAYS, ObjectLockConfig

from tests.s3server import S3Server, admin_client
from vault.storage import (
    ObjectExists,
    ObjectLocked,
    ObjectNotFound,
    StorageError,
    StoreFull,
    StoreUnavailable,
)
from vault.storage.adapters.s3 import S3ObjectStore, S3ObjectWriter, _parse_time

pytestmark = pytest.mark.s3

MIB = 1024 * 1024
PART = 5 * MIB


def _store(server: S3Server, bucket: str, **overrides: object) -> S3ObjectStore:
    options: dict[str, object] = {
        "secure": True,
        "ca_file": server.ca_file,
        "object_lock": True,
        "retention_days": 30,
        "retention_mode": "GOVERNANCE",
        "part_size": PART,
    }
    options.update(overrides)
    return S3ObjectStore(
        server.endpoint,
        server.access_key,
        server.secret_key,
        bucket,
        **options,  # type: ignore[arg-type]
    )


def _uploads(server: S3Server, bucket: str) -> list[str]:
    with admin_client(server) as client:
        result = client._list_multipart_uploads(bucket)
        return [u.object_name for u in result.uploads]


def _retention(server: S3Server, bucket: str, name: str) -> tuple[str | None, datetime | None]:
    with admin_client(server) as client:
        headers = client.stat_object(bucket, name).metadata
    return headers.get("x-amz-object-lock-mode"), _parse_time(
        headers.get("x-amz-object-lock-retain-until-date")
    )


def test_multipart_upload_is_aborted_when_abandoned(moto_s3: S3Server, s3_bucket: str) -> None:
    store = _store(moto_s3, s3_bucket)
    with store.writer("items/abandoned") as out:
        block = os.urandom(64 * 1024)
        # Over two parts: `write` returns only once the upload thread has pulled all but the
        # queued chunks, so the multipart upload has started by then.
        for _ in range((2 * PART + MIB) // len(block)):
            out.write(block)
        assert _uploads(moto_s3, s3_bucket) == ["items/abandoned"]
    assert _uploads(moto_s3, s3_bucket) == []
    assert not store.exists("items/abandoned")
    store.close()


def test_large_object_round_trip_through_several_parts(moto_s3: S3Server, s3_bucket: str) -> None:
    store = _store(moto_s3, s3_bucket)
    data = os.urandom(3 * PART + 17)
    with store.writer("items/large") as out:
        for offset in range(0, len(data), 100_000):
            out.write(data[offset : offset + 100_000])
        out.commit()
    with store.open("items/large") as src:
        assert src.read() == data
    assert _uploads(moto_s3, s3_bucket) == []
    store.close()


def test_retention_is_set_only_by_lock(moto_s3: S3Server, s3_bucket: str) -> None:
    store = _store(moto_s3, s3_bucket, retention_days=30, retention_mode="COMPLIANCE")
    with store.writer("items/deposit") as out:
        out.write(b"ciphertext")
        out.commit()
    assert _retention(moto_s3, s3_bucket, "items/deposit") == (None, None)
    before = datetime.now(UTC).replace(microsecond=0)
    store.lock("items/deposit")
    mode, until = _retention(moto_s3, s3_bucket, "items/deposit")
    assert mode == "COMPLIANCE"
    assert until is not None
    assert before + timedelta(days=30) <= until <= datetime.now(UTC) + timedelta(days=30)
    with pytest.raises(ObjectLocked):
        store.delete("items/deposit")
    store.close()


def test_put_locked_sets_retention(moto_s3: S3Server, s3_bucket: str) -> None:
    store = _store(moto_s3, s3_bucket, retention_days=7)
    store.put_locked("checkpoints/00000001", b"note")
    mode, until = _retention(moto_s3, s3_bucket, "checkpoints/00000001")
    assert mode == "GOVERNANCE"
    assert until is not None and until > datetime.now(UTC) + timedelta(days=6)
    store.close()


def test_delete_removes_every_version(moto_s3: S3Server, s3_bucket: str) -> None:
    store = _store(moto_s3, s3_bucket)
    with store.writer("items/failed-deposit") as out:
        out.write(b"ciphertext")
        out.commit()
    store.delete("items/failed-deposit")
    with admin_client(moto_s3) as client:
        versions = list(
            client.list_objects(s3_bucket, prefix="items/", recursive=True, include_version=True)
        )
    assert versions == []  # no delete marker hiding a kept version
    store.close()


def test_without_object_lock_lock_only_checks_existence(moto_s3: S3Server) -> None:
    bucket = f"plain-{uuid.uuid4().hex[:12]}"
    with admin_client(moto_s3) as client:
        client.make_bucket(bucket)
    store = _store(moto_s3, bucket, object_lock=False, retention_days=0)
    with pytest.raises(ObjectNotFound):
        store.lock("checkpoints/1")
    store.put_locked("checkpoints/1", b"note")
    assert _retention(moto_s3, bucket, "checkpoints/1") == (None, None)
    store.delete("checkpoints/1")
    assert not store.exists("checkpoints/1")
    store.close()


def test_untrusted_certificate_is_refused(moto_s3: S3Server, s3_bucket: str) -> None:
    store = _store(moto_s3, s3_bucket, ca_file=None)  # the system CAs: the test cert is unknown
    with pytest.raises(StorageError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify"):
        store.exists("items/x")
    store.close()


def test_missing_bucket_is_a_storage_error(moto_s3: S3Server) -> None:
    store = _store(moto_s3, "no-such-bucket-here")
    with pytest.raises(StorageError, match="NoSuchBucket"):
        store.writer("items/x")
    store.close()


def test_commit_refuses_a_name_taken_meanwhile(moto_s3: S3Server, s3_bucket: str) -> None:
    store = _store(moto_s3, s3_bucket)
    slow = store.writer("items/same")
    slow.write(b"second")
    store.put_locked("items/same", b"first")
    with pytest.raises(ObjectExists), slow:
        slow.commit()
    with store.open("items/same") as src:
        assert src.read() == b"first"
    assert _uploads(moto_s3, s3_bucket) == []
    store.close()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2036-11-25T10:00:00Z", datetime(2036, 11, 25, 10, tzinfo=UTC)),
        ("2036-11-25T10:00:00.123Z", datetime(2036, 11, 25, 10, 0, 0, 123000, tzinfo=UTC)),
        # Ceph RGW sends nanoseconds, which minio 7.2.20's own parser refuses.
        ("2036-11-25T10:00:00.123456789Z", datetime(2036, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)),
        ("", None),
        (None, None),
        ("not a date", None),
    ],
)
def test_retention_dates_of_any_precision_parse(value: str | None, expected: object) -> None:
    assert _parse_time(value) == expected


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="retention mode"):
        S3ObjectStore("h:1", "a", "s", "b", retention_mode="FOREVER")
    with pytest.raises(ValueError, match="at least one day"):
        S3ObjectStore("h:1", "a", "s", "b", object_lock=True, retention_days=0)
    with pytest.raises(ValueError, match="part size"):
        S3ObjectStore("h:1", "a", "s", "b", part_size=MIB)


def test_upload_failing_in_the_thread_reaches_the_caller(moto_s3: S3Server) -> None:
    # The bucket is missing, so the upload thread's first request fails; the writer is built
    # directly to get past `writer()`'s own check, as if the bucket vanished meanwhile.
    store = _store(moto_s3, f"gone-{uuid.uuid4().hex[:12]}")
    block = os.urandom(64 * 1024)
    with pytest.raises(StorageError, match="NoSuchBucket"), S3ObjectWriter(store, "items/x") as out:
        for _ in range((2 * PART) // len(block)):
            out.write(block)
        out.commit()
    store.close()


def test_check_bucket(moto_s3: S3Server, s3_bucket: str) -> None:
    _store(moto_s3, s3_bucket).check_bucket()
    plain, defaulted = f"plain-{uuid.uuid4().hex[:12]}", f"default-{uuid.uuid4().hex[:12]}"
    with admin_client(moto_s3) as client:
        client.make_bucket(plain)
        client.make_bucket(defaulted, object_lock=True)
        client.set_object_lock_config(defaulted, ObjectLockConfig(GOVERNANCE, 30, DAYS))
    _store(moto_s3, plain, object_lock=False, retention_days=0).check_bucket()
    with pytest.raises(StorageError, match="has no object lock"):
        _store(moto_s3, plain).check_bucket()
    with pytest.raises(StorageError, match="default retention"):
        _store(moto_s3, defaulted).check_bucket()
    with pytest.raises(StorageError, match="does not exist"):
        _store(moto_s3, f"missing-{uuid.uuid4().hex[:12]}").check_bucket()


def _s3_error(code: str) -> S3Error:
    response = urllib3.HTTPResponse(body=b"", status=507)
    return S3Error(response, code, "refused", "/b/items/x", "req", "host")


@pytest.mark.parametrize("code", ["XMinioStorageFull", "XMinioAdminBucketQuotaExceeded"])
def test_a_full_server_is_store_full_until_an_upload_succeeds(
    moto_s3: S3Server, s3_bucket: str, code: str
) -> None:
    # moto cannot fill up: the server's answer is made here, and what follows from it is real.
    store = _store(moto_s3, s3_bucket)
    store.check_writable()
    assert isinstance(store._error("upload", "items/x", _s3_error(code)), StoreFull)
    # S3 cannot be asked for free space: readiness repeats the last refusal for a while...
    with pytest.raises(StoreFull):
        store.check_writable()
    # ...until an upload is taken again.
    with store.writer("items/after") as out:
        out.write(b"room again")
        out.commit()
    store.check_writable()
    store.close()


def test_a_server_that_cannot_serve_or_be_reached_is_store_unavailable() -> None:
    store = S3ObjectStore("127.0.0.1:1", "a", "s", "b")
    refused = urllib3.exceptions.MaxRetryError(None, "/b", reason=ConnectionRefusedError())  # type: ignore[arg-type]
    for error in (refused, _s3_error("SlowDown"), ServerError("bad gateway", 503)):
        mapped = store._error("upload", "items/x", error)
        assert isinstance(mapped, StoreUnavailable) and mapped.cause == "unreachable", error
    assert type(store._error("upload", "items/x", _s3_error("AccessDenied"))) is StorageError
    store.close()
