"""Crypto-shredding is final: no byte of the item's key or sealed fields stays in the files.

The item is deposited, extracted, given identity fields and a consent form, and read back
(so its key was unwrapped and its pages passed through SQLite's write-ahead log); after the
shred, the database file, its WAL, and the object store are scanned byte by byte.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import select

import keys
from tests import corpus
from tests.unit.vault.conftest import PASSPHRASE, _clean_env, principal
from tests.unit.vault.deposit_support import deposit, fields
from vault import compose, item_keys, jobs, replay, sealed_fixity, verify
from vault.cases import create_case
from vault.compose import open_vault
from vault.consent import change_consent
from vault.db import Item, ItemKey
from vault.db.access_tables import ConsentRecord, ItemIdentity
from vault.db.jobs_tables import ItemText
from vault.identity import set_identity
from vault.parts import Vault
from vault.retrieve import download
from vault.shred import shred
from vault.worker import Worker

# The unit tests' fixtures, used here by importing them (this file starts processes).
__all__ = ["_clean_env"]


@pytest.fixture
def database_url() -> None:
    """SQLite only: its files are what is scanned (PostgreSQL's pages are its server's)."""
    return None


@pytest.fixture
def item(vault: Vault, tmp_path: Path) -> Iterator[str]:
    case = create_case(vault, principal(vault, "tina"), "Case").id
    body = corpus.text(tmp_path, content=f"{corpus.SPANISH} shredmarker").read_bytes()
    item_id = deposit(vault, "tina", body, fields(case)).item_id
    tina = principal(vault, "tina")
    set_identity(vault, tina, item_id, {"name": "Rosa Quispe"})
    form = b"signed consent form " * 50
    change_consent(vault, tina, item_id, grant=["archive"], basis="consent_form", form=form)
    worker = Worker(vault, stages={jobs.EXTRACT: compose.extract_stage})
    try:
        worker.run_until_idle()
    finally:
        worker.stop()
    read = download(vault, tina, item_id)
    assert b"".join(read.chunks) == body
    yield item_id


def secrets_of(vault: Vault, item_id: str) -> dict[str, bytes]:
    """The wrapped key and every sealed field of `item_id`, as stored."""
    with vault.sessions() as session:
        key = session.get(ItemKey, item_id)
        row = session.get(Item, item_id)
        text = session.get(ItemText, item_id)
        who = session.get(ItemIdentity, item_id)
        forms = session.scalars(
            select(ConsentRecord.sealed_form).where(ConsentRecord.sealed_form.is_not(None))
        ).all()
        assert key and row and text and who and len(forms) == 1
        return {
            "wrapped key": bytes(key.wrapped),
            "title": bytes(row.sealed_meta),
            "text metadata": bytes(text.sealed_meta),
            "identity": bytes(who.sealed),
            "consent form": bytes(forms[0]),
        }


def files_of(vault: Vault) -> dict[Path, bytes]:
    """Every file of the vault's home (database, WAL, object store) but the keyring."""
    home = vault.settings.home
    return {
        p: p.read_bytes()
        for p in home.rglob("*")
        if p.is_file() and p != vault.keyring.path  # type: ignore[attr-defined]
    }


def test_nothing_of_a_shredded_item_stays_in_the_files(vault: Vault, item: str) -> None:
    secrets = secrets_of(vault, item)
    with vault.sessions() as session:
        text_name = session.scalars(select(ItemText.object_name)).one()
        original = session.scalars(select(Item.object_name)).one()
    # Each secret is in the files before: the scan can find what it looks for.
    before = b"".join(files_of(vault).values())
    for name, blob in secrets.items():
        assert blob[-48:] in before, name

    done = shred(vault, principal(vault, "admin"), item)

    # Every object it made unreadable is listed.
    assert set(done.unreadable) == {original, text_name}
    assert done.purged
    files = files_of(vault)
    for path, data in files.items():
        for name, blob in secrets.items():
            # The last 48 bytes of a sealed blob: ciphertext and tag, unique to it.
            assert blob[-48:] not in data, f"{name} found in {path.name}"
    wal = [p for p in files if p.name.endswith("-wal")]
    assert all(files[p] == b"" for p in wal), "the write-ahead log was not truncated"
    report = verify.verify(vault)
    assert report.ok, report.failures
    assert report.shredded == 1


def backup_of(vault: Vault, to: Path) -> Path:
    """A consistent copy of the SQLite database, as an operator's backup would take it."""
    with (
        closing(sqlite3.connect(vault.settings.sqlite_path)) as source,
        closing(sqlite3.connect(to)) as copy,
    ):
        source.backup(copy)
    return to


def key_in(database: Path, item_id: str) -> bytes:
    with closing(sqlite3.connect(database)) as db:
        (wrapped,) = db.execute(
            "SELECT wrapped FROM item_keys WHERE item_id = ?", (item_id,)
        ).fetchone()
    return bytes(wrapped)


def test_an_old_database_backup_restored_cannot_open_the_item(
    vault: Vault, item: str, tmp_path: Path
) -> None:
    case = create_case(vault, principal(vault, "tina"), "Other").id
    kept = deposit(vault, "tina", b"another testimony", fields(case)).item_id
    backup = backup_of(vault, tmp_path / "backup.db")
    keyring_copy = tmp_path / "keyring-copy"
    shutil.copyfile(vault.keyring.path, keyring_copy)
    # Before the shred, the backup opens the item with the vault's keyring.
    assert item_keys.open_identity(vault.keyring, item, key_in(backup, item))

    shred(vault, principal(vault, "admin"), item)

    tina = principal(vault, "tina")
    assert b"".join(download(vault, tina, kept).chunks) == b"another testimony"
    # The backup restored in place of the database, the vault opened with its passphrase:
    # the shredded item's key is in it, and does not open.
    settings = vault.settings
    vault.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{settings.sqlite_path}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(backup, settings.sqlite_path)
    restored = open_vault(settings, PASSPHRASE)
    try:
        with pytest.raises(keys.KeyringError):
            download(restored, principal(restored, "tina"), item)
        # Nor does any other key of that backup: back up again after every shred
        # (docs/keys.md, "Shredding").
        with pytest.raises(keys.KeyringError):
            download(restored, principal(restored, "tina"), kept)
    finally:
        restored.close()
    # The honest limit: a copy of the keyring from before the shred still holds the old epoch
    # key, and with the old backup opens the item.
    old_ring = keys.Keyring.open(keyring_copy, PASSPHRASE)
    assert item_keys.open_identity(old_ring, item, key_in(backup, item))


def test_a_shredded_key_put_back_from_a_backup_is_found(vault: Vault, item: str) -> None:
    wrapped = secrets_of(vault, item)["wrapped key"]
    shred(vault, principal(vault, "admin"), item)
    with vault.sessions.begin() as session:
        session.add(ItemKey(item_id=item, wrapped=wrapped))
    report = verify.verify(vault, fast=True)
    assert (item, replay.SHRED_UNDONE) in {(f.subject, f.kind) for f in report.failures}


def test_a_process_opened_before_a_shred_keeps_reading_and_depositing(
    vault: Vault, item: str
) -> None:
    # `tvault serve` holds its keyring in memory while the shred runs elsewhere (another
    # process, its own keyring object): the new epoch's key is read from the file on first use.
    case = create_case(vault, principal(vault, "tina"), "Other").id
    kept = deposit(vault, "tina", b"kept testimony", fields(case)).item_id
    server = open_vault(vault.settings, PASSPHRASE)
    try:
        shred(vault, principal(vault, "admin"), item)
        tina = principal(server, "tina")
        assert b"".join(download(server, tina, kept).chunks) == b"kept testimony"
        new = deposit(server, "tina", b"deposited after", fields(case)).item_id
        assert b"".join(download(vault, principal(vault, "tina"), new).chunks) == b"deposited after"
        assert verify.verify(server).ok
    finally:
        server.close()


def test_an_interrupted_shred_leaves_its_old_epoch_key_and_verify_says_so(
    vault: Vault, item: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A crash between the commit and the keyring write: the old epoch key is still there.
    monkeypatch.setattr(item_keys, "forget_retired", lambda vault: [])
    shred(vault, principal(vault, "admin"), item)
    monkeypatch.undo()
    report = verify.verify(vault, fast=True)
    assert [f.kind for f in report.failures] == [sealed_fixity.EPOCH_LINGERS]
    # The next shred deletes it first.
    case = create_case(vault, principal(vault, "tina"), "Other").id
    other = deposit(vault, "tina", b"another testimony", fields(case)).item_id
    shred(vault, principal(vault, "admin"), other)
    assert verify.verify(vault, fast=True).ok
