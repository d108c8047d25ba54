"""`tvault verify` accounts for every credential: an account or a token row written in SQL,
without its ledger entry, or changed beside the ledger, is a failure (DESIGN.md promise 9)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update

from vault import accountability, credentials, verify
from vault.accounts import OFFLINE_ACTOR, set_disabled
from vault.db import User
from vault.db.credential_tables import AccessToken
from vault.parts import Vault


def failures(vault: Vault) -> list[str]:
    report = verify.verify(vault, fast=True)
    return [f"{f.subject}: {f.kind} ({f.detail})" for f in report.failures]


def test_accounts_and_tokens_made_by_the_vault_verify(vault: Vault) -> None:
    issued = credentials.issue(vault, "lena", ttl_seconds=600)
    credentials.revoke(vault, issued.token_id)
    with vault.sessions.begin() as session:
        set_disabled(session, "theo", True, vault.clock(), actor=OFFLINE_ACTOR, via="offline")
    report = verify.verify(vault, fast=True)
    assert report.ok, report.failures
    assert "replayed 4 account(s), 1 token(s)" in report.notes


def test_an_account_or_a_token_written_in_sql_is_a_failure(vault: Vault) -> None:
    now = datetime.now(UTC)
    with vault.sessions.begin() as session:
        lena = session.scalar(select(User).where(User.name == "lena"))
        assert lena is not None
        session.execute(
            insert(User).values(
                id="x" * 26, name="mallory", role="custodian", created_at=now, disabled=False
            )
        )
        session.execute(
            insert(AccessToken).values(
                jti="planted",
                account_id=lena.id,
                generation=1,
                kid="k",
                issued_at=now,
                expires_at=now + timedelta(hours=1),
                issued_by="admin",
                via="api",
            )
        )
        session.execute(update(User).where(User.name == "tina").values(role="custodian"))
    found = failures(vault)
    assert f"account mallory: {accountability.ACCOUNT_UNRECORDED} ({'x' * 26})" in found
    assert f"token planted: {accountability.CREDENTIAL_UNRECORDED} (account {lena.id})" in found
    assert any(
        line.startswith(f"account tina: {accountability.ACCOUNT_DIFFERS} (table tina custodian")
        for line in found
    )


def test_a_revocation_undone_in_sql_is_a_failure(vault: Vault) -> None:
    issued = credentials.issue(vault, "lena", ttl_seconds=600)
    credentials.revoke(vault, issued.token_id)
    with vault.sessions.begin() as session:
        session.execute(
            update(AccessToken)
            .where(AccessToken.jti == issued.token_id)
            .values(revoked_at=None, revoked_by=None)
        )
    assert failures(vault) == [
        f"token {issued.token_id}: {accountability.CREDENTIAL_DIFFERS} "
        "(live in the register, not in the ledger)"
    ]
