"""tus 1.0 resumable uploads (`/v1/uploads`), in process on SQLite and PostgreSQL.

An upload sent in pieces, with a wrong offset refused on the way, becomes an item whose SHA-256
is the file's; nothing readable is on disk between requests; an expired upload is gone; a
length over the limit is refused before a byte is sent.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import itertools
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

import keys
from tests.unit.vault.conftest import principal
from tests.unit.vault.signed_support import signed_by_tina
from tests.unit.vault.tokens import token_for
from vault import item_keys, ledger, signatures, tus
from vault.compose import app_of
from vault.db import Item, ItemKey
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


def _metadata(fields: dict[str, str]) -> str:
    """`fields` as an `Upload-Metadata` header: each key and its value in base64."""
    return ",".join(f"{key} {_b64(value)}" for key, value in fields.items())


def _create(client: TestClient, case: str, length: int) -> str:
    metadata = _metadata(
        {
            "case": case,
            "kind": "testimony",
            "consent": "therapy,legal",
            "title": TITLE,
            "filetype": "text/plain",
        }
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
    state = tus._state(upload_dir)
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


# --- the object written in its final form (issue 19 point 12) --------------------------------

CHUNK = keys.CHUNK_SIZE


def _send(client: TestClient, location: str, data: bytes, cuts: list[int]) -> str:
    """PATCH `data` in pieces ending at `cuts`; return the item named by the last answer."""
    bounds = [0, *cuts, len(data)]
    answer = None
    for start, end in itertools.pairwise(bounds):
        answer = client.patch(
            location, content=data[start:end], headers={**OCTETS, "Upload-Offset": str(start)}
        )
        assert answer.status_code == 204, answer.text
        assert answer.headers["Upload-Offset"] == str(end)
    assert answer is not None
    return answer.headers["Tvault-Item"]


def _stored_as_deposited(vault: Vault, client: TestClient, item: str, data: bytes) -> None:
    """The item holds `data`, its object is a normal age file, and the recorded digests are
    the plaintext's and the stored object's."""
    assert client.get(f"/v1/items/{item}/content").content == data
    with vault.sessions() as session:
        row = session.get(Item, item)
        assert row is not None and row.sha256 == hashlib.sha256(data).hexdigest()
        cipher = signatures.ciphertexts_of(session)[item]
        name = row.object_name
    with vault.store.open(name) as src:
        stored = src.read()
    assert cipher == (hashlib.sha256(stored).hexdigest(), len(stored))
    identity = _identity_of(vault, item)
    assert b"".join(keys.open_stream(io.BytesIO(stored), identity)) == data
    assert list(tus.root(vault).iterdir()) == []


def _identity_of(vault: Vault, item: str) -> str:
    with vault.sessions() as session:
        key = session.get(ItemKey, item)
        assert key is not None
        return item_keys.open_identity(vault.keyring, item, key.wrapped)


@pytest.mark.parametrize(
    ("length", "cuts"),
    [
        (1, []),  # a 1-byte upload
        (3 * CHUNK, [CHUNK, 2 * CHUNK]),  # a multiple of 64 KiB, each PATCH whole chunks
        (3 * CHUNK, [CHUNK + 5]),  # the last chunk exactly 64 KiB, after a tail
        (2 * CHUNK + 7, [10, CHUNK - 1, CHUNK + 3]),  # PATCHes ending mid-chunk
        (5 * CHUNK + 1, [5 * CHUNK]),  # the last PATCH is one byte, alone in its chunk
    ],
    ids=["one-byte", "whole-chunks", "last-chunk-full", "mid-chunk", "last-byte-alone"],
)
def test_pieces_of_any_size_make_the_object_a_deposit_makes(
    vault: Vault, tina: TestClient, length: int, cuts: list[int]
) -> None:
    case = _case(tina)
    data = ((MARKER + b" palabras ") * (length // 20 + 1))[:length]
    location = _create(tina, case, length)
    item = _send(tina, location, data, cuts)
    _stored_as_deposited(vault, tina, item, data)


def test_a_patch_ending_mid_chunk_keeps_its_rest_sealed(vault: Vault, tina: TestClient) -> None:
    case = _case(tina)
    data = (MARKER + b" el resto de la frase ") * 10_000
    location = _create(tina, case, len(data))
    cut = CHUNK + 1000
    first = tina.patch(location, content=data[:cut], headers={**OCTETS, "Upload-Offset": "0"})
    assert first.headers["Upload-Offset"] == str(cut)
    upload = tus.root(vault) / location.rsplit("/", 1)[1]
    [tail] = list(upload.glob("tail-*.age"))
    assert tail.name == f"tail-{cut}.age"
    assert _readable(vault.settings.home) == []
    # One whole chunk in the object, the 1000 bytes past it in the tail, sealed.
    state = tus._state(upload)
    assert state["stored"] - state["header"] == CHUNK + 16
    assert (upload / tus.OBJECT).stat().st_size == state["stored"]
    last = tina.patch(location, content=data[cut:], headers={**OCTETS, "Upload-Offset": str(cut)})
    assert last.status_code == 204, last.text
    item = last.headers["Tvault-Item"]
    _stored_as_deposited(vault, tina, item, data)


def test_resumed_in_a_new_process_the_digests_are_computed_again(
    vault: Vault, tina: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = _case(tina)
    data = (MARKER + b" sin memoria ") * 20_000
    cuts = [CHUNK * 3 + 17, CHUNK * 7, len(data) - 5]
    computed = []
    again = tus.Patch._digests_again

    def counted(self: tus.Patch, *args: object) -> object:
        computed.append(self.start)
        return again(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(tus.Patch, "_digests_again", counted)
    # Kept in memory: never computed again.
    location = _create(tina, case, len(data))
    _stored_as_deposited(vault, tina, _send(tina, location, data, cuts), data)
    assert computed == []
    # Every PATCH in "another process" (none kept): computed from what is durable, as right.
    location = _create(tina, case, len(data))
    bounds = [0, *cuts, len(data)]
    for start, end in itertools.pairwise(bounds):
        tus.forget_digests()
        answer = tina.patch(
            location, content=data[start:end], headers={**OCTETS, "Upload-Offset": str(start)}
        )
        assert answer.status_code == 204, answer.text
    assert computed == bounds[:-1]
    _stored_as_deposited(vault, tina, answer.headers["Tvault-Item"], data)
    # Digests this process kept from an earlier request, while another process served a later
    # one: out of date, so not used.
    computed.clear()
    location = _create(tina, case, len(data))
    upload_id = location.rsplit("/", 1)[1]
    first = tina.patch(location, content=data[: cuts[0]], headers={**OCTETS, "Upload-Offset": "0"})
    assert first.status_code == 204
    held = tus._DIGESTS[upload_id]
    kept = dataclasses.replace(held, plain=held.plain.copy(), cipher=held.cipher.copy())
    second = tina.patch(
        location,
        content=data[cuts[0] : cuts[1]],
        headers={**OCTETS, "Upload-Offset": str(cuts[0])},
    )
    assert second.status_code == 204
    tus._DIGESTS[upload_id] = kept
    item = _send_from(tina, location, data, cuts[1])
    assert computed == [cuts[1]]
    _stored_as_deposited(vault, tina, item, data)


def _send_from(client: TestClient, location: str, data: bytes, start: int) -> str:
    answer = client.patch(
        location, content=data[start:], headers={**OCTETS, "Upload-Offset": str(start)}
    )
    assert answer.status_code == 204, answer.text
    return answer.headers["Tvault-Item"]


def test_a_crash_between_the_append_and_its_record_counts_nothing_of_it(
    vault: Vault, tina: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = _case(tina)
    data = (MARKER + b" antes del corte ") * 30_000
    location = _create(tina, case, len(data))
    upload = tus.root(vault) / location.rsplit("/", 1)[1]
    first = 2 * CHUNK + 99
    assert (
        tina.patch(
            location, content=data[:first], headers={**OCTETS, "Upload-Offset": "0"}
        ).status_code
        == 204
    )
    recorded = (upload / tus.OBJECT).stat().st_size

    # The next PATCH appends its chunks and seals its rest, then dies before the record.
    def crash(path: Path, state: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(tus, "_save_state", crash)
    app = app_of(vault)
    token = token_for(vault, "tina", "therapist")
    with TestClient(
        app, headers={"Authorization": f"Bearer {token}"}, raise_server_exceptions=False
    ) as failing:
        cut = failing.patch(
            location,
            content=data[first : first + 5 * CHUNK + 3],
            headers={**OCTETS, "Upload-Offset": str(first)},
        )
    assert cut.status_code == 500
    monkeypatch.undo()
    assert (upload / tus.OBJECT).stat().st_size > recorded  # appended, not counted
    assert len(list(upload.glob("tail-*.age"))) == 2  # the new tail, never recorded
    head = tina.head(location, headers=TUS)
    assert head.headers["Upload-Offset"] == str(first)
    # Resumed where the record says, in this process and in a new one alike. The bytes past
    # the record are cut off, even where a short PATCH does not write over them.
    tus.forget_digests()
    small = tina.patch(
        location, content=data[first : first + 10], headers={**OCTETS, "Upload-Offset": str(first)}
    )
    assert small.status_code == 204, small.text
    state = tus._state(upload)
    assert (upload / tus.OBJECT).stat().st_size == state["stored"]
    assert [p.name for p in upload.glob("tail-*.age")] == [state["tail"]]
    first += 10
    last = tina.patch(
        location, content=data[first:], headers={**OCTETS, "Upload-Offset": str(first)}
    )
    assert last.status_code == 204, last.text
    _stored_as_deposited(vault, tina, last.headers["Tvault-Item"], data)


@pytest.mark.parametrize("where", ["direct-write", "last-block"])
def test_a_failed_write_records_nothing(
    vault: Vault, tina: TestClient, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    case = _case(tina)
    data = (MARKER + b" disco lleno ") * 100_000  # several writes of 1 MiB
    location = _create(tina, case, len(data))
    write_at = tus._Appender._write_at
    calls = []

    def full_disk(self: tus._Appender, view: memoryview, offset: int) -> None:
        # Some blocks reached the file already; half of these do, then the disk is full.
        calls.append(offset)
        if where == "last-block" or len(calls) == 2:
            write_at(self, view[: len(view) // 2 // 4096 * 4096], offset)
            raise OSError(28, "No space left on device")
        write_at(self, view, offset)

    name = "_write_at" if where == "direct-write" else "_write_at_cached"
    monkeypatch.setattr(tus._Appender, name, full_disk)
    token = token_for(vault, "tina", "therapist")
    with TestClient(
        app_of(vault),
        headers={"Authorization": f"Bearer {token}"},
        raise_server_exceptions=False,
    ) as failing:
        answer = failing.patch(location, content=data, headers={**OCTETS, "Upload-Offset": "0"})
    assert answer.status_code >= 500
    monkeypatch.undo()
    assert tina.head(location, headers=TUS).headers["Upload-Offset"] == "0"
    upload = tus.root(vault) / location.rsplit("/", 1)[1]
    assert (upload / tus.OBJECT).stat().st_size > tus._state(upload)["stored"]  # not counted
    with vault.sessions() as session:
        assert list(session.scalars(select(Item.id))) == []
    item = _send(tina, location, data, [])
    _stored_as_deposited(vault, tina, item, data)


def test_a_signed_upload_whose_bytes_differ_stores_nothing(vault: Vault, tina: TestClient) -> None:
    case = _case(tina)
    body = (MARKER + b" firmado ") * 9000
    statement, signature = signed_by_tina(vault, case, body)
    metadata = _metadata(
        {
            "case": case,
            "kind": "testimony",
            "consent": "therapy",
            "filename": "t.txt",
            "statement": statement.decode("utf-8"),
            "signature": signature,
        }
    )
    headers = {**TUS, "Upload-Length": str(len(body)), "Upload-Metadata": metadata}
    other = body[:-1] + b"X"  # the same size, other bytes
    made = tina.post("/v1/uploads", headers=headers)
    assert made.status_code == 201, made.text
    refused = tina.patch(
        made.headers["Location"], content=other, headers={**OCTETS, "Upload-Offset": "0"}
    )
    assert refused.status_code == 422, refused.text
    with vault.sessions() as session:
        assert list(session.scalars(select(Item.id))) == []
    assert list(vault.store.names("items/")) == []
    assert list(tus.root(vault).iterdir()) == []
    made = tina.post("/v1/uploads", headers=headers)
    item = _send(tina, made.headers["Location"], body, [CHUNK + 3])
    _stored_as_deposited(vault, tina, item, body)
    [kept] = signatures.list_signatures(vault, principal(vault, "tina"), item)
    assert kept is not None


def test_a_torn_progress_record_falls_back_to_the_one_before(
    vault: Vault, tina: TestClient
) -> None:
    case = _case(tina)
    data = (MARKER + b" registro roto ") * 20_000
    location = _create(tina, case, len(data))
    upload = tus.root(vault) / location.rsplit("/", 1)[1]
    first, second = 2 * CHUNK, 4 * CHUNK + 123
    for start, end in ((0, first), (first, second)):
        answer = tina.patch(
            location, content=data[start:end], headers={**OCTETS, "Upload-Offset": str(start)}
        )
        assert answer.status_code == 204, answer.text
    newest = tus._state(upload)
    assert newest["offset"] == second
    # A crash tore the newest record as it was written: the slot before it still holds the
    # previous one, and the bytes the torn record would have counted do not count.
    with (upload / tus.PROGRESS).open("r+b") as progress:
        progress.seek((newest["seq"] % 2) * 512 + 40)
        progress.write(b"\0" * 100)
    assert tina.head(location, headers=TUS).headers["Upload-Offset"] == str(first)
    tus.forget_digests()
    last = tina.patch(
        location, content=data[first:], headers={**OCTETS, "Upload-Offset": str(first)}
    )
    assert last.status_code == 204, last.text
    _stored_as_deposited(vault, tina, last.headers["Tvault-Item"], data)
