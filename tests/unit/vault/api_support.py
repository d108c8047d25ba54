"""Helpers of the API tests: the test client's base URL, the accounts by role, an API deposit."""

from __future__ import annotations

import warnings

from starlette.exceptions import StarletteDeprecationWarning

from vault.headers import to_headers

with warnings.catch_warnings():
    # Starlette 1.x asks for `httpx2` in its test client; the `httpx` it wraps works the same.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

__all__ = ["BODY", "NAME", "ROLES", "URL", "TestClient", "deposit"]

URL = "http://vault.test"
BODY = b"Testimony of Rosa Quispe, born 1961 in Ayacucho. " * 400
NAME = "Rosa Quispe"

ROLES = {
    "admin": "custodian",
    "tina": "therapist",
    "theo": "therapist",
    "lena": "lawyer",
    "ava": "advocate",
    "nora": "advocate",
    "audrey": "auditor",
    "cleo": "custodian",  # the second person of the two-person rule
}


def deposit(client: TestClient, case_id: str, consent: str, body: bytes = BODY) -> str:
    params = {
        "kind": "testimony",
        "title": f"Testimony of {NAME}",
        "consent": consent,
        "filename": "rosa-quispe.pdf",
        "notes": f"{NAME} asked to be called back",
    }
    response = client.post(f"/v1/cases/{case_id}/items", headers=to_headers(params), content=body)
    assert response.status_code == 201, response.text
    item_id: str = response.json()["id"]
    return item_id
