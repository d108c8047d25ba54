"""A bag built by the real export use case (request, approval, build, download) passes
`verify_export` with the vault's log key: every file bound to a proven ledger entry, the
depositor's signature, a consistency proof on the commission's second export."""

from __future__ import annotations

import hashlib
import io

import keys
from tests.unit.vault.conftest import principal
from vault import exports, recipients, signatures
from vault.accounts import add_user
from vault.cases import create_case, grant
from vault.deposit import Deposit
from vault.export_build import build_pending
from vault.export_verify import verify_export
from vault.parts import Vault

BODY = b"%PDF-1.7 the testimony of the river"
FILENAME = "Testimonio: río/2024?.pdf"


def _signed_deposit(vault: Vault, case: str) -> None:
    private, public = keys.generate_signing_key()
    signatures.register_key(vault, principal(vault, "admin"), "tina", public)
    statement = keys.canonical_json(
        {
            "origin": signatures.origin_of(vault),
            "case": case,
            "sha256": hashlib.sha256(BODY).hexdigest(),
            "size": len(BODY),
            "filename": FILENAME,
            "kind": "testimony",
            "consent": ["truth_commission"],
            "key_id": keys.key_id(public),
            "signed_at": "2026-12-01T12:00:00Z",
        }
    )
    fields = {
        "case": case,
        "kind": "testimony",
        "title": "T",
        "consent": "truth_commission",
        "filename": FILENAME,
    }
    presented = signatures.Presented(statement, keys.sign(statement, private))
    job = Deposit.start(vault, principal(vault, "tina"), fields, len(BODY), statement=presented)
    job.write(BODY)
    job.commit()


def _export(vault: Vault, case: str) -> bytes:
    request = exports.ExportRequest(case_id=case, purpose="Verdad", legal_basis="Ley 1")
    asked = exports.request(vault, principal(vault, "truth"), request)
    exports.approve(vault, principal(vault, "cleo"), asked.id)
    assert build_pending(vault) == 1
    got = exports.download(vault, principal(vault, "truth"), asked.id, None)
    return b"".join(got.chunks)


def test_the_use_case_bag_verifies_offline(vault: Vault) -> None:
    with vault.sessions.begin() as session:
        add_user(session, "cleo", "custodian", vault.clock())
        add_user(session, "truth", "commission", vault.clock())
    case = create_case(vault, principal(vault, "tina"), "Case of the river").id
    _signed_deposit(vault, case)
    grant(vault, principal(vault, "admin"), case, "truth", "commission")
    identity, recipient = keys.generate_identity()
    recipients.add(vault, principal(vault, "admin"), "truth", recipient)
    log_key = vault.checkpointer.verifier_key()

    first = _export(vault, case)
    report = verify_export(io.BytesIO(first), identity, name="first.age", log_key=log_key)
    assert report.ok, report.failures
    assert "1 of 1 item files bound to proven ledger entries, 0 texts, 1 signatures" in (
        report.checks
    )

    # The second export to the same commission proves the log extends the first one's.
    second = _export(vault, case)
    report = verify_export(io.BytesIO(second), identity, name="second.age", log_key=log_key)
    assert report.ok, report.failures
    assert any("extends the earlier" in check for check in report.checks), report.checks
