"""The sweep removes only old item objects that no item row references."""

from __future__ import annotations

from datetime import timedelta

from tests.unit.vault.conftest import principal
from tests.unit.vault.test_deposit import BODY, deposit, fields
from vault.cases import create_case
from vault.compose import Vault
from vault.objects import PREFIX, object_name
from vault.sweep import sweep


def _orphan(vault: Vault) -> str:
    name = object_name()
    with vault.store.writer(name) as writer:
        writer.write(b"ciphertext of a deposit that crashed before its commit")
        writer.commit()
    return name


def test_sweep_keeps_young_orphans_and_committed_items(vault: Vault) -> None:
    case = create_case(vault, principal(vault, "tina"), "Case")
    deposit(vault, "tina", BODY, fields(case.id))
    young = _orphan(vault)
    assert sweep(vault) == 0
    assert young in set(vault.store.names(PREFIX))


def test_sweep_removes_old_orphans_only(vault: Vault) -> None:
    case = create_case(vault, principal(vault, "tina"), "Case")
    deposit(vault, "tina", BODY, fields(case.id))
    orphan = _orphan(vault)
    later = vault.clock() + timedelta(seconds=vault.settings.sweep_grace_seconds + 60)
    vault.clock = lambda: later
    assert sweep(vault) == 1
    names = set(vault.store.names(PREFIX))
    assert orphan not in names and len(names) == 1  # the committed item's object stays
    assert sweep(vault) == 0
