"""`tvault verify`: every way a person could tamper with the vault is detected and named."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

import keys
from tests.unit.vault import world_support as worlds
from tests.unit.vault.conftest import principal
from tests.unit.vault.deposit_support import deposit, fields
from tests.unit.vault.ledger.conftest import allow_tampering, rewrite_from
from vault import ledger, verify
from vault.cases import create_case
from vault.db import Item, ItemKey
from vault.ledger import actions, note
from vault.ledger.entry import build
from vault.ledger.tables import CheckpointRow, LedgerRow
from vault.parts import Vault

BODY_A = b"First testimony, several chunks long. " * 5000
BODY_B = b"Second testimony. " * 300


def _build_items(vault: Vault) -> tuple[str, str]:
    case = create_case(vault, principal(vault, "tina"), "Case 1").id
    a = deposit(vault, "tina", BODY_A, fields(case)).item_id
    b = deposit(vault, "tina", BODY_B, fields(case, title="B")).item_id
    vault.checkpointer.checkpoint()
    with vault.sessions.begin() as session:
        ledger.append(session, actor="tina", action=actions.DECRYPTION, item_id=a)
    return a, b


@pytest.fixture
def items(vault: Vault, request: pytest.FixtureRequest) -> tuple[str, str]:
    """Two deposits, a checkpoint and one more entry: made once per process and database,
    copied into each test's own vault (world_support.py), which the test then tampers with."""
    return worlds.enter(request, vault, "verify-items", _build_items)


def stored_path(vault: Vault, name: str) -> Path:
    # Tampering happens beside the port, on the files the local adapter keeps.
    [path] = [p for p in vault.settings.objects_path.rglob(name.replace("/", "+"))]
    return path


def object_of(vault: Vault, item_id: str) -> str:
    with vault.sessions() as session:
        item = session.get(Item, item_id)
        assert item is not None
        return item.object_name


def found(report: verify.Report) -> set[tuple[str, str]]:
    return {(f.subject, f.kind) for f in report.failures}


def test_an_untouched_vault_verifies(vault: Vault, items: tuple[str, str]) -> None:
    phases: set[str] = set()
    report = verify.verify(vault, progress=lambda phase, done, total: phases.add(phase))
    assert report.ok, report.failures
    assert (report.items, report.shredded, report.checkpoints) == (2, 0, 1)
    with vault.sessions() as session:
        assert report.entries == ledger.size(session)
    assert phases == {"objects", "ledger", "checkpoints"}
    assert verify.verify(vault, fast=True).ok


def test_flipped_byte_in_an_object(vault: Vault, items: tuple[str, str]) -> None:
    path = stored_path(vault, object_of(vault, items[0]))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert found(verify.verify(vault)) == {(items[0], verify.OBJECT_UNREADABLE)}
    # The ciphertext digest recorded at deposit finds it without decrypting.
    assert found(verify.verify(vault, fast=True)) == {(items[0], verify.CIPHERTEXT_MISMATCH)}


def test_deleted_object(vault: Vault, items: tuple[str, str]) -> None:
    stored_path(vault, object_of(vault, items[1])).unlink()
    assert found(verify.verify(vault)) == {(items[1], verify.OBJECT_MISSING)}
    assert found(verify.verify(vault, fast=True)) == {(items[1], verify.OBJECT_MISSING)}


def test_truncated_object_is_found_even_fast(vault: Vault, items: tuple[str, str]) -> None:
    path = stored_path(vault, object_of(vault, items[0]))
    path.write_bytes(path.read_bytes()[: len(BODY_A) // 2])
    assert found(verify.verify(vault, fast=True)) == {(items[0], verify.SIZE_MISMATCH)}
    assert found(verify.verify(vault)) == {(items[0], verify.OBJECT_UNREADABLE)}


def test_swapped_item_keys(vault: Vault, items: tuple[str, str]) -> None:
    a, b = items
    with vault.sessions.begin() as session:
        key_a, key_b = session.get(ItemKey, a), session.get(ItemKey, b)
        assert key_a is not None and key_b is not None
        key_a.wrapped, key_b.wrapped = key_b.wrapped, key_a.wrapped
    # An item key is sealed with its item's id as associated data (keys.item_keys): moved to
    # another row it no longer unwraps at all. (Keys from before that format, `tvk1`, unwrap
    # and are then named `item keys swapped`.)
    assert found(verify.verify(vault)) == {(a, verify.KEY_UNWRAP), (b, verify.KEY_UNWRAP)}


def test_wrong_plaintext_digest_recorded(vault: Vault, items: tuple[str, str]) -> None:
    with vault.sessions.begin() as session:
        session.execute(update(Item).where(Item.id == items[1]).values(sha256="0" * 64))
    assert found(verify.verify(vault)) == {(items[1], verify.DIGEST_MISMATCH)}


def test_shredding_needs_its_ledger_entry(vault: Vault, items: tuple[str, str]) -> None:
    with vault.sessions.begin() as session:
        session.execute(delete(ItemKey).where(ItemKey.item_id == items[1]))
    assert found(verify.verify(vault)) == {(items[1], verify.KEY_MISSING)}
    with vault.sessions.begin() as session:
        ledger.append(session, actor="admin", action=actions.DELETION, item_id=items[1])
    report = verify.verify(vault)
    assert report.ok and report.shredded == 1
    # A shredded item's object may also be gone: that is the tombstone, not a failure.
    stored_path(vault, object_of(vault, items[1])).unlink()
    assert verify.verify(vault).ok


def rows(vault: Vault) -> list[LedgerRow]:
    with vault.sessions() as session:
        return list(session.scalars(select(LedgerRow).order_by(LedgerRow.seq)))


def test_edited_entry(vault: Vault, items: tuple[str, str]) -> None:
    allow_tampering(vault.engine)
    target = next(r for r in rows(vault) if r.action == actions.INGESTION)
    with vault.sessions.begin() as session:
        row = session.get(LedgerRow, target.seq)
        assert row is not None
        row.entry = row.entry.replace(b'"size":', b'"size":1')
    result = found(verify.verify(vault))
    assert (f"entry {target.seq}", verify.ENTRY_ROW) in result
    assert (f"entry {target.seq + 1}", verify.CHAIN_BROKEN) in result
    assert any(kind == verify.CHECKPOINT_ROOT for _, kind in result)


def test_edited_entry_with_the_chain_rewritten(vault: Vault, items: tuple[str, str]) -> None:
    allow_tampering(vault.engine)
    # A careful forger recomputes every later hash and the head: the signed checkpoint remains.
    all_rows = rows(vault)
    target = next(r for r in all_rows if r.action == actions.INGESTION).seq
    rewrite_from(vault.engine, vault.sessions, target, lambda details: details.update(size=1))
    result = found(verify.verify(vault))
    # The signed checkpoint and the MACs under the ledger key (which the forger lacks) remain.
    assert result == {
        ("checkpoint " + str(checkpoint_size(vault)), verify.CHECKPOINT_ROOT),
        (f"entry {target}-{all_rows[-1].seq}", verify.ENTRY_MAC),
        ("ledger head", verify.HEAD_MAC),
    }


def checkpoint_size(vault: Vault) -> int:
    with vault.sessions() as session:
        return int(session.scalars(select(CheckpointRow.size)).one())


def test_edited_row_column(vault: Vault, items: tuple[str, str]) -> None:
    allow_tampering(vault.engine)
    with vault.sessions.begin() as session:
        session.execute(update(LedgerRow).where(LedgerRow.seq == 1).values(actor="someone"))
    assert found(verify.verify(vault)) == {("entry 1", verify.ENTRY_ROW)}


def test_deleted_entry(vault: Vault, items: tuple[str, str]) -> None:
    allow_tampering(vault.engine)
    with vault.sessions.begin() as session:
        session.execute(delete(LedgerRow).where(LedgerRow.seq == 2))
    result = found(verify.verify(vault))
    assert ("entry 2", verify.ENTRY_MISSING) in result
    assert ("entry 3", verify.CHAIN_BROKEN) in result
    assert ("ledger head", verify.HEAD_MISMATCH) in result
    assert any(kind == verify.CHECKPOINT_ROOT for _, kind in result)


def test_deleted_last_entry(vault: Vault, items: tuple[str, str]) -> None:
    allow_tampering(vault.engine)
    last = rows(vault)[-1].seq
    with vault.sessions.begin() as session:
        session.execute(delete(LedgerRow).where(LedgerRow.seq == last))
    assert found(verify.verify(vault)) == {("ledger head", verify.HEAD_MISMATCH)}


def test_reordered_entries(vault: Vault, items: tuple[str, str]) -> None:
    allow_tampering(vault.engine)
    first, second = rows(vault)[1:3]
    with vault.sessions.begin() as session:
        for row, other in ((first, second), (second, first)):
            session.execute(
                update(LedgerRow)
                .where(LedgerRow.seq == row.seq)
                .values(
                    entry=other.entry,
                    entry_hash=other.entry_hash,
                    leaf_hash=other.leaf_hash,
                    actor=other.actor,
                    action=other.action,
                    item_id=other.item_id,
                    case_id=other.case_id,
                    time=other.time,
                )
            )
    result = found(verify.verify(vault))
    assert {("entry 1", verify.ENTRY_MISPLACED), ("entry 2", verify.ENTRY_MISPLACED)} <= result


def test_inserted_entry(vault: Vault, items: tuple[str, str]) -> None:
    allow_tampering(vault.engine)
    old = rows(vault)
    with vault.sessions.begin() as session:
        session.execute(delete(LedgerRow).where(LedgerRow.seq >= 2))
        for row in old[2:]:
            session.execute(
                LedgerRow.__table__.insert().values(  # type: ignore[attr-defined]
                    seq=row.seq + 1,
                    time=row.time,
                    actor=row.actor,
                    action=row.action,
                    item_id=row.item_id,
                    case_id=row.case_id,
                    entry=row.entry,
                    entry_hash=row.entry_hash,
                    leaf_hash=row.leaf_hash,
                    sealed_details=row.sealed_details,
                )
            )
        fake = build(
            seq=2,
            time=ledger.entry(session, 1).time,
            actor="nobody",
            action=actions.GRANT,
            item_id=None,
            case_id=None,
            details={},
            sealed=None,
            prev_hash=old[1].entry_hash,
        )
        session.execute(
            LedgerRow.__table__.insert().values(  # type: ignore[attr-defined]
                seq=2,
                time=old[2].time,
                actor="nobody",
                action=actions.GRANT,
                item_id=None,
                case_id=None,
                entry=fake.canonical,
                entry_hash=fake.entry_hash,
                leaf_hash=fake.leaf_hash,
                sealed_details=None,
            )
        )
    result = found(verify.verify(vault))
    assert ("entry 3", verify.ENTRY_MISPLACED) in result
    assert ("entry 3", verify.CHAIN_BROKEN) in result
    assert ("ledger head", verify.HEAD_MISMATCH) in result


def test_replaced_checkpoint(vault: Vault, items: tuple[str, str]) -> None:
    size = checkpoint_size(vault)
    impostor = keys.LogSigner.generate()
    log = vault.checkpointer
    with vault.sessions.begin() as session:
        row = session.get(CheckpointRow, size)
        assert row is not None
        body = note.Checkpoint(origin=log.origin, size=size, root=bytes(row.root))
        row.note = note.sign(body.text(), log.origin, impostor)
    assert found(verify.verify(vault)) == {
        (f"checkpoint {size}", verify.CHECKPOINT_SIGNATURE),
        (f"checkpoint {size}", verify.CHECKPOINT_COPY),
    }


def test_replaced_checkpoint_copy(vault: Vault, items: tuple[str, str]) -> None:
    size = checkpoint_size(vault)
    path = stored_path(vault, ledger.checkpoints.object_name(size))
    path.write_bytes(path.read_bytes().replace(b"\n\n", b"\n\n\n"))
    assert found(verify.verify(vault)) == {(f"checkpoint {size}", verify.CHECKPOINT_COPY)}


def test_deleted_checkpoint_record(vault: Vault, items: tuple[str, str]) -> None:
    size = checkpoint_size(vault)
    with vault.sessions.begin() as session:
        session.execute(delete(CheckpointRow))
    name = ledger.checkpoints.object_name(size)
    assert found(verify.verify(vault)) == {
        (name, verify.CHECKPOINT_UNRECORDED),
        (f"checkpoint {size}", verify.CHECKPOINT_GONE),
        ("checkpoint state", verify.STATE_MAC),
    }


def test_cli_exit_codes_and_report(
    vault: Vault, items: tuple[str, str], run_verify: Callable[..., object]
) -> None:
    clean = run_verify()
    assert clean.exit_code == 0, clean.output  # type: ignore[attr-defined]
    assert "OK: no failures" in clean.output  # type: ignore[attr-defined]
    stored_path(vault, object_of(vault, items[1])).unlink()
    broken = run_verify("--json")
    assert broken.exit_code == 1  # type: ignore[attr-defined]
    report = json.loads(broken.stdout)  # type: ignore[attr-defined]
    assert report["ok"] is False
    assert report["failures"] == [
        {"subject": items[1], "kind": verify.OBJECT_MISSING, "detail": object_of(vault, items[1])}
    ]
    text_report = run_verify()
    assert f"{items[1]}: {verify.OBJECT_MISSING}" in text_report.output  # type: ignore[attr-defined]


def test_a_checkpoint_stored_but_never_recorded_is_a_note(
    vault: Vault, items: tuple[str, str]
) -> None:
    # A process killed between storing the copy and committing its row (the crash suite, issue
    # 23): the copy is a true checkpoint of this ledger; only a deleted row is a failure.
    log = vault.checkpointer
    with vault.sessions() as session:
        made = ledger.checkpoints.create(
            session, signer=log._signer, store=vault.store, origin=log.origin
        )
        session.rollback()  # the copy is stored; the row never commits
    assert vault.store.exists(made.object_name)
    report = verify.verify(vault)
    assert report.ok, report.failures
    assert any(made.object_name in text and "never committed" in text for text in report.notes)
