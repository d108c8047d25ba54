"""Idempotent deposits: the `Idempotency-Key` request header (IETF httpapi draft).

A client whose connection drops after the vault committed cannot tell whether its deposit was
stored; retried without a key, it would store a second item (issue 23). With a key, the vault
remembers, per principal, the answer the first deposit got, and a retry gets that answer again:

- the same key, the same bytes into the same case: the first answer (status and body), and
  nothing new is stored or recorded; the header `Idempotent-Replayed: true` says so;
- the same key, other bytes (or another case): 422 (`urn:tvault:problem:` +
  `idempotency-key-reused`);
- the same key while its first request still streams: 409 (`...:idempotency-in-flight`), at
  once, before the body is read. A request holds its key by a lease it renews while it
  streams (`LEASE`, `HEARTBEAT_S`), so a key whose request died with its server is free again
  once the lease runs out.

"The same bytes" is the content's SHA-256 and size and the case (the fingerprint); the other
metadata of the retry is not compared: the first deposit stands. The bytes of a retry are only
known once they have streamed in, so a retry is sealed and written like any deposit, then
dropped before anything commits (promise 2: the digest is computed from the first byte; promise
7: nothing of the retry is left). Only a deposit that committed is remembered: a refused or
failed one releases its key, and its retry is a new attempt. Keys expire `TTL` after their
deposit (24 hours), so a retry must come within a day; expired keys are deleted on the next
keyed deposit. A key is stored as the SHA-256 of the key with the principal's name (the draft's
"composite key": one principal can never see another's answer), never in the clear.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final, NoReturn

import anyio
from anyio import to_thread
from sqlalchemy import ColumnElement, and_, delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from policies import Principal, actions
from vault import ledger
from vault.access import ID_SHAPE
from vault.db.idempotency_tables import DONE, PENDING, IdempotencyKey
from vault.deposit import DepositResult
from vault.errors import BadField, VaultError
from vault.parts import Vault

log = logging.getLogger(__name__)

HEADER: Final = "Idempotency-Key"
REPLAYED: Final = "Idempotent-Replayed"  # response header of an answer given again
TTL: Final = timedelta(hours=24)
LEASE: Final = timedelta(seconds=120)
HEARTBEAT_S: Final = 30.0
MAX_KEY: Final = 255
# RFC 8941 3.3.3 sf-string: printable ASCII in double quotes, `\"` and `\\` escaped. Many
# clients send a bare token (Stripe's style); that is taken too.
_STRING = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"')
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~:/=]+")


class KeyInFlight(VaultError):
    """A request with the same idempotency key is still being processed."""

    code = "idempotency-in-flight"


class KeyReused(VaultError):
    """The idempotency key was used for a deposit of other bytes."""

    code = "idempotency-key-reused"


class _Refusal(Exception):
    """`error`, to be recorded in the ledger once the deposit's transaction has rolled back."""

    def __init__(self, error: VaultError) -> None:
        super().__init__(error.detail)
        self.error = error


class Replayed(Exception):  # not an error: the first answer, given again
    """The deposit was made before under this key: answer `body` with `status` again."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__("replayed")
        self.status, self.body = status, body


def parse(values: list[str]) -> str | None:
    """Return the key of the `Idempotency-Key` header `values` (None when absent).

    Raises `BadField` for more than one header, or a value that is neither an RFC 8941 string
    nor a token, or is empty or longer than `MAX_KEY`.
    """
    if not values:
        return None
    if len(values) > 1:
        raise BadField(HEADER, "give it once")
    raw = values[0].strip()
    quoted = _STRING.fullmatch(raw)
    if quoted is not None:
        key = re.sub(r"\\(.)", r"\1", quoted.group(1))
    elif _TOKEN.fullmatch(raw):
        key = raw
    else:
        raise BadField(HEADER, 'a quoted string of printable ASCII, e.g. "<a random UUID>"')
    if not key or len(key) > MAX_KEY:
        raise BadField(HEADER, f"1 to {MAX_KEY} characters")
    return key


def body_of(result: DepositResult) -> bytes:
    """Return the JSON body of a deposit's 201 answer (the same bytes every time)."""
    data = {
        "id": result.item_id,
        "size": result.size,
        "sha256": result.sha256,
        "duplicate_of": result.duplicate_of,
    }
    return json.dumps(data, separators=(",", ":")).encode()


def _hash(principal: str, key: str) -> str:
    return hashlib.sha256(f"{principal}\n{key}".encode()).hexdigest()


def _fingerprint(case_id: str, sha256: str, size: int) -> str:
    return hashlib.sha256(f"{case_id}\n{sha256}\n{size}".encode()).hexdigest()


def _refuse(vault: Vault, principal: Principal, case_id: str, error: VaultError) -> NoReturn:
    # Every refusal is a ledger entry (docs/ledger.md), in its own transaction. The case id
    # comes from the URL, unchecked yet: only an id's shape is written, never free text.
    with vault.sessions.begin() as session:
        ledger.append(
            session,
            actor=principal,
            action=ledger.actions.DEPOSIT_REFUSED,
            case_id=case_id if ID_SHAPE.fullmatch(case_id) else None,
            details={"attempted": actions.ITEM_DEPOSIT, "cause": error.code},
        )
    raise error


@dataclass(frozen=True)
class Answer:
    """What the first deposit under a key got: its fingerprint, status and JSON body."""

    fingerprint: str
    status: int
    response: str


@dataclass
class Claim:
    """A deposit's hold on its key: `check` and `record` are `Deposit.commit`'s guard.

    Call `release` when the request ends, whatever happened (it keeps a committed answer).
    """

    vault: Vault
    principal: Principal
    key_hash: str
    case_id: str
    holder: str
    answer: Answer | None = None  # the first deposit's, when this is a retry
    body: bytes | None = None  # this deposit's answer, once recorded
    _stop: threading.Event = field(default_factory=threading.Event)

    def _where(self) -> ColumnElement[bool]:
        return and_(
            IdempotencyKey.principal == self.principal.subject,
            IdempotencyKey.key_hash == self.key_hash,
        )

    def check(self, result: DepositResult) -> None:
        """Before anything commits: raise `Replayed` (the same bytes) or a refusal (other
        bytes: `KeyReused`, see `deposit`) when the key already has an answer."""
        if self.answer is not None:
            self._answer_again(self.answer, result)

    def _answer_again(self, row: Answer, result: DepositResult) -> NoReturn:
        if row.fingerprint != _fingerprint(self.case_id, result.sha256, result.size):
            raise _Refusal(
                KeyReused("this Idempotency-Key was used for other bytes; use a new key")
            )
        raise Replayed(row.status, row.response.encode())

    def record(self, session: Session, result: DepositResult) -> None:
        """In the deposit's transaction: remember its answer under the key.

        Raises `Replayed` when another request completed the key meanwhile with the same bytes,
        and a refusal (`KeyReused`, `KeyInFlight`: see `deposit`) when it used other bytes or
        holds it now; the deposit then rolls back.
        """
        now = self.vault.clock()
        body = body_of(result)
        values = {
            "state": DONE,
            "fingerprint": _fingerprint(self.case_id, result.sha256, result.size),
            "status": 201,
            "response": body.decode(),
            "item_id": result.item_id,
            "touched_at": now,
            "expires_at": now + TTL,
        }
        done = session.execute(
            update(IdempotencyKey)
            .where(
                self._where(),
                IdempotencyKey.holder == self.holder,
                IdempotencyKey.state == PENDING,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount == 0:  # type: ignore[attr-defined]
            row = session.get(IdempotencyKey, (self.principal.subject, self.key_hash))
            if row is None:  # expired and deleted while this deposit streamed: take it again
                session.add(
                    IdempotencyKey(
                        principal=self.principal.subject,
                        key_hash=self.key_hash,
                        holder=self.holder,
                        **values,
                    )
                )
            elif row.state == DONE:
                first = Answer(row.fingerprint or "", row.status or 201, row.response or "")
                self._answer_again(first, result)
            else:
                raise _Refusal(
                    KeyInFlight("another request with this Idempotency-Key took it over")
                )
        self.body = body

    def heartbeat(self) -> None:
        """Renew the lease every `HEARTBEAT_S` until `release` (runs in a thread of its own)."""
        while not self._stop.wait(HEARTBEAT_S):
            try:
                with self.vault.sessions.begin() as session:
                    session.execute(
                        update(IdempotencyKey)
                        .where(self._where(), IdempotencyKey.holder == self.holder)
                        .values(touched_at=self.vault.clock())
                        .execution_options(synchronize_session=False)
                    )
            except Exception as exc:  # the deposit goes on; the lease may lapse
                log.warning("idempotency lease not renewed: %s", type(exc).__name__)

    def release(self) -> None:
        """Stop renewing; free the key unless its deposit committed (a retry starts afresh)."""
        self._stop.set()
        if self.answer is not None:
            return
        with self.vault.sessions.begin() as session:
            session.execute(
                delete(IdempotencyKey)
                .where(
                    self._where(),
                    IdempotencyKey.holder == self.holder,
                    IdempotencyKey.state == PENDING,
                )
                .execution_options(synchronize_session=False)
            )


def claim(vault: Vault, principal: Principal, key: str, case_id: str) -> Claim:
    """Hold `key` of `principal` for a deposit into `case_id`, before its body is read.

    Returns a `Claim`; when the key already has an answer, its `answer` is set (the retry is
    checked against it at commit). Raises `KeyInFlight` (ledger entry) while another request
    holds the key.
    """
    now = vault.clock()
    claimed = Claim(vault, principal, _hash(principal.subject, key), case_id, secrets.token_hex(16))
    in_flight = False
    try:
        with vault.sessions.begin() as session:
            session.execute(
                delete(IdempotencyKey)
                .where(IdempotencyKey.expires_at < now)
                .execution_options(synchronize_session=False)
            )
            row = session.get(
                IdempotencyKey, (principal.subject, claimed.key_hash), with_for_update=True
            )
            if row is None:
                session.add(
                    IdempotencyKey(
                        principal=principal.subject,
                        key_hash=claimed.key_hash,
                        state=PENDING,
                        holder=claimed.holder,
                        touched_at=now,
                        expires_at=now + TTL,
                    )
                )
            elif row.state == DONE:
                claimed.answer = Answer(
                    row.fingerprint or "", row.status or 201, row.response or ""
                )
                return claimed
            elif row.touched_at + LEASE > now:
                in_flight = True
            else:  # its request died without releasing it (a crash): take it over
                row.holder, row.touched_at, row.expires_at = claimed.holder, now, now + TTL
    except IntegrityError:
        in_flight = True  # another request inserted the same key at the same moment
    if in_flight:
        _refuse(
            vault,
            principal,
            case_id,
            KeyInFlight("a request with this Idempotency-Key is still being processed; retry"),
        )
    threading.Thread(target=claimed.heartbeat, name="tvault-idempotency", daemon=True).start()
    return claimed


async def deposit(
    vault: Vault,
    principal: Principal,
    key: str,
    case_id: str,
    run: Callable[[Claim], Awaitable[DepositResult]],
) -> tuple[int, bytes, bool]:
    """Run the deposit `run(claim)` under `key`; return the status and JSON body to answer,
    and whether they are the first deposit's, given again.

    A retry of a committed deposit returns the first answer (nothing new is stored). Raises
    `KeyInFlight` (409) or `KeyReused` (422), each recorded in the ledger, and whatever `run`
    raises.
    """
    claimed = await to_thread.run_sync(claim, vault, principal, key, case_id)
    try:
        await run(claimed)
    except Replayed as replayed:
        return replayed.status, replayed.body, True
    except _Refusal as refusal:
        await to_thread.run_sync(_refuse, vault, principal, case_id, refusal.error)
    finally:
        with anyio.CancelScope(shield=True):  # a client gone mid-deposit still frees its key
            await to_thread.run_sync(claimed.release)
    assert claimed.body is not None
    return 201, claimed.body, False
