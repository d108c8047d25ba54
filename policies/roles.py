"""Role names, as held by accounts (`Principal.roles`) and granted on cases (`Principal.grants`)."""

from __future__ import annotations

CUSTODIAN = "custodian"
THERAPIST = "therapist"
LAWYER = "lawyer"
ADVOCATE = "advocate"
COMMISSION = "commission"
AUDITOR = "auditor"

ALL: frozenset[str] = frozenset({CUSTODIAN, THERAPIST, LAWYER, ADVOCATE, COMMISSION, AUDITOR})
