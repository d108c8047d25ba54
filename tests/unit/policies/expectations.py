"""The access matrix as DESIGN.md's "Who uses it" table reads it: by hand, not from the file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations

import policies
from policies import Engine, Principal, Resource

ROLES = ("custodian", "therapist", "lawyer", "advocate", "commission", "auditor")
SCOPES = (
    "therapy",
    "archive",
    "advocacy_anonymised",
    "advocacy_named",
    "legal",
    "truth_commission",
    "research",
)
ITEM_ACTIONS = (
    "item.deposit",
    "item.read",
    "item.download",
    "item.status",
    "item.search",
    "item.consent_change",
    "item.shred",
    "item.sign",
    "item.hold",
    "export.request",  # asked per item: may this item go into the requester's export
)
OTHER_ACTIONS = {
    "case.create": "case",
    "case.list": "case",
    "case.read": "case",
    "case.grant": "case",
    "case.revoke": "case",
    "user.manage": "user",
    "key.manage": "key",
    "job.manage": "job",
    "ledger.read": "ledger",
    "ledger.proof": "ledger",
    "ledger.verify": "ledger",
    "export.approve": "export",
    "export.download": "export",
    "approval.list": "approval",
    "approval.approve": "approval",
    "approval.deny": "approval",
}
CASE = "case-1"
SELF = "alice"
OTHER = "bob"
REDACT = frozenset({"redact_identities"})
NONE: frozenset[str] = frozenset()

ALL_CONSENTS: tuple[frozenset[str], ...] = tuple(
    frozenset(combo) for size in range(len(SCOPES) + 1) for combo in combinations(SCOPES, size)
)
# The combinations that separate the rules: none, each scope alone, both advocacy scopes, all.
KEY_CONSENTS: tuple[frozenset[str], ...] = (
    frozenset(),
    *(frozenset({scope}) for scope in SCOPES),
    frozenset({"advocacy_anonymised", "advocacy_named"}),
    frozenset(SCOPES),
)

READ_LIKE = {"item.read", "item.download", "item.status", "item.search", "item.sign"}


def expected(
    role: str, granted: bool, own: bool, consent: frozenset[str], action: str
) -> frozenset[str] | None:
    """Obligations if `role` may do `action`, None if not.

    `granted`: the principal holds `role` on the resource's case (and has `role` as account
    role). `own`: the principal is the resource's party (depositor of an item, requester of an
    export, grantee of a case grant).
    """
    if action == "case.read" and granted and role != "custodian" and role != "auditor":
        return NONE
    if action == "case.list" and role not in ("auditor",):
        return NONE
    if action == "ledger.proof":
        return NONE  # hashes only: every account may check the log from outside
    if role == "therapist":
        if action == "item.deposit":
            return NONE if granted and consent else None
        if own and action in READ_LIKE | {"item.consent_change"}:
            return NONE
        if granted and action in READ_LIKE and "therapy" in consent:
            return NONE
        if granted and action == "item.consent_change" and "therapy" in consent:
            return NONE  # issue 16: only on items the therapist sees
        if action == "case.create":
            return NONE
        return None
    if role == "lawyer":
        if granted and action in READ_LIKE and "legal" in consent:
            return NONE
        return None
    if role == "advocate":
        # Issue 7 point 2: advocates see only granted cases. A download under redaction gets
        # the depositor's redacted rendition, never the original.
        reads = {"item.read", "item.status", "item.search", "item.download"}
        if granted and action in reads and "advocacy_named" in consent:
            return NONE
        if granted and action in reads and "advocacy_anonymised" in consent:
            return REDACT
        return None
    if role == "commission":
        if granted and action == "export.request" and "truth_commission" in consent:
            return NONE
        if granted and action == "export.download":
            return NONE
        return None
    if role == "custodian":
        managed = {
            "user.manage",
            "key.manage",
            "job.manage",
            "case.create",
            "case.list",
            "case.read",
            "case.revoke",
            "item.shred",
            "item.hold",
            "approval.list",
            "approval.deny",  # the requester may withdraw their own request
        }
        if action in managed:
            return NONE
        if action in ("case.grant", "export.approve", "approval.approve") and not own:
            return NONE
        return None
    if role == "auditor":
        return NONE if action in ("ledger.read", "ledger.verify") else None
    raise AssertionError(role)


@dataclass(frozen=True)
class Cell:
    role: str
    granted: bool
    own: bool
    consent: frozenset[str]
    action: str

    def principal(self) -> Principal:
        grants = {CASE: frozenset({self.role})} if self.granted else {}
        # A grant on some other case must never matter.
        grants["case-elsewhere"] = frozenset({self.role})
        return Principal(SELF, frozenset({self.role}), grants)

    def resource(self) -> Resource:
        party = SELF if self.own else OTHER
        if self.action in ITEM_ACTIONS:
            return Resource("item", CASE, "item-1", depositor=party, consent=self.consent)
        return Resource(OTHER_ACTIONS[self.action], CASE, None, requester=party, grantee=party)


def cells(consents: tuple[frozenset[str], ...]) -> Iterator[Cell]:
    for role in ROLES:
        for granted in (False, True):
            for own in (False, True):
                for action in ITEM_ACTIONS:
                    for consent in consents:
                        yield Cell(role, granted, own, consent, action)
                for action in OTHER_ACTIONS:
                    yield Cell(role, granted, own, frozenset(), action)


def mismatches(engine: Engine, consents: tuple[frozenset[str], ...]) -> list[str]:
    """Every cell where `engine` disagrees with `expected`, described."""
    out = []
    for cell in cells(consents):
        want = expected(cell.role, cell.granted, cell.own, cell.consent, cell.action)
        got = engine.decide(cell.principal(), cell.action, cell.resource())
        if isinstance(got, policies.Deny):
            assert got.reason, cell  # every refusal says why
        if want is None and got:
            out.append(f"{cell}: expected Deny, got {got}")
        elif want is not None and not isinstance(got, policies.Allow):
            out.append(f"{cell}: expected Allow({sorted(want)}), got {got}")
        elif want is not None and isinstance(got, policies.Allow) and got.obligations != want:
            out.append(f"{cell}: expected obligations {sorted(want)}, got {got}")
    return out
