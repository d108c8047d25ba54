"""Cases and grants on web pages (issue 19 point 6): open a case, grant and revoke a role through
the use cases of `/v1/cases` (same decisions, same `grant` and `revocation` entries), bad input
said in words with nothing changed, a therapist refused as by the API."""

from __future__ import annotations

from tests.unit.vault.conftest import principal
from tests.unit.vault.tokens import token_for
from tests.unit.vault.web.web_support import browser, entries, signed_in, token
from vault import cases, grants, ledger
from vault.app import create_app
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
    api = browser(create_app(vault))
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
