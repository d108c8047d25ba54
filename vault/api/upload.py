"""Stream a deposit's request body into `vault.deposit.Deposit`, raw or multipart.

Nothing is spooled: Starlette's `request.form()` would write large files to a temporary file
in the clear (forbidden by promise 1), so multipart bodies go through python-multipart's
streaming parser, part by part. Hashing and sealing are CPU-bound, so each batch of the body is
processed in a worker thread and the event loop stays free for other requests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio import to_thread
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import Request

from policies import Principal
from vault.deposit import CommitGuard, Deposit, DepositResult
from vault.errors import BadField, TooLarge
from vault.headers import from_headers
from vault.multipart import PartHeaders
from vault.parts import Vault
from vault.signatures import SIGNATURE_HEADER, STATEMENT_HEADER, Presented

BATCH = 4 * 1024 * 1024  # bytes handed to a worker thread at a time
MAX_FIELD = 64 * 1024  # a metadata field of a multipart body
DEPTH = 2  # batches read ahead of the sealing thread


def _statement(request: Request) -> Presented | None:
    # A signed deposit's statement and signature travel in headers, base64 (vault.signatures).
    return Presented.from_base64(
        request.headers.get(STATEMENT_HEADER), request.headers.get(SIGNATURE_HEADER)
    )


def _declared_size(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    if not raw.isdigit():
        raise BadField("content-length", "not a number")
    return int(raw)


def _write_each(write: Callable[[bytes], None], pieces: list[bytes]) -> None:
    for piece in pieces:
        write(piece)


async def pump(request: Request, write: Callable[[bytes], None]) -> None:
    """Feed the body to `write` in a worker thread, about `BATCH` bytes per hand-off.

    Reading the next batch (event loop) overlaps with sealing the previous one (thread); at most
    `DEPTH` batches wait in between, so memory stays flat whatever the body size. A batch is
    the list of the server's chunks, passed on as they are: joining them would copy every byte
    once more on the event loop.
    """
    send, receive = anyio.create_memory_object_stream[list[bytes]](DEPTH)

    async def consume() -> None:
        async with receive:
            async for batch in receive:
                await to_thread.run_sync(_write_each, write, batch)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(consume)
            async with send:
                batch: list[bytes] = []
                held = 0
                async for chunk in request.stream():
                    if not chunk:
                        continue
                    batch.append(chunk)
                    held += len(chunk)
                    if held >= BATCH:
                        await send.send(batch)
                        batch, held = [], 0
                if batch:
                    await send.send(batch)
    except BaseExceptionGroup as group_error:
        # The task group wraps the failure (TooLarge, ClientDisconnect, ...); callers and the
        # problem handlers expect the error itself.
        raise _first(group_error) from None


def _first(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


async def _cleanup(action: Callable[[], Any]) -> None:
    # Shielded: a client that disconnects cancels the request, and the object must still go.
    with anyio.CancelScope(shield=True):
        await to_thread.run_sync(action)


def raw_fields(request: Request, case_id: str) -> dict[str, str]:
    """Return a raw deposit's metadata: `Tvault-*` headers (vault.headers), and structural
    fields of older clients from the query string. Raises `BadField` on a field given in both
    or a header that is not percent-encoded UTF-8."""
    fields = dict(request.query_params)
    for name, value in from_headers(request.headers).items():
        if name in fields:
            raise BadField(name, "given twice (query string and header)")
        fields[name] = value
    fields["case"] = case_id
    return fields


async def deposit_raw(
    vault: Vault,
    principal: Principal,
    fields: dict[str, str],
    request: Request,
    guard: CommitGuard | None = None,
) -> DepositResult:
    """Deposit the raw request body with metadata `fields` (`raw_fields`).

    Raises `BadField`, `NotFound`, `Forbidden`, `TooLarge`, or `ClientDisconnect`; nothing is
    left behind then.
    """
    declared = _declared_size(request)
    deposit = await to_thread.run_sync(
        Deposit.start, vault, principal, fields, declared, _statement(request)
    )
    try:
        await pump(request, deposit.write)
        return await to_thread.run_sync(deposit.commit, guard)
    except BaseException:
        await _cleanup(deposit.abort)
        raise


@dataclass(frozen=True)
class FormRules:
    """What a web form adds to a multipart deposit: fields that may repeat (checkboxes), and a
    check of the metadata fields (CSRF token, form id) run before the first byte of the file,
    which removes the fields that are not deposit metadata and returns the signed statement the
    form carried, if any (else the one in the request's headers, if any, stands)."""

    repeatable: frozenset[str] = frozenset()
    before_file: Callable[[dict[str, str]], Presented | None] | None = None


class _Multipart(PartHeaders):
    """Callbacks of the streaming parser: metadata parts collected, the file part deposited."""

    def __init__(
        self,
        vault: Vault,
        principal: Principal,
        case_id: str | None,
        boundary: bytes,
        statement: Presented | None = None,
        form: FormRules | None = None,
    ) -> None:
        self.vault, self.principal = vault, principal
        self.statement = statement
        self.form = form or FormRules()
        # The API names the case in the URL; a web form sends it as a field.
        self.fields: dict[str, str] = {} if case_id is None else {"case": case_id}
        self.deposit: Deposit | None = None
        # Fields that came after the file part: the metadata is checked again, whole, at the end.
        self._late = False
        self._part_filename = False  # `fields["filename"]` came from the file part's header
        super().__init__()
        self._name: str | None = None
        self._buffer = bytearray()
        self._in_file = False
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            },
        )

    def write(self, data: bytes) -> None:
        self.parser.write(data)

    def _part_begin(self) -> None:
        self._reset_headers()
        self._buffer.clear()

    def _headers_finished(self) -> None:
        options = self._disposition()
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self._in_file = name == "file"
        if not self._in_file:
            if self.deposit is not None:
                if self.form.before_file is not None:
                    # A web form's fields are checked (CSRF) before the file: none may follow.
                    raise BadField(name, "metadata fields must come before the `file` part")
                # Part order does not matter to the API (Swagger UI and other clients order
                # fields as they like): the metadata is checked again, whole, at the end.
                self._late = True
            self._name = name
            return
        if self.deposit is not None:
            raise BadField("file", "exactly one file part")
        filename = options.get(b"filename")
        if filename and "filename" not in self.fields:
            self.fields["filename"] = filename.decode("utf-8", "replace")
            self._part_filename = True
        if self.form.before_file is not None:
            presented = self.form.before_file(self.fields)
            if presented is not None:
                self.statement = presented
        # The metadata given so far is checked here, before a byte of the file is stored. When a
        # field is missing and fields may still follow (the API), the deposit starts unchecked
        # and is checked when the body ends (`finish`); refused then, nothing is kept.
        try:
            self.deposit = Deposit.start(
                self.vault, self.principal, self.fields, statement=self.statement
            )
        except BadField as exc:
            case_id = self.fields.get("case")
            if exc.field in self.fields or self.form.before_file is not None or not case_id:
                raise
            self.deposit = Deposit.start_unchecked(self.vault, self.principal, case_id)
            self._late = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            assert self.deposit is not None
            self.deposit.write(data[start:end])
            return
        self._buffer += data[start:end]
        if len(self._buffer) > MAX_FIELD:
            raise BadField(self._name or "field", f"at most {MAX_FIELD} bytes")

    def _part_end(self) -> None:
        if not self._in_file and self._name is not None:
            try:
                value = self._buffer.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BadField(self._name, "not UTF-8") from exc
            if self._name == "filename" and self._part_filename:
                # A `filename` field names the file whatever its place: it wins over the name
                # the file part carried.
                self._part_filename = False
            elif self._name in self.fields:
                if self._name not in self.form.repeatable:
                    raise BadField(self._name, "given twice")
                # A group of checkboxes: one part per ticked box, joined as a list field.
                value = self.fields[self._name] + "," + value
            self.fields[self._name] = value
        self._in_file = False

    def finish(self, guard: CommitGuard | None = None) -> DepositResult:
        self.parser.finalize()
        if self.parser.state != MultipartState.END:
            # The body ended before its closing boundary (cut halfway, its stream closed
            # cleanly): the parser does not check this, and the file would be stored short.
            raise BadField("body", "the body ended before the closing boundary of the form")
        if self.deposit is None:
            raise BadField("file", "a `file` part is required")
        if self._late:
            self.deposit.settle(self.fields, self.statement)
        return self.deposit.commit(guard)

    def abort(self) -> None:
        if self.deposit is not None:
            self.deposit.abort()


async def deposit_multipart(
    vault: Vault,
    principal: Principal,
    case_id: str | None,
    request: Request,
    guard: CommitGuard | None = None,
    form: FormRules | None = None,
) -> DepositResult:
    """Deposit the `file` part of a multipart/form-data body; metadata in the parts before it.

    `case_id` None: the case comes as a field (the web form). `form` adds a web form's rules.
    Raises as `deposit_raw` does, and whatever `form.before_file` raises.
    """
    _, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadField("content-type", "multipart without a boundary")
    declared = _declared_size(request)
    if declared is not None and declared > vault.settings.max_upload_bytes + MAX_FIELD * 10:
        raise TooLarge(f"the limit is {vault.settings.max_upload_bytes} bytes")
    parts = _Multipart(vault, principal, case_id, boundary, _statement(request), form)
    try:
        await pump(request, parts.write)
        return await to_thread.run_sync(parts.finish, guard)
    except BaseException:
        await _cleanup(parts.abort)
        raise
