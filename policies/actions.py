"""Action names: what a principal asks to do, and the kind of resource each one applies to."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from policies import kinds

ITEM_DEPOSIT = "item.deposit"
ITEM_READ = "item.read"  # metadata
ITEM_DOWNLOAD = "item.download"  # content
ITEM_STATUS = "item.status"
ITEM_SEARCH = "item.search"
ITEM_CONSENT_CHANGE = "item.consent_change"
ITEM_SHRED = "item.shred"
ITEM_SIGN = "item.sign"  # add a co-signature
ITEM_HOLD = "item.hold"  # set or lift a legal hold (a held item cannot be shredded)
CASE_CREATE = "case.create"
CASE_LIST = "case.list"
CASE_READ = "case.read"
CASE_GRANT = "case.grant"
CASE_REVOKE = "case.revoke"
USER_MANAGE = "user.manage"
KEY_MANAGE = "key.manage"
JOB_MANAGE = "job.manage"
LEDGER_READ = "ledger.read"  # entries with their details
LEDGER_PROOF = "ledger.proof"  # log key, checkpoints, proofs: hashes only
LEDGER_VERIFY = "ledger.verify"
EXPORT_REQUEST = "export.request"
EXPORT_APPROVE = "export.approve"
EXPORT_DOWNLOAD = "export.download"
# The two-person rule (DESIGN.md promise 10): see the requests, add the second person's yes
# (never the requester's own), or say no. What an approval would run is checked as well, against
# the action of its kind (`item.shred`, `item.hold`, `key.manage`, `export.approve`).
APPROVAL_LIST = "approval.list"
APPROVAL_APPROVE = "approval.approve"
APPROVAL_DENY = "approval.deny"

# The resource kinds each action accepts. Fixed in code, not in the policy file, so that a
# replaced file cannot make an item action skip its consent check by being asked about a case.
# `item.search` and `export.request` also accept a case: the answer is then "may act in this case
# at all", and consent is applied per item (by `search_scope` in the query, and by `decide` on each
# item before it is shown or packed).
RESOURCE_KINDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        ITEM_DEPOSIT: frozenset({kinds.ITEM}),
        ITEM_READ: frozenset({kinds.ITEM}),
        ITEM_DOWNLOAD: frozenset({kinds.ITEM}),
        ITEM_STATUS: frozenset({kinds.ITEM}),
        ITEM_SEARCH: frozenset({kinds.ITEM, kinds.CASE}),
        ITEM_CONSENT_CHANGE: frozenset({kinds.ITEM}),
        ITEM_SHRED: frozenset({kinds.ITEM}),
        ITEM_SIGN: frozenset({kinds.ITEM}),
        ITEM_HOLD: frozenset({kinds.ITEM}),
        CASE_CREATE: frozenset({kinds.CASE}),
        CASE_LIST: frozenset({kinds.CASE}),
        CASE_READ: frozenset({kinds.CASE}),
        CASE_GRANT: frozenset({kinds.CASE}),
        CASE_REVOKE: frozenset({kinds.CASE}),
        USER_MANAGE: frozenset({kinds.USER}),
        KEY_MANAGE: frozenset({kinds.KEY}),
        JOB_MANAGE: frozenset({kinds.JOB}),
        LEDGER_READ: frozenset({kinds.LEDGER}),
        LEDGER_PROOF: frozenset({kinds.LEDGER}),
        LEDGER_VERIFY: frozenset({kinds.LEDGER}),
        EXPORT_REQUEST: frozenset({kinds.CASE, kinds.ITEM}),
        EXPORT_APPROVE: frozenset({kinds.EXPORT}),
        EXPORT_DOWNLOAD: frozenset({kinds.EXPORT}),
        APPROVAL_LIST: frozenset({kinds.APPROVAL}),
        APPROVAL_APPROVE: frozenset({kinds.APPROVAL}),
        APPROVAL_DENY: frozenset({kinds.APPROVAL}),
    }
)

ALL: frozenset[str] = frozenset(RESOURCE_KINDS)
