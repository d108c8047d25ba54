"""The API from its own docs: `/docs` and `/redoc` served offline from the vault, no third
party; the deposit route's OpenAPI entry describes its bodies, so "Try it out" can deposit."""

from __future__ import annotations

import base64
import hashlib
import re
import warnings
from collections.abc import Iterator

import pytest

from tests.unit.vault.tokens import token_for
from vault.api.docs_pages import ASSETS, manifest
from vault.compose import app_of
from vault.parts import Vault

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture
def client(vault: Vault) -> Iterator[TestClient]:
    with TestClient(app_of(vault), base_url="http://vault.test") as made:
        yield made


def _sha384(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_nothing_from_another_origin(client: TestClient, page: str) -> None:
    response = client.get(page)  # no token: public
    assert response.status_code == 200
    html = response.text
    assert not re.search(r"(?i)\b(https?:)?//", html), "a URL with a host in the page"
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self';" in csp
    assert "<script>" not in html  # no inline script: the CSP forbids them
    references = re.findall(r'(?:src|href)="([^"]+)" integrity="([^"]+)"', html)
    assert references, "no asset referenced"
    for url, integrity in references:
        asset = client.get("/" + url)
        assert asset.status_code == 200, url
        assert _sha384(asset.content) == integrity, url


def test_the_vendored_files_match_their_pinned_digests() -> None:
    files = manifest()["files"]
    assert set(files) >= {"swagger-ui/swagger-ui-bundle.js", "redoc/redoc.standalone.js"}
    for name, integrity in files.items():
        assert _sha384((ASSETS / name).read_bytes()) == integrity, name
    for package in manifest()["packages"].values():
        assert re.fullmatch(r"\d+\.\d+\.\d+", package["version"])
        assert package["tarball_integrity"].startswith("sha512-")


@pytest.mark.parametrize("name", ["../docs_pages.py", "vendored.json", "..%2Fdisposition.py"])
def test_only_the_listed_assets_are_served(client: TestClient, name: str) -> None:
    assert client.get(f"/docs/assets/{name}").status_code == 404


def test_the_deposit_route_describes_its_bodies_and_headers(
    client: TestClient, vault: Vault
) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/v1/cases/{case_id}/items"]["post"]
    content = operation["requestBody"]["content"]
    assert content["application/octet-stream"]["schema"]["format"] == "binary"
    form = content["multipart/form-data"]["schema"]
    assert form["properties"]["file"]["format"] == "binary"
    assert {"kind", "consent", "file"} <= set(form["required"])
    headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert {"Tvault-Kind", "Tvault-Title", "Tvault-Consent", "Idempotency-Key"} <= headers
    # "Try it out": the form as Swagger UI builds it from the schema, fields in its order.
    token = token_for(vault, "tina", "therapist")
    auth = {"Authorization": f"Bearer {token}"}
    case = client.post("/v1/cases", json={"name": "Docs"}, headers=auth).json()["id"]
    values = {"kind": "testimony", "consent": "therapy", "title": "Desde la documentación"}
    data = {name: values[name] for name in form["properties"] if name in values}
    made = client.post(
        f"/v1/cases/{case}/items",
        data=data,
        files={"file": ("t.txt", b"testimony")},
        headers=auth,
    )
    assert made.status_code == 201, made.text
    # The raw form, as the headers' descriptions say.
    raw = client.post(
        f"/v1/cases/{case}/items",
        content=b"testimony",
        headers={**auth, "Tvault-Kind": "document", "Tvault-Consent": "therapy",
                 "Tvault-Filename": "carta.txt"},
    )  # fmt: skip
    assert raw.status_code == 201, raw.text
