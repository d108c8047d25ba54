"""The sweep removes only old item objects that no item row references."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from tests.unit.vault.conftest import principal
from tests.unit.vault.deposit_support import BODY, deposit, fields
from vault import extraction, jobs, objects, unreferenced
from vault.cases import create_case
from vault.objects import PREFIX, object_name
from vault.parts import Vault
from vault.sweep import SweepService, sweep
from vault.verify import verify

LEASE = timedelta(seconds=60)


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


def test_sweep_looks_names_up_in_batches_and_misses_none(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(objects, "LOOKUP_BATCH", 3)  # batches split items and orphans alike
    case = create_case(vault, principal(vault, "tina"), "Case")
    for _ in range(4):
        deposit(vault, "tina", BODY, fields(case.id))
    committed = set(vault.store.names(PREFIX))
    orphans = {_orphan(vault) for _ in range(5)}
    later = vault.clock() + timedelta(seconds=vault.settings.sweep_grace_seconds + 60)
    vault.clock = lambda: later
    assert sweep(vault) == 5
    assert set(vault.store.names(PREFIX)) == committed
    assert not orphans & committed


def test_the_scheduled_sweep_removes_orphans_and_stops(vault: Vault) -> None:
    vault.settings = vault.settings.model_copy(
        update={"sweep_grace_seconds": 0, "sweep_interval_seconds": 0.05}
    )
    later = vault.clock() + timedelta(seconds=5)
    vault.clock = lambda: later
    orphan = _orphan(vault)
    service = SweepService(vault)
    service.start()
    try:
        deadline = time.monotonic() + 30
        while orphan in set(vault.store.names(PREFIX)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert orphan not in set(vault.store.names(PREFIX))
    finally:
        service.stop()
    second = _orphan(vault)
    time.sleep(0.2)  # stopped: nothing sweeps any more
    assert second in set(vault.store.names(PREFIX))


def test_an_interval_of_zero_schedules_nothing(vault: Vault) -> None:
    vault.settings = vault.settings.model_copy(update={"sweep_interval_seconds": 0})
    service = SweepService(vault)
    service.start()
    assert service._thread is None
    service.stop()


def test_sweep_removes_an_old_text_of_an_attempt_killed_before_its_commit(vault: Vault) -> None:
    name = extraction.text_object_name("itemthatwaskilled", 1)
    with vault.store.writer(name) as writer:
        writer.write(b"sealed text of an attempt that never committed")
        writer.commit()
    assert sweep(vault) == 0  # young: its attempt may still be recording it
    later = vault.clock() + timedelta(seconds=vault.settings.sweep_grace_seconds + 60)
    vault.clock = lambda: later
    assert sweep(vault) == 1
    assert list(vault.store.names(extraction.PREFIX)) == []


def test_sweep_leaves_the_texts_of_a_running_extraction_until_it_ends(vault: Vault) -> None:
    # An extract attempt seals every text of its batch before the transaction that records
    # them: a sweep in between (another process starting, with any grace) must not take them.
    case = create_case(vault, principal(vault, "tina"), "Case")
    item = deposit(vault, "tina", BODY, fields(case.id)).item_id
    claim = jobs.claim(vault.sessions, "w", {jobs.EXTRACT}, now=vault.clock(), lease=LEASE)
    assert claim is not None and claim.item_id == item
    name = extraction.text_object_name(item, claim.attempt)
    with vault.store.writer(name) as writer:
        writer.write(b"sealed text not recorded yet")
        writer.commit()
    later = vault.clock() + timedelta(seconds=vault.settings.sweep_grace_seconds + 60)
    vault.clock = lambda: later
    assert sweep(vault) == 0
    assert name in set(vault.store.names(extraction.PREFIX))
    # The attempt gave its job back without recording it: the next sweep removes the object.
    jobs.release(vault.sessions, claim, now=later)
    assert sweep(vault) == 1
    assert list(vault.store.names(extraction.PREFIX)) == []


def test_verify_names_each_old_unreferenced_object_until_the_sweep_removes_it(
    vault: Vault,
) -> None:
    item_object = _orphan(vault)
    text = extraction.text_object_name("itemthatwaskilled", 2)
    with vault.store.writer(text) as writer:
        writer.write(b"sealed text of an attempt that never committed")
        writer.commit()
    young = verify(vault)
    assert [f for f in young.failures if f.kind == unreferenced.UNREFERENCED] == []
    assert "2 unreferenced objects younger" in " ".join(young.notes)
    later = vault.clock() + timedelta(seconds=vault.settings.sweep_grace_seconds + 60)
    vault.clock = lambda: later
    found = verify(vault)
    named = {f.subject for f in found.failures if f.kind == unreferenced.UNREFERENCED}
    assert named == {item_object, text} and not found.ok
    assert sweep(vault) == 2
    assert verify(vault).ok
