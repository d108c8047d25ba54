"""Signed deposits: statements by registered keys (raw Ed25519; those signed by a live
`ssh-keygen`: tests/integration/test_signed_ssh.py), co-signatures."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

import keys
from tests.unit.vault.conftest import principal
from tests.unit.vault.signed_support import (
    BODY,
    FILENAME,
    deposit,
    fields,
    nothing_stored,
    statement,
)
from vault import ledger, signatures
from vault.cases import create_case
from vault.db import Item, ItemKey
from vault.db.signature_tables import ItemCiphertext, ItemSignature
from vault.deposit import Deposit
from vault.errors import BadField, Forbidden
from vault.parts import Vault
from vault.verify import SIGNATURE_INVALID, verify


@pytest.fixture
def case_id(vault: Vault) -> str:
    return create_case(vault, principal(vault, "tina"), "Case of the river").id


@pytest.fixture
def raw_key(vault: Vault) -> str:
    """A raw Ed25519 key registered to tina; returns the private key."""
    private, public = keys.generate_signing_key()
    signatures.register_key(vault, principal(vault, "admin"), "tina", public)
    return private


def registered_public(vault: Vault) -> str:
    keys_ = signatures.list_keys(vault, principal(vault, "admin"), "tina")
    return keys_[0].public_key


def raw_presented(
    vault: Vault, case_id: str, private: str, **changes: object
) -> signatures.Presented:
    data = statement(vault, case_id, registered_public(vault), **changes)
    return signatures.Presented(data, keys.sign(data, private))


def test_a_raw_ed25519_signed_deposit_is_kept_sealed_with_its_ledger_entry(
    vault: Vault, case_id: str, raw_key: str
) -> None:
    presented = raw_presented(vault, case_id, raw_key)
    result = deposit(vault, case_id, presented)
    assert result.sha256 == hashlib.sha256(BODY).hexdigest()
    with vault.sessions() as session:
        (row,) = session.scalars(select(ItemSignature)).all()
        assert row.role == signatures.DEPOSITOR and row.signer == "tina"
        assert row.statement_sha256 == hashlib.sha256(presented.statement).hexdigest()
        # Promise 1: the statement names the file; it is sealed, not in the clear.
        assert FILENAME.encode() not in row.sealed_statement
        cipher = session.get(ItemCiphertext, result.item_id)
        assert cipher is not None
        entries = list(ledger.entries(session))
    with vault.store.open(_object(vault, result.item_id)) as source:
        assert hashlib.sha256(source.read()).hexdigest() == cipher.sha256
    actions_ = [e.action for e in entries if e.item_id == result.item_id]
    assert actions_ == [ledger.actions.INGESTION, ledger.actions.DIGITAL_SIGNATURE_VALIDATION]
    ingestion = next(e for e in entries if e.action == ledger.actions.INGESTION)
    assert ingestion.details["signed"] is True
    assert verify(vault).ok


def _object(vault: Vault, item_id: str) -> str:
    with vault.sessions() as session:
        item = session.get(Item, item_id)
        assert item is not None
        return item.object_name


@pytest.mark.parametrize(
    "defect", ["wrong key", "altered statement", "sha256 mismatch", "size mismatch", "other case"]
)
def test_a_bad_statement_is_refused_and_nothing_is_stored(
    vault: Vault, case_id: str, raw_key: str, defect: str
) -> None:
    presented = raw_presented(vault, case_id, raw_key)
    body = BODY
    if defect == "wrong key":
        other, _ = keys.generate_signing_key()
        presented = signatures.Presented(presented.statement, keys.sign(presented.statement, other))
    elif defect == "altered statement":
        altered = presented.statement.replace(b'"size":', b'"size":1')
        presented = signatures.Presented(altered, presented.signature)
    elif defect == "sha256 mismatch":
        body = BODY[:-1] + b"!"
    elif defect == "size mismatch":
        body = BODY + b"."
    elif defect == "other case":
        presented = raw_presented(vault, case_id, raw_key, case="c_other")
    with pytest.raises(BadField) as caught:
        # The declared size of a size mismatch is left out, so the bytes decide.
        job = Deposit.start(
            vault,
            principal(vault, "tina"),
            fields(case_id),
            None if defect == "size mismatch" else len(body),
            statement=presented,
        )
        try:
            job.write(body)
        except BaseException:
            job.abort()
            raise
        job.commit()
    assert caught.value.field in {"signature", "statement", "sha256", "size"}
    assert nothing_stored(vault)


def test_a_declared_size_other_than_the_statement_is_refused_before_streaming(
    vault: Vault, case_id: str, raw_key: str
) -> None:
    presented = raw_presented(vault, case_id, raw_key)
    with pytest.raises(BadField) as caught:
        Deposit.start(
            vault, principal(vault, "tina"), fields(case_id), len(BODY) + 1, statement=presented
        )
    assert caught.value.field == "size"
    assert nothing_stored(vault)


def test_a_key_of_another_account_cannot_sign_a_deposit(vault: Vault, case_id: str) -> None:
    private, public = keys.generate_signing_key()
    signatures.register_key(vault, principal(vault, "admin"), "theo", public)
    data = statement(vault, case_id, public)
    with pytest.raises(BadField):
        deposit(vault, case_id, signatures.Presented(data, keys.sign(data, private)))
    assert nothing_stored(vault)


def test_only_a_custodian_registers_keys(vault: Vault) -> None:
    _, public = keys.generate_signing_key()
    with pytest.raises(Forbidden):
        signatures.register_key(vault, principal(vault, "tina"), "tina", public)
    with pytest.raises(BadField):
        signatures.register_key(vault, principal(vault, "admin"), "tina", "ssh-ed25519 nonsense")


def test_a_cosignature_adds_a_ledger_entry_and_verify_rechecks_it(
    vault: Vault, case_id: str, raw_key: str
) -> None:
    result = deposit(vault, case_id, raw_presented(vault, case_id, raw_key))
    theo_private, theo_public = keys.generate_signing_key()
    signatures.register_key(vault, principal(vault, "admin"), "theo", theo_public)
    from vault.cases import grant

    grant(vault, principal(vault, "admin"), case_id, "theo", "therapist")
    data = statement(vault, case_id, theo_public)
    with vault.sessions() as session:
        before = ledger.size(session)
    view = signatures.cosign(
        vault,
        principal(vault, "theo"),
        result.item_id,
        signatures.Presented(data, keys.sign(data, theo_private)),
    )
    assert (view.number, view.role, view.signer) == (2, signatures.COSIGNER, "theo")
    with vault.sessions() as session:
        assert ledger.size(session) == before + 1
        last = list(ledger.entries(session))[-1]
    assert last.action == ledger.actions.DIGITAL_SIGNATURE_VALIDATION
    assert last.details["role"] == signatures.COSIGNER
    listed = signatures.list_signatures(vault, principal(vault, "tina"), result.item_id)
    assert [s.number for s in listed] == [1, 2]
    assert verify(vault).ok
    # A co-signature over another digest is refused.
    wrong = statement(vault, case_id, theo_public, sha256="0" * 64)
    with pytest.raises(BadField):
        signatures.cosign(
            vault,
            principal(vault, "theo"),
            result.item_id,
            signatures.Presented(wrong, keys.sign(wrong, theo_private)),
        )


def test_verify_names_a_tampered_signature(vault: Vault, case_id: str, raw_key: str) -> None:
    result = deposit(vault, case_id, raw_presented(vault, case_id, raw_key))
    other, _ = keys.generate_signing_key()
    with vault.sessions.begin() as session:
        row = session.get(ItemSignature, (result.item_id, 1))
        assert row is not None
        row.signature = keys.sign(b"something else", other)
    for fast in (False, True):
        report = verify(vault, fast=fast)
        assert not report.ok
        (failure,) = report.failures
        assert (failure.subject, failure.kind) == (result.item_id, SIGNATURE_INVALID)
        assert "signature 1" in failure.detail


def test_shredded_items_keep_no_readable_statement(
    vault: Vault, case_id: str, raw_key: str
) -> None:
    result = deposit(vault, case_id, raw_presented(vault, case_id, raw_key))
    with vault.sessions.begin() as session:
        key = session.get(ItemKey, result.item_id)
        session.delete(key)
        ledger.append(
            session,
            actor="admin",
            action=ledger.actions.DELETION,
            item_id=result.item_id,
            details={"reason": "test"},
        )
    report = verify(vault)
    assert report.ok and report.shredded == 1
