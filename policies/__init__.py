"""Access and consent rules: the policy engine and its default policy files."""

from policies import actions, consent, kinds, obligations, roles
from policies.engine import (
    Engine,
    active_engine,
    decide,
    default_engine,
    load,
    search_scope,
    use,
)
from policies.model import Allow, Decision, Deny, Principal, Resource, Scope, ScopePart
from policies.policyfile import PolicyFileError, Rule

__all__ = [
    "Allow",
    "Decision",
    "Deny",
    "Engine",
    "PolicyFileError",
    "Principal",
    "Resource",
    "Rule",
    "Scope",
    "ScopePart",
    "actions",
    "active_engine",
    "consent",
    "decide",
    "default_engine",
    "kinds",
    "load",
    "obligations",
    "roles",
    "search_scope",
    "use",
]
