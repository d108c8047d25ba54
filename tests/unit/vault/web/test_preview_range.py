"""`Range` on the item preview (issue 19 point 7: a large video can be skipped ahead): one
`bytes=` range is answered with 206 and exactly those bytes of the plaintext, one past the end
with 416, several with the whole file; every request is one `decryption` entry naming its
bytes, and a refused reader gets the refusal they got without a range."""

from __future__ import annotations

import os

import pytest

from tests.unit.vault.conftest import principal
from tests.unit.vault.web.web_support import entries, signed_in
from vault import ledger
from vault.cases import create_case
from vault.deposit import Deposit
from vault.parts import Vault

CHUNK = 64 * 1024
# Several 64 KiB age chunks, and not a whole number of them: ranges cross chunk boundaries.
VIDEO = b"\0\0\0\x18ftypmp42" + os.urandom(3 * 65536 + 1000)


def _deposit(vault: Vault, body: bytes = VIDEO) -> str:
    case = create_case(vault, principal(vault, "tina"), "Caso A").id
    fields = {
        "case": case,
        "kind": "media",
        "title": "Entrevista",
        "consent": "legal,therapy",
        "filename": "entrevista.mp4",
    }
    started = Deposit.start(vault, principal(vault, "tina"), fields)
    started.write(body)
    return started.commit().item_id


def _reads(vault: Vault, item_id: str) -> list[ledger.LedgerEntry]:
    return [e for e in entries(vault, ledger.actions.DECRYPTION) if e.item_id == item_id]


def test_one_range_is_answered_with_206_and_exactly_those_bytes(vault: Vault) -> None:
    item_id = _deposit(vault)
    client = signed_in(vault, "tina")
    total = len(VIDEO)
    for header, start, end in [
        ("bytes=0-99", 0, 99),
        ("bytes=65530-131080", 65530, 131080),  # across two chunk boundaries
        ("bytes=150000-", 150000, total - 1),  # skipping ahead: the rest of the file
        ("bytes=-500", total - 500, total - 1),  # the last 500 bytes
        (f"bytes=70000-{total + 5000}", 70000, total - 1),  # an end past the end is cut
    ]:
        answer = client.get(f"/items/{item_id}/preview", headers={"Range": header})
        assert answer.status_code == 206, (header, answer.text[:200])
        assert answer.content == VIDEO[start : end + 1], header
        assert answer.headers["content-range"] == f"bytes {start}-{end}/{total}"
        assert answer.headers["content-length"] == str(end - start + 1)
        assert answer.headers["content-type"] == "video/mp4"
        assert answer.headers["accept-ranges"] == "bytes"
        last = _reads(vault, item_id)[-1]
        assert (last.details["from"], last.details["to"]) == (start, end)
        assert last.details["purpose"] == "download"
        assert last.details["credential"].startswith("session:")
    # One entry per request, each naming the bytes it read.
    assert len(_reads(vault, item_id)) == 5


def test_no_range_or_several_ranges_send_the_whole_file(vault: Vault) -> None:
    item_id = _deposit(vault)
    client = signed_in(vault, "tina")
    whole = client.get(f"/items/{item_id}/preview")
    assert whole.status_code == 200 and whole.content == VIDEO
    assert whole.headers["accept-ranges"] == "bytes" and "content-range" not in whole.headers
    several = client.get(f"/items/{item_id}/preview", headers={"Range": "bytes=0-9,100-199"})
    assert several.status_code == 200 and several.content == VIDEO
    # A whole read names no bytes: the entry is the one a download without a range writes.
    reads = _reads(vault, item_id)
    assert len(reads) == 2 and all("from" not in e.details for e in reads)


def test_a_range_past_the_end_is_416_and_reads_nothing(vault: Vault) -> None:
    item_id = _deposit(vault)
    client = signed_in(vault, "tina")
    for header in (f"bytes={len(VIDEO)}-", "bytes=-0"):
        past = client.get(f"/items/{item_id}/preview", headers={"Range": header})
        assert past.status_code == 416, header
        assert past.headers["content-range"] == f"bytes */{len(VIDEO)}"
        assert VIDEO[:16] not in past.content
    assert not _reads(vault, item_id)  # nothing was decrypted, nothing to record
    # Said in the reader's language (the account's choice, else Accept-Language).
    for language, words in (("en", "past its end"), ("es", "más allá de su final")):
        page = client.get(
            f"/items/{item_id}/preview",
            headers={"Range": f"bytes={len(VIDEO)}-", "Accept-Language": language},
        )
        assert words in page.text, language


def test_a_refused_reader_gets_the_same_refusal_with_a_range(vault: Vault) -> None:
    item_id = _deposit(vault)
    stranger = signed_in(vault, "theo")  # no grant on the case: the policy refuses
    plain = stranger.get(f"/items/{item_id}/preview")
    ranged = stranger.get(f"/items/{item_id}/preview", headers={"Range": "bytes=0-99"})
    past = stranger.get(f"/items/{item_id}/preview", headers={"Range": "bytes=999999999-"})
    for answer in (plain, ranged, past):
        assert answer.status_code == 404 and VIDEO[:16] not in answer.content
        assert "content-range" not in answer.headers
    assert ranged.text == plain.text
    denied = [
        e
        for e in entries(vault, ledger.actions.ACCESS_DENIED)
        if e.details.get("attempted") == "item.download"
    ]
    assert len(denied) == 3 and all(e.actor == "theo" for e in denied)
    assert not _reads(vault, item_id)


def test_under_redaction_a_range_is_of_the_redacted_rendition(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    import policies
    from policies import Allow, obligations
    from vault import access
    from vault.identity import RenditionUpload
    from vault.retrieve import download

    item_id = _deposit(vault)
    rendition = os.urandom(CHUNK + 300)
    upload = RenditionUpload.start(vault, principal(vault, "tina"), item_id)
    upload.write(rendition)
    upload.commit()
    real = policies.decide

    def redacting(who: policies.Principal, action: str, resource: policies.Resource) -> object:
        # A policy file that obliges redaction for downloads (none ships that way).
        decision = real(who, action, resource)
        if action == "item.download" and decision:
            return Allow(frozenset({obligations.REDACT_IDENTITIES}))
        return decision

    monkeypatch.setattr(access, "decide", redacting)
    got = download(vault, principal(vault, "tina"), item_id, f"bytes={CHUNK - 10}-")
    assert got.redacted and got.partial and got.item.size == len(rendition)
    assert b"".join(got.chunks) == rendition[CHUNK - 10 :]
    last = _reads(vault, item_id)[-1]
    assert last.details["rendition"] == "redacted"
    assert (last.details["from"], last.details["to"]) == (CHUNK - 10, len(rendition) - 1)
