"""Helpers of the deposit tests: a body, deposit fields, a deposit through the use case."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.unit.vault.conftest import principal
from vault import ledger
from vault.db import Item, ItemKey
from vault.deposit import Deposit, DepositResult
from vault.objects import PREFIX
from vault.parts import Vault

BODY = b"I was held for nine days. " * 5000


def fields(case_id: str, **changes: str) -> dict[str, str]:
    base = {
        "case": case_id,
        "kind": "testimony",
        "title": "Testimony of R.",
        "language": "es",
        "consent": "therapy,legal",
        "tags": "torture,arbitrary_detention",
        "filename": "r.pdf",
        "notes": "recorded in the clinic",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v != ""}


def deposit(vault: Vault, user: str, data: bytes, field_values: dict[str, str]) -> DepositResult:
    job = Deposit.start(vault, principal(vault, user), field_values, len(data))
    for start in range(0, len(data), 7000):  # odd sizes: the sealer must re-chunk
        job.write(data[start : start + 7000])
    return job.commit()


def objects(vault: Vault) -> list[str]:
    return list(vault.store.names(PREFIX))


def counts(vault: Vault) -> tuple[int, int, int]:
    with vault.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(Item)) or 0,
            session.scalar(select(func.count()).select_from(ItemKey)) or 0,
            ledger.size(session),
        )


def items_in(vault: Vault) -> int:
    with vault.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Item)) or 0)


def objects_in(vault: Vault) -> int:
    # Stored objects and temporary files alike; the store's own lock file is no object.
    return sum(
        1 for p in vault.settings.objects_path.rglob("*") if p.is_file() and p.name != ".lock"
    )
