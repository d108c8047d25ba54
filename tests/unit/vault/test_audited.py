"""`vault.access.audited`: authorise, then act and record the entry in one transaction."""

from __future__ import annotations

from contextlib import AbstractContextManager

import pytest

from policies import actions
from tests.unit.vault.conftest import principal
from vault import ledger
from vault.access import Audit, audited
from vault.cases import create_case
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
