"""Exports to commissions, the domain side (issue 18): recipient keys, requests with a preview,
approval by a second person, refusals that change nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select, text

import keys
from tests.unit.vault.conftest import principal
from tests.unit.vault.search_support import deposit
from vault import approvals, exports, ledger, recipients
from vault.accounts import add_user
from vault.cases import create_case, grant
from vault.db.approval_tables import Approval
from vault.db.export_tables import CommissionRecipient, Export
from vault.errors import BadField, Conflict, Forbidden, NotFound
from vault.parts import Vault

PURPOSE = "Esclarecer la desaparición de Rosa Quispe"
BASIS = "Ley 1448 de 2011, artículo 147"
# A real Ed25519 public key (keys.generate_signing_key) in the OpenSSH wire format.
SSH_KEY = "ssh-ed25519 " + base64.b64encode(
    b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20"
    + base64.b64decode("hHsd7eb5nXDdzB3kxsoPgiI/qdB9SIP8S16SvLMKBMA=")
).decode("ascii")


@dataclass(frozen=True)
class Setup:
    case: str
    consented: list[str]
    therapy_only: str
    identity: str  # the commission's age identity


@pytest.fixture
def setup(vault: Vault) -> Setup:
    with vault.sessions.begin() as session:
        add_user(session, "cleo", "custodian", vault.clock())
        add_user(session, "truth", "commission", vault.clock())
        add_user(session, "other", "commission", vault.clock())
    case = create_case(vault, principal(vault, "tina"), "Case of the river").id
    tina = principal(vault, "tina")  # now with her grant on the case
    consented = [
        deposit(vault, tina, case, consent=["truth_commission", "therapy"], body=b"testimony"),
        deposit(vault, tina, case, consent=["truth_commission"], kind="document", body=b"doc"),
    ]
    therapy_only = deposit(vault, tina, case, consent=["therapy"], body=b"therapy only")
    grant(vault, principal(vault, "admin"), case, "truth", "commission")
    identity, recipient = keys.generate_identity()
    recipients.add(vault, principal(vault, "admin"), "truth", recipient)
    return Setup(case, consented, therapy_only, identity)


def ask(vault: Vault, who: str, case: str, **more: object) -> exports.ExportView:
    request = exports.ExportRequest(case_id=case, purpose=PURPOSE, legal_basis=BASIS, **more)  # type: ignore[arg-type]
    return exports.request(vault, principal(vault, who), request)


def entries(vault: Vault) -> list[ledger.LedgerEntry]:
    with vault.sessions() as session:
        return list(ledger.entries(session))


def counts(vault: Vault) -> tuple[int, int, int]:
    """Exports, approvals and ledger entries: what a refused request must leave unchanged."""
    with vault.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(Export)) or 0,
            session.scalar(select(func.count()).select_from(Approval)) or 0,
            ledger.size(session),
        )


# --- recipients ------------------------------------------------------------------------------


def test_recipient_keys_are_checked_and_each_registration_is_in_the_ledger(
    vault: Vault, setup: Setup
) -> None:
    admin = principal(vault, "admin")
    added = recipients.add(vault, admin, "truth", f"{SSH_KEY} ana@comision.example")
    # The comment is dropped (it often names a person); the key stays whole.
    assert (added.key_type, added.recipient) == ("ssh-ed25519", SSH_KEY)
    last = entries(vault)[-1]
    assert (last.action, last.details["key_id"], last.details["account"]) == (
        ledger.actions.KEY_REGISTRATION,
        added.key_id,
        "truth",
    )
    listed = recipients.list_recipients(vault, principal(vault, "truth"), "truth")
    assert {r.key_type for r in listed} == {"age", "ssh-ed25519"}
    before = counts(vault)
    good = keys.generate_identity()[1]
    bad_checksum = good[:-1] + ("q" if good[-1] != "q" else "p")
    for key, why in (
        (bad_checksum, "malformed age recipient"),
        # 32 bytes, but not a point on the curve: the sealer could not use it.
        (
            "ssh-ed25519 "
            + base64.b64encode(
                b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + b"\x02" * 32
            ).decode(),
            "malformed ssh-ed25519 recipient",
        ),
        ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ", "unsupported key type 'ssh-rsa'"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==", "truncated|not a 32-byte"),
        ("ssh-ed25519 !!!", "bad base64"),
        ("age1 and a second line\nage1x", "one public key line"),
        ("", "one public key line"),
    ):
        with pytest.raises(BadField, match=why):
            recipients.add(vault, admin, "truth", key)
            pytest.fail(f"accepted {key!r}")
    with pytest.raises(BadField, match="recipients belong to commissions"):
        recipients.add(vault, admin, "tina", keys.generate_identity()[1])
    with pytest.raises(Conflict, match="registered already"):
        recipients.add(vault, admin, "truth", SSH_KEY)
    with pytest.raises(Forbidden):  # only custodians register keys (the refusal is recorded)
        recipients.add(vault, principal(vault, "truth"), "truth", keys.generate_identity()[1])
    with vault.sessions() as session:
        assert session.scalar(select(func.count()).select_from(CommissionRecipient)) == 2
    assert counts(vault)[2] == before[2] + 1  # only the refusal's own `access denied` entry
    recipients.remove(vault, admin, "truth", added.key_id)
    assert entries(vault)[-1].action == ledger.actions.KEY_REMOVAL
    assert len(recipients.list_recipients(vault, admin, "truth")) == 1


# --- request and approval --------------------------------------------------------------------


def test_a_request_shows_a_preview_waits_for_a_second_custodian_and_seals_its_words(
    vault: Vault, setup: Setup
) -> None:
    asked = ask(vault, "truth", setup.case)
    assert (asked.state, asked.commission, asked.requested_by) == ("requested", "truth", "truth")
    asked_entry = entries(vault)[-1]  # the request is a ledger entry too
    assert (asked_entry.action, asked_entry.actor) == (ledger.actions.APPROVAL_REQUEST, "truth")
    assert asked.id in str(asked_entry.details)
    preview = asked.preview
    assert preview is not None
    assert (preview.items, preview.consented, preview.not_consented) == (2, 2, 1)
    assert preview.by_kind == {"testimony": 1, "document": 1}
    assert preview.bytes == len(b"testimony") + len(b"doc")
    # Nothing is built before approval.
    assert list(vault.store.names(exports.PREFIX)) == []
    # Purpose and legal basis are sealed: not in any table, not in the ledger.
    assert_nowhere_in_clear(vault, PURPOSE, BASIS)
    shown = exports.detail(vault, principal(vault, "cleo"), asked.id)
    assert (shown.purpose, shown.legal_basis) == (PURPOSE, BASIS)
    # Neither the commission nor a therapist approves; the requester is one of the two.
    with pytest.raises(Forbidden):
        exports.approve(vault, principal(vault, "truth"), asked.id)
    with pytest.raises(Forbidden):
        exports.approve(vault, principal(vault, "tina"), asked.id)
    done = exports.approve(vault, principal(vault, "admin"), asked.id)
    assert done.state == exports.QUEUED
    with vault.sessions() as session:
        approval = session.get(Approval, asked.approval_id)
        assert approval is not None and approval.state == approvals.DONE
    assert [(e.action, e.actor) for e in entries(vault)[-2:]] == [
        (ledger.actions.APPROVAL, "admin"),
        (ledger.actions.APPROVAL_OUTCOME, "admin"),
    ]
    assert list(vault.store.names(exports.PREFIX)) == []  # queued for the builder, not built


def assert_nowhere_in_clear(vault: Vault, *words: str) -> None:
    with vault.sessions() as session:
        for table in ("exports", "approvals", "ledger_entries"):
            for row in session.execute(text(f"SELECT * FROM {table}")):  # noqa: S608
                for value in row:
                    raw = value if isinstance(value, bytes) else str(value).encode()
                    for word in words:
                        assert word.encode() not in raw, table


def test_a_denied_request_ends_and_nothing_is_built(vault: Vault, setup: Setup) -> None:
    asked = ask(vault, "truth", setup.case, kinds=("document",))
    assert asked.preview is not None and asked.preview.items == 1
    denied = exports.deny(vault, principal(vault, "cleo"), asked.id, "the mandate has ended")
    assert denied.state == exports.DENIED
    with pytest.raises(Conflict, match="no longer pending"):
        exports.approve(vault, principal(vault, "admin"), asked.id)
    assert entries(vault)[-1].action == ledger.actions.APPROVAL_DENIAL
    with pytest.raises(Conflict, match="denied: there is nothing to download"):
        exports.download(vault, principal(vault, "truth"), asked.id)


def test_a_custodian_asks_on_behalf_of_a_granted_commission_only(
    vault: Vault, setup: Setup
) -> None:
    asked = ask(vault, "cleo", setup.case, commission="truth")
    assert (asked.requested_by, asked.commission) == ("cleo", "truth")
    with pytest.raises(Forbidden, match="second person"):
        exports.approve(vault, principal(vault, "cleo"), asked.id)
    assert exports.approve(vault, principal(vault, "admin"), asked.id).state == exports.QUEUED
    before = counts(vault)
    # `other` is a commission with no grant on the case; `tina` is no commission.
    with pytest.raises(Forbidden, match="no commission grant"):
        ask(vault, "cleo", setup.case, commission="other")
    with pytest.raises(BadField, match="not a commission account"):
        ask(vault, "cleo", setup.case, commission="tina")
    with pytest.raises(NotFound):  # a commission with no grant cannot see the case at all
        ask(vault, "other", setup.case)
    with pytest.raises(Forbidden):  # a therapist cannot ask for one
        ask(vault, "tina", setup.case, commission="truth")
    after = counts(vault)
    assert after[:2] == before[:2]  # no export, no approval; only `access denied` entries
    assert all(
        e.action == ledger.actions.ACCESS_DENIED for e in entries(vault)[before[2] : after[2]]
    )


def test_bad_requests_change_nothing(vault: Vault, setup: Setup) -> None:
    empty = create_case(vault, principal(vault, "tina"), "No consent for commissions").id
    tina = principal(vault, "tina")
    deposit(vault, tina, empty, consent=["therapy", "legal"])
    grant(vault, principal(vault, "admin"), empty, "truth", "commission")
    before = counts(vault)
    with pytest.raises(Conflict, match="no item that may go to truth"):
        ask(vault, "truth", empty)
    with pytest.raises(Conflict, match="no item"):
        ask(vault, "truth", setup.case, kinds=("media",))
    with pytest.raises(BadField, match="kinds"):
        ask(vault, "truth", setup.case, kinds=("poem",))
    with pytest.raises(BadField, match="unterminated quoted phrase"):  # not a class name
        ask(vault, "truth", setup.case, query='"río')
    with pytest.raises(BadField, match="purpose"):
        exports.request(
            vault,
            principal(vault, "truth"),
            exports.ExportRequest(case_id=setup.case, purpose=" ", legal_basis=BASIS),
        )
    recipients.remove(
        vault,
        principal(vault, "admin"),
        "truth",
        recipients.list_recipients(vault, principal(vault, "admin"), "truth")[0].key_id,
    )
    middle = counts(vault)
    with pytest.raises(Conflict, match="no recipient keys"):
        ask(vault, "truth", setup.case)
    assert counts(vault) == middle
    assert counts(vault)[:2] == before[:2]
