"""Cases and grants on web pages (issue 19 point 6): open a case, grant and revoke a role through
the use cases of `/v1/cases` (same decisions, same `grant` and `revocation` entries), bad input
said in words with nothing changed, a therapist refused as by the API."""

from __future__ import annotations

from tests.unit.vault.conftest import principal
from tests.unit.vault.search_support import deposit
from tests.unit.vault.tokens import token_for
from tests.unit.vault.web.web_support import browser, entries, signed_in, token
from vault import cases, grants, ledger, shred
from vault.compose import app_of
from vault.parts import Vault

NAME = "Testimonios del río Huallaga"


def test_a_custodian_opens_a_case_grants_and_revokes(vault: Vault) -> None:
    admin = signed_in(vault, "admin")
    page = admin.get("/cases")
    assert page.status_code == 200 and 'href="/cases"' in page.text
    opened = admin.post("/cases", data={"csrf": token(page), "name": NAME})
    assert opened.status_code == 303
    case_id = opened.headers["location"].removeprefix("/cases/")
    assert NAME not in opened.headers["location"]  # ids only in addresses
    shown = admin.get(f"/cases/{case_id}")
    assert (
        shown.status_code == 200
        and NAME in shown.text
        and NAME not in shown.text.split("</title>")[0]
    )
    assert "No role is granted on this case." in shown.text  # a custodian is granted nothing
    assert NAME in admin.get("/cases").text

    csrf = token(shown)
    granted = admin.post(
        f"/cases/{case_id}/grants", data={"csrf": csrf, "user": "lena", "role": "lawyer"}
    )
    assert granted.status_code == 303 and granted.headers["location"] == f"/cases/{case_id}"
    assert [
        (g.user, g.role) for g in grants.list_grants(vault, principal(vault, "admin"), case_id)
    ] == [("lena", "lawyer")]
    [entry] = entries(vault, ledger.actions.GRANT)
    assert (entry.actor, entry.case_id, entry.details["grantee"]) == ("admin", case_id, "lena")
    assert str(entry.details["credential"]).startswith("session:")
    assert case_id in [c.id for c in cases.list_cases(vault, principal(vault, "lena"))]

    # Bad input: said plainly, nothing granted.
    again = admin.post(
        f"/cases/{case_id}/grants", data={"csrf": csrf, "user": "lena", "role": "lawyer"}
    )
    assert again.status_code == 409 and "has this role on the case already" in again.text
    ghost = admin.post(
        f"/cases/{case_id}/grants", data={"csrf": csrf, "user": "nobody", "role": "lawyer"}
    )
    assert ghost.status_code == 404 and "There is no such account" in ghost.text
    role = admin.post(
        f"/cases/{case_id}/grants", data={"csrf": csrf, "user": "lena", "role": "custodian"}
    )
    assert role.status_code == 422 and "Choose one of the case roles" in role.text
    blank = admin.post("/cases", data={"csrf": csrf, "name": "  "})
    assert blank.status_code == 422 and "A case name is 1 to 500 characters" in blank.text
    forged = admin.post(f"/cases/{case_id}/grants", data={"user": "tina", "role": "therapist"})
    assert forged.status_code == 403
    assert len(entries(vault, ledger.actions.GRANT)) == 1
    assert len(cases.list_cases(vault, principal(vault, "admin"))) == 1

    revoked = admin.post(
        f"/cases/{case_id}/grants/revoke", data={"csrf": csrf, "user": "lena", "role": "lawyer"}
    )
    assert revoked.status_code == 303
    assert grants.list_grants(vault, principal(vault, "admin"), case_id) == []
    [gone] = entries(vault, ledger.actions.REVOCATION)
    assert (gone.actor, gone.details["grantee"], gone.details["role"]) == (
        "admin",
        "lena",
        "lawyer",
    )
    assert case_id not in [c.id for c in cases.list_cases(vault, principal(vault, "lena"))]


def test_a_therapist_is_refused_grants_as_by_the_api(vault: Vault) -> None:
    case_id = cases.create_case(vault, principal(vault, "tina"), NAME).id
    tina = signed_in(vault, "tina")
    assert 'href="/cases"' not in tina.get("/").text  # the menu: comfort only
    assert NAME in tina.get("/cases").text  # her own case, which she may see
    listed = tina.get(f"/cases/{case_id}")
    assert listed.status_code == 403
    csrf = token(tina.get("/cases"))
    refused = tina.post(
        f"/cases/{case_id}/grants", data={"csrf": csrf, "user": "theo", "role": "therapist"}
    )
    assert refused.status_code == 403 and "You may not do this." in refused.text
    assert "theo" not in [
        g.user for g in grants.list_grants(vault, principal(vault, "admin"), case_id)
    ]
    denied = entries(vault, ledger.actions.ACCESS_DENIED)
    assert [(e.actor, e.details["attempted"]) for e in denied] == [
        ("tina", "case.revoke"),
        ("tina", "case.grant"),
    ]
    api = browser(app_of(vault))
    api.headers["Authorization"] = f"Bearer {token_for(vault, 'tina', 'therapist')}"
    by_api = api.post(f"/v1/cases/{case_id}/grants", json={"user": "theo", "role": "therapist"})
    assert by_api.status_code == 403
    last = entries(vault, ledger.actions.ACCESS_DENIED)[-1]
    assert {k: v for k, v in last.details.items() if k != "credential"} == {
        k: v for k, v in denied[-1].details.items() if k != "credential"
    }
    # A case she may not see is "not found", as an id that does not exist.
    other = cases.create_case(vault, principal(vault, "theo"), "Another case").id
    hidden = tina.post(
        f"/cases/{other}/grants", data={"csrf": csrf, "user": "nobody", "role": "therapist"}
    )
    assert hidden.status_code == 404 and "There is no such account" not in hidden.text
    assert "There is nothing here" in hidden.text


HOLD_REASON = "Court order 14-2026 of the Huánuco court, for Rosa Quispe's testimony"


def test_a_custodian_holds_every_item_of_a_case_and_is_told_how_many(vault: Vault) -> None:
    case_id = cases.create_case(vault, principal(vault, "tina"), NAME).id
    tina = principal(vault, "tina")
    first, second = (
        deposit(vault, tina, case_id, consent=["legal"], body=body) for body in (b"a", b"b")
    )
    assert shred.set_hold(vault, principal(vault, "admin"), first, True, "earlier order")
    admin = signed_in(vault, "admin")
    page = admin.get(f"/cases/{case_id}")
    assert 'action="/cases/' + case_id + '/hold"' in page.text
    assert "Items deposited into this case later are not held automatically" in page.text
    spanish = admin.get(f"/cases/{case_id}", headers={"Accept-Language": "es"})
    assert "no quedan retenidos automáticamente" in spanish.text
    assert "Retener todos los elementos de este caso" in spanish.text
    csrf = token(page)

    # Without the CSRF token: refused, recorded, nothing held.
    forged = admin.post(f"/cases/{case_id}/hold", data={"reason": HOLD_REASON})
    assert forged.status_code == 403 and not shred.is_held(vault, second)
    assert entries(vault, ledger.actions.ACCESS_DENIED)[-1].details["reason"] == (
        "missing or wrong CSRF token"
    )
    blank = admin.post(f"/cases/{case_id}/hold", data={"csrf": csrf, "reason": " "})
    assert blank.status_code == 422 and "Say why the case is held" in blank.text
    assert not shred.is_held(vault, second) and len(entries(vault, ledger.actions.LEGAL_HOLD)) == 1

    held = admin.post(f"/cases/{case_id}/hold", data={"csrf": csrf, "reason": HOLD_REASON})
    assert held.status_code == 200
    assert (
        "Items put under legal hold now: 1. Under legal hold already: 1. "
        "Crypto-shredded, left alone: 0." in held.text
    )
    assert shred.is_held(vault, second) and "Rosa" not in held.text
    entry = entries(vault, ledger.actions.LEGAL_HOLD)[-1]
    assert (entry.actor, entry.item_id, entry.details["held"]) == ("admin", second, True)
    assert str(entry.details["credential"]).startswith("session:")
    assert entry.sealed_sha256 is not None and "Rosa" not in str(entry.details)
    again = admin.post(
        f"/cases/{case_id}/hold",
        data={"csrf": csrf, "reason": HOLD_REASON},
        headers={"Accept-Language": "es"},
    )
    assert again.status_code == 200
    assert "Elementos puestos ahora bajo retención legal: 0. Ya bajo retención legal: 2." in (
        again.text
    )
    assert len(entries(vault, ledger.actions.LEGAL_HOLD)) == 2


def test_a_therapist_is_refused_a_case_hold_and_nothing_is_held(vault: Vault) -> None:
    case_id = cases.create_case(vault, principal(vault, "tina"), NAME).id
    item = deposit(vault, principal(vault, "tina"), case_id, consent=["legal"])
    tina = signed_in(vault, "tina")
    csrf = token(tina.get("/cases"))
    refused = tina.post(f"/cases/{case_id}/hold", data={"csrf": csrf, "reason": HOLD_REASON})
    assert refused.status_code == 403 and "You may not do this." in refused.text
    assert not shred.is_held(vault, item) and entries(vault, ledger.actions.LEGAL_HOLD) == []
    last = entries(vault, ledger.actions.ACCESS_DENIED)[-1]
    assert (last.actor, last.case_id, last.details["attempted"]) == ("tina", case_id, "item.hold")
