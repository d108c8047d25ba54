"""`init`: a vault is created once and never overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from keys import Keyring, KeyringError
from tests.unit.vault.conftest import FAST_KDF, PASSPHRASE
from vault.compose import TOKEN_SIGNING, open_vault
from vault.errors import BadField, Conflict, NotFound
from vault.parts import LOG_SIGNING, METADATA_IDENTITY, Vault
from vault.provision import create_vault
from vault.settings import SETTINGS_FILE, load_settings


def test_init_creates_keyring_database_objects_settings_and_custodian(vault: Vault) -> None:
    home = vault.settings.home
    assert (home / SETTINGS_FILE).is_file()
    assert (home / "keyring").is_file()
    if vault.settings.database_url is None:
        assert (home / "vault.db").is_file()
    ring = Keyring.open(home / "keyring", PASSPHRASE)
    for name in (TOKEN_SIGNING, LOG_SIGNING, METADATA_IDENTITY):
        assert ring.secret(name)
    settings = load_settings(home)
    assert settings.token_issuer.startswith("urn:tvault:")
    assert settings.token_issuer == vault.settings.token_issuer


def test_init_twice_refuses_and_changes_nothing(vault: Vault) -> None:
    home = vault.settings.home
    before = {p: p.read_bytes() for p in home.iterdir() if p.is_file() and p.suffix != ".db"}
    again = load_settings(home, database_url=vault.settings.database_url)
    with pytest.raises(Conflict):
        create_vault(again, "another passphrase", "mallory", kdf=FAST_KDF)
    for path, data in before.items():
        assert path.read_bytes() == data
    reopened = open_vault(again, PASSPHRASE)
    reopened.close()


def test_init_on_a_database_that_holds_a_vault_refuses(vault: Vault, tmp_path: Path) -> None:
    elsewhere = load_settings(
        tmp_path / "elsewhere", database_url=vault.settings.effective_database_url
    )
    with pytest.raises(Conflict):
        create_vault(elsewhere, PASSPHRASE, "mallory", kdf=FAST_KDF)
    assert not (tmp_path / "elsewhere" / "keyring").exists()


def test_an_empty_passphrase_or_bad_admin_name_creates_nothing(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "v")
    with pytest.raises(BadField):
        create_vault(settings, "", "admin", kdf=FAST_KDF)
    with pytest.raises(BadField):
        create_vault(settings, PASSPHRASE, "Bad Name!", kdf=FAST_KDF)
    assert not (tmp_path / "v" / "keyring").exists()


def test_open_refuses_a_missing_vault_and_a_wrong_passphrase(vault: Vault, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        open_vault(load_settings(tmp_path / "nothing"), PASSPHRASE)
    settings = load_settings(vault.settings.home, database_url=vault.settings.database_url)
    with pytest.raises(KeyringError):
        open_vault(settings, "wrong passphrase")
