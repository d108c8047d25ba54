"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class CaseIn(BaseModel):
    """A case to create; its name is sealed at rest."""

    name: str = Field(min_length=1, max_length=500)


class CaseOut(BaseModel):
    id: str
    name: str
    created_at: datetime


class GrantIn(BaseModel):
    user: str
    role: str


class DepositOut(BaseModel):
    id: str
    size: int
    sha256: str
    # The earliest item of the same case with the same SHA-256 that the depositor may see.
    duplicate_of: str | None = None


class ItemOut(BaseModel):
    id: str
    case_id: str
    kind: str
    language: str | None
    tags: list[str]
    consent: list[str]
    size: int
    sha256: str
    depositor: str
    created_at: datetime
    title: str | None
    filename: str | None
    notes: str | None
    detected_language: str | None = None  # what extraction detected (docs/ingest.md)
    state: str = "stored"  # the ingest state (docs/jobs.md)
    state_reason: str | None = None  # why the ingest failed
    # The ingest as its steps (extract, ocr, index), and how OCR read the text, if it did
    # (docs/ingest.md, "OCR"): engine, version, languages, confidence (0-100), pages.
    steps: list[dict[str, str]] = []
    ocr: dict[str, Any] | None = None


class Me(BaseModel):
    name: str
    roles: list[str]
