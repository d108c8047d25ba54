"""Render a page: the Jinja2 templates, in the request's language, with what every page shows."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from vault.web import forms, i18n


def N_(message: str) -> str:
    """Mark `message` for the catalogs where it is defined; it is translated where shown."""
    return message


@functools.cache
def environment() -> Environment:
    """Return the template environment (autoescaping every `.html` template)."""
    env = Environment(
        loader=PackageLoader("vault.web", "templates"),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def language_of(request: Request) -> str:
    """Return the language the request's pages speak (`vault.web.i18n.choose`)."""
    cached = getattr(request.state, "language", None)
    if isinstance(cached, str):
        return cached
    current = getattr(request.state, "web_session", None)
    account = getattr(current, "language", None)
    language = i18n.choose(
        account, request.cookies.get("tvault_lang"), request.headers.get("accept-language")
    )
    request.state.language = language
    return language


def translate(request: Request, message: str) -> str:
    """Return `message` in the request's language."""
    return i18n.translations(language_of(request)).gettext(message)


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render `template` in the request's language with the page's `context`.

    Every page gets `_` (gettext), `lang`, `languages`, `user` (the session, or None),
    `csrf` (the session's form token, or the sign-in form's) and `path` (for the language
    switch's return). The request's own headers say nothing about case data, so none is copied.
    """
    language = language_of(request)
    catalog = i18n.translations(language)
    current = getattr(request.state, "web_session", None)
    csrf = getattr(current, "csrf", None) or getattr(request.state, "anon_csrf", "")
    page = (
        environment()
        .get_template(template)
        .render(
            _=catalog.gettext,
            gettext=catalog.gettext,
            ngettext=catalog.ngettext,
            lang=language,
            languages=i18n.NAMES,  # the switch on every page
            user=current if getattr(current, "state", None) == "active" else None,
            csrf=csrf,
            path=request.url.path,
            **context,
        )
    )
    response = HTMLResponse(page, status_code=status)
    anon = getattr(request.state, "set_anon_csrf", None)
    if anon:
        forms.set_anon_cookie(request, response, anon)
    return response
