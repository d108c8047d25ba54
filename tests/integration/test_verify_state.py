"""`tvault verify` finds the state rewrites an attacker with the database and the store can make.

Each attack edits the real database or object store beside the vault, as someone holding the
files (not the passphrase) would, and must end with exit 1 and a line that names what
disagrees, in full and `--fast` runs alike unless decryption is what finds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import insert, update

from tests import corpus
from tests.unit.vault.conftest import _clean_env, principal, run_verify, stored_path
from tests.unit.vault.deposit_support import deposit, fields
from vault import compose, jobs, replay, sealed_fixity
from vault.cases import create_case, grant
from vault.consent import change_consent
from vault.db import Case, CaseGrant, Item
from vault.db.access_tables import LegalHold
from vault.db.jobs_tables import ItemText
from vault.parts import Vault
from vault.shred import set_hold
from vault.worker import Worker

# The unit tests' fixtures, used here by importing them (this file starts processes).
__all__ = ["_clean_env", "run_verify"]


@dataclass(frozen=True)
class World:
    case: str
    item: str  # extracted, consent changed once
    other: str  # deposited only


@pytest.fixture
def world(vault: Vault, tmp_path: Path) -> Iterator[World]:
    case = create_case(vault, principal(vault, "tina"), "Case of the river").id
    grant(vault, principal(vault, "admin"), case, "lena", "lawyer")
    body = corpus.text(tmp_path, content=f"{corpus.SPANISH} marker").read_bytes()
    item = deposit(vault, "tina", body, fields(case)).item_id
    other = deposit(vault, "tina", b"A second testimony.", fields(case, title="B")).item_id
    tina = principal(vault, "tina")
    change_consent(vault, tina, item, grant=["archive"], basis="depositor_confirmation")
    set_hold(vault, principal(vault, "admin"), other, True)
    worker = Worker(vault, stages={jobs.EXTRACT: compose.extract_stage})
    try:
        worker.run_until_idle()
    finally:
        worker.stop()
    text_object(vault, item), text_object(vault, other)  # both extracted
    yield World(case, item, other)


def fails_with(run: Callable[..., Result], line: str, *args: str) -> None:
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert line in result.output, result.output


def text_object(vault: Vault, item_id: str) -> str:
    with vault.sessions() as session:
        row = session.get(ItemText, item_id)
        assert row is not None
        return row.object_name


def flip(blob: bytes, at: int | None = None) -> bytes:
    data = bytearray(blob)
    data[len(data) // 2 if at is None else at] ^= 0x01
    return bytes(data)


def test_an_untouched_vault_with_texts_consent_grants_and_holds_verifies(
    world: World, run_verify: Callable[..., Result]
) -> None:
    for args in ((), ("--fast",)):
        result = run_verify(*args)
        assert result.exit_code == 0, result.output
        assert "OK: no failures" in result.output


def test_a_grant_inserted_in_sql(
    vault: Vault, world: World, run_verify: Callable[..., Result]
) -> None:
    with vault.sessions.begin() as session:
        session.execute(
            insert(CaseGrant).values(
                case_id=world.case,
                user_name="theo",
                role="therapist",
                granted_by="admin",
                granted_at=datetime.now(UTC),
            )
        )
    for args in ((), ("--fast",)):
        fails_with(
            run_verify, f"case {world.case}: {replay.GRANT_UNRECORDED} (theo as therapist)", *args
        )


def test_a_grant_deleted_in_sql(
    vault: Vault, world: World, run_verify: Callable[..., Result]
) -> None:
    with vault.sessions.begin() as session:
        session.query(CaseGrant).filter_by(case_id=world.case, user_name="lena").delete()
    fails_with(run_verify, f"case {world.case}: {replay.GRANT_MISSING} (lena as lawyer)", "--fast")


@pytest.mark.parametrize("which", ["item", "other"])
def test_consent_widened_in_sql(
    vault: Vault, world: World, run_verify: Callable[..., Result], which: str
) -> None:
    # `item` had its consent changed (a `consent change` entry); `other` kept its deposit's.
    item_id = getattr(world, which)
    with vault.sessions.begin() as session:
        session.execute(
            update(Item).where(Item.id == item_id).values(consent=["legal", "research", "therapy"])
        )
    for args in ((), ("--fast",)):
        fails_with(run_verify, f"{item_id}: {replay.CONSENT_DIFFERS}", *args)


def test_a_legal_hold_dropped_or_added_in_sql(
    vault: Vault, world: World, run_verify: Callable[..., Result]
) -> None:
    with vault.sessions.begin() as session:
        session.query(LegalHold).filter_by(item_id=world.other).delete()
        session.execute(
            insert(LegalHold).values(item_id=world.item, set_by="admin", set_at=datetime.now(UTC))
        )
    fails_with(run_verify, f"{world.other}: {replay.HOLD_DIFFERS}", "--fast")
    fails_with(run_verify, f"{world.item}: {replay.HOLD_DIFFERS}", "--fast")


def test_a_flipped_extracted_text_object(
    vault: Vault, world: World, run_verify: Callable[..., Result]
) -> None:
    path = stored_path(vault, text_object(vault, world.item))
    path.write_bytes(flip(path.read_bytes(), at=-5))
    fails_with(run_verify, f"{world.item}: {sealed_fixity.TEXT_UNREADABLE}")
    fails_with(run_verify, f"{world.item}: {sealed_fixity.TEXT_DIGEST}", "--fast")


def test_a_deleted_extracted_text_object(
    vault: Vault, world: World, run_verify: Callable[..., Result]
) -> None:
    stored_path(vault, text_object(vault, world.item)).unlink()
    for args in ((), ("--fast",)):
        fails_with(run_verify, f"{world.item}: {sealed_fixity.TEXT_MISSING}", *args)


def test_a_deleted_extracted_text_row(
    vault: Vault, world: World, run_verify: Callable[..., Result]
) -> None:
    with vault.sessions.begin() as session:
        session.query(ItemText).filter_by(item_id=world.item).delete()
    fails_with(run_verify, f"{world.item}: {sealed_fixity.TEXT_MISSING}", "--fast")


@pytest.mark.parametrize(
    ("table", "column", "what"),
    [
        (Item, "sealed_meta", "title, filename and notes"),
        (ItemText, "sealed_meta", "text metadata"),
        (Case, "sealed_name", "case name"),
    ],
)
def test_a_flipped_sealed_field(
    vault: Vault,
    world: World,
    run_verify: Callable[..., Result],
    table: type[Item | ItemText | Case],
    column: str,
    what: str,
) -> None:
    key = world.case if table is Case else world.item
    with vault.sessions.begin() as session:
        row = session.get(table, key)
        assert row is not None
        setattr(row, column, flip(getattr(row, column), at=-3))
    subject = f"case {key}" if table is Case else key
    fails_with(run_verify, f"{subject}: {sealed_fixity.SEALED_FIELD} ({what})")
