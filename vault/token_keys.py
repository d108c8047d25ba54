"""The vault's token-signing keys: which one signs, which ones verify, and their rotation.

The private keys stay in the keyring (`compose.TOKEN_SIGNING` holds the current one); their
public halves and state live in the database (`token_keys`), where every process sees them:
the current key, and after `tvault keys rotate --tokens` the previous one, still published in
the JWKS and accepted until `drops_at` (the latest expiry a token it signed can have), then
dropped. Each process caches the set (`TokenKeys`) and reads it again on an unknown `kid` (at
most once per `min_refetch_seconds`, so made-up `kid`s cannot flood the database) and every
`refresh_seconds`.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

import keys
from keys import KeyStore
from vault.db.credential_tables import AccessToken, TokenKey
from vault.errors import Conflict

TOKEN_SIGNING = "token-signing"  # noqa: S105 (the keyring secret's name, not a secret)


@functools.lru_cache(maxsize=8)
def key_id(public_pem: str) -> str:
    """Return the `kid` of a token verification key: a digest of its PEM."""
    return hashlib.sha256(public_pem.encode("ascii")).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    """The private key tokens are signed with now, its public half and `kid`. **Secret.**"""

    private_pem: str
    public_pem: str
    kid: str

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid})"


def signing_key(keyring: KeyStore) -> SigningKey:
    """Return the keyring's current token-signing key. Raises `keys.KeyringError` if none."""
    private = keyring.secret(TOKEN_SIGNING).decode("ascii")
    public = keys.public_pem(private)
    return SigningKey(private, public, key_id(public))


def current_signing_key(sessions: sessionmaker[Session], keyring: KeyStore) -> SigningKey:
    """Return the signing key the database names current, re-reading the keyring file if
    another process rotated it (`tvault keys rotate --tokens`) since this one opened it.

    Raises `keys.KeyringError` if the file cannot be read again.
    """
    key = signing_key(keyring)
    with sessions() as session:
        current = current_kid(session)
    if current is not None and current != key.kid:
        keyring.reload()
        key = signing_key(keyring)
    return key


def current_kid(session: Session) -> str | None:
    """Return the `kid` of the database's current token-signing key (None before `ensure`)."""
    return session.scalar(select(TokenKey.kid).where(TokenKey.retired_at.is_(None)))


def check_current(session: Session, key: SigningKey) -> None:
    """Refuse to sign with `key` unless the database names it current.

    Raises `Conflict` when another process rotated the key meanwhile (a token signed with the
    old key would outlive the old key's overlap): asking again uses the new one.
    """
    if current_kid(session) != key.kid:
        raise Conflict("the token-signing key was rotated meanwhile; ask again")


def install(session: Session, public_pem: str, now: datetime, max_ttl: timedelta) -> str | None:
    """Make `public_pem` the current key in `session`'s transaction; return the previous kid.

    The previous key stays valid until the latest expiry a token it signed can have: `max_ttl`
    from now, or later if a registered token says so. Does nothing (returns None) if it is
    current already.
    """
    kid = key_id(public_pem)
    previous = current_kid(session)
    if previous == kid:
        return None
    if previous is not None:
        latest = session.scalar(
            select(func.max(AccessToken.expires_at)).where(AccessToken.kid == previous)
        )
        drops = now + max_ttl
        if latest is not None:
            drops = max(drops, latest)
        session.execute(
            update(TokenKey).where(TokenKey.kid == previous).values(retired_at=now, drops_at=drops)
        )
    known = session.get(TokenKey, kid)
    if known is None:
        session.add(TokenKey(kid=kid, public_pem=public_pem, created_at=now))
    else:
        # A keyring restored from a copy made before a rotation: its key becomes current again.
        known.retired_at = known.drops_at = None
    session.flush()
    return previous


def ensure(session: Session, keyring: KeyStore, now: datetime, max_ttl: timedelta) -> None:
    """Record the keyring's token-signing key as current if the database does not yet, in
    `session`'s transaction.

    Runs when a vault opens: it registers the key of a vault made before rotation existed, and
    finishes a rotation interrupted between the keyring and the database.
    """
    if not keyring.has_secret(TOKEN_SIGNING):
        return
    key = signing_key(keyring)
    if current_kid(session) != key.kid:
        install(session, key.public_pem, now, max_ttl)


@dataclass(frozen=True)
class KeyRecord:
    """What is public about a token-signing key: its `kid` and dates (never a private key).

    The current key has no `retired_at`; a retired one is accepted until `drops_at`."""

    kid: str
    created_at: datetime
    retired_at: datetime | None
    drops_at: datetime | None


def history(session: Session, limit: int = 20) -> list[KeyRecord]:
    """Return the `limit` newest token-signing keys the database knows, newest first."""
    rows = session.execute(
        select(TokenKey.kid, TokenKey.created_at, TokenKey.retired_at, TokenKey.drops_at)
        .order_by(TokenKey.created_at.desc(), TokenKey.kid)
        .limit(limit)
    ).all()
    return [KeyRecord(*row) for row in rows]


class TokenKeys:
    """The live token verification keys (kid -> PEM), read from the database and cached.

    Thread-safe. `clock` gives the vault's time (a key is live until its `drops_at`);
    `monotonic` paces the reads.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime],
        *,
        refresh_seconds: float = 30.0,
        min_refetch_seconds: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions, self._clock, self._monotonic = sessions, clock, monotonic
        self._refresh, self._min_refetch = refresh_seconds, min_refetch_seconds
        self._keys: dict[str, tuple[str, datetime | None]] = {}
        self._read_at: float | None = None
        self._unknown_at: float | None = None  # the last read an unknown kid asked for
        self._lock = threading.Lock()

    def _read(self, now: float) -> None:
        self._read_at = now
        with self._sessions() as session:
            rows = session.execute(
                select(TokenKey.kid, TokenKey.public_pem, TokenKey.drops_at).where(
                    or_(TokenKey.drops_at.is_(None), TokenKey.drops_at > self._clock())
                )
            ).all()
        self._keys = {kid: (pem, drops) for kid, pem, drops in rows}

    def _fresh(self, unknown: bool) -> dict[str, tuple[str, datetime | None]]:
        with self._lock:
            now = self._monotonic()
            if self._read_at is None or now - self._read_at >= self._refresh:
                self._read(now)
            elif unknown and (
                self._unknown_at is None or now - self._unknown_at >= self._min_refetch
            ):
                # Paced on its own: a routine read just before must not delay a new key.
                self._unknown_at = now
                self._read(now)
            return self._keys

    def _live(self, drops: datetime | None) -> bool:
        return drops is None or drops > self._clock()

    def __call__(self, kid: str) -> str | None:
        """Return the PEM of the live key `kid`, or None."""
        found = self._fresh(unknown=False).get(kid)
        if found is None:
            found = self._fresh(unknown=True).get(kid)
        if found is None or not self._live(found[1]):
            return None
        return found[0]

    def published(self) -> list[str]:
        """Return the PEMs of every live key, the current one first."""
        rows = self._fresh(unknown=False).values()
        live = [(drops is not None, pem) for pem, drops in rows if self._live(drops)]
        return [pem for _, pem in sorted(live)]
