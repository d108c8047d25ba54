"""`vault.access.audited`: authorise, then act and record the entry in one transaction."""

from __future__ import annotations

from contextlib import AbstractContextManager

import pytest

from policies import Resource, actions, kinds
from tests.unit.vault.conftest import principal
from vault import ledger
from vault.access import Audit, audited, audited_case
from vault.cases import create_case
from vault.db import Item
from vault.db.access_tables import LegalHold
from vault.deposit import Deposit
from vault.errors import NotFound
from vault.parts import Vault


@pytest.fixture
def item_id(vault: Vault) -> str:
    case_id = create_case(vault, principal(vault, "tina"), "Case").id
    fields = {"case": case_id, "kind": "document", "title": "T", "consent": "therapy"}
    # The principal again: its grants (now on the new case) are read when it is made.
    job = Deposit.start(vault, principal(vault, "tina"), fields, 4)
    job.write(b"text")
    return job.commit().item_id


def _entries(vault: Vault) -> list[ledger.LedgerEntry]:
    with vault.sessions() as session:
        return list(ledger.entries(session))


def _audited_read(vault: Vault, name: str, item_id: str) -> AbstractContextManager[Audit]:
    return audited(
        vault,
        principal(vault, name),
        actions.ITEM_READ,
        item_id,
        entry=ledger.actions.DECRYPTION,
        details={"purpose": "test"},
    )


def test_a_block_that_finishes_commits_its_work_and_one_entry(vault: Vault, item_id: str) -> None:
    before = len(_entries(vault))
    with _audited_read(vault, "tina", item_id) as audit:
        audit.session.add(LegalHold(item_id=item_id, set_by="tina", set_at=audit.now))
        audit.details["extra"] = 1
    [entry] = _entries(vault)[before:]
    assert (entry.action, entry.actor, entry.item_id) == (
        ledger.actions.DECRYPTION,
        "tina",
        item_id,
    )
    assert entry.details == {"purpose": "test", "extra": 1}
    with vault.sessions() as session:
        assert session.get(LegalHold, item_id) is not None


def test_a_block_that_raises_records_nothing_and_changes_nothing(
    vault: Vault, item_id: str
) -> None:
    before = len(_entries(vault))
    with pytest.raises(RuntimeError), _audited_read(vault, "tina", item_id) as audit:
        audit.session.add(LegalHold(item_id=item_id, set_by="tina", set_at=audit.now))
        raise RuntimeError("the read failed")
    assert len(_entries(vault)) == before
    with vault.sessions() as session:
        assert session.get(LegalHold, item_id) is None


def test_a_skipped_block_records_nothing(vault: Vault, item_id: str) -> None:
    before = len(_entries(vault))
    with _audited_read(vault, "tina", item_id) as audit:
        audit.skip()
    assert len(_entries(vault)) == before


def test_a_refusal_runs_no_block_and_is_its_own_entry(vault: Vault, item_id: str) -> None:
    before = len(_entries(vault))
    ran = False
    with pytest.raises(NotFound), _audited_read(vault, "lena", item_id):  # no grant on the case
        ran = True
    assert not ran
    [entry] = _entries(vault)[before:]
    assert (entry.action, entry.actor) == (ledger.actions.ACCESS_DENIED, "lena")


def test_record_appends_each_entry_where_called_and_none_at_the_end(
    vault: Vault, item_id: str
) -> None:
    before = len(_entries(vault))
    with _audited_read(vault, "tina", item_id) as audit:
        audit.record(part=1)
        audit.record(part=2)
    entries = _entries(vault)[before:]
    assert [e.details for e in entries] == [
        {"purpose": "test", "part": 1},
        {"purpose": "test", "part": 2},
    ]


def test_a_case_block_records_an_entry_about_the_case(vault: Vault, item_id: str) -> None:
    with vault.sessions() as session:
        item = session.get(Item, item_id)
        assert item is not None
        case_id = item.case_id
    before = len(_entries(vault))
    with audited_case(
        vault,
        principal(vault, "tina"),
        actions.CASE_READ,
        Resource(kind=kinds.CASE, case_id=case_id),
        entry=ledger.actions.DECRYPTION,
        details={"purpose": "test"},
    ) as audit:
        audit.details["extra"] = 1
    [entry] = _entries(vault)[before:]
    assert (entry.action, entry.case_id, entry.item_id) == (
        ledger.actions.DECRYPTION,
        case_id,
        None,
    )
    assert entry.details == {"purpose": "test", "extra": 1}


def test_a_case_block_for_an_unknown_case_is_refused_like_a_hidden_one(vault: Vault) -> None:
    before = len(_entries(vault))
    with (
        pytest.raises(NotFound),
        audited_case(
            vault,
            principal(vault, "tina"),
            actions.CASE_READ,
            Resource(kind=kinds.CASE, case_id="a" * 26),
            entry=ledger.actions.DECRYPTION,
            details={},
        ),
    ):
        pytest.fail("the block ran")
    [entry] = _entries(vault)[before:]
    assert entry.action == ledger.actions.ACCESS_DENIED
