"""Object storage: the `ObjectStore` port and the local directory adapter.

The S3 adapter lives in `vault.storage.adapters.s3` (imported only by the composition root, so
that `minio` is loaded only when configured).
"""

from vault.storage.adapters.local import LocalObjectStore, LocalObjectWriter
from vault.storage.ports import (
    MAX_NAME_LENGTH,
    InvalidObjectName,
    ObjectExists,
    ObjectInfo,
    ObjectLocked,
    ObjectNotFound,
    ObjectStore,
    ObjectWriter,
    StorageError,
    StoreFull,
    StoreUnavailable,
    check_name,
    check_prefix,
)

__all__ = [
    "MAX_NAME_LENGTH",
    "InvalidObjectName",
    "LocalObjectStore",
    "LocalObjectWriter",
    "ObjectExists",
    "ObjectInfo",
    "ObjectLocked",
    "ObjectNotFound",
    "ObjectStore",
    "ObjectWriter",
    "StorageError",
    "StoreFull",
    "StoreUnavailable",
    "check_name",
    "check_prefix",
]
