"""The item page's trauma-informed previews and the therapist's consent changes (issue 19
points 4 and 7): the same use cases as the API, so the same policy and ledger entries."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import keys
from tests.unit.vault.conftest import principal
from tests.unit.vault.deposit_support import items_in, objects_in
from tests.unit.vault.signed_support import signed_by_tina
from tests.unit.vault.web.web_support import TestClient, entries, form_id, signed_in, token
from vault import consent, ledger, signatures
from vault.cases import create_case, grant
from vault.deposit import Deposit
from vault.parts import Vault
from vault.retrieve import show_item
from vault.web import consent_pages

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\0" * 40
MP4 = b"\0\0\0\x18ftypmp42" + b"\0" * 64


def _deposit(vault: Vault, filename: str, body: bytes, kind: str = "media") -> str:
    case = create_case(vault, principal(vault, "tina"), "Caso A").id
    fields = {
        "case": case,
        "kind": kind,
        "title": "Foto",
        "consent": "legal,therapy",
        "filename": filename,
    }
    started = Deposit.start(vault, principal(vault, "tina"), fields)
    started.write(body)
    return started.commit().item_id


def _downloads(vault: Vault) -> list[ledger.LedgerEntry]:
    return [
        e
        for e in entries(vault, ledger.actions.DECRYPTION)
        if e.details.get("purpose") == "download"
    ]


def test_an_image_preview_is_blurred_until_clicked_and_served_as_a_download(
    vault: Vault,
) -> None:
    item_id = _deposit(vault, "foto.png", PNG)
    client = signed_in(vault, "tina")
    page = client.get(f"/items/{item_id}")
    assert page.status_code == 200
    section = page.text.split('<section class="preview"', 1)[1].split("</section>", 1)[0]
    # The picture sits inside the label of the "show" checkbox: a click on it (or the box)
    # takes the blur away, with no script (the CSP forbids inline script anyway).
    assert re.search(r'<input type="checkbox" id="reveal" class="reveal">', section)
    assert re.search(
        rf'<label for="reveal" class="blurred">\s*<img src="/items/{item_id}/preview"', section
    )
    assert "Show the image unblurred" in section and "autoplay" not in page.text
    css = (Path(__file__).parents[4] / "vault/web/static/web.css").read_text()
    assert ".preview img, .preview video { max-width: 100%; max-height: 60vh; filter: blur" in css
    assert ".preview .reveal:checked ~ .blurred img" in css
    assert not _downloads(vault)  # the page itself decrypts nothing
    preview = client.get(f"/items/{item_id}/preview")
    assert preview.status_code == 200 and preview.content == PNG
    assert preview.headers["content-type"] == "image/png"
    assert preview.headers["content-disposition"] == "inline"
    assert "media-src 'self'" in preview.headers["content-security-policy"]
    # The same use case as the download: the same `decryption` entry, by the session.
    [entry] = _downloads(vault)
    assert entry.item_id == item_id and entry.details["credential"].startswith("session:")


def test_a_video_preview_loads_nothing_and_never_plays_by_itself(vault: Vault) -> None:
    item_id = _deposit(vault, "entrevista.mp4", MP4)
    client = signed_in(vault, "tina")
    page = client.get(f"/items/{item_id}")
    video = re.search(r"<video [^>]*>", page.text)
    assert video, page.text
    assert 'preload="none"' in video.group(0) and "controls" in video.group(0)
    assert "autoplay" not in page.text and "Show the video unblurred" in page.text
    assert client.get(f"/items/{item_id}/preview").headers["content-type"] == "video/mp4"


def test_no_preview_for_text_and_none_for_a_reader_without_the_download(vault: Vault) -> None:
    text_id = _deposit(vault, "testimonio.txt", b"palabras", kind="testimony")
    client = signed_in(vault, "tina")
    page = client.get(f"/items/{text_id}")
    assert page.status_code == 200 and 'class="preview"' not in page.text
    # Served as the download is, never inline, when the name says no image or video.
    other = client.get(f"/items/{text_id}/preview")
    assert other.headers["content-type"] == "application/octet-stream"
    assert other.headers["content-disposition"].startswith("attachment")
    image_id = _deposit(vault, "foto.png", PNG)
    stranger = signed_in(vault, "theo")  # no grant on the case: the policy refuses
    refused = stranger.get(f"/items/{image_id}/preview")
    assert refused.status_code == 404 and PNG not in refused.content
    assert [e.item_id for e in _downloads(vault)] == [text_id]


BOUNDARY = "----tvaultcut"
FILE = "Testimonio cortado: la detención ocurrió en marzo.\n".encode() * 2000


def _multipart(client: TestClient, case_id: str) -> bytes:
    """The deposit form as a browser sends it, with `FILE` last."""
    form = client.get("/deposit")
    fields = [
        ("csrf", token(form)),
        ("form", form_id(form)),
        ("case", case_id),
        ("kind", "testimony"),
        ("title", "Título sellado"),
        ("consent", "therapy"),
    ]
    out = b""
    for name, value in fields:
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    out += f"--{BOUNDARY}\r\n".encode()
    out += b'Content-Disposition: form-data; name="file"; filename="t.txt"\r\n'
    out += b"Content-Type: text/plain\r\n\r\n" + FILE + f"\r\n--{BOUNDARY}--\r\n".encode()
    return out


def _nothing_stored(vault: Vault) -> None:
    assert items_in(vault) == 0 and objects_in(vault) == 0
    assert not entries(vault, ledger.actions.INGESTION)


def test_an_upload_cut_halfway_stores_nothing_and_says_so(vault: Vault) -> None:
    case = create_case(vault, principal(vault, "tina"), "Caso A").id
    client = signed_in(vault, "tina")
    body = _multipart(client, case)
    cut = body[: len(body) // 2]

    def stream() -> Iterator[bytes]:
        # The body stops halfway but the request ends cleanly (its stream closed): the
        # closing boundary never came.
        yield cut[:10_000]
        yield cut[10_000:]

    answer = client.post(
        "/deposit",
        content=stream(),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert answer.status_code == 422, answer.text
    assert "The upload was cut before the end of the file. Nothing was stored" in answer.text
    _nothing_stored(vault)
    [refused] = entries(vault, ledger.actions.DEPOSIT_REFUSED)
    assert (refused.actor, refused.details["cause"]) == ("tina", "bad-field")
    # The same form sent again whole (a retry) is stored once: its one-time id was released.
    again = client.post(
        "/deposit",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert again.status_code == 303, again.text
    assert items_in(vault) == 1 and len(entries(vault, ledger.actions.INGESTION)) == 1


def test_an_upload_whose_connection_drops_halfway_stores_nothing(vault: Vault) -> None:
    case = create_case(vault, principal(vault, "tina"), "Caso A").id
    client = signed_in(vault, "tina")
    body = _multipart(client, case)
    cookie = f"tvault_session={client.cookies['tvault_session']}"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "server": ("vault.test", 80),
        "client": ("127.0.0.1", 50000),
        "path": "/deposit",
        "raw_path": b"/deposit",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"vault.test"),
            (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
            (b"content-length", str(len(body)).encode()),
            (b"cookie", cookie.encode()),
        ],
    }
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": body[: len(body) // 2], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if len(messages) > 1:
            return messages.pop(0)
        await anyio.sleep(0)
        return messages[0]  # gone: every later read says so

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    app = client.app

    async def run() -> None:
        # The app's lifespan is the client's: the vault is already open.
        await app(scope, receive, send)

    anyio.run(run)
    assert sent and sent[0]["status"] == 499  # nobody is left to read an answer
    _nothing_stored(vault)
    [refused] = entries(vault, ledger.actions.DEPOSIT_REFUSED)
    assert (refused.actor, refused.details["cause"]) == ("tina", "interrupted")
    # On retry the same form is accepted: nothing of the cut attempt holds its id.
    again = client.post(
        "/deposit",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert again.status_code == 303, again.text
    assert items_in(vault) == 1


SIGNED_FORM = b"%PDF-1.4 consentimiento firmado por Rosa Quispe\n" * 50
NOTE = "Rosa lo pidió en la sesión del martes"


def _consent_post(
    client: TestClient, item_id: str, fields: list[tuple[str, str]], form: bytes = b""
):  # type: ignore[no-untyped-def]
    # As a browser sends the form: an empty file part when no file was chosen.
    return client.post(
        f"/items/{item_id}/consent",
        files=[
            *((name, (None, value)) for name, value in fields),
            ("consent_form", ("firmado.pdf" if form else "", form, "application/octet-stream")),
        ],
    )


def _versions(vault: Vault, item_id: str) -> list[consent.ConsentVersion]:
    return consent.history(vault, principal(vault, "tina"), item_id)


@pytest.mark.both_databases
def test_the_depositor_changes_consent_with_the_signed_form_as_the_api_does(
    vault: Vault,
) -> None:
    item_id = _deposit(vault, "testimonio.txt", b"palabras", kind="testimony")
    client = signed_in(vault, "tina")
    item = client.get(f"/items/{item_id}")
    assert f'href="/items/{item_id}/consent"' in item.text
    assert f'href="/items/{item_id}/consent"' in client.get("/deposits").text
    page = client.get(f"/items/{item_id}/consent")
    assert page.status_code == 200
    assert "Read by lawyers working on legal cases." in page.text  # the deposit's plain words
    assert re.search(r"<td>1</td><td>\d{4}-\d\d-\d\d \d\d:\d\d UTC</td><td>tina</td>", page.text)
    # `legal` is given: offered to withdraw; `archive` is not: offered to give.
    assert 'name="withdraw" value="legal"' in page.text
    assert 'name="grant" value="archive"' in page.text
    assert 'name="grant" value="legal"' not in page.text
    done = _consent_post(
        client,
        item_id,
        [
            ("csrf", token(page)),
            ("withdraw", "legal"),
            ("grant", "archive"),
            ("basis", "consent_form"),
            ("note", NOTE),
        ],
        SIGNED_FORM,
    )
    assert done.status_code == 303 and done.headers["location"] == f"/items/{item_id}/consent"
    [_v1, v2] = _versions(vault, item_id)
    assert (v2.version, v2.scopes, v2.recorded_by, v2.has_form) == (
        2,
        ("archive", "therapy"),
        "tina",
        True,
    )
    [entry] = entries(vault, ledger.actions.CONSENT_CHANGE)
    assert entry.item_id == item_id and entry.actor == "tina"
    assert entry.details["credential"].startswith("session:")
    assert (entry.details["granted"], entry.details["withdrawn"]) == (["archive"], ["legal"])
    assert entry.details["basis"] == "consent_form"
    assert entry.details["form_sha256"] == hashlib.sha256(SIGNED_FORM).hexdigest()
    assert NOTE not in str(entry.details)  # sealed, never in the clear
    history = client.get(f"/items/{item_id}/consent")
    assert re.search(r"<td>2</td><td>\d{4}-\d\d-\d\d \d\d:\d\d UTC</td><td>tina</td>", history.text)
    assert "Kept in this archive for the long term." in history.text
    assert f'href="/items/{item_id}/consent/2/form"' in history.text
    form = client.get(f"/items/{item_id}/consent/2/form")
    assert form.status_code == 200 and form.content == SIGNED_FORM
    assert form.headers["content-disposition"].startswith("attachment")
    assert [
        e.details["version"]
        for e in entries(vault, ledger.actions.DECRYPTION)
        if e.details.get("purpose") == "consent form"
    ] == [2]


def test_a_contradiction_or_a_missing_form_changes_nothing_and_says_so(vault: Vault) -> None:
    item_id = _deposit(vault, "testimonio.txt", b"palabras", kind="testimony")
    client = signed_in(vault, "tina")
    home = client.get("/")
    client.post("/language", data={"csrf": token(home), "language": "es", "next": "/"})
    csrf = token(client.get(f"/items/{item_id}/consent"))
    both = _consent_post(
        client,
        item_id,
        [("csrf", csrf), ("grant", "legal"), ("withdraw", "legal"), ("basis", "consent_form")],
        SIGNED_FORM,
    )
    assert both.status_code == 422
    assert "Un alcance no puede darse y retirarse a la vez. No se cambió nada." in both.text
    no_form = _consent_post(
        client, item_id, [("csrf", csrf), ("grant", "archive"), ("basis", "consent_form")]
    )
    assert no_form.status_code == 422
    assert "necesita el formulario" in no_form.text and "No se cambió nada." in no_form.text
    assert len(_versions(vault, item_id)) == 1
    assert not entries(vault, ledger.actions.CONSENT_CHANGE)
    # Without the CSRF token: refused before anything is looked at.
    forged = _consent_post(
        client, item_id, [("grant", "archive"), ("basis", "consent_form")], SIGNED_FORM
    )
    assert forged.status_code == 403
    [denied] = entries(vault, ledger.actions.ACCESS_DENIED)
    assert denied.details["reason"] == "missing or wrong CSRF token"
    assert len(_versions(vault, item_id)) == 1
    assert not entries(vault, ledger.actions.CONSENT_CHANGE)


def test_only_the_depositor_confirms_a_change_without_the_form(vault: Vault) -> None:
    item_id = _deposit(vault, "testimonio.txt", b"palabras", kind="testimony")
    [case_id] = {v.case_id for v in [show_item(vault, principal(vault, "tina"), item_id)]}
    grant(vault, principal(vault, "admin"), case_id, "theo", "therapist")
    theo = signed_in(vault, "theo")
    page = theo.get(f"/items/{item_id}/consent")
    refused = _consent_post(
        theo,
        item_id,
        [("csrf", token(page)), ("withdraw", "legal"), ("basis", "depositor_confirmation")],
    )
    assert refused.status_code == 403
    assert "only the therapist who deposited the item may confirm one" in refused.text
    assert len(_versions(vault, item_id)) == 1
    assert not entries(vault, ledger.actions.CONSENT_CHANGE)
    # The policy's refusal is its own entry, as through the API.
    assert entries(vault, ledger.actions.ACCESS_DENIED)
    # With the signed form, theo (granted on the case) may.
    done = _consent_post(
        theo,
        item_id,
        [("csrf", token(page)), ("withdraw", "legal"), ("basis", "consent_form")],
        SIGNED_FORM,
    )
    assert done.status_code == 303
    assert _versions(vault, item_id)[-1].scopes == ("therapy",)
    # The depositor confirms without a form.
    tina = signed_in(vault, "tina")
    csrf = token(tina.get(f"/items/{item_id}/consent"))
    again = _consent_post(
        tina, item_id, [("csrf", csrf), ("grant", "archive"), ("basis", "depositor_confirmation")]
    )
    assert again.status_code == 303
    assert _versions(vault, item_id)[-1].scopes == ("archive", "therapy")
    assert [e.actor for e in entries(vault, ledger.actions.CONSENT_CHANGE)] == ["theo", "tina"]


def _signed_post(client: TestClient, case_id: str, statement: bytes, signature: str, body: bytes):  # type: ignore[no-untyped-def]
    form = client.get("/deposit")
    assert 'name="statement" type="file"' in form.text and 'name="signature"' in form.text
    fields = [
        ("csrf", token(form)),
        ("form", form_id(form)),
        ("case", case_id),
        ("kind", "testimony"),
        ("title", "Título sellado"),
        ("consent", "therapy"),
    ]
    return client.post(
        "/deposit",
        files=[
            *((name, (None, value)) for name, value in fields),
            ("statement", ("statement.json", statement, "application/json")),
            ("signature", ("statement.json.sig", signature.encode(), "text/plain")),
            ("file", ("t.txt", body, "text/plain")),
        ],
    )


@pytest.mark.both_databases
def test_a_signed_statement_through_the_plain_form(vault: Vault) -> None:
    case = create_case(vault, principal(vault, "tina"), "Caso A").id
    client = signed_in(vault, "tina")
    statement, signature = signed_by_tina(vault, case, FILE)
    # The file is not the one signed (one byte short): nothing is stored, and the page says so.
    short = _signed_post(client, case, statement, signature, FILE[:-1])
    assert short.status_code == 422
    assert "The file is not the one the signed statement names. Nothing was stored." in short.text
    _nothing_stored(vault)
    # A signature of something else does not verify.
    forged = _signed_post(
        client, case, statement, keys.sign(b"other", keys.generate_signing_key()[0]), FILE
    )
    assert forged.status_code == 422 and "The signature does not match the statement" in forged.text
    _nothing_stored(vault)
    assert not entries(vault, ledger.actions.DIGITAL_SIGNATURE_VALIDATION)
    done = _signed_post(client, case, statement, signature, FILE)
    assert done.status_code == 303, done.text
    item_id = done.headers["location"].rsplit("/", 1)[1]
    [kept] = signatures.list_signatures(vault, principal(vault, "tina"), item_id)
    assert (kept.role, kept.signer) == ("depositor", "tina")
    assert kept.statement_sha256 == hashlib.sha256(statement).hexdigest()
    [checked] = entries(vault, ledger.actions.DIGITAL_SIGNATURE_VALIDATION)
    assert checked.item_id == item_id and checked.details["outcome"] == "valid"


def _tus(client: TestClient, case_id: str, body: bytes, statement: bytes, signature: str):  # type: ignore[no-untyped-def]
    """Create a resumable upload of `body` as the page's script does, statement attached."""
    page = client.get("/deposit")
    assert 'data-bad-statement="' in page.text
    csrf = token(page)
    fields = {
        "case": case_id,
        "kind": "testimony",
        "title": "Título sellado",
        "consent": "therapy",
        "filename": "t.txt",
        "statement": statement.decode(),
        "signature": signature,
    }
    metadata = ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in fields.items()
    )
    made = client.post(
        "/uploads",
        headers={
            "Tus-Resumable": "1.0.0",
            "Tvault-Csrf": csrf,
            "Upload-Length": str(len(body)),
            "Upload-Metadata": metadata,
        },
    )
    if made.status_code != 201:
        return made
    return client.patch(
        made.headers["Location"],
        content=body,
        headers={
            "Tus-Resumable": "1.0.0",
            "Tvault-Csrf": csrf,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": "0",
        },
    )


def _uploads(vault: Vault) -> list[Path]:
    folder = vault.settings.home / "uploads"
    return list(folder.iterdir()) if folder.exists() else []


def test_a_signed_statement_over_the_page_script_s_resumable_upload(vault: Vault) -> None:
    case = create_case(vault, principal(vault, "tina"), "Caso A").id
    client = signed_in(vault, "tina")
    statement, signature = signed_by_tina(vault, case, FILE)
    # A bad signature is refused when the upload is created, before a byte is sent.
    forged = keys.sign(statement, keys.generate_signing_key()[0])
    refused = _tus(client, case, FILE, statement, forged)
    assert refused.status_code == 422
    assert not _uploads(vault)
    # Other bytes of the same size: refused when the last byte is in, and nothing remains.
    other = FILE[:-1] + b"?"
    refused = _tus(client, case, other, statement, signature)
    assert refused.status_code == 422
    _nothing_stored(vault)
    assert not _uploads(vault)
    done = _tus(client, case, FILE, statement, signature)
    assert done.status_code == 204, done.text
    item_id = done.headers["Tvault-Item"]
    [kept] = signatures.list_signatures(vault, principal(vault, "tina"), item_id)
    assert (kept.role, kept.statement_sha256) == (
        "depositor",
        hashlib.sha256(statement).hexdigest(),
    )


def test_a_consent_form_over_the_limit_is_refused_unread_and_changes_nothing(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consent_pages, "MAX_BODY", 8 * 1024)
    item_id = _deposit(vault, "testimonio.txt", b"palabras", kind="testimony")
    client = signed_in(vault, "tina")
    csrf = token(client.get(f"/items/{item_id}/consent"))
    fields = [("csrf", csrf), ("grant", "archive"), ("basis", "consent_form")]
    big = _consent_post(client, item_id, fields, b"x" * 20_000)
    assert big.status_code == 413 and "larger than this vault accepts" in big.text
    # The same body without a Content-Length (chunked): counted as it streams.
    boundary = "----tvaultconsent"
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields
    )
    body += f"--{boundary}\r\n".encode()
    body += b'Content-Disposition: form-data; name="consent_form"; filename="f.pdf"\r\n\r\n'
    body += b"x" * 20_000 + f"\r\n--{boundary}--\r\n".encode()
    streamed = client.post(
        f"/items/{item_id}/consent",
        content=iter([body[:4096], body[4096:]]),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert streamed.status_code == 413
    assert len(_versions(vault, item_id)) == 1
    assert not entries(vault, ledger.actions.CONSENT_CHANGE)
