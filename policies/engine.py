"""The policy engine: rules in, `Allow(obligations)` or `Deny(reason)` out; denies by default."""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable
from importlib import resources
from pathlib import Path

from policies import actions, consent, kinds, obligations
from policies.model import EMPTY_SCOPE, Allow, Decision, Deny, Principal, Resource, Scope, ScopePart
from policies.policyfile import Rule, load_file, parse

DEFAULT_POLICY = "default.toml"

# The actions a scope may be asked for: those that show what items hold. A scope for, say,
# item.shred would hand a custodian a search filter over content they may never read.
SCOPE_PURPOSES: frozenset[str] = frozenset(
    {
        actions.ITEM_SEARCH,
        actions.ITEM_READ,
        actions.ITEM_STATUS,
        actions.ITEM_DOWNLOAD,
        actions.EXPORT_REQUEST,
    }
)


class Engine:
    """Decide requests against a fixed tuple of `rules`. No rules: every request is denied."""

    def __init__(self, rules: Iterable[Rule] = (), source: str = "<rules>") -> None:
        self._rules: tuple[Rule, ...] = tuple(rules)
        self.source = source

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules, in file order."""
        return self._rules

    def decide(self, principal: Principal, action: str, resource: Resource) -> Decision:
        """Return `Allow(obligations)` if a rule lets `principal` do `action` on `resource`, else
        `Deny(reason)`. Never raises: any defect in the request is a `Deny`."""
        try:
            return self._decide(principal, action, resource)
        except Exception as exc:  # fail closed: a request we cannot judge is refused
            return Deny(f"{action!r} denied: the request could not be evaluated ({exc!r})")

    def _decide(self, principal: Principal, action: str, resource: Resource) -> Decision:
        problem = _check_request(principal, action, resource)
        if problem is not None:
            return Deny(problem)
        if not self._rules:
            return Deny(f"{action} denied: the policy ({self.source}) has no rules")
        subject = principal.subject
        known = frozenset(principal.roles).union(*map(frozenset, principal.grants.values()))
        allowed: list[Rule] = []
        role_failures: list[str] = []
        condition_failures: list[str] = []
        for rule in self._rules:
            if action not in rule.actions:
                continue
            held = _held_roles(rule, principal, resource)
            if isinstance(held, str):
                # Only rules for roles the principal holds somewhere explain a refusal.
                if rule.roles & known:
                    role_failures.append(held)
                continue
            failure = _condition_failure(rule, subject, resource)
            if failure is None:
                allowed.append(rule)
            else:
                condition_failures.append(failure)
        if allowed:
            # Every matching rule is a way to be allowed; take the one that obliges least
            # (an item with both advocacy scopes is shown named, not redacted). Ties: file order.
            best = min(allowed, key=lambda rule: len(rule.obligations))
            return Allow(best.obligations)
        reasons = condition_failures or role_failures
        if not reasons:
            held = ", ".join(sorted(known)) or "none"
            return Deny(f"{action} denied for {subject}: no rule allows it to their roles ({held})")
        return Deny(f"{action} denied for {subject}: " + "; ".join(dict.fromkeys(reasons)))

    def search_scope(
        self, principal: Principal, purpose: str, cases: Collection[str] | None = None
    ) -> Scope:
        """Return what `principal` may reach through `purpose` (one of `SCOPE_PURPOSES`, usually
        `item.search`): per case, the consent scopes of which an item must hold one.

        `cases` narrows the scope to those case ids; rules that need no case grant (advocates)
        reach only the cases listed there, so the vault passes every case id it holds (or the
        ones the query names). Rules for own deposits or with a `distinct_from` condition
        cannot be put into an index filter and are left out (the scope is never wider than
        `decide`). Unknown purpose, bad principal, no rules: the empty scope. Never raises.
        """
        try:
            return self._search_scope(principal, purpose, cases)
        except Exception:  # fail closed: an empty scope matches nothing
            return EMPTY_SCOPE

    def _search_scope(
        self, principal: Principal, purpose: str, cases: Collection[str] | None
    ) -> Scope:
        if purpose not in SCOPE_PURPOSES:
            return EMPTY_SCOPE
        if _check_principal(principal) is not None:
            return EMPTY_SCOPE
        wanted = None if cases is None else frozenset(cases)
        # Redact flag -> consent scopes, per case (from grants) and for every wanted case (from
        # rules that need no grant). A union within one flag is exact: any of those scopes
        # satisfies a rule that carries that same obligation.
        everywhere: dict[bool, set[str]] = {}
        per_case: dict[str, dict[bool, set[str]]] = {}
        held = frozenset(principal.roles)
        for rule in self._rules:
            if purpose not in rule.actions or rule.depositor_self or rule.distinct_from:
                continue
            scopes = rule.consent_any or consent.ALL
            redact = obligations.REDACT_IDENTITIES in rule.obligations
            if rule.case_grant:
                for case_id, granted in principal.grants.items():
                    if (wanted is None or case_id in wanted) and frozenset(granted) & rule.roles:
                        per_case.setdefault(case_id, {}).setdefault(redact, set()).update(scopes)
            elif wanted is not None and held & rule.roles:
                everywhere.setdefault(redact, set()).update(scopes)
        grouped: dict[tuple[frozenset[str], bool], set[str]] = {}

        def add(case_ids: Iterable[str], by_flag: dict[bool, set[str]]) -> None:
            for redact, found in by_flag.items():
                grouped.setdefault((frozenset(found), redact), set()).update(case_ids)

        if everywhere and wanted:
            add(wanted.difference(per_case), everywhere)
        for case_id, by_flag in per_case.items():
            merged = {flag: set(found) for flag, found in everywhere.items()}
            for flag, found in by_flag.items():
                merged.setdefault(flag, set()).update(found)
            add([case_id], merged)
        parts = [
            ScopePart(cases=frozenset(ids), consent_any=needed, redact_identities=redact)
            for (needed, redact), ids in grouped.items()
            if ids
        ]
        # (flag, scopes) is unique per part, so this order is total and stable across runs.
        parts.sort(key=lambda p: (p.redact_identities, sorted(p.consent_any)))
        return Scope(tuple(parts))


def _check_principal(principal: Principal) -> str | None:
    if not isinstance(principal, Principal):
        return "the principal is not a policies.Principal"
    if not isinstance(principal.subject, str) or not principal.subject:
        return "the principal has no subject"
    return None


def _check_request(principal: Principal, action: str, resource: Resource) -> str | None:
    if not isinstance(action, str) or action not in actions.ALL:
        return f"unknown action {action!r} denied"
    problem = _check_principal(principal)
    if problem is not None:
        return f"{action} denied: {problem}"
    if not isinstance(resource, Resource):
        return f"{action} denied: the resource is not a policies.Resource"
    expected = actions.RESOURCE_KINDS[action]
    if resource.kind not in expected:
        return (
            f"{action} denied: it applies to a resource of kind "
            f"{' or '.join(sorted(expected))}, not {resource.kind!r}"
        )
    return None


def _held_roles(rule: Rule, principal: Principal, resource: Resource) -> frozenset[str] | str:
    """The rule's roles the principal holds where the rule looks, or why it holds none."""
    wanted = " or ".join(sorted(rule.roles))
    if rule.case_grant:
        if not resource.case_id:
            return f"a {wanted} grant on the case is needed, and the resource names no case"
        granted = frozenset(principal.grants.get(resource.case_id, frozenset()))
        held = granted & rule.roles
        if not held:
            return f"no {wanted} grant on case {resource.case_id}"
        return held
    held = frozenset(principal.roles) & rule.roles
    if not held:
        return f"not a {wanted}"
    return held


def _condition_failure(rule: Rule, subject: str, resource: Resource) -> str | None:
    if rule.depositor_self:
        if not resource.depositor:
            return "only the depositor may, and the item names no depositor"
        if resource.depositor != subject:
            return "only the depositor may"
    for field in sorted(rule.distinct_from):
        other = getattr(resource, field)
        if not other:
            return f"the {field} must be someone else, and the resource names no {field}"
        if other == subject:
            return f"the {field} may not do this themselves (a second person must)"
    # Consent is a property of items: a case-level question (may search / export in this case)
    # is answered without it, and the per-item filter applies it (actions.RESOURCE_KINDS).
    consented = frozenset(resource.consent) & rule.consent_any
    if rule.consent_any and resource.kind == kinds.ITEM and not consented:
        return f"the item's consent includes none of {', '.join(sorted(rule.consent_any))}"
    return None


def load(path: str | Path) -> Engine:
    """Load the policy file at `path`. Raises `PolicyFileError` (file, line, reason) on a defect."""
    path = Path(path)
    return Engine(load_file(path), source=str(path))


@functools.cache
def default_engine() -> Engine:
    """Return the engine for the policy file shipped in this package (loaded once)."""
    text = resources.files("policies").joinpath(DEFAULT_POLICY).read_text(encoding="utf-8")
    return Engine(parse(text, f"policies/{DEFAULT_POLICY}"), source=f"policies/{DEFAULT_POLICY}")


# The engine `decide` and `search_scope` answer with. A process serves one vault, whose
# composition root loads its policy file once at start (a defect stops the start, never a
# request) and installs it here, so that every caller of `decide` obeys the deployment's rules.
_active: list[Engine] = []


def use(engine: Engine | None) -> Engine | None:
    """Make `engine` the one `decide` and `search_scope` use (None: the shipped policy again).

    Returns the engine that was in use before (None for the shipped policy), so a caller such as
    a test can put it back.
    """
    previous = _active[0] if _active else None
    _active[:] = [] if engine is None else [engine]
    return previous


def active_engine() -> Engine:
    """Return the engine in use: the one installed by `use`, else the shipped policy."""
    return _active[0] if _active else default_engine()


def decide(principal: Principal, action: str, resource: Resource) -> Decision:
    """Decide with the policy in use (see `use`, `Engine.decide`). Never raises."""
    try:
        engine = active_engine()
    except Exception as exc:  # fail closed: a broken installation allows nothing
        return Deny(f"{action!r} denied: the default policy cannot be loaded ({exc})")
    return engine.decide(principal, action, resource)


def search_scope(
    principal: Principal, purpose: str = actions.ITEM_SEARCH, cases: Collection[str] | None = None
) -> Scope:
    """Return the search scope under the policy in use (see `use`, `Engine.search_scope`)."""
    try:
        engine = active_engine()
    except Exception:
        return EMPTY_SCOPE
    return engine.search_scope(principal, purpose, cases)
