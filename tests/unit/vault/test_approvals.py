"""The two-person rule (DESIGN.md promise 10): shredding, lifting a hold and retiring key
versions run only once a second custodian approves; a denial ends the request; every step is in
the ledger. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.unit.vault.conftest import principal
from tests.unit.vault.search_support import deposit
from vault import approval_kinds, approvals, ledger, shred
from vault.accounts import add_user
from vault.cases import create_case
from vault.db import ItemKey
from vault.db.approval_tables import Approval, ApprovalVote
from vault.errors import BadField, Conflict, Forbidden
from vault.parts import Vault
from vault.retrieve import download
from vault.rotation import rotate

NOTE = "Rosa Quispe asked for it in writing"
BODY = b"the testimony"


@pytest.fixture
def item(vault: Vault) -> str:
    with vault.sessions.begin() as session:
        for name in ("cleo", "dora"):
            add_user(session, name, "custodian", vault.clock())
    case = create_case(vault, principal(vault, "tina"), "Case of the river").id
    return deposit(vault, principal(vault, "tina"), case, consent=["therapy"], body=BODY)


def has_key(vault: Vault, item_id: str) -> bool:
    with vault.sessions() as session:
        return session.get(ItemKey, item_id) is not None


def readable(vault: Vault, item_id: str) -> bool:
    if not has_key(vault, item_id):
        return False
    return b"".join(download(vault, principal(vault, "tina"), item_id).chunks) == BODY


def steps(vault: Vault) -> list[tuple[str, str]]:
    """(action, actor) of every ledger entry after the deposit's, in order."""
    with vault.sessions() as session:
        every = list(ledger.entries(session))
    start = max(i for i, e in enumerate(every) if e.action == ledger.actions.INGESTION) + 1
    skip = {ledger.actions.DECRYPTION, ledger.actions.METADATA_EXTRACTION}
    return [(e.action, e.actor) for e in every[start:] if e.action not in skip]


def test_a_shred_waits_for_a_second_custodian_and_then_happens(vault: Vault, item: str) -> None:
    admin = principal(vault, "admin")
    asked = approval_kinds.request_shred(vault, admin, item, "court_order")
    assert (asked.state, asked.kind, asked.subject, asked.payload) == (
        approvals.PENDING,
        "shred",
        item,
        {"reason": "court_order"},
    )
    assert readable(vault, item)  # asking alone shreds nothing
    # Self-approval is refused, and so is anyone the policy does not let approve.
    with pytest.raises(Forbidden, match="second person"):
        approvals.approve(vault, admin, asked.id)
    with pytest.raises(Forbidden):
        approvals.approve(vault, principal(vault, "lena"), asked.id)
    with pytest.raises(Forbidden):
        approvals.approve(vault, principal(vault, "tina"), asked.id)
    assert readable(vault, item)
    done = approvals.approve(vault, principal(vault, "cleo"), asked.id)
    assert (done.state, done.approvers, done.outcome) == (
        approvals.DONE,
        ("cleo",),
        {"unreadable": 1, "deleted": 0, "locked": 1},
    )
    assert not has_key(vault, item)
    with pytest.raises(Conflict, match="no longer pending"):
        approvals.approve(vault, principal(vault, "dora"), asked.id)
    A = ledger.actions
    assert steps(vault) == [
        (A.APPROVAL_REQUEST, "admin"),
        (A.ACCESS_DENIED, "admin"),  # refused attempts are events too
        (A.ACCESS_DENIED, "lena"),
        (A.ACCESS_DENIED, "tina"),
        (A.APPROVAL, "cleo"),
        (A.DELETION, "cleo"),
        (A.APPROVAL_OUTCOME, "cleo"),
    ]
    with vault.sessions() as session:
        request, *_ = [e for e in ledger.entries(session) if e.action == A.APPROVAL_REQUEST]
    assert request.item_id == item
    assert request.details == {
        "approval": asked.id,
        "kind": "shred",
        "subject": item,
        "quorum": 2,
        "reason": "court_order",
        "sealed_note": False,
    }


def test_a_denial_ends_the_request_and_nothing_happens(vault: Vault, item: str) -> None:
    asked = approval_kinds.request_shred(vault, principal(vault, "admin"), item, "other", NOTE)
    with pytest.raises(BadField):
        approvals.deny(vault, principal(vault, "cleo"), asked.id, "  ")
    denied = approvals.deny(vault, principal(vault, "cleo"), asked.id, "the court said no")
    assert (denied.state, denied.denied_by, denied.approvers) == (approvals.DENIED, "cleo", ())
    with pytest.raises(Conflict):
        approvals.approve(vault, principal(vault, "dora"), asked.id)
    assert readable(vault, item)
    A = ledger.actions
    assert steps(vault) == [(A.APPROVAL_REQUEST, "admin"), (A.APPROVAL_DENIAL, "cleo")]
    # The note and the reason are sealed (table and ledger); custodians open them.
    text = approvals.detail(vault, principal(vault, "dora"), asked.id)
    assert (text.note, text.denial_reason) == (NOTE, "the court said no")
    with vault.sessions() as session:
        row = session.get(Approval, asked.id)
        vote = session.scalars(select(ApprovalVote)).one()
        assert row is not None and row.sealed_note and vote.sealed_reason
        assert NOTE.encode() not in row.sealed_note
        assert b"court said" not in vote.sealed_reason
        for entry in ledger.entries(session):
            sealed = ledger.sealed_details(session, entry.seq) or b""
            assert NOTE.encode() not in entry.canonical + sealed
    with pytest.raises(Forbidden):
        approvals.detail(vault, principal(vault, "lena"), asked.id)


def test_quorum_three_needs_two_approvers(vault: Vault, item: str) -> None:
    vault.settings = vault.settings.model_copy(update={"approval_quorum": 3})
    asked = approval_kinds.request_shred(vault, principal(vault, "admin"), item, "duplicate")
    assert asked.quorum == 3
    once = approvals.approve(vault, principal(vault, "cleo"), asked.id)
    assert (once.state, once.approvers) == (approvals.PENDING, ("cleo",))
    assert readable(vault, item)
    with pytest.raises(Conflict, match="already"):
        approvals.approve(vault, principal(vault, "cleo"), asked.id)
    done = approvals.approve(vault, principal(vault, "dora"), asked.id)
    assert (done.state, done.approvers) == (approvals.DONE, ("cleo", "dora"))
    assert not has_key(vault, item)


def test_shred_requests_name_their_reason_and_are_refused_when_pointless(
    vault: Vault, item: str
) -> None:
    admin = principal(vault, "admin")
    with pytest.raises(BadField, match="reason"):
        approval_kinds.request_shred(vault, admin, item, "because")
    with pytest.raises(BadField, match="note"):
        approval_kinds.request_shred(vault, admin, item, "other")
    with pytest.raises(Forbidden):
        approval_kinds.request_shred(vault, principal(vault, "tina"), item, "duplicate")
    asked = approval_kinds.request_shred(vault, admin, item, "consent_withdrawn")
    with pytest.raises(Conflict, match=asked.id):
        approval_kinds.request_shred(vault, principal(vault, "cleo"), item, "duplicate")
    approvals.deny(vault, admin, asked.id, "asked by mistake")  # the requester withdraws
    assert shred.set_hold(vault, admin, item, True)
    with pytest.raises(Conflict, match="legal hold"):
        approval_kinds.request_shred(vault, admin, item, "duplicate")


def test_an_approved_shred_still_obeys_a_hold_set_meanwhile(vault: Vault, item: str) -> None:
    asked = approval_kinds.request_shred(vault, principal(vault, "admin"), item, "duplicate")
    assert shred.set_hold(vault, principal(vault, "dora"), item, True)
    with pytest.raises(Conflict, match="legal hold"):
        approvals.approve(vault, principal(vault, "cleo"), asked.id)
    failed = approvals.show(vault, principal(vault, "cleo"), asked.id)
    assert failed.state == approvals.FAILED and failed.outcome is not None
    assert failed.outcome["error"] == "conflict"
    assert readable(vault, item)
    assert steps(vault)[-1] == (ledger.actions.APPROVAL_OUTCOME, "cleo")


def test_lifting_a_hold_needs_a_second_custodian(vault: Vault, item: str) -> None:
    admin = principal(vault, "admin")
    assert shred.set_hold(vault, admin, item, True)  # setting one protects: one person is enough
    asked = approval_kinds.request_lift_hold(vault, admin, item)
    assert shred.is_held(vault, item)
    with pytest.raises(Forbidden):
        approvals.approve(vault, admin, asked.id)
    done = approvals.approve(vault, principal(vault, "cleo"), asked.id)
    assert done.state == approvals.DONE and not shred.is_held(vault, item)
    with pytest.raises(Conflict, match="not under legal hold"):
        approval_kinds.request_lift_hold(vault, admin, item)
    A = ledger.actions
    assert steps(vault) == [
        (A.LEGAL_HOLD, "admin"),
        (A.APPROVAL_REQUEST, "admin"),
        (A.ACCESS_DENIED, "admin"),
        (A.APPROVAL, "cleo"),
        (A.LEGAL_HOLD, "cleo"),
        (A.APPROVAL_OUTCOME, "cleo"),
    ]


def test_retiring_key_versions_needs_a_second_custodian(vault: Vault, item: str) -> None:
    done = rotate(vault, "admin", retire=True)
    assert done.approval is not None
    assert vault.keyring.versions == (1, 2)  # nothing retired yet
    with pytest.raises(Forbidden):
        approvals.approve(vault, principal(vault, "admin"), done.approval)
    approved = approvals.approve(vault, principal(vault, "cleo"), done.approval)
    assert approved.outcome == {"retired": [1], "kept": []}
    assert vault.keyring.versions == (2,)
    assert readable(vault, item)
    A = ledger.actions
    assert steps(vault) == [
        (A.KEY_ROTATION, "admin"),
        (A.APPROVAL_REQUEST, "admin"),
        (A.ACCESS_DENIED, "admin"),
        (A.APPROVAL, "cleo"),
        (A.KEY_RETIREMENT, "cleo"),
        (A.APPROVAL_OUTCOME, "cleo"),
    ]


def test_only_custodians_list_approvals(vault: Vault, item: str) -> None:
    asked = approval_kinds.request_shred(vault, principal(vault, "admin"), item, "duplicate")
    listed = approvals.list_approvals(vault, principal(vault, "cleo"), approvals.PENDING)
    assert [a.id for a in listed] == [asked.id]
    assert approvals.list_approvals(vault, principal(vault, "cleo"), approvals.DONE) == []
    with pytest.raises(Forbidden):
        approvals.list_approvals(vault, principal(vault, "lena"))
    with pytest.raises(BadField):
        approvals.list_approvals(vault, principal(vault, "cleo"), "maybe")


def test_an_approval_interrupted_while_running_does_not_block_a_new_request(
    vault: Vault, item: str
) -> None:
    admin = principal(vault, "admin")
    asked = approval_kinds.request_shred(vault, admin, item, "duplicate")
    with vault.sessions.begin() as session:
        row = session.get(Approval, asked.id)
        assert row is not None
        row.state = approvals.APPROVED  # as a process that died after reaching the quorum leaves it
    again = approval_kinds.request_shred(vault, admin, item, "duplicate")
    done = approvals.approve(vault, principal(vault, "cleo"), again.id)
    assert done.state == approvals.DONE and not has_key(vault, item)
