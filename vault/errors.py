"""Errors the use cases raise; the API turns each into an RFC 9457 problem (vault.api.problems)."""

from __future__ import annotations


class VaultError(Exception):
    """Base of every error a use case reports to its caller; `code` names the kind of failure."""

    code = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def members(self) -> dict[str, object]:
        """Extension members of its problem document (RFC 9457 3.2): structural data only."""
        return {}


class BadField(VaultError):
    """A request field is missing or malformed."""

    code = "bad-field"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


class MisplacedField(BadField):
    """A field came where it must not travel (a sealed field in the query string)."""

    code = "misplaced-field"


class NotFound(VaultError):
    """The case, item or account does not exist (or the caller may not know it exists)."""

    code = "not-found"


class UnknownAccount(NotFound):
    """No enabled account has this name (a page may say so, when the caller may see the rest)."""


class Forbidden(VaultError):
    """The policy denied the action; `detail` is the policy's reason."""

    code = "forbidden"


class Unauthenticated(VaultError):
    """No valid token came with the request."""

    code = "unauthenticated"


class TooLarge(VaultError):
    """The upload exceeds `TVAULT_MAX_UPLOAD_BYTES`."""

    code = "too-large"


class Conflict(VaultError):
    """The thing to create already exists."""

    code = "conflict"


class Unavailable(VaultError):
    """The vault cannot do this now, through no fault of the request (an operator must act):
    a service it needs (database, object store, index) is missing, misconfigured or
    unreachable, say; `detail` names it and what to do, in one line."""

    code = "unavailable"


class StorageFull(VaultError):
    """The object store (or the metadata database) has no room: nothing was stored; an operator
    must free space. `cause` names which, in words from a fixed list (`vault.storage_faults`)."""

    code = "storage-full"

    def __init__(self, detail: str, cause: str) -> None:
        super().__init__(detail)
        self.cause = cause


class StorageUnavailable(Unavailable):
    """The object store refuses writes for now (read-only, unwritable, unreachable); nothing was
    stored; `retry_after` seconds is worth waiting. `cause` as for `StorageFull`."""

    code = "storage-unavailable"

    def __init__(self, detail: str, cause: str, retry_after: float) -> None:
        super().__init__(detail)
        self.cause = cause
        self.retry_after = retry_after


class TooManyRequests(VaultError):
    """The client spent its budget of refused attempts; `retry_after` seconds until the next."""

    code = "too-many-requests"

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
