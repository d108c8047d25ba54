"""Resource kinds: what an action is about (`Resource.kind`)."""

from __future__ import annotations

ITEM = "item"  # a deposited item (or one about to be deposited)
CASE = "case"
EXPORT = "export"
USER = "user"
KEY = "key"
JOB = "job"
LEDGER = "ledger"
APPROVAL = "approval"  # a request under the two-person rule (DESIGN.md promise 10)

ALL: frozenset[str] = frozenset({ITEM, CASE, EXPORT, USER, KEY, JOB, LEDGER, APPROVAL})
