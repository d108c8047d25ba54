"""Web sign-in (issue 19 points 2, 3, 11): passwords, sessions, CSRF, headers, second factor."""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import func, select

from tests.unit.vault.web.web_support import (
    PASSWORD,
    browser,
    entries,
    later,
    sign_in,
    signed_in,
    token,
    with_password,
)
from vault import ledger
from vault.compose import app_of
from vault.db.web_tables import WebSession
from vault.parts import Vault
from vault.web.headers import CSP


def sessions_in(vault: Vault) -> int:
    with vault.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(WebSession)) or 0)


def test_every_page_carries_the_security_headers_and_the_api_keeps_its_own(vault: Vault) -> None:
    client = browser(app_of(vault))
    for path in ("/sign-in", "/", "/static/web.css", "/no-such-page"):
        page = client.get(path)
        assert page.headers["content-security-policy"] == CSP, path
        assert "'unsafe-inline'" not in CSP and "frame-ancestors 'none'" in CSP
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "no-referrer"
        if not path.startswith("/static/"):
            assert page.headers["cache-control"] == "no-store", path
    api = client.get("/v1/me")
    assert api.status_code == 401 and "content-security-policy" not in api.headers
    assert api.headers["content-type"].startswith("application/problem+json")


@pytest.mark.both_databases
def test_a_right_password_opens_a_server_side_session_in_a_strict_cookie(vault: Vault) -> None:
    with_password(vault, "tina")
    client = browser(app_of(vault))
    answer = sign_in(client, "tina")
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("tvault_session=") and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie and "Secure" not in cookie  # plain HTTP here
    home = client.get("/")
    assert home.status_code == 200 and "tina" in home.text
    [signed] = entries(vault, ledger.actions.SIGN_IN)
    assert signed.actor == "tina" and signed.details["via"] == "web"
    assert signed.details["second_factor"] is False
    # What the session does is recorded under it (promise 9).
    client.get("/deposits")
    reads = [e for e in entries(vault, ledger.actions.SIGN_IN)]
    assert reads and sessions_in(vault) == 1


@pytest.mark.both_databases
def test_a_wrong_password_says_so_is_recorded_and_opens_nothing(vault: Vault) -> None:
    with_password(vault, "tina")
    client = browser(app_of(vault), language="es")
    answer = sign_in(client, "tina", "not the password at all")
    assert answer.status_code == 401
    assert "Nombre de cuenta o contraseña incorrectos" in answer.text
    assert 'tvault_session=""' in answer.headers.get("set-cookie", "") or True
    assert sessions_in(vault) == 0 and not entries(vault, ledger.actions.SIGN_IN)
    unknown = sign_in(client, "tina-password-typed-as-name", "whatever it is")
    assert unknown.status_code == 401
    denied = [
        e.details
        for e in entries(vault, ledger.actions.ACCESS_DENIED)
        if e.details["attempted"] == "sign in"
    ]
    # The account is named when it exists; a name that is no account is never written down.
    assert denied == [
        {"attempted": "sign in", "reason": "wrong name or password", "account": "tina"},
        {"attempted": "sign in", "reason": "wrong name or password"},
    ]


def test_failed_sign_ins_are_limited_even_with_the_right_password_after(vault: Vault) -> None:
    vault.settings = vault.settings.model_copy(update={"auth_failure_burst": 2})
    with_password(vault, "tina")
    client = browser(app_of(vault))
    assert sign_in(client, "tina", "wrong password one").status_code == 401
    assert sign_in(client, "tina", "wrong password two").status_code == 401
    refused = sign_in(client, "tina")
    assert refused.status_code == 429 and "Too many failed attempts" in refused.text
    assert int(refused.headers["retry-after"]) >= 1
    assert sessions_in(vault) == 0


def test_a_form_without_its_csrf_token_is_refused_recorded_and_changes_nothing(
    vault: Vault,
) -> None:
    with_password(vault, "tina")
    client = browser(app_of(vault))
    client.get("/sign-in")
    forged = client.post("/sign-in", data={"name": "tina", "password": PASSWORD})
    assert forged.status_code == 403 and "did not come from this site" in forged.text
    assert sessions_in(vault) == 0
    client = signed_in(vault, "tina")
    before = len(entries(vault, ledger.actions.PASSWORD_CHANGE))
    changed = client.post(
        "/account/password",
        data={
            "current": PASSWORD,
            "password": "another long password",
            "again": "another long password",
        },
    )
    assert changed.status_code == 403
    assert len(entries(vault, ledger.actions.PASSWORD_CHANGE)) == before
    reasons = [e.details["reason"] for e in entries(vault, ledger.actions.ACCESS_DENIED)]
    assert reasons.count("missing or wrong CSRF token") == 2


@pytest.mark.both_databases
def test_an_idle_session_ends_on_the_server_and_the_page_says_why(vault: Vault) -> None:
    client = signed_in(vault, "tina")
    assert client.get("/").status_code == 200
    later(vault, 31 * 60)
    page = client.get("/")
    assert page.status_code == 401 and "Your session ended" in page.text
    assert sessions_in(vault) == 0
    [ended] = entries(vault, ledger.actions.SIGN_OUT)
    assert ended.details["reason"] == "expired"


def test_a_session_left_to_time_out_ends_at_the_account_s_next_sign_in(vault: Vault) -> None:
    signed_in(vault, "tina")  # a browser that never comes back
    later(vault, 13 * 3600)  # past the idle timeout and the 12-hour maximum
    sign_in(browser(app_of(vault)), "tina")
    assert sessions_in(vault) == 1
    assert [e.details["reason"] for e in entries(vault, ledger.actions.SIGN_OUT)] == ["expired"]


@pytest.mark.both_databases
def test_sign_out_kills_the_session_so_its_cookie_no_longer_opens_anything(vault: Vault) -> None:
    client = signed_in(vault, "tina")
    stolen = dict(client.cookies)
    home = client.get("/")
    out = client.post("/sign-out", data={"csrf": token(home)})
    assert out.status_code == 303 and sessions_in(vault) == 0
    replay = browser(app_of(vault))
    replay.cookies.update(stolen)
    assert replay.get("/").status_code == 401
    [ended] = entries(vault, ledger.actions.SIGN_OUT)
    assert ended.details["reason"] == "signed out"


def test_quick_exit_ends_the_session_and_clears_the_site_data(vault: Vault) -> None:
    client = signed_in(vault, "tina")
    leave = client.get("/exit")
    assert leave.status_code == 303
    assert leave.headers["location"] == vault.settings.web_exit_url
    assert leave.headers["clear-site-data"] == '"cache", "cookies", "storage"'
    assert sessions_in(vault) == 0


def test_a_role_change_ends_the_sessions_of_the_account(vault: Vault) -> None:
    from vault.accounts import OFFLINE_ACTOR, change_role

    client = signed_in(vault, "tina")
    with vault.sessions.begin() as session:
        change_role(session, "tina", "lawyer", vault.clock(), actor=OFFLINE_ACTOR, via="offline")
    assert client.get("/").status_code == 401


def test_language_comes_from_the_account_then_accept_language(vault: Vault) -> None:
    app = app_of(vault)
    assert "Iniciar sesión" in browser(app, "es-MX,es;q=0.9").get("/sign-in").text
    assert "Sign in" in browser(app, "en-GB").get("/sign-in").text
    client = signed_in(vault, "tina")  # speaks English
    home = client.get("/")
    switched = client.post("/language", data={"csrf": token(home), "language": "es", "next": "/"})
    assert switched.status_code == 303 and switched.headers["location"] == "/"
    # The account's choice wins over the browser's header, in a fresh browser too.
    fresh = browser(app, "en")
    sign_in(fresh, "tina")
    assert "Bienvenida" in fresh.get("/").text
    bad = client.post(
        "/language", data={"csrf": token(home), "language": "es", "next": "//evil.example/"}
    )
    assert bad.headers["location"] == "/"


@pytest.mark.both_databases
def test_a_second_factor_is_set_up_then_asked_for_and_each_code_works_once(vault: Vault) -> None:
    client = signed_in(vault, "tina")
    setup = client.get("/account/second-factor")
    secret = setup.text.split('id="totp-secret">')[1].split("<")[0]
    totp = pyotp.TOTP(secret)
    wrong = client.post(
        "/account/second-factor", data={"csrf": token(setup), "secret": secret, "code": "000000"}
    )
    assert wrong.status_code in (200, 422) and not entries(
        vault, ledger.actions.SECOND_FACTOR_CHANGE
    )
    on = client.post(
        "/account/second-factor",
        data={"csrf": token(setup), "secret": secret, "code": totp.at(vault.clock())},
    )
    assert on.status_code == 303
    [change] = entries(vault, ledger.actions.SECOND_FACTOR_CHANGE)
    assert change.details["enabled"] is True and change.details["account"] == "tina"
    later(vault, 60)  # the next time step: the code used to turn it on is spent
    fresh = browser(app_of(vault))
    first = sign_in(fresh, "tina")
    assert first.headers["location"] == "/sign-in/code"
    assert fresh.get("/").headers["location"] == "/sign-in/code"  # not signed in yet
    form = fresh.get("/sign-in/code")
    code = totp.at(vault.clock())
    assert (
        fresh.post("/sign-in/code", data={"csrf": token(form), "code": "123456"}).status_code == 401
    )
    done = fresh.post("/sign-in/code", data={"csrf": token(form), "code": code})
    assert done.status_code == 303 and fresh.get("/").status_code == 200
    assert entries(vault, ledger.actions.SIGN_IN)[-1].details["second_factor"] is True
    again = browser(app_of(vault))
    sign_in(again, "tina")
    reused = again.post(
        "/sign-in/code", data={"csrf": token(again.get("/sign-in/code")), "code": code}
    )
    assert reused.status_code == 401  # RFC 6238 5.2: one use per code


def test_custodians_must_set_up_a_second_factor_when_the_vault_requires_it(vault: Vault) -> None:
    vault.settings = vault.settings.model_copy(update={"require_2fa": "custodian"})
    with_password(vault, "admin")
    client = browser(app_of(vault))
    answer = sign_in(client, "admin")
    assert answer.headers["location"] == "/account/second-factor"
    assert client.get("/").headers["location"] == "/account/second-factor"
    assert not entries(vault, ledger.actions.SIGN_IN)
    setup = client.get("/account/second-factor")
    assert "requires a second factor" in setup.text
    secret = setup.text.split('id="totp-secret">')[1].split("<")[0]
    on = client.post(
        "/account/second-factor",
        data={"csrf": token(setup), "secret": secret, "code": pyotp.TOTP(secret).at(vault.clock())},
    )
    assert on.status_code == 303 and client.get("/").status_code == 200
    off = client.post(
        "/account/second-factor/off",
        data={"csrf": token(client.get("/account")), "current": PASSWORD},
    )
    assert off.status_code == 403


def test_a_password_change_needs_the_current_one_and_is_a_ledger_entry(vault: Vault) -> None:
    client = signed_in(vault, "tina")
    page = client.get("/account")
    new = "a brand new long password"
    wrong = client.post(
        "/account/password",
        data={"csrf": token(page), "current": "nope nope nope", "password": new, "again": new},
    )
    assert "not right" in wrong.text
    done = client.post(
        "/account/password",
        data={"csrf": token(page), "current": PASSWORD, "password": new, "again": new},
    )
    assert "was changed" in done.text
    changes = entries(vault, ledger.actions.PASSWORD_CHANGE)
    assert [c.details["via"] for c in changes] == ["offline", "web"]
    assert changes[-1].details["credential"].startswith("session:")
    assert sign_in(browser(app_of(vault)), "tina", new).status_code == 303


@pytest.mark.both_databases
@pytest.mark.parametrize("mismatch", [True, False])
def test_a_set_password_link_works_once(vault: Vault, mismatch: bool) -> None:
    from vault import passwords
    from vault.accounts import OFFLINE, OFFLINE_ACTOR

    link_id, secret, _ = passwords.issue_link(vault, "tina", actor=OFFLINE_ACTOR, via=OFFLINE)
    client = browser(app_of(vault))
    form = client.get(f"/set-password/{secret}")
    assert form.status_code == 200 and "tina" in form.text
    new = "chosen through the link"
    if mismatch:
        refused = client.post(
            f"/set-password/{secret}",
            data={"csrf": token(form), "password": new, "again": new + "!"},
        )
        assert refused.status_code == 422 and not entries(vault, ledger.actions.PASSWORD_CHANGE)
    done = client.post(
        f"/set-password/{secret}", data={"csrf": token(form), "password": new, "again": new}
    )
    assert done.status_code == 200
    [change] = entries(vault, ledger.actions.PASSWORD_CHANGE)
    assert change.details["link"] == link_id
    assert client.get(f"/set-password/{secret}").status_code == 404
    assert sign_in(browser(app_of(vault)), "tina", new).status_code == 303


def test_the_access_log_never_shows_a_set_password_link_s_secret(
    vault: Vault, caplog: pytest.LogCaptureFixture
) -> None:
    from vault import passwords
    from vault.accounts import OFFLINE, OFFLINE_ACTOR

    _, secret, _ = passwords.issue_link(vault, "tina", actor=OFFLINE_ACTOR, via=OFFLINE)
    with caplog.at_level("INFO", logger="vault.access"):
        assert browser(app_of(vault)).get(f"/set-password/{secret}").status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "vault.access"]
    assert lines == ["GET /set-password/… 200"]
    assert secret not in caplog.text
