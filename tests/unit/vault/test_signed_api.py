"""Signed deposits over HTTP: the statement in headers (raw and multipart bodies), key routes."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

import pytest

import keys
from tests.unit.vault.api_support import URL, TestClient
from tests.unit.vault.tokens import token_for
from vault import signatures
from vault.compose import app_of
from vault.headers import to_headers
from vault.objects import PREFIX
from vault.parts import Vault

BODY = b"Declaration given at the consulate. " * 2000


@pytest.fixture
def clients(vault: Vault) -> Iterator[dict[str, TestClient]]:
    app = app_of(vault)
    made = {
        name: TestClient(
            app, base_url=URL, headers={"Authorization": f"Bearer {token_for(vault, name, role)}"}
        )
        for name, role in (("admin", "custodian"), ("tina", "therapist"))
    }
    yield made
    for client in made.values():
        client.close()


def _headers(statement: bytes, signature: str) -> dict[str, str]:
    return {
        signatures.STATEMENT_HEADER: base64.b64encode(statement).decode(),
        signatures.SIGNATURE_HEADER: base64.b64encode(signature.encode()).decode(),
    }


def test_signed_deposits_raw_and_multipart_and_refusals(
    vault: Vault, clients: dict[str, TestClient]
) -> None:
    tina, admin = clients["tina"], clients["admin"]
    private, public = keys.generate_signing_key()
    assert tina.post("/v1/users/tina/keys", json={"public_key": public}).status_code == 403
    added = admin.post("/v1/users/tina/keys", json={"public_key": public})
    assert added.status_code == 201 and added.json()["key_id"] == keys.key_id(public)
    assert admin.post("/v1/users/tina/keys", json={"public_key": public}).status_code == 409
    assert [k["key_id"] for k in admin.get("/v1/users/tina/keys").json()] == [keys.key_id(public)]

    case = tina.post("/v1/cases", json={"name": "Case"}).json()["id"]
    statement = signatures.build_statement(
        origin=tina.get("/v1/signatures/origin").json()["origin"],
        case=case,
        sha256=hashlib.sha256(BODY).hexdigest(),
        size=len(BODY),
        filename="decl.txt",
        kind="testimony",
        consent=["therapy"],
        key_id=keys.key_id(public),
        signed_at="2026-11-25T12:00:00Z",
    )
    headers = _headers(statement, keys.sign(statement, private))
    params = {"kind": "testimony", "title": "D", "consent": "therapy", "filename": "decl.txt"}

    # Only one of the two headers: refused before anything is stored.
    half = {signatures.STATEMENT_HEADER: headers[signatures.STATEMENT_HEADER]}
    refused = tina.post(
        f"/v1/cases/{case}/items", content=BODY, headers={**half, **to_headers(params)}
    )
    assert refused.status_code == 422
    # Another filename than the signed one.
    other = {**params, "filename": "other.txt"}
    refused = tina.post(
        f"/v1/cases/{case}/items", content=BODY, headers={**headers, **to_headers(other)}
    )
    assert refused.status_code == 422 and "filename" in refused.json()["detail"]
    assert list(vault.store.names(PREFIX)) == []

    raw = tina.post(
        f"/v1/cases/{case}/items", content=BODY, headers={**headers, **to_headers(params)}
    )
    assert raw.status_code == 201, raw.text
    multipart = tina.post(
        f"/v1/cases/{case}/items",
        data={"kind": "testimony", "title": "D", "consent": "therapy"},
        files={"file": ("decl.txt", BODY, "text/plain")},
        headers=headers,
    )
    assert multipart.status_code == 201, multipart.text
    # The same statement with a body one byte short: 422, and the object is gone.
    short = tina.post(
        f"/v1/cases/{case}/items",
        data={"kind": "testimony", "title": "D", "consent": "therapy"},
        files={"file": ("decl.txt", BODY[:-1], "text/plain")},
        headers=headers,
    )
    assert short.status_code == 422 and "sha256" in short.json()["detail"]
    assert len(list(vault.store.names(PREFIX))) == 2
    for item in (raw.json()["id"], multipart.json()["id"]):
        kept = tina.get(f"/v1/items/{item}/signatures").json()
        assert [(s["role"], s["signer"]) for s in kept] == [("depositor", "tina")]
