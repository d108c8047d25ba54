"""Helpers of the search tests: deposit an item and give it an extracted text, as the
extraction stage does (text sealed to the item's identity, an `item_texts` row)."""

from __future__ import annotations

import io
from collections.abc import Iterable

import keys
from policies import Principal
from vault.db.jobs_tables import ItemText
from vault.deposit import Deposit
from vault.ids import new_id
from vault.indexing import item_identity
from vault.parts import Vault
from vault.sealing import seal_json


def deposit(
    vault: Vault,
    principal: Principal,
    case_id: str,
    *,
    consent: Iterable[str],
    kind: str = "testimony",
    language: str | None = "es",
    tags: Iterable[str] = (),
    title: str = "Testimonio",
    body: bytes = b"original bytes",
    notes: str | None = None,
) -> str:
    """Deposit an item through the vault's own use case; return its id."""
    fields = {
        "case": case_id,
        "kind": kind,
        "title": title,
        "consent": ",".join(sorted(consent)),
        "tags": ",".join(sorted(tags)),
    }
    if language:
        fields["language"] = language
    if notes:
        fields["notes"] = notes
    started = Deposit.start(vault, principal, fields)
    started.write(body)
    return started.commit().item_id


def give_text(vault: Vault, item_id: str, text: str, language: str | None = None) -> None:
    """Store `text` as the item's extracted text, sealed to the item's identity."""
    with vault.sessions() as session:
        identity = item_identity(vault, session, item_id)
    assert identity is not None
    recipient = keys.recipient_of(identity)
    name = f"texts/{new_id()}"
    with vault.store.writer(name) as writer:
        sealer = keys.Sealer(writer, [recipient])  # type: ignore[arg-type]
        sealer.write(text.encode("utf-8"))
        sealer.close()
        writer.commit()
    with vault.sessions.begin() as session:
        session.add(
            ItemText(
                item_id=item_id,
                object_name=name,
                mime_type="text/plain",
                language=language,
                chars=len(text),
                sealed_meta=seal_json({}, recipient),
                tool="test",
                extracted_at=vault.clock(),
            )
        )


def sealed_bytes(text: str, recipient: str) -> bytes:
    """Return `text` sealed to `recipient` (for tampering tests)."""
    out = io.BytesIO()
    keys.seal(io.BytesIO(text.encode("utf-8")), out, [recipient])
    return out.getvalue()
