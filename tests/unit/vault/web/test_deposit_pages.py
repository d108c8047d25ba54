"""The therapist's deposit form and the reader's item pages (issue 19 points 4, 5, 7, 11)."""

from __future__ import annotations

import hashlib
import re

import pytest

from tests.unit.vault.conftest import principal
from tests.unit.vault.deposit_support import items_in, objects_in
from tests.unit.vault.web.web_support import entries, form_id, signed_in, token
from vault import ledger
from vault.cases import create_case
from vault.parts import Vault

BODY = "Testimonio de prueba: la detención ocurrió en marzo.\n".encode()


def _fields(page_csrf: str, form: str, case_id: str) -> list[tuple[str, str]]:
    return [
        ("csrf", page_csrf),
        ("form", form),
        ("case", case_id),
        ("kind", "testimony"),
        ("title", "Título sellado"),
        ("language", "es"),
        ("consent", "therapy"),
        ("consent", "legal"),
    ]


def _post(client, fields: list[tuple[str, str]], body: bytes = BODY):  # type: ignore[no-untyped-def]
    # Field order matters: the file comes last, as a browser sends the form.
    return client.post(
        "/deposit",
        data=dict.fromkeys([]),
        files=[
            *((name, (None, value)) for name, value in fields),
            ("file", ("t.txt", body, "text/plain")),
        ],
    )


@pytest.mark.both_databases
def test_a_deposit_through_the_form_shows_the_item_with_its_digest_once(vault: Vault) -> None:
    case = create_case(vault, principal(vault, "tina"), "Caso A")
    client = signed_in(vault, "tina")
    form = client.get("/deposit")
    assert form.status_code == 200 and "Caso A" in form.text
    assert "Read by lawyers working on legal cases." in form.text  # consent in plain words
    fields = _fields(token(form), form_id(form), case.id)
    done = _post(client, fields)
    assert done.status_code == 303, done.text
    location = done.headers["location"]
    assert re.fullmatch(r"/items/[a-z2-7]{26}", location)  # ids only in the URL
    page = client.get(location)
    digest = hashlib.sha256(BODY).hexdigest()
    assert digest in page.text and "Título sellado" in page.text
    assert "<title>Item " in page.text and "Título sellado" not in page.text.split("</title>")[0]
    assert "Content notice" in page.text and "la detención" not in page.text
    [ingested] = entries(vault, ledger.actions.INGESTION)
    assert ingested.details["credential"].startswith("session:")
    # A second submission of the same form (double click, reload) stores nothing.
    again = _post(client, fields)
    assert again.status_code == 409 and "sent already" in again.text
    assert items_in(vault) == 1 and len(entries(vault, ledger.actions.INGESTION)) == 1
    download = client.get(f"{location}/download")
    assert download.content == BODY
    assert hashlib.sha256(download.content).hexdigest() == digest
    assert download.headers["cache-control"] == "no-store"
    mine = client.get("/deposits")
    assert location.rsplit("/", 1)[1] in mine.text and "Caso A" in mine.text


def test_a_deposit_without_the_csrf_token_stores_nothing(vault: Vault) -> None:
    case = create_case(vault, principal(vault, "tina"), "Caso A")
    client = signed_in(vault, "tina")
    form = client.get("/deposit")
    fields = [f for f in _fields(token(form), form_id(form), case.id) if f[0] != "csrf"]
    refused = _post(client, fields)
    assert refused.status_code == 403 and "did not come from this site" in refused.text
    assert items_in(vault) == 0 and objects_in(vault) == 0
    assert not entries(vault, ledger.actions.INGESTION)
    # One entry: the refused form's `access denied`, no second `deposit refused`.
    [denied] = entries(vault, ledger.actions.ACCESS_DENIED)
    assert denied.details["reason"] == "missing or wrong CSRF token"
    assert not entries(vault, ledger.actions.DEPOSIT_REFUSED)


def test_a_file_over_the_limit_gets_a_clear_message_and_stores_nothing(vault: Vault) -> None:
    vault.settings = vault.settings.model_copy(update={"max_upload_bytes": 1024})
    case = create_case(vault, principal(vault, "tina"), "Caso A")
    client = signed_in(vault, "tina")
    form = client.get("/deposit")
    fields = _fields(token(form), form_id(form), case.id)
    refused = _post(client, fields, body=b"x" * 200_000)
    assert refused.status_code == 413 and "larger than this vault accepts" in refused.text
    assert items_in(vault) == 0 and objects_in(vault) == 0
    # Recorded as the API records it (vault.api.refusals), by the signed-in account.
    [entry] = entries(vault, ledger.actions.DEPOSIT_REFUSED)
    assert (entry.actor, entry.details["attempted"], entry.details["cause"]) == (
        "tina",
        "item.deposit",
        "too-large",
    )
    assert entry.details["credential"].startswith("session:")
    # The form can be sent again (with a smaller file): its id was not spent.
    assert _post(client, fields).status_code == 303


def test_a_bad_field_names_the_field_in_the_reader_s_language(vault: Vault) -> None:
    case = create_case(vault, principal(vault, "tina"), "Caso A")
    client = signed_in(vault, "tina")
    home = client.get("/")
    client.post("/language", data={"csrf": token(home), "language": "es", "next": "/"})
    form = client.get("/deposit")
    fields = [f for f in _fields(token(form), form_id(form), case.id) if f[0] != "consent"]
    refused = _post(client, fields)
    assert refused.status_code == 422 and "Revise este campo: Consentimiento." in refused.text
    assert items_in(vault) == 0 and objects_in(vault) == 0
    [entry] = entries(vault, ledger.actions.DEPOSIT_REFUSED)
    assert (entry.actor, entry.details["cause"]) == ("tina", "bad-field")


def test_search_is_a_post_and_the_item_text_waits_behind_the_notice(vault: Vault) -> None:
    case = create_case(vault, principal(vault, "tina"), "Caso A")
    client = signed_in(vault, "tina")
    form = client.get("/deposit")
    location = _post(client, _fields(token(form), form_id(form), case.id)).headers["location"]
    assert client.get("/search?q=detención").text.count("detención") == 0  # GET shows a form
    page = client.get("/search")
    results = client.post("/search", data={"csrf": token(page), "q": "detención"})
    assert results.status_code == 200 and "results" in results.text
    [searched] = entries(vault, ledger.actions.SEARCH)
    assert "detención" not in str(searched.details)
    text = client.get(f"{location}/text")
    assert text.status_code == 200 and "No text has been read from this item yet." in text.text
    other = signed_in(vault, "theo")
    assert other.get(location).status_code == 404  # another therapist's case: not found


def _tus_metadata(case_id: str) -> str:
    import base64

    fields = {"case": case_id, "kind": "testimony", "consent": "therapy", "title": "Título sellado"}
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in fields.items()
    )


def test_the_page_script_uploads_over_tus_with_the_session_and_its_csrf_token(
    vault: Vault,
) -> None:
    case = create_case(vault, principal(vault, "tina"), "Caso T")
    client = signed_in(vault, "tina")
    page = client.get("/deposit")
    # The script is served from /static (no other origin), with the words it shows.
    assert '<script src="/static/upload.js" defer></script>' in page.text
    assert 'data-too-large="' in page.text and client.get("/static/upload.js").status_code == 200
    csrf = token(page)
    create = {
        "Tus-Resumable": "1.0.0",
        "Upload-Length": str(len(BODY)),
        "Upload-Metadata": _tus_metadata(case.id),
    }
    # Without the page's token (what a cross-site request would be) nothing is created, and
    # the refusal is in the ledger.
    refused = client.post("/uploads", headers=create)
    assert refused.status_code == 403
    assert entries(vault, ledger.actions.ACCESS_DENIED)
    made = client.post("/uploads", headers={**create, "Tvault-Csrf": csrf})
    assert made.status_code == 201, made.text
    location = made.headers["Location"]
    assert re.fullmatch(r"/uploads/[a-z2-7]{26}", location)
    patch = {
        "Tus-Resumable": "1.0.0",
        "Tvault-Csrf": csrf,
        "Content-Type": "application/offset+octet-stream",
    }
    half = len(BODY) // 2
    first = client.patch(location, content=BODY[:half], headers={**patch, "Upload-Offset": "0"})
    assert first.status_code == 204 and items_in(vault) == 0
    last = client.patch(
        location, content=BODY[half:], headers={**patch, "Upload-Offset": str(half)}
    )
    assert last.status_code == 204, last.text
    assert last.headers["Tvault-Sha256"] == hashlib.sha256(BODY).hexdigest()
    item = client.get(f"/items/{last.headers['Tvault-Item']}")
    assert "Título sellado" in item.text and items_in(vault) == 1
    [ingested] = entries(vault, ledger.actions.INGESTION)
    assert ingested.details["credential"].startswith("session:")
