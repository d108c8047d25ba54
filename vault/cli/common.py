"""What the CLI commands share: options, the API client, opening the vault, output, exit codes."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import ssl
import sys
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, NoReturn, Protocol

import typer
from typer.core import TyperGroup

from ingest.languages import canonical_language
from vault.ids import ID_SHAPE

if TYPE_CHECKING:
    import httpx

    from vault.parts import Vault
    from vault.settings import Settings

# DESIGN.md "Public interface": 0 success, 1 a failure the command found, 2 a usage error.
FAILURE = 1
USAGE = 2

# **Dev only: a well-known passphrase.** `init --dev` and `serve --dev` use it when none is
# given; without `--dev`, `serve` refuses a vault sealed with it ("Secrets are never defaults").
DEV_PASSPHRASE = "tvault-dev-only-not-a-secret"  # noqa: S105 (deliberately public)
DEFAULT_URL = "http://127.0.0.1:8000"

VaultOption = Annotated[
    Path | None,
    typer.Option("--vault", envvar="TVAULT_HOME", help="Vault directory [default: ./vault-data]"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
UrlOption = Annotated[str, typer.Option("--url", envvar="TVAULT_URL", help="API address.")]
TokenOption = Annotated[
    str | None, typer.Option("--token", envvar="TVAULT_TOKEN", help="Bearer token.")
]
CHUNK = 1024 * 1024
TIMEOUT_SECONDS = 30.0
READ_TIMEOUT_SECONDS = 600.0  # a large download may pause while the server reads the store


def _shaped(shape: re.Pattern[str], what: str) -> Any:
    def check(value: Any) -> Any:
        # Before any URL is built: a stray "/", "?" or "#" would send the request elsewhere.
        values = value if isinstance(value, list) else [value]
        for one in values:
            if one is not None and not shape.fullmatch(one):
                raise typer.BadParameter(f"{one!r} is not {what}")
        return value

    return check


def _id(kind: str) -> Any:
    return _shaped(ID_SHAPE, f"{kind} id (26 letters a-z and 2-7)")


# secrets.token_urlsafe(16), as vault.credentials.new_token_id makes them: URL-safe base64.
TOKEN_ID_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,64}")
check_item_id = _id("an item")
check_case_id = _id("a case")
check_approval_id = _id("an approval")
check_job_id = _id("a job")
check_token_id = _shaped(TOKEN_ID_SHAPE, "a token id (letters, digits, - and _)")
ApprovalArgument = Annotated[
    str, typer.Argument(metavar="APPROVAL", help="Approval id.", callback=check_approval_id)
]
ItemArgument = Annotated[
    str, typer.Argument(metavar="ITEM", help="Item id.", callback=check_item_id)
]
CaseArgument = Annotated[
    str, typer.Argument(metavar="CASE", help="Case id.", callback=check_case_id)
]
CaseOption = Annotated[str, typer.Option("--case", help="Case id.", callback=check_case_id)]


def group(help: str, *, no_args_is_help: bool = True, **options: Any) -> typer.Typer:
    """Return a command group (`tvault NAME ...`) with the house defaults.

    Its help is plain text, as click prints it: rich's help panels import rich and markdown-it,
    which doubled the start-up of `tvault --help` (bench/startup.py), and plain text reads the
    same on a screen reader, in a pipe and on a terminal.
    """
    return typer.Typer(help=help, no_args_is_help=no_args_is_help, rich_markup_mode=None, **options)


class Commands(TyperGroup):
    """The `tvault` group: a file-system error a user caused is one line and exit 1."""

    def invoke(self, ctx: Any) -> Any:
        """Run the command; an `OSError` (no such file, permission denied) exits 1 with a line."""
        try:
            return super().invoke(ctx)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            fail(f"{exc.strerror or exc}{where}")


def fail(message: str, code: int = FAILURE) -> NoReturn:
    """Print `message` to stderr, on one line (a library's message may span several), and exit
    with `code`."""
    typer.echo(f"tvault: {' '.join(message.split())}", err=True)
    raise typer.Exit(code)


NOT_UTF8: Final = "the file name is not UTF-8 text"


def shown_name(name: str) -> str | None:
    """Return None when `name` is UTF-8 text, else a printable form of it (`\\xe1` for a byte
    that is no UTF-8). A name from a system that wrote another encoding cannot travel in a
    header, a JSON document or an export's tar: the file must be renamed first."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    return None


def settings_for(home: Path | None) -> Settings:
    """Load the settings of the vault in `home`; a malformed setting is a usage error."""
    # Here, not above: client commands never read the vault's settings (start-up time).
    from vault.settings import load_settings

    try:
        return load_settings(home)
    except ValueError as exc:
        fail(f"bad settings: {exc}", USAGE)


def passphrase(settings: Settings, *, confirm: bool, dev: bool) -> str:
    """Return the passphrase: `TVAULT_PASSPHRASE` (or its file), else a prompt, else the dev one.

    Exits with a usage error when there is none and no terminal to ask on.
    """
    if settings.passphrase is not None:
        return settings.passphrase.get_secret_value()
    if dev:
        return DEV_PASSPHRASE
    if not sys.stdin.isatty():
        fail(
            "no passphrase: set TVAULT_PASSPHRASE or TVAULT_PASSPHRASE_FILE, or run on a terminal",
            USAGE,
        )
    value: str = typer.prompt("Vault passphrase", hide_input=True, confirmation_prompt=confirm)
    return value


def scopes(values: list[str] | None) -> list[str]:
    """Return the scopes of a repeatable option, each value a comma list, in order, once each."""
    named = (part.strip() for value in values or () for part in value.split(","))
    return list(dict.fromkeys(name for name in named if name))


def emit(data: Any, as_json: bool, text: str) -> None:
    """Print `data` as JSON, or `text` for people."""
    typer.echo(json.dumps(data, indent=2, default=str) if as_json else text)


def terminal() -> bool:
    """Say whether a person may be asked: stdin is a terminal (tests stand in for one)."""
    return sys.stdin.isatty()


def confirm(subject: str, what_is_lost: str, yes: bool) -> None:
    """Go on only once the user has confirmed an action that cannot be undone.

    With `yes` (`--yes`, for scripts) it returns at once. Otherwise it prints `what_is_lost` to
    stderr and asks for `subject` to be typed again. Exits with a usage error (2) when there is
    no terminal on stdin to ask on, or when the answer is not exactly `subject`.
    """
    if yes:
        return
    if not terminal():
        fail(f"{what_is_lost}; this cannot be undone: pass --yes to confirm", USAGE)
    typer.echo(f"{what_is_lost}. This cannot be undone.", err=True)
    answer: str = typer.prompt(f"Type {subject} to confirm", default="", show_default=False)
    if answer.strip() != subject:
        fail(f"{answer.strip()!r} is not {subject}; nothing done", USAGE)


YesOption = Annotated[
    bool, typer.Option("--yes", help="Do not ask for confirmation (for scripts).")
]


# --- client commands: the API over httpx ------------------------------------------------------


def connect(url: str, token: str) -> httpx.Client:
    """Return an HTTP client for the API at `url` that sends `token` (the transport seam; the
    tests bind it to an in-process app)."""
    # Imported here: `tvault --help` and the admin commands never load httpx (start-up time).
    import httpx

    timeout = httpx.Timeout(TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS)
    # A plain-http address needs no certificate store, and loading one was a fifth of a client
    # command's start-up. This context trusts no certificate, so should TLS be asked for all
    # the same (a proxy), it fails closed; an https address gets the usual verification.
    verify: ssl.SSLContext | bool = (
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT) if url.startswith("http://") else True
    )
    client = httpx.Client(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
        verify=verify,
    )
    _NETWORK[client] = (url, token)
    return client


# The clients `connect` made itself, which talk to the network (not a test's bound app), with
# their address and token: `tvault get` reads a download's body off the socket directly.
_NETWORK: weakref.WeakKeyDictionary[httpx.Client, tuple[str, str]] = weakref.WeakKeyDictionary()


def network_address(client: httpx.Client) -> tuple[str, str] | None:
    """Return the API address and token of `client` if `connect` made it for the network."""
    return _NETWORK.get(client)


def api_client(url: str, token: str | None) -> httpx.Client:
    """Return the client of a client command; exits with a usage error when there is no token."""
    if not token:
        fail("no token: pass --token or set TVAULT_TOKEN (`tvault token NAME` prints one)", USAGE)
    return connect(url, token)


def problem(response: httpx.Response) -> str:
    """Return an error answer as one line: its status and the problem's `detail` (RFC 9457)."""
    try:
        detail = response.json().get("detail") or response.reason_phrase
    except (ValueError, AttributeError):
        detail = response.reason_phrase
    return f"{response.status_code}: {detail}"


def refused(response: httpx.Response) -> NoReturn:
    """Exit 1 with the error `response` as one line."""
    fail(problem(response))


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    """Send one request; return its JSON body (None when empty). Exits 1 with one line when the
    vault cannot be reached or answers with an error."""
    import httpx

    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        fail(f"cannot reach the vault: {exc}")
    if response.is_error:
        refused(response)
    return response.json() if response.content else None


def asked(row: dict[str, Any], what: str, as_json: bool) -> None:
    """Print a new approval request: its id on stdout (for scripts), what it waits for on
    stderr."""
    if not as_json:
        missing = row["quorum"] - 1 - len(row["approvers"])
        typer.echo(
            f"{what} waits for {missing} more custodian(s): tvault approvals approve {row['id']}",
            err=True,
        )
    emit(row, as_json, row["id"])


# A deposit is retried by itself after a connection error, under the same Idempotency-Key, so a
# retry of a deposit that did commit gets the first answer (vault.idempotency): RETRIES more
# attempts, waiting BACKOFF_S, then twice as long each time (0.5 + 1 + 2 + 4 + 8 = 15.5 s).
RETRIES = 5
BACKOFF_S = 0.5


def idempotency_key() -> str:
    """Return a fresh `Idempotency-Key` value: a random UUID as an RFC 8941 string."""
    return f'"{uuid.uuid4()}"'


def _in_flight(response: httpx.Response) -> bool:
    if response.status_code != 409:
        return False
    try:
        kind = response.json().get("type")
    except ValueError:
        return False
    return bool(kind == "urn:tvault:problem:idempotency-in-flight")


def send_deposit(
    client: httpx.Client, case: str, request: Callable[[], dict[str, Any]], key: str
) -> httpx.Response:
    """POST a deposit into `case` under the idempotency `key`; return the answer.

    `request()` gives the keyword arguments of `httpx.Client.post` (a fresh body each time).
    A connection error, or a 409 saying the first attempt is still being processed, is retried
    up to `RETRIES` times with a growing pause, each said on stderr. Raises
    `httpx.TransportError` when the last attempt could not connect either.
    """
    import httpx

    delay = BACKOFF_S
    for attempt in range(1, RETRIES + 2):
        arguments = request()
        headers = {**arguments.pop("headers", {}), "Idempotency-Key": key}
        try:
            response = client.post(f"/v1/cases/{case}/items", headers=headers, **arguments)
        except httpx.TransportError as exc:
            if attempt > RETRIES:
                raise
            reason = f"connection lost ({type(exc).__name__})"
        else:
            if attempt > RETRIES or not _in_flight(response):
                return response
            reason = "the vault is still storing the first attempt"
        typer.echo(
            f"tvault: {reason}; retrying in {delay:g} s (retry {attempt} of {RETRIES})", err=True
        )
        time.sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")


def checked_language(language: str | None) -> str | None:
    """Return `language` in canonical form, or exit with a usage error if it is not a known
    BCP 47 tag (the list the server checks too: ingest.languages)."""
    if language is None:
        return None
    canonical = canonical_language(language)
    if canonical is None:
        fail("--language: not a known BCP 47 tag (such as es, quc, es-419, sr-Latn)", USAGE)
    return canonical


class Ticker(Protocol):
    """What a command tells its progress bar: a task and how far it got."""

    def add_task(self, description: str, *, total: float | None, completed: int = 0) -> Any:
        """Start a task of `total` steps, `completed` of them done; return its id."""

    def advance(self, task_id: Any, advance: float) -> None:
        """Move the task `task_id` on by `advance` steps."""


class _Silent:
    def add_task(self, description: str, *, total: float | None, completed: int = 0) -> Any:
        return 0

    def advance(self, task_id: Any, advance: float) -> None:
        return None


@contextmanager
def progress(unit: Literal["bytes", "files"]) -> Iterator[Ticker]:
    """Show a transient progress bar counting `unit` on stderr, only on a terminal.

    stdout carries the result alone, so `ITEM=$(tvault deposit ...)` gets the id and nothing
    else. Off a terminal, rich is not even imported (start-up time, bench/startup.py).
    """
    if not sys.stderr.isatty():
        yield _Silent()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    columns = (
        (DownloadColumn(), TransferSpeedColumn())
        if unit == "bytes"
        else (MofNCompleteColumn(), TimeElapsedColumn())
    )
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        *columns,
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        yield bar


# --- admin commands: the vault where it lives -------------------------------------------------


@contextmanager
def vault_failures(keyring_path: Path) -> Iterator[None]:
    """Turn a failure to open or check the vault inside the block into one line and exit 1: a
    wrong passphrase for the keyring at `keyring_path`, a missing setting, or a service that
    cannot be reached."""
    from keys import KeyringError
    from vault.errors import VaultError

    try:
        yield
    except KeyringError as exc:
        fail(
            f"cannot open the keyring {keyring_path}: {exc}; check TVAULT_PASSPHRASE "
            "(or the passphrase typed at the prompt)"
        )
    except VaultError as exc:
        fail(exc.detail)


def open_local_with(settings: Settings, secret: str, *, checked: bool = False) -> Vault:
    """Open the vault; with `checked` (worker), its store is checked before it takes work
    (`vault.compose.make_store`). Exits 1 with one line on a wrong passphrase, a missing
    setting, or a service that cannot be reached."""
    from vault.compose import open_vault

    with vault_failures(settings.keyring_path):
        return open_vault(settings, secret, checked=checked)


def open_local(home: Path | None, *, checked: bool = False) -> Vault:
    """Open the vault in `home` with its passphrase (`passphrase`); see `open_local_with`."""
    settings = settings_for(home)
    return open_local_with(
        settings, passphrase(settings, confirm=False, dev=False), checked=checked
    )


def repr_digest(value: str) -> str:
    """Return the SHA-256 (hex) of an RFC 9530 `Repr-Digest` header (`sha-256=:<base64>:`).
    Exits 1 when it names none."""
    for member in value.split(","):
        name, _, raw = member.strip().partition("=")
        if name == "sha-256" and raw.startswith(":") and raw.endswith(":"):
            return base64.b64decode(raw[1:-1]).hex()
    fail("the server sent no SHA-256 (Repr-Digest)")


def sha256_of(path: Path) -> str:
    """Return the SHA-256 (hex) of the file at `path`, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
