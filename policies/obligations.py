"""Obligations: what the vault must do to carry out an allowed action (`Allow.obligations`)."""

from __future__ import annotations

# Remove whatever could identify the survivor (identity fields, title, original filename, names
# in snippets) before the result leaves the vault; an original that cannot be redacted is not sent.
REDACT_IDENTITIES = "redact_identities"

ALL: frozenset[str] = frozenset({REDACT_IDENTITIES})
