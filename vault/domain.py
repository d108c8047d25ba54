"""The fixed vocabularies of the vault: item kinds, consent scopes, account roles."""

from __future__ import annotations

from typing import Final

KINDS: Final = ("testimony", "document", "media", "medical_report")

# DESIGN.md promise 5: the scopes a survivor consents to, checked by every action.
CONSENT_SCOPES: Final = (
    "therapy",
    "archive",
    "advocacy_anonymised",
    "advocacy_named",
    "legal",
    "truth_commission",
    "research",
)

# The kinds of request the two-person rule decides (vault.approval_kinds runs them).
SHRED: Final = "shred"
LIFT_HOLD: Final = "lift_hold"
RETIRE_KEYS: Final = "retire_keys"

ROLES: Final = ("custodian", "therapist", "lawyer", "advocate", "commission", "auditor")
