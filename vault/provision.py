"""Create a vault: keyring, signing keys, database, first custodian, settings file."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import func, select

import keys
from keys import KdfParams
from vault import compose, parts
from vault.accounts import NAME, add_user
from vault.db import User
from vault.errors import BadField, Conflict
from vault.ids import new_id
from vault.parts import Vault
from vault.settings import SETTINGS_FILE, Settings

TOML_HEADER = """\
# testimony-vault settings (docs/configuration.md). TVAULT_* environment variables win over
# this file. Written once by `tvault init`.
"""


def create_vault(
    settings: Settings, passphrase: str, admin: str, *, kdf: KdfParams | None = None
) -> Vault:
    """Create the vault in `settings.home` with a first custodian `admin`, and open it.

    Raises `Conflict` if a vault (settings file, keyring, or a database with accounts) is
    already there: an existing vault is never overwritten. Raises `BadField` on an empty
    passphrase or a malformed admin name.
    """
    home = settings.home
    if compose.is_initialised(settings):
        raise Conflict(f"a vault exists in {home}; refusing to overwrite it")
    if not passphrase:
        raise BadField("passphrase", "must not be empty")
    if not NAME.fullmatch(admin):
        raise BadField("admin", "use 1-64 of a-z 0-9 . _ - (starting with a letter or digit)")
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    compose.check_settings(settings)
    engine = compose.migrated_engine(settings)
    try:
        with engine.connect() as connection:
            if connection.scalar(select(func.count()).select_from(User)):
                raise Conflict("the database already holds a vault; refusing to overwrite it")
    finally:
        engine.dispose()
    keyring = compose.create_keyring(settings, passphrase, kdf)
    keyring.set_secret(compose.TOKEN_SIGNING, keys.generate_token_key().encode("ascii"))
    keyring.set_secret(parts.LOG_SIGNING, keys.LogSigner.generate().seed())
    keyring.set_secret(parts.METADATA_IDENTITY, keys.generate_identity()[0].encode("ascii"))
    issuer = f"urn:tvault:{new_id()}"
    vault = compose.build(settings.model_copy(update={"token_issuer": issuer}), keyring)
    with vault.sessions.begin() as session:
        add_user(session, admin, "custodian", vault.clock())
    # Written last: its presence is what `make run` and `init` take as "a vault is here".
    _write_settings(home / SETTINGS_FILE, issuer)
    return vault


def _write_settings(path: Path, issuer: str) -> None:
    # O_EXCL: two concurrent `init`s cannot both write the file.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(TOML_HEADER)
        file.write(f'token_issuer = "{issuer}"\n')
