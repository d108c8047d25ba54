"""Consent scopes: the uses a survivor allowed for an item (`Resource.consent`)."""

from __future__ import annotations

THERAPY = "therapy"
ARCHIVE = "archive"
ADVOCACY_ANONYMISED = "advocacy_anonymised"
ADVOCACY_NAMED = "advocacy_named"
LEGAL = "legal"
TRUTH_COMMISSION = "truth_commission"
RESEARCH = "research"

ALL: frozenset[str] = frozenset(
    {THERAPY, ARCHIVE, ADVOCACY_ANONYMISED, ADVOCACY_NAMED, LEGAL, TRUTH_COMMISSION, RESEARCH}
)
