"""Legal holds on web pages (issue 19 point 6): a custodian puts an item under hold with a
reason (sealed in the `legal hold` entry, as through `PUT /v1/items/{id}/hold`), asks to lift
it, and a second custodian approves the lift in the queue; bad input changes nothing; a
therapist is refused as by the API."""

from __future__ import annotations

from tests.unit.vault.conftest import principal
from tests.unit.vault.search_support import deposit
from tests.unit.vault.tokens import token_for
from tests.unit.vault.web.web_support import browser, entries, signed_in, token
from vault import approval_kinds, approvals, ledger, shred
from vault.accounts import add_user
from vault.cases import create_case
from vault.compose import app_of
from vault.parts import Vault

REASON = "Court order 14-2026 of the Huánuco court, for Rosa Quispe's testimony"


def _item(vault: Vault) -> str:
    with vault.sessions.begin() as session:
        add_user(session, "cleo", "custodian", vault.clock())
    case = create_case(vault, principal(vault, "tina"), "Case of the river").id
    return deposit(vault, principal(vault, "tina"), case, consent=["therapy"], body=b"words")


def test_a_custodian_holds_an_item_and_a_second_one_approves_lifting_it(vault: Vault) -> None:
    item = _item(vault)
    admin = signed_in(vault, "admin")
    page = admin.get("/holds")
    assert page.status_code == 200 and "No item is under legal hold." in page.text
    assert 'href="/holds"' in page.text and 'href="/approvals"' in page.text
    csrf = token(page)
    blank = admin.post("/holds", data={"csrf": csrf, "item": item, "reason": "  "})
    assert blank.status_code == 422 and "Say why the item is held" in blank.text
    assert not shred.is_held(vault, item) and entries(vault, ledger.actions.LEGAL_HOLD) == []

    held = admin.post("/holds", data={"csrf": csrf, "item": item, "reason": REASON})
    assert held.status_code == 303 and shred.is_held(vault, item)
    [entry] = entries(vault, ledger.actions.LEGAL_HOLD)
    assert (entry.actor, entry.item_id, entry.details["held"]) == ("admin", item, True)
    assert entry.sealed_sha256 is not None and "Rosa" not in str(entry.details)  # sealed
    listed = admin.get("/holds").text
    assert item in listed and f"Ask to lift the hold on {item}" in listed and "Rosa" not in listed
    again = admin.post("/holds", data={"csrf": csrf, "item": item, "reason": REASON})
    assert again.status_code == 409 and "under legal hold already" in again.text
    unknown = admin.post("/holds", data={"csrf": csrf, "item": "0" * 26, "reason": REASON})
    assert unknown.status_code == 404
    assert len(entries(vault, ledger.actions.LEGAL_HOLD)) == 1

    asked = admin.post("/holds/lift", data={"csrf": csrf, "item": item})
    assert asked.status_code == 303 and asked.headers["location"].startswith("/approvals/")
    approval_id = asked.headers["location"].removeprefix("/approvals/")
    record = approvals.show(vault, principal(vault, "admin"), approval_id)
    assert (record.kind, record.subject, record.state) == (
        approval_kinds.LIFT_HOLD,
        item,
        approvals.PENDING,
    )
    twice = admin.post("/holds/lift", data={"csrf": csrf, "item": item})
    assert twice.status_code == 409 and "waits in the approvals queue" in twice.text
    assert shred.is_held(vault, item)  # asking lifts nothing

    cleo = signed_in(vault, "cleo")
    form = cleo.get(f"/approvals/{approval_id}")
    done = cleo.post(f"/approvals/{approval_id}/approve", data={"csrf": token(form)})
    assert done.status_code == 303 and not shred.is_held(vault, item)
    assert [e.details["held"] for e in entries(vault, ledger.actions.LEGAL_HOLD)] == [True, False]
    assert "No item is under legal hold." in admin.get("/holds").text


def test_the_api_takes_the_same_reason_sealed(vault: Vault) -> None:
    item = _item(vault)
    api = browser(app_of(vault))
    api.headers["Authorization"] = f"Bearer {token_for(vault, 'admin', 'custodian')}"
    answer = api.put(f"/v1/items/{item}/hold", json={"reason": REASON})
    assert answer.status_code == 200 and answer.json()["changed"] is True
    [entry] = entries(vault, ledger.actions.LEGAL_HOLD)
    assert entry.sealed_sha256 is not None and "Rosa" not in str(entry.details)
    assert api.put(f"/v1/items/{item}/hold").json()["changed"] is False  # no body: as before


def test_a_therapist_is_refused_holds_as_by_the_api(vault: Vault) -> None:
    item = _item(vault)
    tina = signed_in(vault, "tina")
    assert 'href="/holds"' not in tina.get("/").text  # the menu: comfort only
    assert tina.get("/holds").status_code == 403
    csrf = token(tina.get("/"))
    refused = tina.post("/holds", data={"csrf": csrf, "item": item, "reason": REASON})
    assert refused.status_code == 403 and "You may not do this." in refused.text
    assert tina.post("/holds/lift", data={"csrf": csrf, "item": item}).status_code == 403
    assert not shred.is_held(vault, item)
    denied = entries(vault, ledger.actions.ACCESS_DENIED)
    assert [(e.actor, e.details["attempted"]) for e in denied] == [("tina", "item.hold")] * 3
    api = browser(app_of(vault))
    api.headers["Authorization"] = f"Bearer {token_for(vault, 'tina', 'therapist')}"
    assert api.put(f"/v1/items/{item}/hold", json={"reason": REASON}).status_code == 403
    last = entries(vault, ledger.actions.ACCESS_DENIED)[-1]
    assert {k: v for k, v in last.details.items() if k != "credential"} == {
        k: v for k, v in denied[1].details.items() if k != "credential"
    }
    assert entries(vault, ledger.actions.LEGAL_HOLD) == []
