"""Compare two policies cell by cell, so a replaced policy file can be reviewed before use."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from policies import actions, consent, kinds, roles
from policies.engine import Engine
from policies.model import Allow, Decision, Principal, Resource

_CASE = "case-A"
_SELF = "principal"
_OTHER = "someone-else"

# Enough consent sets to tell the scopes apart: none, each alone, both advocacy scopes, all.
CONSENT_SETS: tuple[frozenset[str], ...] = (
    frozenset(),
    *(frozenset({scope}) for scope in sorted(consent.ALL)),
    frozenset({consent.ADVOCACY_ANONYMISED, consent.ADVOCACY_NAMED}),
    consent.ALL,
)


@dataclass(frozen=True)
class Situation:
    """One cell: a principal holding `role` (granted on the case or not) asks `action`."""

    role: str
    granted: bool
    own: bool  # the principal is the depositor / requester / grantee
    consent: frozenset[str]
    action: str

    def principal(self) -> Principal:
        grants = {_CASE: frozenset({self.role})} if self.granted else {}
        return Principal(_SELF, frozenset({self.role}), grants)

    def resource(self) -> Resource:
        party = _SELF if self.own else _OTHER
        accepted = actions.RESOURCE_KINDS[self.action]
        # Ask about the item where an action accepts one: that is where consent is checked.
        kind = kinds.ITEM if kinds.ITEM in accepted else min(accepted)
        return Resource(
            kind,
            _CASE,
            "item-1" if kind == kinds.ITEM else None,
            depositor=party,
            consent=self.consent if kind == kinds.ITEM else frozenset(),
            requester=party,
            grantee=party,
        )

    def describe(self) -> str:
        on = "granted on the case" if self.granted else "not granted"
        party = ", own" if self.own else ""
        scopes = ",".join(sorted(self.consent)) or "no consent"
        return f"{self.role} ({on}{party}) {self.action} [{scopes}]"


def situations() -> Iterator[Situation]:
    """Every role x grant x own x consent set x action (consent only varies for items)."""
    for role in sorted(roles.ALL):
        for granted in (False, True):
            for own in (False, True):
                for action in sorted(actions.ALL):
                    on_items = kinds.ITEM in actions.RESOURCE_KINDS[action]
                    for scopes in CONSENT_SETS if on_items else (frozenset(),):
                        yield Situation(role, granted, own, scopes, action)


def _show(decision: Decision) -> str:
    if isinstance(decision, Allow):
        duties = ", ".join(sorted(decision.obligations))
        return f"allow ({duties})" if duties else "allow"
    return "deny"


def differences(before: Engine, after: Engine) -> list[str]:
    """Describe every situation `before` and `after` decide differently, one line each."""
    out = []
    for cell in situations():
        old = before.decide(cell.principal(), cell.action, cell.resource())
        new = after.decide(cell.principal(), cell.action, cell.resource())
        if _show(old) != _show(new):
            out.append(f"{cell.describe()}: {_show(old)} -> {_show(new)}")
    return out
