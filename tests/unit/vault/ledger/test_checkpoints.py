"""Checkpoints and proofs over a real ledger on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text, update
from sqlalchemy.orm import Session, sessionmaker

from tests.unit.vault.ledger.conftest import allow_tampering
from tests.unit.vault.ledger.signers import DigestSigner, MemoryStore
from vault import ledger
from vault.ledger import actions, checkpoints, note
from vault.ledger.tables import LedgerRow
from vault.ledger.tree import MerkleTree, hash_leaf, verify_consistency, verify_inclusion

ORIGIN = "vault.test/log"
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def add(sessions: sessionmaker[Session], count: int) -> None:
    with sessions.begin() as session:
        for index in range(count):
            ledger.append(session, actor="u1", action=actions.DECRYPTION, details={"n": index})


def make(
    sessions: sessionmaker[Session], signer: DigestSigner, store: MemoryStore
) -> checkpoints.SignedCheckpoint:
    with sessions.begin() as session:
        return checkpoints.create(session, signer=signer, store=store, origin=ORIGIN, now=T0)


@pytest.fixture
def signer() -> DigestSigner:
    return DigestSigner()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def test_checkpoint_signs_the_tree_of_every_entry(
    sessions: sessionmaker[Session], signer: DigestSigner, store: MemoryStore
) -> None:
    add(sessions, 5)
    signed = make(sessions, signer, store)
    with sessions() as session:
        leaves = [hash_leaf(e.canonical) for e in ledger.entries(session)]
    assert signed.size == 5
    assert signed.root == MerkleTree(leaves).root()
    vkey = note.verifier_key(ORIGIN, signer.public_key_bytes())
    body = note.parse_checkpoint(note.open_note(signed.note, vkey, signer.verify))
    assert body == note.Checkpoint(origin=ORIGIN, size=5, root=signed.root)
    assert store.objects == {"ledger/checkpoints/00000000000000000005": signed.note.encode()}
    with sessions() as session:
        assert checkpoints.latest(session) == signed
        assert checkpoints.get(session, 5) == signed


def test_nothing_new_means_the_same_checkpoint(
    sessions: sessionmaker[Session], signer: DigestSigner, store: MemoryStore
) -> None:
    add(sessions, 2)
    first = make(sessions, signer, store)
    assert make(sessions, signer, store) == first
    assert len(store.objects) == 1


def test_empty_log_can_be_checkpointed(
    sessions: sessionmaker[Session], signer: DigestSigner, store: MemoryStore
) -> None:
    signed = make(sessions, signer, store)
    assert (signed.size, signed.root) == (0, MerkleTree([]).root())
    add(sessions, 1)
    assert make(sessions, signer, store).size == 1


def test_proofs_verify_against_the_signed_roots(
    sessions: sessionmaker[Session], signer: DigestSigner, store: MemoryStore
) -> None:
    add(sessions, 5)
    old = make(sessions, signer, store)
    add(sessions, 8)
    new = make(sessions, signer, store)
    with sessions() as session:
        for seq in range(13):
            proof = ledger.inclusion(session, seq)
            assert (proof.size, proof.checkpoint) == (13, new.note)
            verify_inclusion(seq, 13, hash_leaf(proof.entry), proof.hashes, new.root)
        for seq in range(5):
            proof = ledger.inclusion(session, seq, size=5)
            verify_inclusion(seq, 5, hash_leaf(proof.entry), proof.hashes, old.root)
        consistency = ledger.consistency(session, 5)
        assert consistency.new_size == 13
        verify_consistency(5, 13, old.root, new.root, consistency.hashes)
        api = consistency.to_json()
        assert [base64.b64decode(h) for h in api["hashes"]] == consistency.hashes
        assert api["old_checkpoint"] == old.note
        assert ledger.inclusion(session, 3).to_json()["entry"].startswith('{"action":')


def test_proof_requests_that_cannot_be_met(
    sessions: sessionmaker[Session], signer: DigestSigner, store: MemoryStore
) -> None:
    add(sessions, 3)
    with sessions() as session, pytest.raises(ledger.ProofError, match="no checkpoint"):
        ledger.inclusion(session, 0)
    make(sessions, signer, store)
    add(sessions, 1)
    with sessions() as session:
        with pytest.raises(ledger.ProofError, match="not in the checkpoint"):
            ledger.inclusion(session, 3)
        with pytest.raises(ledger.ProofError, match="size 2"):
            ledger.inclusion(session, 0, size=2)
        with pytest.raises(ledger.ProofError, match="size 7"):
            ledger.consistency(session, 7)


def test_refuses_to_sign_over_an_edited_signed_entry(
    sessions: sessionmaker[Session], signer: DigestSigner, store: MemoryStore
) -> None:
    add(sessions, 4)
    make(sessions, signer, store)
    add(sessions, 2)
    allow_tampering(sessions.kw["bind"])
    with sessions.begin() as session:
        session.execute(
            update(LedgerRow).where(LedgerRow.seq == 1).values(leaf_hash=hash_leaf(b"forged"))
        )
    with pytest.raises(ledger.LedgerError, match="no longer matches checkpoint 4"):
        make(sessions, signer, store)
    assert len(store.objects) == 1
    with sessions() as session, pytest.raises(ledger.LedgerError, match="no longer matches"):
        ledger.inclusion(session, 0)


@pytest.mark.parametrize("column", ["entry", "leaf_hash", "entry_hash"])
def test_refuses_to_sign_over_an_edited_new_entry(
    sessions: sessionmaker[Session], signer: DigestSigner, store: MemoryStore, column: str
) -> None:
    add(sessions, 2)
    make(sessions, signer, store)
    add(sessions, 3)
    allow_tampering(sessions.kw["bind"])
    with sessions.begin() as session:
        row = session.get(LedgerRow, 3)
        assert row is not None
        if column == "entry":
            row.entry = row.entry.replace(b'"n":1', b'"n":7')
        else:
            setattr(row, column, bytes(32))
    with pytest.raises(ledger.LedgerError, match="entry 3"):
        make(sessions, signer, store)
    assert len(store.objects) == 1


def test_refuses_to_sign_over_a_deleted_entry(
    sessions: sessionmaker[Session], signer: DigestSigner, store: MemoryStore
) -> None:
    add(sessions, 3)
    allow_tampering(sessions.kw["bind"])
    with sessions.begin() as session:
        session.execute(text("DELETE FROM ledger_entries WHERE seq = 1"))
    with pytest.raises(ledger.LedgerError, match="2 of its first 3"):
        make(sessions, signer, store)
    assert store.objects == {}


def test_a_failed_store_write_records_nothing(
    sessions: sessionmaker[Session], signer: DigestSigner
) -> None:
    class Broken:
        def put_locked(self, name: str, data: bytes) -> None:
            raise OSError("disk full")

    add(sessions, 2)
    with pytest.raises(OSError), sessions.begin() as session:
        checkpoints.create(session, signer=signer, store=Broken(), origin=ORIGIN)
    with sessions() as session:
        assert checkpoints.latest(session) is None


def test_checkpointer_signs_when_due(
    sessions: sessionmaker[Session], signer: DigestSigner, store: MemoryStore
) -> None:
    log = ledger.Checkpointer(
        sessions, signer=signer, store=store, origin=ORIGIN, every_entries=3, every_seconds=60
    )
    assert log.verifier_key() == note.verifier_key(ORIGIN, signer.public_key_bytes())
    first = log.checkpoint_if_due(now=T0)  # no checkpoint yet: always due
    assert first is not None and first.size == 0
    add(sessions, 2)
    assert log.checkpoint_if_due(now=T0 + timedelta(seconds=59)) is None
    assert log.checkpoint_if_due(now=T0 + timedelta(seconds=60)) is not None
    add(sessions, 3)
    signed = log.checkpoint_if_due(now=T0 + timedelta(seconds=61))
    assert signed is not None and signed.size == 5
    assert log.checkpoint_if_due(now=T0 + timedelta(days=1)) is None
    add(sessions, 1)
    assert log.checkpoint(now=T0 + timedelta(days=1)).size == 6
    with sessions() as session:
        assert [c.size for c in checkpoints.all_checkpoints(session)] == [0, 2, 5, 6]
    with pytest.raises(ValueError):
        ledger.Checkpointer(sessions, signer=signer, store=store, origin=ORIGIN, every_entries=0)


def test_service_signs_in_the_background(
    sessions: sessionmaker[Session], signer: DigestSigner, store: MemoryStore
) -> None:
    log = ledger.make_checkpointer(
        sessions, signer=signer, store=store, every_entries=2, every_seconds=3600
    )
    assert log.origin == ledger.default_origin(signer.public_key_bytes())
    service = ledger.CheckpointService(log, poll_seconds=0.01)
    add(sessions, 2)
    service.start()
    try:
        for _ in range(1000):  # wait for the thread, not for a duration
            with sessions() as session:
                current = checkpoints.latest(session)
            if current is not None and current.size == 2:
                break
            threading.Event().wait(0.01)
    finally:
        service.stop()
    assert current is not None and current.size == 2
    service.stop()  # stopping twice is harmless


def test_service_keeps_refusing_a_tampered_ledger(
    sessions: sessionmaker[Session],
    signer: DigestSigner,
    store: MemoryStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = ledger.make_checkpointer(sessions, signer=signer, store=store, every_entries=1)
    add(sessions, 2)
    log.checkpoint()
    add(sessions, 1)
    allow_tampering(sessions.kw["bind"])
    with sessions.begin() as session:
        session.execute(update(LedgerRow).where(LedgerRow.seq == 0).values(leaf_hash=bytes(32)))
    service = ledger.CheckpointService(log, poll_seconds=0.01)
    service.start()
    try:
        for _ in range(1000):
            if any("checkpoint refused" in r.message for r in caplog.records):
                break
            threading.Event().wait(0.01)
    finally:
        service.stop()
    assert [r.message for r in caplog.records if "refused" in r.message] == [
        "ledger checkpoint refused: the stored ledger no longer matches checkpoint 2: "
        "refusing to sign"
    ]
    assert len(store.objects) == 1


def test_concurrent_checkpointers_sign_only_consistent_checkpoints(
    sessions: sessionmaker[Session], signer: DigestSigner
) -> None:
    store = MemoryStore()
    log = ledger.make_checkpointer(sessions, signer=signer, store=store, every_entries=1)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def appender() -> None:
        try:
            start.wait()
            for _ in range(20):
                add(sessions, 1)
        except BaseException as exc:
            errors.append(exc)

    def checkpointer() -> None:
        try:
            start.wait()
            for _ in range(10):
                log.checkpoint()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=appender), threading.Thread(target=appender)]
    threads += [threading.Thread(target=checkpointer), threading.Thread(target=checkpointer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    final = log.checkpoint()
    assert final.size == 40
    with sessions() as session:
        signed = checkpoints.all_checkpoints(session)
        tree = checkpoints.load_tree(session, final.size)
    assert len({c.size for c in signed}) == len(signed) == len(store.objects)
    for older, newer in itertools.pairwise(signed):
        if older.size == 0:
            continue  # every tree extends the empty one: no proof to check (and one is refused)
        verify_consistency(
            older.size,
            newer.size,
            older.root,
            newer.root,
            tree.consistency_proof(older.size, newer.size),
        )
    assert all(tree.root(c.size) == c.root for c in signed)
