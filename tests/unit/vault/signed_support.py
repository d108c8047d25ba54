"""Helpers of the signed deposit tests (tests/unit/vault/test_signed_deposit.py, and those that
sign with a live `ssh-keygen`, tests/integration/test_signed_ssh.py): a case, the statement a
depositor signs, a deposit through the use case, and whether it left anything behind."""

from __future__ import annotations

import hashlib

from sqlalchemy import func, select

import keys
from tests.unit.vault.conftest import principal
from vault import signatures
from vault.db import Item
from vault.db.signature_tables import ItemSignature
from vault.deposit import Deposit, DepositResult
from vault.objects import PREFIX
from vault.parts import Vault

BODY = b"They took us to the barracks at night. " * 3000
FILENAME = "testimony-r.pdf"


def fields(case_id: str) -> dict[str, str]:
    return {
        "case": case_id,
        "kind": "testimony",
        "title": "Testimony of R.",
        "consent": "therapy,legal",
        "filename": FILENAME,
    }


def statement(vault: Vault, case_id: str, key: str, **changes: object) -> bytes:
    values: dict[str, object] = {
        "origin": signatures.origin_of(vault),
        "case": case_id,
        "sha256": hashlib.sha256(BODY).hexdigest(),
        "size": len(BODY),
        "filename": FILENAME,
        "kind": "testimony",
        "consent": ["legal", "therapy"],
        "key_id": keys.key_id(key),
        "signed_at": "2026-11-25T12:00:00Z",
    }
    values.update(changes)
    return keys.canonical_json(values)


def signed_by_tina(vault: Vault, case_id: str, body: bytes) -> tuple[bytes, str]:
    """A registered key of tina's, and her signed statement of `body` as `t.txt` (therapy)."""
    private, public = keys.generate_signing_key()
    signatures.register_key(vault, principal(vault, "admin"), "tina", public)
    signed = signatures.build_statement(
        origin=signatures.origin_of(vault),
        case=case_id,
        sha256=hashlib.sha256(body).hexdigest(),
        size=len(body),
        filename="t.txt",
        kind="testimony",
        consent=["therapy"],
        key_id=keys.key_id(public),
        signed_at="2026-12-07T12:00:00Z",
    )
    return signed, keys.sign(signed, private)


def deposit(
    vault: Vault, case_id: str, presented: signatures.Presented, body: bytes = BODY
) -> DepositResult:
    job = Deposit.start(
        vault, principal(vault, "tina"), fields(case_id), len(body), statement=presented
    )
    try:
        for start in range(0, len(body), 9000):
            job.write(body[start : start + 9000])
    except BaseException:
        job.abort()
        raise
    return job.commit()


def nothing_stored(vault: Vault) -> bool:
    root = vault.settings.objects_path
    temps = [p for p in (root / ".tmp").iterdir() if p.name.startswith("w-")]
    with vault.sessions() as session:
        items = session.scalar(select(func.count()).select_from(Item))
        sigs = session.scalar(select(func.count()).select_from(ItemSignature))
    return not list(vault.store.names(PREFIX)) and not temps and items == 0 and sigs == 0
