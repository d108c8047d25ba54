"""Seal small JSON documents (item metadata, case names) with age, so none is stored readable;
read back a sealed extracted text."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

import keys

if TYPE_CHECKING:
    from vault.storage import ObjectStore


def seal_json(document: Mapping[str, object], recipient: str) -> bytes:
    """Return `document` as JSON sealed to the age `recipient`."""
    plain = json.dumps(document, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return keys.seal_bytes(plain, [recipient])


def open_json(sealed: bytes, identity: str) -> dict[str, object]:
    """Return the JSON document in `sealed`. Raises `keys.UnsealError` if it does not open."""
    document = json.loads(keys.unseal_bytes(sealed, identity).decode("utf-8"))
    if not isinstance(document, dict):
        raise keys.UnsealError("sealed metadata is not a JSON object")
    return document


def read_sealed_text(store: ObjectStore, object_name: str, identity: str) -> str:
    """Return the extracted text sealed in `object_name`, read whole (texts are shown and
    indexed whole). Raises `keys.UnsealError` or `vault.storage.StorageError`."""
    with store.open(object_name) as source:
        sealed = source.read()
    return keys.unseal_bytes(sealed, identity).decode("utf-8")
