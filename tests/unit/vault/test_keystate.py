"""The current master key version lives in the database (issue 16 point 6): a process that
opened the vault before a rotation wraps new item keys under the new version, re-reading the
keyring file; one whose keyring file lacks it refuses to wrap. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

import keys
from tests.unit.vault.conftest import PASSPHRASE, principal
from tests.unit.vault.search_support import deposit
from vault import item_keys
from vault.cases import create_case
from vault.compose import open_vault
from vault.db import ItemKey
from vault.db.key_tables import KeyState
from vault.errors import Unavailable
from vault.parts import Vault
from vault.rotation import rotate


@pytest.fixture
def other(vault: Vault) -> Iterator[Vault]:
    """A second process's view of the same vault (its own keyring object and engine)."""
    opened = open_vault(vault.settings, PASSPHRASE)
    yield opened
    opened.close()


def wrapped_version(vault: Vault, item_id: str) -> int:
    with vault.sessions() as session:
        wrapped = session.scalar(select(ItemKey.wrapped).where(ItemKey.item_id == item_id))
    assert wrapped is not None
    # The master-wrapped identity inside the item's KEK layer (vault.item_keys).
    return keys.Keyring.version_of(item_keys.master_wrapped(vault.keyring, item_id, wrapped))


def test_a_running_process_wraps_under_the_version_rotated_elsewhere(
    vault: Vault, other: Vault
) -> None:
    case = create_case(vault, principal(vault, "tina"), "Case 1").id
    tina = principal(vault, "tina")
    before = deposit(vault, tina, case, consent=["therapy"], body=b"before")
    rotate(other, "admin")  # `tvault keys rotate` in another process
    assert vault.keyring.current_version == 1  # this process has not looked at the file yet
    after = deposit(vault, tina, case, consent=["therapy"], body=b"after")
    assert wrapped_version(vault, before) == 2  # re-wrapped by the rotation
    assert wrapped_version(vault, after) == 2  # wrapped by this process under the new version
    assert vault.keyring.versions == (1, 2)


def test_a_keyring_file_without_the_current_version_refuses_to_wrap(vault: Vault) -> None:
    case = create_case(vault, principal(vault, "tina"), "Case 1").id
    with vault.sessions.begin() as session:
        # As if another machine rotated and this one still has the old keyring file.
        session.execute(update(KeyState).values(current_version=7))
    with pytest.raises(Unavailable, match="version 7"):
        deposit(vault, principal(vault, "tina"), case, consent=["therapy"], body=b"refused")
    with vault.sessions() as session:
        assert session.scalars(select(ItemKey)).all() == []  # nothing wrapped under another
