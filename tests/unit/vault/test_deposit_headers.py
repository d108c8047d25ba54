"""Nothing sealed travels in the URL; languages and account names come from fixed shapes.

A reverse proxy logs request lines: a title, filename or note in the query string is refused
with a problem that says where it goes (vault.headers). A language is stored in the clear, so
it must be a known BCP 47 tag (ingest.languages); an account name matches its pattern whole.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from starlette.exceptions import StarletteDeprecationWarning

from ingest.languages import canonical_language
from tests.unit.vault.tokens import token_for
from vault import ledger
from vault.accounts import add_user
from vault.compose import app_of
from vault.db import Item
from vault.deposit import parse_request
from vault.errors import BadField
from vault.headers import header_name, to_headers
from vault.parts import Vault

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

TITLE = "Declaración de Rosa Quispe — Ayacucho"
META = {"kind": "testimony", "consent": "therapy,legal"}


@pytest.fixture
def tina(vault: Vault) -> Iterator[TestClient]:
    token = token_for(vault, "tina", "therapist")
    with TestClient(
        app_of(vault),
        base_url="http://vault.test",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client


@pytest.fixture
def case_id(tina: TestClient) -> str:
    response = tina.post("/v1/cases", json={"name": "Case of the river"})
    assert response.status_code == 201, response.text
    made: str = response.json()["id"]
    return made


def _items(vault: Vault) -> int:
    with vault.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Item)) or 0)


@pytest.mark.parametrize("field", ["title", "filename", "notes"])
@pytest.mark.parametrize("multipart", [False, True], ids=["raw", "multipart"])
def test_a_sealed_field_in_the_query_string_is_refused_and_says_where_it_goes(
    vault: Vault, tina: TestClient, case_id: str, field: str, multipart: bool
) -> None:
    query = {field: "Rosa Quispe"}
    if multipart:
        response = tina.post(
            f"/v1/cases/{case_id}/items",
            params=query,
            data={**META, "title": "T"},
            files={"file": ("f.txt", b"testimony", "text/plain")},
        )
    else:
        headers = to_headers({**META, "title": "T"} if field != "title" else META)
        response = tina.post(
            f"/v1/cases/{case_id}/items", params=query, headers=headers, content=b"testimony"
        )
    assert response.status_code == 400, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert header_name(field) in problem["detail"] and "query string" in problem["detail"]
    assert "Rosa" not in response.text  # the value is never echoed
    assert _items(vault) == 0


def test_sealed_fields_travel_in_headers_percent_encoded(
    vault: Vault, tina: TestClient, case_id: str
) -> None:
    fields = {**META, "title": TITLE, "filename": "declaración.txt", "notes": "llamar — María"}
    response = tina.post(
        f"/v1/cases/{case_id}/items", headers=to_headers(fields), content=b"testimony"
    )
    assert response.status_code == 201, response.text
    item = tina.get(f"/v1/items/{response.json()['id']}").json()
    assert (item["title"], item["filename"], item["notes"]) == (
        TITLE,
        "declaración.txt",
        "llamar — María",
    )
    assert sorted(item["consent"]) == ["legal", "therapy"]


def test_without_a_title_the_file_name_is_the_title_as_the_cli_does(
    vault: Vault, tina: TestClient, case_id: str
) -> None:
    url = f"/v1/cases/{case_id}/items"
    raw = tina.post(url, headers=to_headers({**META, "filename": "declaración.txt"}), content=b"x")
    assert raw.status_code == 201, raw.text
    form = tina.post(url, data=META, files={"file": ("entrevista.ogg", b"y")})
    assert form.status_code == 201, form.text
    for response, name in ((raw, "declaración.txt"), (form, "entrevista.ogg")):
        item = tina.get(f"/v1/items/{response.json()['id']}").json()
        assert (item["title"], item["filename"]) == (name, name)
    # Neither: refused, nothing stored, and the refusal is a ledger entry (docs/ledger.md).
    before = _items(vault)
    refused = tina.post(url, headers=to_headers(META), content=b"z")
    assert refused.status_code == 422 and "title" in refused.text
    assert _items(vault) == before
    with vault.sessions() as session:
        last = list(ledger.entries(session))[-1]
    assert (last.action, last.case_id) == (ledger.actions.DEPOSIT_REFUSED, case_id)
    assert (last.details["attempted"], last.details["cause"]) == ("item.deposit", "bad-field")


def test_a_header_that_is_not_percent_encoded_utf8_is_refused(
    vault: Vault, tina: TestClient, case_id: str
) -> None:
    headers = {**to_headers(META), "Tvault-Title": "%C3%28"}  # an invalid UTF-8 sequence
    response = tina.post(f"/v1/cases/{case_id}/items", headers=headers, content=b"x")
    assert response.status_code == 422, response.text
    assert "Tvault-Title" in response.json()["detail"]
    assert _items(vault) == 0


def test_a_field_in_both_the_query_string_and_a_header_is_refused(
    tina: TestClient, case_id: str
) -> None:
    headers = to_headers({**META, "title": "T"})
    response = tina.post(
        f"/v1/cases/{case_id}/items", params={"kind": "document"}, headers=headers, content=b"x"
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "given",
    [
        "es-Rosa-Quispe",  # free text in subtags: it would be stored in the clear
        "Rosa",
        "es-",
        "xx",
        "es-ZZ",
        "es-Qaaa",  # private-use script
        "und",
        "es-419-x",
        "es\n",
        "é",
    ],
)
def test_a_language_off_the_known_list_is_refused(vault: Vault, given: str) -> None:
    assert canonical_language(given) is None
    with pytest.raises(BadField, match="language"):
        parse_request({"case": "c", **META, "title": "T", "language": given}, ())


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("es", "es"),
        ("ES-419", "es-419"),
        ("en-gb", "en-GB"),
        ("quc", "quc"),  # K'iche', no two-letter code
        ("sr-latn-rs", "sr-Latn-RS"),
        ("iw", "he"),  # deprecated; CLD2 still says it
    ],
)
def test_a_known_language_is_stored_in_canonical_form(given: str, stored: str) -> None:
    request = parse_request({"case": "c", **META, "title": "T", "language": given}, ())
    assert request.language == stored


def test_the_api_refuses_a_free_text_language(vault: Vault, tina: TestClient, case_id: str) -> None:
    headers = to_headers({**META, "title": "T", "language": "es-Rosa-Quispe"})
    response = tina.post(f"/v1/cases/{case_id}/items", headers=headers, content=b"x")
    assert response.status_code == 422, response.text
    assert _items(vault) == 0


@pytest.mark.parametrize("name", ["boss\n", "boss\r\n", "\nboss", "bo ss", "Boss", "boss\x00"])
def test_an_account_name_must_match_its_pattern_whole(vault: Vault, name: str) -> None:
    with vault.sessions.begin() as session, pytest.raises(BadField, match="name"):
        add_user(session, name, "lawyer", vault.clock())


def _form(parts: list[tuple[str, str | bytes]]) -> tuple[bytes, str]:
    boundary = "orderboundary5"
    body = b""
    for name, value in parts:
        if isinstance(value, bytes):
            head = f'Content-Disposition: form-data; name="{name}"; filename="relato.txt"'
            body += f"--{boundary}\r\n{head}\r\n\r\n".encode() + value + b"\r\n"
        else:
            head = f'Content-Disposition: form-data; name="{name}"'
            body += f"--{boundary}\r\n{head}\r\n\r\n{value}\r\n".encode()
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_multipart_part_order_does_not_matter(vault: Vault, tina: TestClient, case_id: str) -> None:
    url = f"/v1/cases/{case_id}/items"
    fields = [("kind", "testimony"), ("consent", "therapy,legal"), ("title", TITLE),
              ("notes", "después")]  # fmt: skip
    for order in ("file first", "file between", "file last"):
        parts: list[tuple[str, str | bytes]] = list(fields)
        at = {"file first": 0, "file between": 2, "file last": len(parts)}[order]
        parts.insert(at, ("file", b"the same testimony"))
        body, content_type = _form(parts)
        made = tina.post(url, content=body, headers={"Content-Type": content_type})
        assert made.status_code == 201, (order, made.text)
        item = tina.get(f"/v1/items/{made.json()['id']}").json()
        assert (item["kind"], item["title"], item["notes"], item["filename"]) == (
            "testimony",
            TITLE,
            "después",
            "relato.txt",
        ), order
        assert sorted(item["consent"]) == ["legal", "therapy"]
    # A late `filename` field wins over the file part's name; a late bad field refuses the
    # deposit when the body ends: nothing stored, and the refusal is in the ledger.
    body, content_type = _form([("file", b"x"), *fields, ("filename", "carta.txt")])
    made = tina.post(url, content=body, headers={"Content-Type": content_type})
    assert tina.get(f"/v1/items/{made.json()['id']}").json()["filename"] == "carta.txt"
    before = _items(vault)
    body, content_type = _form([("file", b"y"), ("kind", "testimony"), ("consent", "nope")])
    refused = tina.post(url, content=body, headers={"Content-Type": content_type})
    assert refused.status_code == 422 and "consent" in refused.text
    assert _items(vault) == before
    with vault.sessions() as session:
        last = list(ledger.entries(session))[-1]
    assert (last.action, last.details["cause"]) == (ledger.actions.DEPOSIT_REFUSED, "bad-field")


def test_a_multipart_body_cut_before_its_closing_boundary_stores_nothing(
    vault: Vault, tina: TestClient, case_id: str
) -> None:
    body, content_type = _form([*META.items(), ("file", b"the whole testimony " * 500)])
    cut = body[: len(body) - 200]  # the request ends cleanly, without the last boundary
    refused = tina.post(
        f"/v1/cases/{case_id}/items", content=cut, headers={"Content-Type": content_type}
    )
    assert refused.status_code == 422 and "closing boundary" in refused.text
    assert _items(vault) == 0
    with vault.sessions() as session:
        last = list(ledger.entries(session))[-1]
    assert (last.action, last.details["cause"]) == (ledger.actions.DEPOSIT_REFUSED, "bad-field")
