"""The therapist's pages: the deposit form (a plain file field, streamed) and their deposits.

The form posts multipart/form-data to the same streaming deposit as `POST /v1/cases/{id}/items`
(`vault.api.upload`): nothing is spooled, the CSRF token and the form's one-time id are checked
before the first byte of the file is stored, and a form is accepted once (a second submission,
a double click or a reload, is refused and stores nothing).
"""

from __future__ import annotations

import secrets
from typing import Any, Final

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from policies import Principal
from vault import jobs
from vault.api import refusals
from vault.api.deps import VaultDep
from vault.api.tus_routes import routes
from vault.api.upload import FormRules, deposit_multipart
from vault.cases import list_cases
from vault.domain import CONSENT_SCOPES, KINDS
from vault.errors import BadField, VaultError
from vault.retrieve import list_items
from vault.signatures import Presented
from vault.web import forms, sessions
from vault.web.deps import Signed, record_refused_form, signed_in
from vault.web.errors import message_for
from vault.web.render import N_, render, translate

# Every page here needs a signed-in session (promise 4: deny by default).
pages = APIRouter(include_in_schema=False, dependencies=[Depends(signed_in)])

KIND_NAMES: Final = {
    "testimony": N_("Testimony (written, recorded or transcribed)"),
    "document": N_("Document"),
    "media": N_("Audio, video or image"),
    "medical_report": N_("Medical report"),
}
# Consent scopes in plain words: what the survivor agrees to (docs/access.md).
CONSENT_WORDS: Final = {
    "therapy": N_("Used in the survivor's own therapy."),
    "archive": N_("Kept in this archive for the long term."),
    "advocacy_anonymised": N_("Used in advocacy, without anything that identifies the survivor."),
    "advocacy_named": N_("Used in advocacy with the survivor's name."),
    "legal": N_("Read by lawyers working on legal cases."),
    "truth_commission": N_("Given to a truth commission."),
    "research": N_("Used in research."),
}
LANGUAGE_NAMES: Final = {
    "es": N_("Spanish"),
    "en": N_("English"),
    "pt": N_("Portuguese"),
    "fr": N_("French"),
    "quc": N_("K'iche'"),
    "qu": N_("Quechua"),
    "ay": N_("Aymara"),
    "gn": N_("Guarani"),
}
STATE_NAMES: Final = {
    "none": N_("not queued"),
    "queued": N_("waiting to be read"),
    "extracting": N_("being read"),
    "extracted": N_("text read, not yet searchable"),
    "indexed": N_("searchable"),
    "failed": N_("could not be read"),
}


CSRF_HEADER: Final = "Tvault-Csrf"
CUT: Final = N_(
    "The upload was cut before the end of the file. Nothing was stored; send the form again."
)


# A refused signed statement, said plainly (vault.signatures names the field that differs).
SIGNATURE_REFUSALS: Final = {
    "signature": N_(
        "The signature does not match the statement, or its key is not registered to you. "
        "Nothing was stored."
    ),
    "statement": N_(
        "The signed statement does not describe this deposit (its case, kind, file name, "
        "consent or vault differ, or it is not a statement). Nothing was stored."
    ),
    "sha256": N_("The file is not the one the signed statement names. Nothing was stored."),
    "size": N_("The file is not the one the signed statement names. Nothing was stored."),
}


class AlreadySent(VaultError):
    """The same form was sent before (a double click or a reload): nothing is done twice."""

    code = "already-sent"


def _form(
    request: Request, vault: VaultDep, current: sessions.Current, status: int, **extra: Any
) -> Response:
    cases = list_cases(vault, current.principal)
    languages = [(tag, translate(request, name)) for tag, name in LANGUAGE_NAMES.items()]
    return render(
        request,
        "deposit.html",
        status=status,
        cases=cases,
        kinds=[(kind, translate(request, KIND_NAMES[kind])) for kind in KINDS],
        scopes=[(scope, translate(request, CONSENT_WORDS[scope])) for scope in CONSENT_SCOPES],
        tags=vault.settings.tags,
        testimony_languages=languages,
        form_id=secrets.token_urlsafe(24),
        **extra,
    )


@pages.get("/deposit")
def deposit_form(request: Request, vault: VaultDep, current: Signed) -> Response:
    """The deposit form."""
    return _form(request, vault, current, 200)


@pages.post("/deposit")
async def deposit(request: Request, vault: VaultDep, current: Signed) -> Response:
    """Deposit the file of the form, streamed; then show the item with its digest."""
    claimed: list[str] = []

    def before_file(fields: dict[str, str]) -> Presented | None:
        # Runs on the parser's worker thread, before the first byte of the file is stored.
        token, form_id = fields.pop(forms.CSRF_FIELD, None), fields.pop("form", "")
        statement, signature = fields.pop("statement", ""), fields.pop("signature", "")
        try:
            forms.check_token(current.csrf, token)
        except forms.FormRefused:
            record_refused_form(vault, current.name, "missing or wrong CSRF token")
            raise
        if not sessions.claim_form(vault, current.id, form_id):
            raise AlreadySent("this form was sent already")
        claimed.append(form_id)
        return Presented.from_text(statement, signature)

    rules = FormRules(repeatable=frozenset({"consent", "tags"}), before_file=before_file)
    try:
        # Too large, malformed or interrupted: a `deposit refused` entry, as through the API.
        async with refusals.recorded(vault, current.principal, None):
            result = await deposit_multipart(vault, current.principal, None, request, form=rules)
    except AlreadySent:
        message = N_("This form was sent already; it was not stored a second time.")
        return await run_in_threadpool(
            lambda: _form(request, vault, current, 409, message=translate(request, message))
        )
    except VaultError as exc:
        for form_id in claimed:
            await run_in_threadpool(sessions.release_form, vault, form_id)
        if exc.code in ("bad-field", "too-large"):
            message = message_for(request, exc)
            if isinstance(exc, BadField) and exc.field == "body":
                message = translate(request, CUT)
            elif isinstance(exc, BadField) and exc.field in SIGNATURE_REFUSALS:
                message = translate(request, SIGNATURE_REFUSALS[exc.field])
            status = 413 if exc.code == "too-large" else 422
            response = await run_in_threadpool(
                lambda: _form(request, vault, current, status, message=message)
            )
            if exc.code == "too-large":
                response.headers["Connection"] = "close"
            return response
        raise
    except BaseException:
        for form_id in claimed:
            await run_in_threadpool(sessions.release_form, vault, form_id)
        raise
    return RedirectResponse(f"/items/{result.item_id}", status_code=303)


async def _session_uploader(request: Request, vault: VaultDep, current: Signed) -> Principal:
    # The session-cookie path of tus: the script sends the page's CSRF token in a header. A
    # cross-site form can send neither it nor `Tus-Resumable` (custom headers need a CORS
    # preflight, which the vault never grants), and the cookie is SameSite=Strict besides.
    try:
        forms.check_token(current.csrf, request.headers.get(CSRF_HEADER))
    except forms.FormRefused:
        await run_in_threadpool(
            record_refused_form, vault, current.name, "missing or wrong CSRF token"
        )
        raise
    return current.principal


# tus 1.0 for the deposit page's script (static/upload.js): the same routes as /v1/uploads.
uploads = routes("/uploads", _session_uploader)


@pages.get("/deposits")
def my_deposits(request: Request, vault: VaultDep, current: Signed) -> Response:
    """The signed-in account's own deposits, case by case, with their ingest state."""
    rows = []
    for case in list_cases(vault, current.principal):
        mine = [
            v for v in list_items(vault, current.principal, case.id) if v.depositor == current.name
        ]
        with vault.sessions() as session:
            states = jobs.ingest_states(session, [v.id for v in mine])
        for view in mine:
            state = states[view.id].state.value
            rows.append((case, view, translate(request, STATE_NAMES.get(state, state))))
    return render(request, "deposits.html", rows=rows)
