"""The running parts of a vault as use cases see them; `vault.compose` builds them from settings."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from keys import KeyStore
from vault.ledger import mac as ledger_mac
from vault.ledger.checkpoints import Checkpointer
from vault.settings import Settings

if TYPE_CHECKING:
    from search import Index
    from vault.ratelimit import RateLimiter
    from vault.search_helper import SearchHelper, SearchHelpers
    from vault.storage import ObjectStore
    from vault.token_keys import TokenKeys
    from vault.tokens import TokenGate

# Names of the secrets kept sealed in the keyring (DESIGN.md "Keys": separate keys per purpose).
LOG_SIGNING = "log-signing"
METADATA_IDENTITY = "metadata-identity"
LEDGER_MAC = ledger_mac.SECRET
INDEX_KEY = "search-index"  # 32 random bytes: the HMAC key of the index's term digests
VOCABULARY_IDENTITY = "search-vocabulary"  # age identity sealing the vocabulary's changes


class Service(Protocol):
    """A background service the server runs beside the API (the ingest worker, say)."""

    def start(self) -> None:
        """Start work in the background; return at once."""

    def stop(self) -> None:
        """Stop and wait for work in progress to finish or roll back."""


class IndexOpener(Protocol):
    """Opens the search index `TVAULT_INDEX` names (`vault.compose.make_index`)."""

    def __call__(self, *, rebuild: bool = False) -> Index:
        """Open the index; with `rebuild`, one of an older format is opened empty.

        Raises `search.SearchError` if it was built with another key or format."""
        ...


@dataclass
class Vault:
    """Everything the use cases need, built once from `settings`."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: ObjectStore
    keyring: KeyStore
    # Opens the object store in a child process from the settings sent to it (`model_dump`
    # without the passphrase): a function of `vault.compose`, passed down so that child
    # processes are built through the composition root too.
    child_store: Callable[[dict[str, object]], ObjectStore]
    # Signs the ledger's checkpoints with the keyring's log key (docs/ledger.md).
    checkpointer: Checkpointer
    # Opens the search index: a function of `vault.compose`, called on first use by
    # `vault.indexing.index_of` (commands that never search leave the index closed).
    open_index: IndexOpener
    # Raises if the extractor `TVAULT_EXTRACTOR` names cannot take work within the seconds
    # given (`vault.compose.extractor_check`; `/readyz` asks it).
    check_extractor: Callable[[float], None]
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # Seam for the embedded worker and search (started and stopped by the API's lifespan).
    services: list[Service] = field(default_factory=list)
    # The search index once `open_index` opened it; shared by the process's threads.
    index: Index | None = None
    # Shows part of each page of search hits in other processes (`tvault serve` only).
    search_helper: SearchHelper | SearchHelpers | None = None

    def close(self) -> None:
        """Release the search index, the database connections and the object store."""
        if self.index is not None:
            self.index.close()
        self.store.close()
        self.engine.dispose()


@dataclass
class Gatekeeping:
    """How a served app admits its callers; `vault.compose.gatekeeping` builds it from the
    settings, once per app (`vault.app.create_app` keeps it for the app's life).

    The API's bearer tokens (`vault.api.deps`) and the web sign-in pages share it: one cache of
    the vault's token keys and of each OIDC issuer's JWKS (each thread-safe, filled on first
    use), one budget of refused attempts per client, and the OIDC principals whose first use
    this process knows is recorded; and the gate searches queue at.
    """

    token_keys: TokenKeys
    gate: TokenGate
    limiter: RateLimiter
    # Lets `TVAULT_SEARCH_CONCURRENCY` searches of the app run at once (`compose.search_gate`).
    search_gate: threading.Semaphore
    oidc_seen: set[tuple[str, str]] = field(default_factory=set)
