"""Resumable uploads (tus 1.0): partial uploads kept sealed between requests, then deposited.

An upload lives in `<home>/uploads/<id>/` until it completes or expires:

- `state.json`: what is not sensitive (owner, length, expiry), in the clear;
- `meta.age`: the deposit's fields (the title, a filename, notes are sealed data) and the
  upload's own age identity, sealed to the vault's metadata key;
- `<offset>.age`: one age file per PATCH, sealed to the upload's identity, written under a
  temporary name and renamed once its final chunk is written, so the offset (the sum of the
  segments' sizes, read from the names `<offset>-<size>.age`) counts only durable bytes.

No plaintext is ever written: a segment is sealed as the request body streams in. When the
last byte arrives, the segments are opened one after another and streamed through the same
`vault.deposit.Deposit` as `POST /v1/cases/{id}/items` (fixity, policy, ledger), then removed.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import keys
from policies import Principal, actions
from vault.access import NewItem, authorize_case, item_resource
from vault.deposit import Deposit, DepositResult, parse_request
from vault.errors import BadField, Conflict, NotFound, TooLarge
from vault.ids import new_id
from vault.parts import METADATA_IDENTITY, Vault
from vault.sealing import open_json, seal_json
from vault.signatures import Presented, check_deposit

# An upload nobody touched for this long is removed (docs/usage.md, "Resumable uploads").
EXPIRY_SECONDS = 24 * 3600
_SEGMENT = re.compile(r"^(\d{1,20})-(\d{1,20})\.age$")
_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


@dataclass(frozen=True)
class Upload:
    """What a HEAD tells: where to resume, out of how many bytes, until when."""

    id: str
    offset: int
    length: int
    expires: float


def root(vault: Vault) -> Path:
    """The directory of partial uploads (created private on first use)."""
    path = vault.settings.home / "uploads"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _dir(vault: Vault, principal: Principal, upload_id: str) -> Path:
    # Unknown, expired and someone else's uploads look the same: 404.
    if not _ID.match(upload_id):
        raise NotFound("no such upload")
    path = root(vault) / upload_id
    try:
        state = json.loads((path / "state.json").read_text("utf-8"))
    except (OSError, ValueError):
        raise NotFound("no such upload") from None
    if state.get("owner") != principal.subject or state["expires"] < time.time():
        raise NotFound("no such upload")
    return path


def _state(path: Path) -> dict[str, object]:
    state = json.loads((path / "state.json").read_text("utf-8"))
    assert isinstance(state, dict)
    return state


def _segments(path: Path) -> list[tuple[int, int, Path]]:
    found = []
    for entry in path.iterdir():
        match = _SEGMENT.match(entry.name)
        if match:
            found.append((int(match[1]), int(match[2]), entry))
    return sorted(found)


def _offset(path: Path) -> int:
    return sum(size for _, size, _ in _segments(path))


def create(vault: Vault, principal: Principal, length: int, fields: Mapping[str, str]) -> Upload:
    """Check `fields` and the policy as a deposit would, then make an empty upload.

    Raises `TooLarge` (length over `max_upload_bytes`), `BadField`, `NotFound`, `Forbidden`;
    nothing is stored then.
    """
    if length > vault.settings.max_upload_bytes:
        raise TooLarge(f"the limit is {vault.settings.max_upload_bytes} bytes")
    if length < 1:
        raise BadField("upload-length", "an empty file cannot be deposited")
    fields = dict(fields)
    # A signed deposit's statement and signature come as two more metadata keys, as text.
    statement, signature = fields.pop("statement", None), fields.pop("signature", None)
    presented = Presented.from_text(statement, signature)
    request = parse_request(fields, vault.settings.tags)
    resource = item_resource(NewItem(request.case_id, request.consent, principal.subject))
    # Refused now, with the same ledger entry as a deposit, not after gigabytes.
    authorize_case(vault.sessions, principal, actions.ITEM_DEPOSIT, resource)
    if presented is not None:
        # The signature, key and metadata now; the content's digest when the last byte is in.
        check_deposit(
            vault,
            principal,
            case_id=request.case_id,
            kind=request.kind,
            filename=request.filename,
            consent=request.consent,
            presented=presented,
            declared_size=length,
        )
    sweep(vault)
    identity, _ = keys.generate_identity()
    metadata_identity = vault.keyring.secret(METADATA_IDENTITY).decode("ascii")
    upload_id = new_id()
    tmp = root(vault) / f".{upload_id}.new"
    tmp.mkdir(mode=0o700)
    sealed = seal_json(
        {"identity": identity, "fields": fields, "statement": statement, "signature": signature},
        keys.recipient_of(metadata_identity),
    )
    (tmp / "meta.age").write_bytes(sealed)
    expires = time.time() + EXPIRY_SECONDS
    state = {"owner": principal.subject, "length": length, "expires": expires}
    (tmp / "state.json").write_text(json.dumps(state), "utf-8")
    tmp.rename(root(vault) / upload_id)
    return Upload(upload_id, 0, length, expires)


def status(vault: Vault, principal: Principal, upload_id: str) -> Upload:
    """Where `upload_id` stands. Raises `NotFound` (unknown, expired or not the caller's)."""
    path = _dir(vault, principal, upload_id)
    state = _state(path)
    return Upload(upload_id, _offset(path), int(str(state["length"])), float(str(state["expires"])))


class Patch:
    """One PATCH in progress: `write` the body's bytes (sealed as they come), then `close`.

    `close` keeps what arrived, even after a dropped connection: the next HEAD reports it.
    """

    def __init__(self, vault: Vault, principal: Principal, upload_id: str, offset: int) -> None:
        self.path = _dir(vault, principal, upload_id)
        self._vault, self._principal = vault, principal
        self._lock = open(self.path / "state.json", "rb")  # noqa: SIM115 (held until close)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise Conflict("another request is writing to this upload") from None
        state = _state(self.path)
        self.length = int(str(state["length"]))
        self.start = _offset(self.path)
        if offset != self.start:
            self._lock.close()
            raise Conflict(f"the upload is at offset {self.start}, not {offset}")
        identity = str(self._open_meta()["identity"])
        self._tmp = self.path / f".{new_id()}.part"
        self._file = open(self._tmp, "xb")  # noqa: SIM115 (closed in close)
        os.chmod(self._tmp, 0o600)
        self._sealer = keys.Sealer(self._file, [keys.recipient_of(identity)])
        self.size = 0

    def _open_meta(self) -> dict[str, object]:
        metadata = self._vault.keyring.secret(METADATA_IDENTITY).decode("ascii")
        return open_json((self.path / "meta.age").read_bytes(), metadata)

    def write(self, data: bytes) -> None:
        """Seal `data`. Raises `TooLarge` past the declared Upload-Length (keep what fits)."""
        if self.start + self.size + len(data) > self.length:
            raise TooLarge("more bytes than the Upload-Length declared")
        self._sealer.write(data)
        self.size += len(data)

    @property
    def complete(self) -> bool:
        """Whether every declared byte is here (then `finish` must follow)."""
        return self.start + self.size >= self.length

    def close(self) -> int:
        """Make the segment durable (or drop it when empty); return the new offset.

        The upload stays locked when it is complete, until `finish` has deposited it: a second
        request meanwhile is refused (409) rather than depositing the file twice.
        """
        try:
            if self.size == 0:
                self._file.close()
                self._tmp.unlink()
                return self.start
            self._sealer.close()
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._tmp.rename(self.path / f"{self.start:020d}-{self.size}.age")
            # Each request that brings bytes pushes the expiry back: a slow link is not abandoned.
            state = _state(self.path)
            state["expires"] = time.time() + EXPIRY_SECONDS
            (self.path / "state.json").write_text(json.dumps(state), "utf-8")
            return self.start + self.size
        finally:
            if not self.complete:
                self._lock.close()

    def finish(self) -> DepositResult | None:
        """Deposit the bytes if they are all here; remove the upload then. Raises what a
        deposit raises (the upload is removed then as well: nothing half-done remains)."""
        if not self.complete:
            return None
        try:
            meta = self._open_meta()
            fields = meta["fields"]
            assert isinstance(fields, dict)
            statement, signature = meta.get("statement"), meta.get("signature")
            assert isinstance(statement, str | None) and isinstance(signature, str | None)
            deposit = Deposit.start(
                self._vault,
                self._principal,
                fields,
                self.length,
                Presented.from_text(statement, signature),
            )
            try:
                for chunk in _plaintext(self.path, str(meta["identity"])):
                    deposit.write(chunk)
                return deposit.commit()
            except BaseException:
                deposit.abort()
                raise
        finally:
            shutil.rmtree(self.path, ignore_errors=True)
            self._lock.close()


def _plaintext(path: Path, identity: str) -> Iterator[bytes]:
    expected = 0
    for start, size, segment in _segments(path):
        if start != expected:
            raise BadField("upload", "a segment is missing")
        with segment.open("rb") as src:
            yield from keys.open_stream(src, identity)
        expected += size


def terminate(vault: Vault, principal: Principal, upload_id: str) -> None:
    """Remove an upload of the caller's. Raises `NotFound`."""
    shutil.rmtree(_dir(vault, principal, upload_id), ignore_errors=True)


def sweep(vault: Vault, now: float | None = None) -> int:
    """Remove expired uploads (and leftovers of interrupted creations); return how many."""
    now = time.time() if now is None else now
    removed = 0
    for entry in root(vault).iterdir():
        try:
            if entry.name.startswith("."):
                stale = entry.stat().st_mtime < now - 3600
            else:
                stale = float(_state(entry)["expires"]) < now  # type: ignore[arg-type]
        except (OSError, ValueError, KeyError):
            stale = True
        if stale:
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed
