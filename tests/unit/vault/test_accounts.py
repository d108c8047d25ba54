"""Accounts: the principal an API request gets, read in one query on every request."""

from __future__ import annotations

import pytest

from vault.accounts import find_user, principal_named, principal_of
from vault.cases import create_case, grant
from vault.db import User
from vault.errors import NotFound
from vault.parts import Vault

from .conftest import principal


def _both(vault: Vault, name: str) -> tuple[object, object]:
    with vault.sessions() as session:
        return principal_named(session, name), principal_of(session, find_user(session, name))


def test_principal_named_gives_the_role_and_every_case_grant(vault: Vault) -> None:
    tina = principal(vault, "tina")
    first = create_case(vault, tina, "first").id
    second = create_case(vault, tina, "second").id
    custodian = principal(vault, "admin")
    grant(vault, custodian, first, "lena", "lawyer")
    grant(vault, custodian, second, "lena", "lawyer")
    named, of = _both(vault, "lena")
    assert named == of
    assert set(named.grants) == {first, second}  # type: ignore[attr-defined]
    assert named.roles == frozenset({"lawyer"})  # type: ignore[attr-defined]


def test_principal_named_of_an_account_without_grants(vault: Vault) -> None:
    named, of = _both(vault, "theo")
    assert named == of
    assert named.grants == {}  # type: ignore[attr-defined]


def test_principal_named_refuses_a_disabled_or_unknown_account(vault: Vault) -> None:
    with vault.sessions.begin() as session:
        user = session.query(User).filter_by(name="theo").one()
        user.disabled = True
    with vault.sessions() as session, pytest.raises(NotFound):
        principal_named(session, "theo")
    with vault.sessions() as session, pytest.raises(NotFound):
        principal_named(session, "nobody")


def test_the_principal_is_resolved_on_the_event_loop_only_with_sqlite_and_no_oidc(
    vault: Vault,
) -> None:
    import dataclasses

    from vault.api.deps import _resolves_inline
    from vault.compose import gatekeeping

    gate = gatekeeping(vault).gate
    # PostgreSQL is a network away: its lookups stay on a worker thread.
    assert _resolves_inline(vault, gate) is (vault.engine.dialect.name == "sqlite")
    # An OIDC issuer's keys may have to be fetched.
    with_issuer = dataclasses.replace(gate, issuers={"https://idp.example": object()})  # type: ignore[dict-item]
    assert not _resolves_inline(vault, with_issuer)
