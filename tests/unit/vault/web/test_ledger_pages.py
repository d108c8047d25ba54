"""The auditor's pages and the custody timeline (issue 19 points 5, 6): ledger entries with
sealed details sealed, checkpoints, an item's entries and the check of each inclusion proof
against the latest signed checkpoint, which says so when it fails."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re

import httpx
import pytest

import keys
from tests.unit.vault.conftest import principal
from tests.unit.vault.search_support import deposit
from tests.unit.vault.web.web_support import browser, signed_in, token
from vault import approval_kinds, custody_timeline, ledger
from vault.accounts import add_user
from vault.cases import create_case
from vault.compose import app_of
from vault.ledger import note
from vault.ledger.errors import ProofError
from vault.ledger.tree import verify_inclusion
from vault.parts import Vault

TITLE = "Testimonio de Rosa Quispe"
NOTE = "Rosa Quispe asked for it in writing"


def _server_result(page: httpx.Response) -> str:
    """The server's verification section of a custody page ("" when there is none)."""
    found = re.search(r'<section[^>]*id="verification".*?</section>', page.text, re.S)
    return found.group(0) if found else ""


def _item(vault: Vault) -> str:
    with vault.sessions.begin() as session:
        add_user(session, "audra", "auditor", vault.clock())
    case = create_case(vault, principal(vault, "tina"), "Case of the river").id
    return deposit(
        vault, principal(vault, "tina"), case, consent=["therapy"], body=b"words", title=TITLE
    )


def test_the_auditor_reads_entries_sealed_and_signs_a_checkpoint(vault: Vault) -> None:
    item = _item(vault)
    approval_kinds.request_shred(vault, principal(vault, "admin"), item, "other", NOTE)
    audra = signed_in(vault, "audra")
    page = audra.get("/ledger")
    assert page.status_code == 200 and f'href="/items/{item}/custody"' in page.text
    assert "ingestion" in page.text and "approval request" in page.text
    assert TITLE not in page.text and NOTE not in page.text and "[sealed]" in page.text
    checkpoints = audra.get("/ledger/checkpoints")
    assert "No checkpoint has been signed yet." in checkpoints.text
    assert vault.checkpointer.verifier_key() in checkpoints.text
    signed = audra.post("/ledger/checkpoints", data={"csrf": token(checkpoints)})
    assert signed.status_code == 303
    assert "No checkpoint has been signed yet." not in audra.get("/ledger/checkpoints").text
    # Others read no ledger (a refusal, itself an entry).
    assert signed_in(vault, "tina").get("/ledger").status_code == 403


def test_the_timeline_is_verified_against_the_latest_checkpoint(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = _item(vault)
    tina = signed_in(vault, "tina")  # the depositor sees her item's entries
    timeline = tina.get(f"/items/{item}/custody")
    assert (
        timeline.status_code == 200 and "ingestion" in timeline.text and TITLE not in timeline.text
    )
    assert _server_result(timeline) == ""
    before = tina.post(f"/items/{item}/custody/verify", data={"csrf": token(timeline)})
    assert "No checkpoint has been signed yet" in _server_result(before)
    assert 'class="outcome-not-yet-in-a-signed-checkpoint">not yet' in before.text

    vault.checkpointer.checkpoint(now=vault.clock())
    proven = tina.post(f"/items/{item}/custody/verify", data={"csrf": token(timeline)})
    assert "Every entry below is proven" in _server_result(proven)
    assert 'class="outcome-failed"' not in proven.text
    assert 'class="outcome-proven">proven: in the signed checkpoint' in proven.text

    # Under another log key the signature does not check, and the page says so.
    real = vault.checkpointer.verifier_key()
    name, key_id, _ = real.split("+", 2)
    other_key = base64.b64encode(b"\x01" + bytes(32)).decode()
    wrong = f"{name}+{key_id}+{other_key}"

    class Other:
        def verifier_key(self) -> str:
            return wrong

    monkeypatch.setattr(vault, "checkpointer", Other())
    failed = tina.post(f"/items/{item}/custody/verify", data={"csrf": token(timeline)})
    assert 'class="outcome-failed">NOT proven' in failed.text
    assert "Every entry below is proven" not in _server_result(failed)

    # A reader with no grant on the case finds nothing; no token, no check.
    assert signed_in(vault, "lena").get(f"/items/{item}/custody").status_code == 404
    assert tina.post(f"/items/{item}/custody/verify", data={"csrf": "x"}).status_code == 403


def _since(vault: Vault, start: int) -> list[tuple[str, str, str | None, dict[str, object]]]:
    """The entries appended from `start` on, by kind: action, actor, item, details."""
    with vault.sessions() as session:
        return [
            (e.action, e.actor, e.item_id, dict(e.details)) for e in ledger.entries(session, start)
        ]


def _size(vault: Vault) -> int:
    with vault.sessions() as session:
        return ledger.size(session)


def test_the_proofs_route_gives_the_browser_what_it_checks(vault: Vault) -> None:
    item = _item(vault)
    tina = signed_in(vault, "tina")
    none_yet = tina.get(f"/items/{item}/custody/proofs")
    assert none_yet.status_code == 200 and none_yet.json()["checkpoint"] is None
    assert none_yet.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in none_yet.headers["content-security-policy"]
    assert all(e["proof"] is None for e in none_yet.json()["entries"])

    signed = vault.checkpointer.checkpoint(now=vault.clock())
    tina.get(f"/items/{item}")  # a read after the checkpoint: an entry not yet in one
    body = tina.get(f"/items/{item}/custody/proofs").json()
    assert body["item"] == item and body["log_key"] == vault.checkpointer.verifier_key()
    assert body["checkpoint"] == signed.note and body["size"] == signed.size
    head = note.parse_checkpoint(
        note.open_note(body["checkpoint"], body["log_key"], keys.verify_ed25519)
    )
    with vault.sessions() as session:
        about = list(ledger.item_entries(session, item, 0, 1000))
    assert [e["seq"] for e in body["entries"]] == [e.seq for e in about]
    assert any(e.seq >= signed.size for e in about)  # the read after the checkpoint
    for given, stored in zip(body["entries"], about, strict=True):
        # The entry byte for byte (the depositor may read it), its RFC 9162 leaf hash...
        assert given["entry"].encode() == stored.canonical
        leaf = hashlib.sha256(b"\x00" + stored.canonical).digest()
        assert base64.b64decode(given["leaf_hash"]) == leaf
        if stored.seq >= signed.size:
            assert given["proof"] is None
            continue
        # ... and an audit path that leads to the signed root.
        assert given["proof"]["size"] == head.size
        path = [base64.b64decode(h) for h in given["proof"]["hashes"]]
        verify_inclusion(stored.seq, head.size, leaf, path, head.root)
        with pytest.raises(ProofError):
            verify_inclusion(stored.seq, head.size, leaf[::-1], path, head.root)

    # Without the right to read the entries themselves, the leaf hashes only.
    gathered = custody_timeline.proofs(vault, principal(vault, "tina"), item)
    withheld = dataclasses.replace(gathered, with_entries=False).to_json(item)
    assert [e["entry"] for e in withheld["entries"]] == [None] * len(about)
    assert [e["leaf_hash"] for e in withheld["entries"]] == [
        e["leaf_hash"] for e in body["entries"]
    ]


@pytest.mark.both_databases
def test_the_proofs_route_leaves_what_the_page_leaves_and_refuses_as_it_does(
    vault: Vault,
) -> None:
    item = _item(vault)
    vault.checkpointer.checkpoint(now=vault.clock())
    tina = signed_in(vault, "tina")
    timeline = tina.get(f"/items/{item}/custody")
    # The reader who may: the server's check and the browser's data leave the same entries.
    start = _size(vault)
    assert tina.post(f"/items/{item}/custody/verify", data={"csrf": token(timeline)}).is_success
    by_server = _since(vault, start)
    start = _size(vault)
    assert tina.get(f"/items/{item}/custody/proofs").is_success
    assert _since(vault, start) == by_server

    # A reader with no grant on the case: the page's refusal, answer and entry, not the data.
    lena = signed_in(vault, "lena")
    start = _size(vault)
    page = lena.get(f"/items/{item}/custody")
    refused_page = _since(vault, start)
    start = _size(vault)
    data = lena.get(f"/items/{item}/custody/proofs")
    refused_data = _since(vault, start)
    assert page.status_code == data.status_code == 404
    assert "ingestion" not in data.text and "checkpoint" not in data.text
    assert [kind[0] for kind in refused_data] == ["access denied"]
    assert refused_data == refused_page
    # Signed out: refused as the page is, nothing given.
    stranger = browser(app_of(vault))
    anonymous = stranger.get(f"/items/{item}/custody/proofs")
    assert anonymous.status_code == stranger.get(f"/items/{item}/custody").status_code
    assert anonymous.status_code in (303, 401) and "entries" not in anonymous.text


def test_the_page_carries_the_script_its_messages_and_says_when_it_fell_back(
    vault: Vault,
) -> None:
    item = _item(vault)
    tina = signed_in(vault, "tina")
    page = tina.get(f"/items/{item}/custody", headers={"Accept-Language": "es"})
    assert '<script src="/static/custody.js" defer></script>' in page.text
    assert tina.get("/static/custody.js").status_code == 200
    # The script's messages come from the catalog, in the reader's language.
    assert 'data-entry-verified="verificado en su navegador"' in page.text
    assert f'data-proofs="/items/{item}/custody/proofs"' in page.text
    assert '<tr data-seq="' in page.text
    for reason, said in (
        ("no-ed25519", "Your browser cannot check Ed25519 signatures"),
        ("no-proofs", "Your browser could not fetch the proofs"),
    ):
        checked = tina.post(
            f"/items/{item}/custody/verify", data={"csrf": token(page), "browser": reason}
        )
        assert said in _server_result(checked)
    plain = tina.post(f"/items/{item}/custody/verify", data={"csrf": token(page), "browser": "x"})
    assert "Your browser" not in _server_result(plain) and _server_result(plain)
