"""An item's consent on the web: its history with dates, and a change resting on the survivor's
signed consent form (or the depositing therapist's confirmation).

The page calls `vault.consent` as `POST /v1/items/{id}/consent` does: the same policy check,
the same `consent change` ledger entry, the form sealed to the item's key. The form posts
multipart/form-data read in memory (a signed consent form names the survivor: Starlette would
spool it to a temporary file in the clear); its CSRF token is checked before anything is done.
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from vault import consent
from vault.api.deps import VaultDep
from vault.domain import CONSENT_SCOPES
from vault.errors import BadField, Forbidden
from vault.web import forms
from vault.web.deposit_pages import CONSENT_WORDS
from vault.web.deps import Signed, record_refused_form, signed_in
from vault.web.render import N_, render, translate

# Every page here needs a signed-in session; the policy decides who may change what.
pages = APIRouter(include_in_schema=False, dependencies=[Depends(signed_in)])

FORM_FIELD: Final = "consent_form"
# The form file, the note and the checkboxes: a body larger than this is refused unread.
MAX_BODY: Final = consent.MAX_FORM_BYTES + 64 * 1024
BASIS_WORDS: Final = {
    consent.CONSENT_FORM: N_("The survivor signed a new consent form (attach it below)."),
    consent.DEPOSITOR_CONFIRMATION: N_(
        "I deposited this item and confirm the survivor asked for this change."
    ),
}
# What a refused change tells the reader, by the field the use case names.
REFUSALS: Final = {
    "withdraw": N_("A scope cannot be given and withdrawn at once."),
    "grant": N_("Tick a scope to give or to withdraw, or attach a signed consent form."),
    "basis": N_("Say what the change rests on: the signed consent form or your confirmation."),
    "form": N_(
        "A change resting on the signed consent form needs the form, a file of at most 16 MiB."
    ),
    "note": N_("The note is too long: at most 2,000 characters."),
}
NOTHING_CHANGED: Final = N_("Nothing was changed.")
INVALID: Final = N_("Some of what was sent is not valid.")
NOT_YOURS: Final = N_(
    "You may not make this change. Without the signed consent form, only the therapist who "
    "deposited the item may confirm one."
)


def _page(
    request: Request,
    vault: VaultDep,
    current: Signed,
    item_id: str,
    status: int = 200,
    message: str | None = None,
) -> Response:
    versions = consent.history(vault, current.principal, item_id)
    given = set(versions[-1].scopes)

    def words(scopes: list[str]) -> list[tuple[str, str]]:
        return [(scope, translate(request, CONSENT_WORDS[scope])) for scope in scopes]

    return render(
        request,
        "consent.html",
        status=status,
        item_id=item_id,
        versions=[
            (v, [translate(request, CONSENT_WORDS.get(s, s)) for s in v.scopes])
            for v in reversed(versions)
        ],
        given=words([s for s in CONSENT_SCOPES if s in given]),
        not_given=words([s for s in CONSENT_SCOPES if s not in given]),
        bases=[(basis, translate(request, words_)) for basis, words_ in BASIS_WORDS.items()],
        message=message,
    )


@pages.get("/items/{item_id}/consent")
def consent_page(item_id: str, request: Request, vault: VaultDep, current: Signed) -> Response:
    """The item's consent: the scopes in force, every version with its date, the change form."""
    return _page(request, vault, current, item_id)


@pages.post("/items/{item_id}/consent")
async def change(item_id: str, request: Request, vault: VaultDep, current: Signed) -> Response:
    """Grant or withdraw scopes on the basis named, with the signed form; then the history."""
    parts = await forms.read_multipart(request, MAX_BODY)
    fields: dict[str, list[bytes]] = {}
    for name, value in parts:
        fields.setdefault(name, []).append(value)
    try:
        forms.check_token(current.csrf, _text(fields, forms.CSRF_FIELD))
    except forms.FormRefused:
        await run_in_threadpool(
            record_refused_form, vault, current.name, "missing or wrong CSRF token"
        )
        raise
    # A file field left empty still sends an empty part: no form then.
    form = next((f for f in fields.get(FORM_FIELD, []) if f), None)
    try:
        await run_in_threadpool(
            lambda: consent.change_consent(
                vault,
                current.principal,
                item_id,
                grant=_texts(fields, "grant"),
                withdraw=_texts(fields, "withdraw"),
                basis=_text(fields, "basis"),
                form=form,
                note=_text(fields, "note"),
            )
        )
    except BadField as exc:
        # An unknown scope comes only from a forged form; say no more than that it is wrong.
        said = REFUSALS.get("" if "unknown" in str(exc) else exc.field, INVALID)
        message = f"{translate(request, said)} {translate(request, NOTHING_CHANGED)}"
        return await run_in_threadpool(_page, request, vault, current, item_id, 422, message)
    except Forbidden:
        message = f"{translate(request, NOT_YOURS)} {translate(request, NOTHING_CHANGED)}"
        return await run_in_threadpool(_page, request, vault, current, item_id, 403, message)
    return RedirectResponse(f"/items/{item_id}/consent", status_code=303)


def _texts(fields: dict[str, list[bytes]], name: str) -> list[str]:
    try:
        return [value.decode("utf-8") for value in fields.get(name, [])]
    except UnicodeDecodeError:
        raise BadField(name, "not UTF-8") from None


def _text(fields: dict[str, list[bytes]], name: str) -> str | None:
    values = _texts(fields, name)
    if len(values) > 1:
        raise BadField(name, "given twice")
    return values[0].strip() or None if values else None


@pages.get("/items/{item_id}/consent/{version}/form")
async def consent_form(item_id: str, version: int, vault: VaultDep, current: Signed) -> Response:
    """The signed consent form recorded with `version` (a `decryption` entry), as a file."""
    data = await run_in_threadpool(consent.consent_form, vault, current.principal, item_id, version)
    headers = {"Content-Disposition": f'attachment; filename="{item_id}-consent-{version}"'}
    return Response(data, media_type="application/octet-stream", headers=headers)
