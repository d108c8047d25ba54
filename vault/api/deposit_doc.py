"""The OpenAPI description of the deposit route: both bodies and every header, for "Try it out".

The route reads its body as a stream (`vault.api.upload`), so FastAPI cannot infer it; without
this the documentation showed no body at all and "Try it out" could not send a file.
"""

from __future__ import annotations

from typing import Any

from vault.domain import CONSENT_SCOPES, KINDS
from vault.headers import header_name

_LIST = "comma-separated"
_FIELDS: dict[str, tuple[dict[str, Any], str]] = {
    "kind": ({"type": "string", "enum": list(KINDS)}, "what the item is (required)"),
    "title": (
        {"type": "string", "maxLength": 1000},
        "sealed; when absent, the file name is the title",
    ),
    "consent": (
        {"type": "string", "example": "therapy,legal"},
        f"consent scopes, {_LIST}, from {', '.join(CONSENT_SCOPES)} (required)",
    ),
    "language": ({"type": "string", "example": "es"}, "BCP 47 tag of a known language"),
    "tags": ({"type": "string"}, f"tags from the vault's vocabulary, {_LIST}"),
    "filename": ({"type": "string", "maxLength": 255}, "the original file name; sealed"),
    "notes": ({"type": "string", "maxLength": 20000}, "free text; sealed"),
    "duplicates": (
        {"type": "string", "enum": ["store", "refuse"], "default": "store"},
        "`refuse`: answer 409 and store nothing when the case already holds these bytes",
    ),
}


def _header(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": header_name(name),
        "in": "header",
        "required": False,
        "schema": schema,
        "description": (
            f"Raw body only: {description}. Percent-encoded UTF-8 (`Declaraci%C3%B3n`); "
            "with a multipart body, send it as a form field instead."
        ),
    }


def deposit_openapi() -> dict[str, Any]:
    """Return the `openapi_extra` of `POST /v1/cases/{case_id}/items`."""
    form: dict[str, Any] = {
        name: {**schema, "description": description}
        for name, (schema, description) in _FIELDS.items()
    }
    # Swagger UI sends form fields in this order; the vault accepts them in any order.
    form["file"] = {"type": "string", "format": "binary", "description": "the file"}
    return {
        "parameters": [
            *(_header(n, schema, d) for n, (schema, d) in _FIELDS.items()),
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "example": '"6f1c5e0e-4d2b-4f7e-9d43-0b8f4c1e2a77"'},
                "description": "a quoted random string: a retry with the same key and bytes "
                "gets the first answer again (docs/usage.md)",
            },
        ],
        "requestBody": {
            "required": True,
            "description": "The file: either the raw body with metadata in `Tvault-*` "
            "headers, or a multipart form with the metadata as fields and one `file` part. "
            "Streamed: never spooled to disk.",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["kind", "consent", "file"],
                        "properties": form,
                    }
                },
            },
        },
    }
