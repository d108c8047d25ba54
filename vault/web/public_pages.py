"""Pages a signed-out browser may open, listed here and in `vault.web.oidc_pages` only (promise
4): sign-in and its
second step, a set-password link, quick exit, the language switch and the static files."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from vault import ledger, passwords
from vault.accounts import NAME
from vault.api.deps import ANONYMOUS, VaultDep, gate_and_limiter
from vault.db import User
from vault.errors import BadField, NotFound, TooManyRequests, Unauthenticated
from vault.parts import Vault
from vault.ratelimit import RateLimiter
from vault.web import forms, i18n, sessions
from vault.web.deps import AnySession, CheckedForm, record_refused_form
from vault.web.errors import sign_in_page
from vault.web.render import N_, render, translate

public = APIRouter(include_in_schema=False)

WRONG = N_("Wrong account name or password. Nothing was changed.")
WRONG_CODE = N_("This code is not right, or was used already. Try the next one.")


def limiter(request: Request) -> RateLimiter:
    """Return the app's budget of refused attempts (shared with the API's refused tokens)."""
    return gate_and_limiter(request)[1]


def _budgets(request: Request, name: str) -> list[str]:
    keys = [f"address {request.client.host if request.client else 'unknown'}"]
    if NAME.fullmatch(name):
        keys.append(f"subject {name}")
    return keys


def _wait(request: Request, name: str) -> None:
    waits = [w for w in map(limiter(request).retry_after, _budgets(request, name)) if w]
    if waits:
        raise TooManyRequests("too many refused sign-ins; retry later", max(waits))


def _record_failed(vault: Vault, name: str, reason: str) -> None:
    # The account is named only when it exists: a mistyped name may be a password.
    with vault.sessions.begin() as session:
        exists = NAME.fullmatch(name) and session.query(User.id).filter(User.name == name).first()
        details = {"attempted": "sign in", "reason": reason}
        if exists:
            details["account"] = name
        ledger.append(
            session, actor=ANONYMOUS, action=ledger.actions.ACCESS_DENIED, details=details
        )


@public.get("/sign-in")
def sign_in_form(request: Request) -> Response:
    """The sign-in form."""
    return sign_in_page(request, None, status=200)


@public.post("/sign-in")
async def sign_in(request: Request, vault: VaultDep) -> Response:
    """Check the name and password; open a session (or its second step). Failures are limited
    per address and per account, and each is an `access denied` entry."""
    form = await forms.read_form(request)
    try:
        forms.check_anon(request, form)
    except forms.FormRefused:
        await run_in_threadpool(
            record_refused_form, vault, ANONYMOUS, "missing or wrong CSRF token"
        )
        raise
    name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
    _wait(request, name)
    try:
        checked = await run_in_threadpool(passwords.check_password, vault, name, password)
    except Unauthenticated:
        for key in _budgets(request, name):
            limiter(request).spend(key)
        await run_in_threadpool(_record_failed, vault, name, "wrong name or password")
        return sign_in_page(request, translate(request, WRONG))
    if checked.second_factor:
        state = sessions.SECOND_FACTOR
    elif vault.settings.require_2fa == "custodian" and checked.role == "custodian":
        state = sessions.ENROL
    else:
        state = sessions.ACTIVE
    opened = await run_in_threadpool(
        lambda: sessions.open_session(
            vault, checked.account_id, checked.generation, state, second_factor=False
        )
    )
    # A session opened before, in this browser, ends: one cookie, one session.
    await run_in_threadpool(
        sessions.close, vault, request.cookies.get(forms.SESSION_COOKIE), "signed in again"
    )
    target = {sessions.ACTIVE: "/", sessions.SECOND_FACTOR: "/sign-in/code"}.get(
        state, "/account/second-factor"
    )
    response = RedirectResponse(target, status_code=303)
    forms.set_cookie(request, response, forms.SESSION_COOKIE, opened.secret)
    return response


@public.get("/sign-in/code")
def code_form(request: Request, current: AnySession) -> Response:
    """The second step of sign-in: the TOTP code."""
    if current.state != sessions.SECOND_FACTOR:
        return RedirectResponse("/", status_code=303)
    return render(request, "sign_in_code.html")


@public.post("/sign-in/code")
async def code(
    request: Request, vault: VaultDep, current: AnySession, form: CheckedForm
) -> Response:
    """Check the TOTP code; the session becomes active with a fresh cookie."""
    if current.state != sessions.SECOND_FACTOR:
        return RedirectResponse("/", status_code=303)
    _wait(request, current.name)
    ok = await run_in_threadpool(
        passwords.check_totp, vault, current.account_id, str(form.get("code", ""))
    )
    if not ok:
        for key in _budgets(request, current.name):
            limiter(request).spend(key)
        await run_in_threadpool(_record_failed, vault, current.name, "wrong second-factor code")
        return render(
            request, "sign_in_code.html", status=401, message=translate(request, WRONG_CODE)
        )
    secret = await run_in_threadpool(
        lambda: sessions.activate(vault, current.id, second_factor=True)
    )
    response = RedirectResponse("/", status_code=303)
    forms.set_cookie(request, response, forms.SESSION_COOKIE, secret)
    return response


@public.get("/exit")
async def quick_exit(request: Request, vault: VaultDep) -> Response:
    """Quick exit: end the session on the server, tell the browser to forget this site's
    cookies, cache and storage (Clear-Site-Data), and leave for the neutral page."""
    await run_in_threadpool(
        sessions.close, vault, request.cookies.get(forms.SESSION_COOKIE), "quick exit"
    )
    response = RedirectResponse(vault.settings.web_exit_url, status_code=303)
    response.headers["Clear-Site-Data"] = '"cache", "cookies", "storage"'
    forms.clear_cookie(request, response, forms.SESSION_COOKIE)
    return response


def _local(path: str) -> str:
    # Only a path of this site (never `//host`, which browsers read as another site).
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


@public.post("/language")
async def language(request: Request, vault: VaultDep) -> Response:
    """Switch the page language: kept for the account when signed in, in a cookie otherwise."""
    form = await forms.read_form(request)
    chosen = str(form.get("language", ""))
    if chosen not in i18n.LANGUAGES:
        raise BadField("language", "es or en")
    response = RedirectResponse(_local(str(form.get("next", "/"))), status_code=303)
    try:
        current = await run_in_threadpool(
            sessions.resolve, vault, request.cookies.get(forms.SESSION_COOKIE)
        )
    except sessions.Ended:
        current = None
    if current is not None:
        try:
            forms.check_token(current.csrf, form.get(forms.CSRF_FIELD))
        except forms.FormRefused:
            reason = "missing or wrong CSRF token"
            await run_in_threadpool(record_refused_form, vault, current.name, reason)
            raise
        await run_in_threadpool(passwords.set_language, vault, current.account_id, chosen)
    forms.set_cookie(request, response, forms.LANGUAGE_COOKIE, chosen)
    return response


@public.get("/set-password/{secret}")
async def set_password_form(secret: str, request: Request, vault: VaultDep) -> Response:
    """The form of a one-time set-password link."""
    account = await run_in_threadpool(passwords.link_account, vault, secret)
    csrf = forms.anon_csrf(request)
    return render(request, "set_password.html", account=account, form_csrf=csrf)


@public.post("/set-password/{secret}")
async def set_password(secret: str, request: Request, vault: VaultDep) -> Response:
    """Set the password through the link (spent once it worked); then sign in."""
    form = await forms.read_form(request)
    try:
        forms.check_anon(request, form)
    except forms.FormRefused:
        await run_in_threadpool(
            record_refused_form, vault, ANONYMOUS, "missing or wrong CSRF token"
        )
        raise
    account = await run_in_threadpool(passwords.link_account, vault, secret)
    password, again = str(form.get("password", "")), str(form.get("again", ""))
    problem = None
    if password != again:
        problem = N_("The two passwords differ. Nothing was changed.")
    else:
        try:
            await run_in_threadpool(passwords.use_link, vault, secret, password)
        except BadField:
            problem = N_("The password must have 10 to 256 characters. Nothing was changed.")
        except NotFound:
            raise
    if problem is not None:
        csrf = forms.anon_csrf(request)
        message = translate(request, problem)
        return render(
            request, "set_password.html", 422, account=account, form_csrf=csrf, message=message
        )
    return sign_in_page(request, translate(request, N_("Your password is set. Sign in.")), 200)
