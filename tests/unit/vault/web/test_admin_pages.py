"""The custodian's account pages (issue 19 point 6): add an account, change its role, disable
and enable it, issue a set-password link, turn off a second factor: each through the use case of
the API or CLI (same policy, same ledger entry, naming the custodian and the web session), each
bad input answered in words with nothing changed, each refused to a non-custodian."""

from __future__ import annotations

import pyotp

from tests.unit.vault.tokens import token_for
from tests.unit.vault.web.web_support import browser, entries, sign_in, signed_in, token
from vault import ledger, passwords
from vault.compose import app_of
from vault.parts import Vault


def _role_and_state(vault: Vault, name: str) -> tuple[str, bool]:
    from vault.accounts import list_users

    with vault.sessions() as session:
        [user] = [u for u in list_users(session) if u.name == name]
        return user.role, user.disabled


def test_a_custodian_adds_an_account_and_bad_names_change_nothing(vault: Vault) -> None:
    admin = signed_in(vault, "admin")
    page = admin.get("/users")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "tina" in page.text and 'href="/users"' in page.text  # the menu entry
    added = admin.post("/users", data={"csrf": token(page), "name": "rosa", "role": "lawyer"})
    assert added.status_code == 303 and added.headers["location"] == "/users"
    assert _role_and_state(vault, "rosa") == ("lawyer", False)
    [entry] = [e for e in entries(vault, ledger.actions.ACCOUNT_CREATION) if e.actor == "admin"]
    assert entry.details["account"] == "rosa" and entry.details["via"] == "web"
    assert str(entry.details["credential"]).startswith("session:")
    listed = admin.get("/users").text
    row = listed.split('<th scope="row">rosa</th>')[1].split("</tr>")[0]
    assert "lawyer" in row and "enabled" in row and "none" in row  # no password yet

    before = len(entries(vault, ledger.actions.ACCOUNT_CREATION))
    again = admin.post("/users", data={"csrf": token(page), "name": "rosa", "role": "therapist"})
    assert again.status_code == 409 and "exists already" in again.text
    bad = admin.post("/users", data={"csrf": token(page), "name": "Rosa Q", "role": "lawyer"})
    assert bad.status_code == 422 and "An account name is 1 to 64" in bad.text
    role = admin.post("/users", data={"csrf": token(page), "name": "paz", "role": "king"})
    assert role.status_code == 422 and "Choose one of the roles" in role.text
    forged = admin.post("/users", data={"csrf": "", "name": "paz", "role": "lawyer"})
    assert forged.status_code == 403
    assert len(entries(vault, ledger.actions.ACCOUNT_CREATION)) == before
    assert _role_and_state(vault, "rosa") == ("lawyer", False)

    spanish = browser(app_of(vault), "es")
    sign_in(spanish, "admin")
    taken = spanish.post(
        "/users", data={"csrf": token(spanish.get("/users")), "name": "rosa", "role": "lawyer"}
    )
    assert taken.status_code == 409 and "Ya existe una cuenta con este nombre" in taken.text


def test_role_changes_and_disabling_end_the_accounts_sessions(vault: Vault) -> None:
    tina = signed_in(vault, "tina")
    assert tina.get("/deposits").status_code == 200
    admin = signed_in(vault, "admin")
    csrf = token(admin.get("/users"))
    changed = admin.post("/users/role", data={"csrf": csrf, "name": "tina", "role": "advocate"})
    assert changed.status_code == 303 and _role_and_state(vault, "tina") == ("advocate", False)
    [entry] = entries(vault, ledger.actions.ROLE_CHANGE)
    assert (entry.actor, entry.details["previous"], entry.details["via"]) == (
        "admin",
        "therapist",
        "web",
    )
    assert tina.get("/deposits").status_code == 401  # the session ended with the old role

    theo = signed_in(vault, "theo")
    disabled = admin.post("/users/disable", data={"csrf": csrf, "name": "theo"})
    assert disabled.status_code == 303 and _role_and_state(vault, "theo")[1]
    assert theo.get("/deposits").status_code == 401
    assert "Enable theo" in admin.get("/users").text
    enabled = admin.post("/users/enable", data={"csrf": csrf, "name": "theo"})
    assert enabled.status_code == 303 and not _role_and_state(vault, "theo")[1]
    states = [
        (e.actor, e.details["disabled"]) for e in entries(vault, ledger.actions.ACCOUNT_STATE)
    ]
    assert states == [("admin", True), ("admin", False)]
    assert theo.get("/deposits").status_code == 401  # enabling again revives no session

    # One's own account, and one that does not exist: said plainly, nothing changed.
    own = admin.post("/users/disable", data={"csrf": csrf, "name": "admin"})
    assert own.status_code == 409 and "You cannot disable your own account" in own.text
    demote = admin.post("/users/role", data={"csrf": csrf, "name": "admin", "role": "auditor"})
    assert demote.status_code == 409 and _role_and_state(vault, "admin") == ("custodian", False)
    ghost = admin.post("/users/disable", data={"csrf": csrf, "name": "nobody"})
    assert ghost.status_code == 404 and "There is no such account" in ghost.text
    assert len(entries(vault, ledger.actions.ACCOUNT_STATE)) == 2
    assert len(entries(vault, ledger.actions.ROLE_CHANGE)) == 1


def test_a_set_password_link_is_shown_once_and_works(vault: Vault) -> None:
    admin = signed_in(vault, "admin")
    csrf = token(admin.get("/users"))
    shown = admin.post("/users/link", data={"csrf": csrf, "name": "lena"})
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    link = shown.text.split('id="link">')[1].split("<")[0]
    assert link.startswith("http://vault.test/set-password/")
    [entry] = entries(vault, ledger.actions.PASSWORD_LINK_ISSUANCE)
    assert entry.actor == "admin" and entry.details["account"] == "lena"
    assert link.rsplit("/", 1)[1] not in str(entry.details)  # the secret is never recorded
    visitor = browser(app_of(vault))
    assert visitor.get(link.removeprefix("http://vault.test")).status_code == 200
    ghost = admin.post("/users/link", data={"csrf": csrf, "name": "nobody"})
    assert (
        ghost.status_code == 404 and len(entries(vault, ledger.actions.PASSWORD_LINK_ISSUANCE)) == 1
    )


def test_turning_off_a_lost_second_factor(vault: Vault) -> None:
    secret = passwords.new_totp_secret()
    passwords.enable_totp(vault, "lena", secret, pyotp.TOTP(secret).at(vault.clock()))
    admin = signed_in(vault, "admin")
    page = admin.get("/users")
    assert "Turn off the second factor of lena" in page.text
    reset = admin.post("/users/second-factor-reset", data={"csrf": token(page), "name": "lena"})
    assert reset.status_code == 303
    [_, entry] = entries(vault, ledger.actions.SECOND_FACTOR_CHANGE)
    assert (entry.actor, entry.details["enabled"], entry.details["account"]) == (
        "admin",
        False,
        "lena",
    )
    with vault.sessions() as session:
        from vault.accounts import find_user

        assert not passwords.has_totp(vault, find_user(session, "lena").id)
    again = admin.post("/users/second-factor-reset", data={"csrf": token(page), "name": "lena"})
    assert again.status_code == 409 and "has no second factor" in again.text
    assert len(entries(vault, ledger.actions.SECOND_FACTOR_CHANGE)) == 2


def test_a_non_custodian_is_refused_as_by_the_api(vault: Vault) -> None:
    tina = signed_in(vault, "tina")
    home = tina.get("/")
    assert 'href="/users"' not in home.text  # comfort only: the policy decides below
    listed = tina.get("/users")
    assert listed.status_code == 403 and "lena" not in listed.text
    csrf = token(home)
    for path, data in (
        ("/users", {"name": "rosa", "role": "custodian"}),
        ("/users/role", {"name": "tina", "role": "custodian"}),
        ("/users/disable", {"name": "theo"}),
        ("/users/link", {"name": "admin"}),
        ("/users/second-factor-reset", {"name": "admin"}),
    ):
        refused = tina.post(path, data={"csrf": csrf, **data})
        assert refused.status_code == 403 and "You may not do this." in refused.text, path
    denied = entries(vault, ledger.actions.ACCESS_DENIED)
    assert [(e.actor, e.details["attempted"]) for e in denied] == [("tina", "user.manage")] * 6
    # The API's refusal is the same decision and the same entry, but for the credential.
    api = browser(app_of(vault))
    api.headers["Authorization"] = f"Bearer {token_for(vault, 'tina', 'therapist')}"
    assert api.post("/v1/users/theo/disable").status_code == 403
    by_api = entries(vault, ledger.actions.ACCESS_DENIED)[-1]
    same = {k: v for k, v in by_api.details.items() if k != "credential"}
    assert same == {k: v for k, v in denied[-1].details.items() if k != "credential"}
    assert str(denied[-1].details["credential"]).startswith("session:")
    assert _role_and_state(vault, "tina") == ("therapist", False)
    assert _role_and_state(vault, "theo") == ("therapist", False)
    for action in (
        ledger.actions.ACCOUNT_CREATION,
        ledger.actions.ROLE_CHANGE,
        ledger.actions.PASSWORD_LINK_ISSUANCE,
    ):
        assert [e for e in entries(vault, action) if e.actor == "tina"] == []
