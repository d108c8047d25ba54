"""The composition root: builds the database, object store and keyring of a vault from settings.

Nothing else reads settings or holds a global client (CONVENTIONS.md "One composition root").
The API reaches the `Vault` through `vault.api.deps.VaultDep`; the CLI through `open_vault`.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import keys
import policies
from ingest import Extractor, OcrOptions, memory_dir, parse_languages
from ingest.scratch import sweep_dead
from keys import KdfParams, Keyring, KeyStore
from vault import jobs, keystate, ledger, token_keys, vocabulary
from vault.db import connect, make_engine, make_sessions, migrate
from vault.errors import BadField, NotFound, Unavailable
from vault.indexing import IndexStage
from vault.ledger import mac as ledger_mac
from vault.ledger.service import make_checkpointer
from vault.parts import (
    INDEX_KEY,
    LOG_SIGNING,
    VOCABULARY_IDENTITY,
    Gatekeeping,
    IndexOpener,
    Vault,
)
from vault.settings import SETTINGS_FILE, Settings
from vault.storage import ObjectStore
from vault.token_keys import TOKEN_SIGNING as TOKEN_SIGNING  # re-exported for callers
from vault.token_keys import TokenKeys
from vault.worker import StageFactory, Worker

if TYPE_CHECKING:
    import asyncio

    from fastapi import FastAPI
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from search import Index
    from vault.extraction import ExtractStage
    from vault.health_server import HealthServer

log = logging.getLogger(__name__)


def make_store(settings: Settings, *, checked: bool = False) -> ObjectStore:
    """Build the object store adapter `settings.object_store` names; with `checked` (`tvault
    serve` and `tvault worker`, before they take work), also check what it needs from outside:
    the S3 bucket exists (with object lock when `TVAULT_S3_OBJECT_LOCK`) and has no default
    retention.

    Raises `Unavailable` if a configured service lacks a setting (`check_settings`), or with one
    line naming the bucket and the fix if the check fails.
    """
    check_settings(settings)
    if settings.object_store == "local":
        from vault.storage.adapters.local import LocalObjectStore

        return LocalObjectStore(settings.objects_path)
    from vault.storage import StorageError
    from vault.storage.adapters.s3 import S3ObjectStore

    assert settings.s3_secret_key is not None
    store = S3ObjectStore(
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
    if checked:
        try:
            store.check_bucket()
        except StorageError as exc:
            store.close()
            reason = " ".join(str(exc).split())
            raise Unavailable(f"S3 at {settings.s3_endpoint}: {reason}") from None
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


def child_store(settings: dict[str, object]) -> ObjectStore:
    """Open the object store in a child process (search helper, reindex helper) from the
    settings its parent sent (`Settings.model_dump`, without the passphrase)."""
    return make_store(Settings.model_validate(settings))


def is_initialised(settings: Settings) -> bool:
    """Return whether `settings.home` holds a vault (its settings file or keyring)."""
    return (settings.home / SETTINGS_FILE).exists() or settings.keyring_path.exists()


def build(settings: Settings, keyring: KeyStore, *, checked: bool = False) -> Vault:
    """Build the vault around an open `keyring`: engine (migrated to every head), store (with
    `checked`, checked as `make_store` says), ledger checkpointer, and the openers of the
    index and the extractor.

    Loads the access policy first (`TVAULT_POLICY_FILE`, else the shipped one) and makes it the
    one `policies.decide` answers with; raises `BadField` naming the file, line and reason of a
    defect, so a malformed policy stops the start, never a request. Raises `Unavailable` if a
    configured service lacks a setting (`check_settings`), the database cannot be reached, or
    the checked store is not ready.
    """
    load_policy(settings)
    check_settings(settings)
    check_extractor = extractor_check(settings)
    # A dead worker's plaintext copies go at the next start of any process on the vault, even
    # one that fails further on (the database down, say).
    with contextlib.suppress(OSError):
        sweep_dead(settings.scratch_dir)
    engine = migrated_engine(settings)
    try:
        # The search index's key and vocabulary identity: made at `tvault init`, or on the
        # first open of a vault made before search existed.
        ensure_index_secrets(keyring)
        sessions = make_sessions(engine)
        store = make_store(settings, checked=checked)
    except BaseException:
        engine.dispose()
        raise
    try:
        # The ledger's MAC key, bound to every session before anything appends: made on the
        # first open (the vault's own, or that of a vault made before ledger MACs, whose
        # history is MACed then; docs/ledger.md).
        ledger_mac.ensure_key(keyring, sessions)
        # The keyring's token-signing key is the one the database names current, and the
        # database records a master key version: both checked in one transaction (each
        # transaction checks a connection out, with a ping on PostgreSQL).
        max_ttl = timedelta(seconds=settings.token_max_ttl_seconds)
        with sessions.begin() as session:
            token_keys.ensure(session, keyring, datetime.now(UTC), max_ttl)
            master_recorded = keystate.recorded(session)
        if not master_recorded:
            keystate.record(sessions, keyring)
        # Signs the ledger's checkpoints with the keyring's log key and keeps them in the
        # store, every TVAULT_LEDGER_CHECKPOINT_ENTRIES entries or _SECONDS (docs/ledger.md).
        checkpointer = make_checkpointer(
            sessions,
            signer=keys.LogSigner.from_bytes(keyring.secret(LOG_SIGNING)),
            store=store,
            origin=settings.ledger_origin,
            every_entries=settings.ledger_checkpoint_entries,
            every_seconds=settings.ledger_checkpoint_seconds,
        )
    except BaseException:
        store.close()
        engine.dispose()
        raise
    return Vault(
        settings=settings,
        engine=engine,
        sessions=sessions,
        store=store,
        keyring=keyring,
        child_store=child_store,
        checkpointer=checkpointer,
        open_index=index_opener(settings, keyring, sessions),
        check_extractor=check_extractor,
    )


def migrated_engine(settings: Settings) -> Engine:
    """Connect to the database `settings` name and migrate it to every head.

    Raises `Unavailable` if it cannot be reached."""
    engine = make_engine(settings.effective_database_url)
    try:
        # One connection for both: the first of an engine costs a handshake and the dialect's
        # own questions, and each later check-out a ping on PostgreSQL.
        with connect(engine) as connection:
            migrate(connection)
    except BaseException:
        engine.dispose()
        raise
    return engine


def create_keyring(settings: Settings, passphrase: str, kdf: KdfParams | None = None) -> KeyStore:
    """Create the vault's keyring file (`settings.keyring_path`), sealed with `passphrase`.

    Raises `keys.KeyringError` if a file is already there: a keyring is never overwritten."""
    return Keyring.create(settings.keyring_path, passphrase, kdf=kdf)


def recover_keyring(settings: Settings, recovery_key: bytes, new_passphrase: str) -> None:
    """Rebuild the keyring file (`settings.keyring_path`) from its recovery key (combined from
    recovery shares) and seal it under `new_passphrase`.

    Raises `keys.KeyringError` if the key does not open the file, `OSError` if it is missing."""
    Keyring.recover(settings.keyring_path, recovery_key, new_passphrase)


def ensure_index_secrets(keyring: KeyStore) -> None:
    """Create the index key and the vocabulary identity in `keyring` if it lacks them (vaults
    made before search existed get them on first open). Added only if still missing under the
    keyring's lock: two processes opening such a vault at once keep one key, not each their
    own (the second would overwrite the first, and what the first indexed would stop matching)."""
    if not keyring.has_secret(INDEX_KEY):
        keyring.add_secret(INDEX_KEY, secrets.token_bytes(32))
    if not keyring.has_secret(VOCABULARY_IDENTITY):
        keyring.add_secret(VOCABULARY_IDENTITY, keys.generate_identity()[0].encode("ascii"))


def index_directory(settings: Settings) -> Path:
    """Return the directory of the embedded index (the engine's files).

    Deleting it and running `tvault reindex` rebuilds the same index from the vault."""
    return settings.home / "index"


def make_index(
    settings: Settings,
    keyring: KeyStore,
    sessions: sessionmaker[Session],
    *,
    rebuild: bool = False,
) -> Index:
    """Build the index adapter `settings.index` names, with the vocabulary in the database of
    `sessions` (a vault's older vocabulary file is moved there first).

    Raises `ValueError` if `TVAULT_INDEX=elasticsearch` comes without `TVAULT_ES_URL`, and
    `search.SearchError` if the index was built with another key or format (with `rebuild`,
    for `reindex`, an index of an older format is emptied instead).
    """
    ensure_index_secrets(keyring)
    key = keyring.secret(INDEX_KEY)
    identity = keyring.secret(VOCABULARY_IDENTITY).decode("ascii")
    directory = index_directory(settings)
    shared = vocabulary.DatabaseVocabulary(sessions, identity)
    vocabulary.import_file(directory / "vocabulary.age", shared)
    if settings.index == "elasticsearch":
        if not settings.es_url:
            raise ValueError("TVAULT_INDEX=elasticsearch needs TVAULT_ES_URL")
        from search.adapters.elasticsearch_index import ElasticsearchIndex

        return ElasticsearchIndex(settings.es_url, key, shared, rebuild=rebuild)
    from search.adapters.tantivy_index import TantivyIndex

    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return TantivyIndex(directory / "tantivy", key, shared, rebuild=rebuild)


def index_opener(
    settings: Settings, keyring: KeyStore, sessions: sessionmaker[Session]
) -> IndexOpener:
    """Return the vault's `open_index`: `make_index` with these parts. Each process (the
    server, a worker, `tvault reindex`) opens its own index through it, once, on first use;
    the search helper never opens one."""

    def open_index(*, rebuild: bool = False) -> Index:
        return make_index(settings, keyring, sessions, rebuild=rebuild)

    return open_index


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


def open_vault(settings: Settings, passphrase: str, *, checked: bool = False) -> Vault:
    """Open the existing vault in `settings.home` with `passphrase`; with `checked` (`tvault
    serve`, `tvault worker`), its store is checked before it takes work (`make_store`).

    Raises `NotFound` if there is no vault there, `keys.KeyringError` on a wrong passphrase, and
    as `build` does.
    """
    if not (settings.home / SETTINGS_FILE).exists() or not settings.keyring_path.exists():
        raise NotFound(f"no vault in {settings.home} (run `tvault init`)")
    return build(settings, Keyring.open(settings.keyring_path, passphrase), checked=checked)


def gatekeeping(vault: Vault) -> Gatekeeping:
    """Build how a served app of `vault` admits its callers: its token gate (the vault's own
    keys and issuer, and a JWKS client per configured OIDC issuer, `TVAULT_OIDC_ISSUERS`),
    its limiter of refused attempts (`TVAULT_AUTH_FAILURE_BURST`, `_PER_MINUTE`), and the gate
    its searches queue at (`TVAULT_SEARCH_CONCURRENCY`).

    Nothing is fetched here: the key caches fill on first use."""
    # Imported here: the CLI commands that only open the vault do not load them.
    from vault.oidc import clients_for
    from vault.ratelimit import RateLimiter
    from vault.tokens import TokenGate

    settings = vault.settings
    searches = search_gate(settings.search_concurrency)
    # Through a lambda: the vault's clock may be replaced (tests) after the app is built.
    local_keys = TokenKeys(vault.sessions, lambda: vault.clock())
    gate = TokenGate(
        local_keys=local_keys,
        local_issuer=settings.token_issuer,
        local_audience=settings.token_audience,
        issuers=clients_for(settings.oidc_issuers),
        max_token_bytes=settings.max_token_bytes,
    )
    limiter = RateLimiter(settings.auth_failure_burst, settings.auth_failure_per_minute)
    return Gatekeeping(
        token_keys=local_keys,
        gate=gate,
        limiter=limiter,
        search_gate=searches,
    )


def search_gate(concurrency: int) -> threading.Semaphore:
    """Return the gate that lets `concurrency` searches of a server run at once.

    A search is mostly pure Python (opening sealed titles and texts, snippets), so threads
    beyond the cores only fight for the GIL: each time one of them releases it to open a file
    or wait for the database, it waits for every other to run its turn before going on (the
    convoy effect). Profiled under the load mix of bench/load.py (20 clients, 80% searches),
    half a search's wall time went to reacquiring the GIL after `open()` of a sealed text and
    after SQLite calls, and the searches' ledger appends waited on writers that held SQLite's
    write lock while they waited for the GIL. Waiting searches queue here instead, first come
    first served (`threading.Semaphore` wakes its waiters in order), holding no GIL; a search
    that enters runs at the speed of the cores.
    """
    return threading.Semaphore(concurrency)


def make_extractor(settings: Settings, workers: int) -> tuple[Extractor, tuple[str, str]]:
    """Build the extractor `settings.extractor` names, and its `(tool, version)` for the ledger.

    Raises `ValueError` if
    `TVAULT_EXTRACTOR=tika-server` comes without `TVAULT_TIKA_URL`.
    """
    if settings.extractor == "tika-server":
        from ingest.adapters import TikaServerExtractor

        if not settings.tika_url:
            raise ValueError("TVAULT_EXTRACTOR=tika-server needs TVAULT_TIKA_URL")
        return TikaServerExtractor(settings.tika_url), ("Apache Tika server", "unknown")
    from ingest.adapters import NativeTikaExtractor

    options = None
    if settings.ocr != "off":
        options = OcrOptions(settings.ocr, parse_languages(settings.ocr_languages))
    native = NativeTikaExtractor(workers=workers, ocr=options)
    return native, ("Apache Tika (iscc-tika)", importlib.metadata.version("iscc-tika"))


def extractor_check(settings: Settings) -> Callable[[float], None]:
    """Return the vault's `check_extractor`: it raises `ingest.ScratchError` without an
    in-memory scratch directory (no original could be parsed), and otherwise asks the extractor
    `TVAULT_EXTRACTOR` names whether it can take work (`Extractor.check`: the Tika server must
    answer within the seconds given). Nothing is started for it: the in-process parsers start
    with a worker's first job."""

    def check_extractor(timeout_s: float) -> None:
        extractor, _tool = make_extractor(settings, 1)
        try:
            memory_dir(settings.scratch_dir)
            extractor.check(timeout_s)
        finally:
            extractor.close()

    return check_extractor


def extract_stage(vault: Vault, concurrency: int) -> ExtractStage:
    """Build the `extract` stage: the extractor `TVAULT_EXTRACTOR` names, with `concurrency`
    parser processes, and the limits of the settings."""
    from vault.extraction import ExtractStage, limits_of

    memory_dir(vault.settings.scratch_dir)  # refuse before any parser process starts
    extractor, tool = make_extractor(vault.settings, concurrency)
    return ExtractStage(vault, extractor, tool, limits_of(vault.settings))


def stages() -> dict[str, StageFactory]:
    """Return the stage factories a worker runs, by job kind (`tvault worker --kind`)."""
    return {jobs.EXTRACT: extract_stage, jobs.INDEX: IndexStage}


@dataclass(frozen=True)
class Served:
    """What `tvault serve` runs: the open vault (the caller closes it once the server stops),
    its app, and the HTTP protocol with the settings' header limits."""

    vault: Vault
    app: FastAPI
    http: type[asyncio.Protocol]


def serving(settings: Settings, passphrase: str) -> Served:
    """Build what `tvault serve` runs: the vault in `settings.home` opened with `passphrase`
    and checked, its app with its own gatekeeping, the HTTP protocol with the header limits
    (`TVAULT_MAX_HEADER_BYTES`, `TVAULT_MAX_HEADERS`), and the background services the app's
    lifespan starts and stops: the embedded worker (`TVAULT_EMBEDDED_WORKER`), the search helper
    (`TVAULT_SEARCH_HELPER`, with a second core), the ledger's checkpointer, the deposit sweep
    and the export builder.

    Raises as `open_vault` does; the vault is closed again on any failure.
    """
    # Imported here: the CLI commands that only open the vault do not load them.
    from vault.api.protocol import limited
    from vault.app import create_app
    from vault.export_build import ExportBuilder
    from vault.search_helper import SearchHelpers
    from vault.sweep import SweepService

    vault = open_vault(settings, passphrase, checked=True)
    try:
        gates = gatekeeping(vault)
        # The app first, then the protocol and the services, from the highest layer down; the
        # app's lifespan starts the services in the order of `started` below.
        app = create_app(vault, gates)
        http = limited(settings.max_header_bytes, settings.max_headers)
        # Removes abandoned deposit objects every TVAULT_SWEEP_INTERVAL_SECONDS (DESIGN.md
        # "Deposit").
        sweep = SweepService(vault)
        # Builds approved exports to commissions, one at a time (docs/exports.md).
        exports = ExportBuilder(vault)
        # One worker thread beside the API (docs/jobs.md).
        worker = Worker(vault, stages=stages()) if settings.embedded_worker else None
        # Signs a checkpoint every N entries or T seconds (docs/ledger.md).
        checkpoints = ledger.CheckpointService(vault.checkpointer)
        # Shows most of each page of search hits out of the server's process, one helper per
        # search the gate lets run at once (vault/search_helper.py).
        helpers = None
        if settings.search_helper and (os.cpu_count() or 1) > 1:
            helpers = SearchHelpers.for_settings(settings, child_store)
    except BaseException:
        vault.close()
        raise
    vault.search_helper = helpers
    started = (worker, helpers, checkpoints, sweep, exports)
    vault.services.extend(service for service in started if service is not None)
    return Served(vault=vault, app=app, http=http)


@dataclass(frozen=True)
class Working:
    """What `tvault worker` runs: the open vault (the caller closes it once the worker stops),
    its `Worker`, and its health server when one was asked for (built, not yet listening)."""

    vault: Vault
    worker: Worker
    health: HealthServer | None


def chosen_stages(kinds: tuple[str, ...] = ()) -> dict[str, StageFactory]:
    """Return the stage factories named in `kinds` (every stage when empty). Raises
    `BadField` naming a kind no stage has."""
    known = stages()
    unknown = sorted(set(kinds) - set(known))
    if unknown:
        raise BadField("kind", f"no stage {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return {kind: known[kind] for kind in kinds} if kinds else known


def working(
    settings: Settings,
    passphrase: str,
    stages: dict[str, StageFactory],
    *,
    concurrency: int = 1,
    health: tuple[str, int] | None = None,
) -> Working:
    """Build what `tvault worker` runs: the vault in `settings.home` opened with `passphrase`
    and checked, a `Worker` of `concurrency` jobs at once running `stages` (`chosen_stages`),
    and, with `health` (host, port), the server of its `/healthz` and `/readyz`
    (`vault.health_server`), which the caller starts.

    Raises as `open_vault` does; the vault is closed again on any failure.
    """
    from vault.health_server import HealthServer

    vault = open_vault(settings, passphrase, checked=True)
    try:
        # The higher layer first, as `serving` builds its parts.
        server = HealthServer(vault, health[1], health[0]) if health is not None else None
        worker = Worker(vault, concurrency=concurrency, stages=stages)
    except BaseException:
        vault.close()
        raise
    return Working(vault=vault, worker=worker, health=server)


def app_of(vault: Vault) -> FastAPI:
    """Return the app of an open `vault` with its own gatekeeping, and no background services
    (tests and benchmarks serve a vault they opened themselves)."""
    from vault.app import create_app

    return create_app(vault, gatekeeping(vault))
