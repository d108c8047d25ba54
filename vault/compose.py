"""The composition root: builds the database, object store and keyring of a vault from settings.

Nothing else reads settings or holds a global client (CONVENTIONS.md "One composition root").
The API reaches the `Vault` through `vault.api.deps.VaultDep`; the CLI through `open_vault`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

import policies
from ingest.scratch import sweep_dead
from keys import Keyring
from vault import keystate, token_keys
from vault.db import check_reachable, make_engine, make_sessions, migrate
from vault.errors import BadField, NotFound, Unavailable
from vault.ledger import mac as ledger_mac
from vault.settings import SETTINGS_FILE, Settings
from vault.token_keys import TOKEN_SIGNING as TOKEN_SIGNING  # re-exported for callers

if TYPE_CHECKING:
    from search import Index
    from vault.search_helper import SearchHelper
    from vault.storage import ObjectStore

log = logging.getLogger(__name__)

# Names of the secrets kept sealed in the keyring (DESIGN.md "Keys": separate keys per purpose).
LOG_SIGNING = "log-signing"
METADATA_IDENTITY = "metadata-identity"
LEDGER_MAC = ledger_mac.SECRET


class Service(Protocol):
    """A background service the server runs beside the API (the ingest worker, say)."""

    def start(self) -> None:
        """Start work in the background; return at once."""

    def stop(self) -> None:
        """Stop and wait for work in progress to finish or roll back."""


@dataclass
class Vault:
    """Everything the use cases need, built once from `settings`."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: ObjectStore
    keyring: Keyring
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # Seam for the embedded worker and search (started and stopped by the API's lifespan).
    services: list[Service] = field(default_factory=list)
    # The search index, opened on first use by `vault.indexing.index_of` (TVAULT_INDEX).
    index: Index | None = None
    # Shows part of each page of search hits in a second process (`tvault serve` only).
    search_helper: SearchHelper | None = None

    def close(self) -> None:
        """Release the search index, the database connections and the object store."""
        if self.index is not None:
            self.index.close()
        self.store.close()
        self.engine.dispose()


def make_store(settings: Settings) -> ObjectStore:
    """Build the object store adapter `settings.object_store` names.

    Raises `Unavailable` if the S3 settings are incomplete.
    """
    if settings.object_store == "local":
        from vault.storage.adapters.local import LocalObjectStore

        return LocalObjectStore(settings.objects_path)
    from vault.storage.adapters.s3 import S3ObjectStore

    check_settings(settings)
    assert settings.s3_secret_key is not None
    store: ObjectStore = S3ObjectStore(
        endpoint=str(settings.s3_endpoint),
        access_key=str(settings.s3_access_key),
        secret_key=settings.s3_secret_key.get_secret_value(),
        bucket=str(settings.s3_bucket),
        secure=settings.s3_secure,
        object_lock=settings.s3_object_lock,
        retention_days=settings.s3_retention_days,
        retention_mode=settings.s3_retention_mode,
        region=settings.s3_region,
        ca_file=settings.s3_ca_file,
    )
    return store


# What each configured service cannot do without (DESIGN.md "Configuration").
_REQUIRED = (
    ("object_store", "s3", ("s3_endpoint", "s3_access_key", "s3_secret_key", "s3_bucket")),
    ("index", "elasticsearch", ("es_url",)),
    ("extractor", "tika-server", ("tika_url",)),
)


def check_settings(settings: Settings) -> None:
    """Raise `Unavailable` naming the settings a configured service lacks, such as
    `TVAULT_ES_URL` with `TVAULT_INDEX=elasticsearch`."""
    for choice, value, needs in _REQUIRED:
        missing = [f"TVAULT_{n.upper()}" for n in needs if getattr(settings, n) in (None, "")]
        if getattr(settings, choice) == value and missing:
            raise Unavailable(
                f"TVAULT_{choice.upper()}={value} needs {', '.join(missing)} "
                "(docs/configuration.md)"
            )


def preflight(vault: Vault) -> None:
    """Check what `tvault serve` and `tvault worker` need from outside before they take work:
    the S3 bucket exists (with object lock when `TVAULT_S3_OBJECT_LOCK`) and no default
    retention. Raises `Unavailable` with one line naming the bucket and the fix.
    """
    if vault.settings.object_store == "s3":
        from vault.storage import StorageError
        from vault.storage.adapters.s3 import S3ObjectStore

        assert isinstance(vault.store, S3ObjectStore)
        try:
            vault.store.check_bucket()
        except StorageError as exc:
            where = vault.settings.s3_endpoint
            reason = " ".join(str(exc).split())
            raise Unavailable(f"S3 at {where}: {reason}") from None


def is_initialised(settings: Settings) -> bool:
    """Return whether `settings.home` holds a vault (its settings file or keyring)."""
    return (settings.home / SETTINGS_FILE).exists() or settings.keyring_path.exists()


def build(settings: Settings, keyring: Keyring) -> Vault:
    """Build the vault around an open `keyring`: engine (migrated to every head) and store.

    Loads the access policy first (`TVAULT_POLICY_FILE`, else the shipped one) and makes it the
    one `policies.decide` answers with; raises `BadField` naming the file, line and reason of a
    defect, so a malformed policy stops the start, never a request. Raises `Unavailable` if a
    configured service lacks a setting (`check_settings`) or the database cannot be reached.
    """
    load_policy(settings)
    check_settings(settings)
    # A dead worker's plaintext copies go at the next start of any process on the vault.
    with contextlib.suppress(OSError):
        sweep_dead(settings.scratch_dir)
    engine = make_engine(settings.effective_database_url)
    check_reachable(engine)
    migrate(engine)
    # The search index's key and vocabulary identity: made at `tvault init`, or on the first
    # open of a vault made before search existed.
    from vault.indexing import ensure_secrets

    ensure_secrets(keyring)
    sessions = make_sessions(engine)
    # The ledger's MAC key, bound to every session before anything appends: made on the first
    # open (the vault's own, or that of a vault made before ledger MACs, whose history is MACed
    # then; docs/ledger.md).
    ledger_mac.ensure_key(keyring, sessions)
    # The keyring's token-signing key is the one the database names current (vault.token_keys).
    max_ttl = timedelta(seconds=settings.token_max_ttl_seconds)
    token_keys.ensure(sessions, keyring, datetime.now(UTC), max_ttl)
    keystate.ensure(sessions, keyring)
    return Vault(
        settings=settings,
        engine=engine,
        sessions=sessions,
        store=make_store(settings),
        keyring=keyring,
    )


def load_policy(settings: Settings) -> policies.Engine:
    """Load and install the policy `settings.policy_file` names (None: the shipped policy).

    Raises `BadField` ("policy_file: <path>:<line>: <reason>") on any defect of the file.
    """
    if settings.policy_file is None:
        policies.use(None)
        return policies.default_engine()
    try:
        engine = policies.load(settings.policy_file)
    except policies.PolicyFileError as exc:
        raise BadField("policy_file", str(exc)) from exc
    policies.use(engine)
    return engine


def open_vault(settings: Settings, passphrase: str) -> Vault:
    """Open the existing vault in `settings.home` with `passphrase`.

    Raises `NotFound` if there is no vault there, `keys.KeyringError` on a wrong passphrase.
    """
    if not (settings.home / SETTINGS_FILE).exists() or not settings.keyring_path.exists():
        raise NotFound(f"no vault in {settings.home} (run `tvault init`)")
    return build(settings, Keyring.open(settings.keyring_path, passphrase))
