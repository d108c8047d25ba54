"""The auditor's pages and the custody timeline (issue 19 points 5, 6): ledger entries with
sealed details sealed, checkpoints, an item's entries and the check of each inclusion proof
against the latest signed checkpoint, which says so when it fails."""

from __future__ import annotations

import base64

import pytest

from tests.unit.vault.conftest import principal
from tests.unit.vault.search_support import deposit
from tests.unit.vault.web.web_support import signed_in, token
from vault import approval_kinds
from vault.accounts import add_user
from vault.cases import create_case
from vault.parts import Vault

TITLE = "Testimonio de Rosa Quispe"
NOTE = "Rosa Quispe asked for it in writing"


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
    before = tina.post(f"/items/{item}/custody/verify", data={"csrf": token(timeline)})
    assert "No checkpoint has been signed yet" in before.text
    assert "not yet in a signed checkpoint" in before.text

    vault.checkpointer.checkpoint(now=vault.clock())
    proven = tina.post(f"/items/{item}/custody/verify", data={"csrf": token(timeline)})
    assert "Every entry below is proven" in proven.text
    assert "NOT proven" not in proven.text and "proven: in the signed checkpoint" in proven.text

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
    assert "NOT proven" in failed.text and "Every entry below is proven" not in failed.text

    # A reader with no grant on the case finds nothing; no token, no check.
    assert signed_in(vault, "lena").get(f"/items/{item}/custody").status_code == 404
    assert tina.post(f"/items/{item}/custody/verify", data={"csrf": "x"}).status_code == 403
