"""How a raw deposit's metadata travels: `Tvault-*` request headers, never the query string.

A reverse proxy, a load balancer and most HTTP libraries log the request line; a title,
filename or note there would put a survivor's name in a log in the clear (DESIGN.md promise
1). So sealed fields (`SEALED`) are refused in the query string with a problem that says where
they go, and an old client fails loudly instead of leaking. Each field `name` travels in the
header `Tvault-<Name>`; the value is UTF-8, percent-encoded (RFC 3986 2.1, as the value of an
RFC 8187 `ext-value` without its charset prefix), so any text fits in the ASCII that HTTP
headers carry. Structural fields (kind, consent, language, tags) may still come in the query
string, for clients written before this rule. Shared by the API and the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final
from urllib.parse import quote, unquote

from vault.errors import BadField, MisplacedField

SEALED: Final = ("title", "filename", "notes")
STRUCTURAL: Final = ("kind", "consent", "language", "tags", "duplicates")


def header_name(field: str) -> str:
    """Return the header `field` travels in: `title` -> `Tvault-Title`."""
    return "Tvault-" + field.title()


def to_headers(fields: Mapping[str, str | None]) -> dict[str, str]:
    """Return the `Tvault-*` headers of the metadata `fields` (None values left out)."""
    return {header_name(k): quote(v, safe="") for k, v in fields.items() if v is not None}


def from_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return the metadata fields carried in `headers` (a case-insensitive mapping).

    Raises `BadField` on a value that is not percent-encoded UTF-8.
    """
    fields: dict[str, str] = {}
    for name in (*STRUCTURAL, *SEALED):
        raw = headers.get(header_name(name))
        if raw is None:
            continue
        try:
            fields[name] = unquote(raw, errors="strict")
        except UnicodeDecodeError as exc:
            raise BadField(header_name(name), "not percent-encoded UTF-8") from exc
    return fields


def refuse_sealed_in_query(names: Iterable[str]) -> None:
    """Raise `MisplacedField` if the query string carries a sealed field, saying where it goes."""
    for name in names:
        if name in SEALED:
            raise MisplacedField(
                name,
                f"never in the query string (proxies log URLs); send it in the "
                f"{header_name(name)} header, percent-encoded UTF-8, or as a multipart field "
                "(docs/usage.md)",
            )
