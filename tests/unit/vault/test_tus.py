"""tus 1.0 resumable uploads (`/v1/uploads`), in process on SQLite and PostgreSQL.

An upload sent in pieces, with a wrong offset refused on the way, becomes an item whose SHA-256
is the file's; nothing readable is on disk between requests; an expired upload is gone; a
length over the limit is refused before a byte is sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.unit.vault.tokens import token_for
from vault import ledger, tus
from vault.compose import app_of
from vault.db import Item
from vault.ledger.tables import LedgerRow
from vault.parts import Vault

with warnings.catch_warnings():
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

MARKER = b"MARCADOR-SECRETO-7f3a"
TITLE = "Declaración de la testigo del río"
TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {**TUS, "Content-Type": "application/offset+octet-stream"}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


@pytest.fixture
def tina(vault: Vault) -> Iterator[TestClient]:
    token = token_for(vault, "tina", "therapist")
    app = app_of(vault)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def _case(client: TestClient) -> str:
    response = client.post("/v1/cases", json={"name": "Case of the river"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _create(client: TestClient, case: str, length: int) -> str:
    metadata = ",".join(
        f"{key} {_b64(value)}"
        for key, value in {
            "case": case,
            "kind": "testimony",
            "consent": "therapy,legal",
            "title": TITLE,
            "filetype": "text/plain",
        }.items()
    )
    response = client.post(
        "/v1/uploads", headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": metadata}
    )
    assert response.status_code == 201, response.text
    location = response.headers["Location"]
    assert location.startswith("/v1/uploads/")
    return location


def _readable(root: Path) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if MARKER in data or TITLE.encode("utf-8") in data or b"river" in data:
                found.append(path)
    return found


def test_upload_in_pieces_becomes_the_same_item(vault: Vault, tina: TestClient) -> None:
    case = _case(tina)
    data = (MARKER + b" testimonio " * 5000) * 20
    location = _create(tina, case, len(data))
    half = len(data) // 2

    first = tina.patch(location, content=data[:half], headers={**OCTETS, "Upload-Offset": "0"})
    assert first.status_code == 204, first.text
    assert first.headers["Upload-Offset"] == str(half)
    # Between requests the upload is sealed: neither the bytes nor the title are readable.
    assert _readable(vault.settings.home) == []
    assert list(tus.root(vault).rglob("*.age"))

    head = tina.head(location, headers=TUS)
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == str(half)
    assert head.headers["Upload-Length"] == str(len(data))
    assert head.headers["Cache-Control"] == "no-store"

    wrong = tina.patch(location, content=data[half:], headers={**OCTETS, "Upload-Offset": "0"})
    assert wrong.status_code == 409
    assert tina.head(location, headers=TUS).headers["Upload-Offset"] == str(half)

    last = tina.patch(location, content=data[half:], headers={**OCTETS, "Upload-Offset": str(half)})
    assert last.status_code == 204, last.text
    assert last.headers["Upload-Offset"] == str(len(data))
    item = last.headers["Tvault-Item"]
    assert last.headers["Tvault-Sha256"] == hashlib.sha256(data).hexdigest()

    shown = tina.get(f"/v1/items/{item}").json()
    assert shown["sha256"] == hashlib.sha256(data).hexdigest()
    assert shown["title"] == TITLE
    assert tina.get(f"/v1/items/{item}/content").content == data
    # The segments are gone once deposited.
    assert list(tus.root(vault).iterdir()) == []
    assert tina.head(location, headers=TUS).status_code == 404


def test_refusals_store_nothing(vault: Vault, tina: TestClient) -> None:
    case = _case(tina)
    too_big = vault.settings.max_upload_bytes + 1
    response = tina.post(
        "/v1/uploads",
        headers={
            **TUS,
            "Upload-Length": str(too_big),
            "Upload-Metadata": f"case {_b64(case)},kind {_b64('testimony')}",
        },
    )
    assert response.status_code == 413
    assert tina.post("/v1/uploads", headers={"Upload-Length": "10"}).status_code == 412
    assert tina.post("/v1/uploads", headers=TUS).status_code == 422  # no Upload-Length
    location = _create(tina, case, 10)
    # More bytes than declared, or a plain content type, are refused.
    over = tina.patch(location, content=b"x" * 11, headers={**OCTETS, "Upload-Offset": "0"})
    assert over.status_code == 413
    plain = tina.patch(
        location, content=b"x", headers={**TUS, "Content-Type": "text/plain", "Upload-Offset": "0"}
    )
    assert plain.status_code == 415
    with vault.sessions() as session:
        assert list(session.scalars(select(Item.id))) == []
    # Another account sees no such upload.
    other = token_for(vault, "theo", "therapist")
    assert (
        tina.head(location, headers={**TUS, "Authorization": f"Bearer {other}"}).status_code == 404
    )


def test_expired_upload_is_gone(vault: Vault, tina: TestClient) -> None:
    case = _case(tina)
    location = _create(tina, case, 100)
    assert (
        tina.patch(
            location, content=b"a" * 40, headers={**OCTETS, "Upload-Offset": "0"}
        ).status_code
        == 204
    )
    upload_dir = tus.root(vault) / location.rsplit("/", 1)[1]
    assert upload_dir.is_dir()
    # Not swept before its time, then swept past it.
    assert tus.sweep(vault) == 0
    state = json.loads((upload_dir / "state.json").read_text())
    assert state["expires"] > time.time() + tus.EXPIRY_SECONDS - 60
    assert tus.sweep(vault, now=state["expires"] + 1) == 1
    assert not upload_dir.exists()
    assert tina.head(location, headers=TUS).status_code == 404


def test_a_refused_creation_or_completion_leaves_nothing(vault: Vault, tina: TestClient) -> None:
    case = _case(tina)
    lawyer = token_for(vault, "lena", "lawyer")
    metadata = ",".join(
        [
            f"case {_b64(case)}",
            f"kind {_b64('testimony')}",
            f"consent {_b64('therapy')}",
            f"title {_b64(TITLE)}",
        ]
    )
    refused = tina.post(
        "/v1/uploads",
        headers={
            **TUS,
            "Authorization": f"Bearer {lawyer}",
            "Upload-Length": "5",
            "Upload-Metadata": metadata,
        },
    )
    assert refused.status_code in (403, 404)  # the policy refuses, as for a deposit
    with vault.sessions() as session:
        denied = session.scalars(
            select(LedgerRow).where(LedgerRow.action == ledger.actions.ACCESS_DENIED)
        ).all()
    assert denied  # and the refusal is in the ledger
    assert list(tus.root(vault).iterdir()) == []

    # A completion the deposit refuses (a duplicate, on request) removes the upload too.
    data = b"las mismas palabras " * 100
    dup = f"{metadata},duplicates {_b64('refuse')}"
    for expected in (204, 409):
        made = tina.post(
            "/v1/uploads",
            headers={**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": dup},
        )
        assert made.status_code == 201, made.text
        done = tina.patch(
            made.headers["Location"], content=data, headers={**OCTETS, "Upload-Offset": "0"}
        )
        assert done.status_code == expected, done.text
        assert tina.head(made.headers["Location"], headers=TUS).status_code == 404
    assert list(tus.root(vault).iterdir()) == []
    with vault.sessions() as session:
        assert len(list(session.scalars(select(Item.id)))) == 1
