"""The values a decision is made from and made of: principal, resource, Allow/Deny, scope."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True)
class Principal:
    """Who asks: `subject` (account id), account `roles`, and `grants` (case id -> roles on it).

    `credential` names what proved the principal, for the record: `token:<jti>` for a vault
    token, `oidc:<issuer>` for an OIDC issuer's token, `None` when nothing did (offline, jobs).
    It is structural, never a secret; no decision depends on it.
    """

    subject: str
    roles: frozenset[str] = frozenset()
    grants: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))
    credential: str | None = None


@dataclass(frozen=True)
class Resource:
    """What the action is about.

    `kind` is one of `policies.kinds`; `case_id` is the case the resource belongs to;
    `depositor` the subject who deposited an item; `consent` the item's consent scopes;
    `requester` the subject who requested an export (the approver must be someone else);
    `grantee` the subject a case grant is given to (a custodian may not grant themselves).
    """

    kind: str
    case_id: str | None = None
    item_id: str | None = None
    depositor: str | None = None
    consent: frozenset[str] = frozenset()
    requester: str | None = None
    grantee: str | None = None


@dataclass(frozen=True)
class Allow:
    """The action may proceed, provided the vault fulfils every one of `obligations`."""

    obligations: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return True


@dataclass(frozen=True)
class Deny:
    """The action is refused; `reason` says why, in words fit for a log and a 403 detail."""

    reason: str

    def __bool__(self) -> bool:
        return False


Decision = Allow | Deny


@dataclass(frozen=True)
class ScopePart:
    """Items of `cases` whose consent holds at least one of `consent_any`.

    `redact_identities` is true when the rule that grants this part obliges redaction.
    """

    cases: frozenset[str]
    consent_any: frozenset[str]
    redact_identities: bool


@dataclass(frozen=True)
class Scope:
    """What a principal may reach in a search: the union of `parts`; no parts matches nothing.

    Parts are kept apart on purpose: a lawyer on case A who is also a therapist on case B may
    see A's items with `legal` consent and B's with `therapy`, and merging the two into one
    (cases {A, B}, consent {legal, therapy}) would show the lawyer A's therapy-only items.
    """

    parts: tuple[ScopePart, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when the scope matches no item."""
        return not any(part.cases and part.consent_any for part in self.parts)

    @property
    def cases(self) -> frozenset[str]:
        """Every case some part reaches (for display and for narrowing a query, never as a filter
        on its own)."""
        return frozenset().union(*(part.cases for part in self.parts))

    def single_filter(self) -> tuple[frozenset[str], frozenset[str]] | None:
        """Return one `(cases, consent_any)` filter that matches exactly what the parts match, or
        None when no single filter does (then query each part on its own and merge).

        One filter is exact when every case it names is reached with every scope it names: an
        advocate's two parts (named, anonymised) over the same cases merge; a lawyer-on-A and
        therapist-on-B scope does not. The empty scope gives an empty filter (match none).
        """
        live = [part for part in self.parts if part.cases and part.consent_any]
        cases = frozenset().union(*(part.cases for part in live))
        scopes = frozenset().union(*(part.consent_any for part in live))
        reached: dict[str, set[str]] = {}
        for part in live:
            for case_id in part.cases:
                reached.setdefault(case_id, set()).update(part.consent_any)
        if all(found == scopes for found in reached.values()):
            return cases, scopes
        return None

    @property
    def redact_identities(self) -> bool:
        """True when any part obliges redaction (cautious; `decide` on each hit is exact)."""
        return any(part.redact_identities for part in self.parts)


EMPTY_SCOPE: Final = Scope()
