"""`tvault verify` accounts for web credentials too: a password, a second factor or a session
written in SQL, without its ledger entry, is a failure (promise 9)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select

from tests.unit.vault.web.web_support import signed_in
from vault import accountability, verify
from vault.db import User
from vault.db.web_tables import AccountSecret, WebSession
from vault.parts import Vault


def failures(vault: Vault) -> list[str]:
    return [f"{f.subject}: {f.kind}" for f in verify.verify(vault, fast=True).failures]


@pytest.mark.both_databases
def test_web_credentials_made_by_the_vault_verify_and_planted_ones_fail(vault: Vault) -> None:
    signed_in(vault, "tina")  # a password (offline entry) and a session (sign-in entry)
    assert failures(vault) == []
    now = datetime.now(UTC)
    with vault.sessions.begin() as session:
        lena = session.scalar(select(User).where(User.name == "lena"))
        assert lena is not None
        session.execute(
            insert(AccountSecret).values(
                account_id=lena.id, password_hash="$argon2id$planted", totp_sealed=b"planted"
            )
        )
        session.execute(
            insert(WebSession).values(
                id="s" * 26,
                secret_sha256="0" * 64,
                account_id=lena.id,
                generation=1,
                csrf="c",
                state="active",
                created_at=now,
                seen_at=now,
            )
        )
    found = failures(vault)
    assert f"account {lena.id}: {accountability.PASSWORD_UNRECORDED}" in found
    assert f"account {lena.id}: {accountability.SECOND_FACTOR_UNRECORDED}" in found
    assert f"session {'s' * 26}: {accountability.SESSION_UNRECORDED}" in found
    assert len(found) == 3
