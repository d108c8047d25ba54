"""Test helper: a real vault token for an account, issued and registered as `tvault token` does."""

from __future__ import annotations

from vault import credentials
from vault.accounts import find_user
from vault.parts import Vault


def token_for(vault: Vault, name: str, role: str) -> str:
    """Return a one-hour token for the account `name`, which must have the role `role`."""
    with vault.sessions() as session:
        assert find_user(session, name).role == role, f"{name} is not a {role}"
    return credentials.issue(vault, name, ttl_seconds=3600).token
