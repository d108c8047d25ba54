"""The policy file: TOML rules, checked whole at load time so that nothing fails at request time.

A rule reads: these `roles` may do these `actions`, held on the resource's case when
`case_grant` is true (else as account roles), on items whose consent holds one of
`consent_any` (empty: no consent condition), for the depositor only when `depositor = "self"`,
never when the principal is the resource's `distinct_from` party, under `obligations`.
Any unknown key, role, action, scope, obligation or field is an error: a misspelt
`consent_anny` silently ignored would drop a consent condition and fail open.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from policies import actions, consent, obligations, roles

FORMAT = 1

# Fields of `Resource` a rule may name in `distinct_from`.
DISTINCT_FIELDS: frozenset[str] = frozenset({"requester", "grantee"})

_RULE_KEYS = frozenset(
    {
        "note",
        "roles",
        "actions",
        "case_grant",
        "consent_any",
        "depositor",
        "distinct_from",
        "obligations",
    }
)
_TOP_KEYS = frozenset({"format", "rule"})
_HEADER = re.compile(r"^\s*\[\[\s*rule\s*\]\]\s*(#.*)?$")


class PolicyFileError(Exception):
    """A policy file that cannot be used: `path`, 1-based `line` (0 when unknown), `reason`."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class Rule:
    """One allow rule, as loaded from a policy file (`line` is its `[[rule]]` header)."""

    roles: frozenset[str]
    actions: frozenset[str]
    case_grant: bool
    consent_any: frozenset[str] = frozenset()
    obligations: frozenset[str] = frozenset()
    depositor_self: bool = False
    distinct_from: frozenset[str] = frozenset()
    note: str = ""
    line: int = 0


def load_file(path: Path) -> tuple[Rule, ...]:
    """Read and check the policy file at `path`. Raises `PolicyFileError` on any defect."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyFileError(str(path), 0, f"cannot read the policy file: {exc}") from exc
    return parse(text, str(path))


def parse(text: str, source: str) -> tuple[Rule, ...]:
    """Parse and check policy `text` read from `source`. Raises `PolicyFileError` on any defect."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib puts "(at line N, column M)" in the message; `lineno` exists from Python 3.14.
        match = re.search(r"at line (\d+)", str(exc))
        line = int(match.group(1)) if match else 0
        raise PolicyFileError(source, line, f"not valid TOML: {exc}") from exc
    locator = _Locator(text)
    for key in data:
        if key not in _TOP_KEYS:
            raise PolicyFileError(
                source, locator.top_key(key), f"unknown key {key!r} (expected: format, rule)"
            )
    if data.get("format") != FORMAT:
        raise PolicyFileError(
            source,
            locator.top_key("format"),
            f"'format = {FORMAT}' is required (got {data.get('format')!r})",
        )
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list) or not all(isinstance(r, dict) for r in raw_rules):
        raise PolicyFileError(source, locator.top_key("rule"), "'rule' must be [[rule]] tables")
    return tuple(_rule(raw, index, source, locator) for index, raw in enumerate(raw_rules))


def _rule(raw: Mapping[str, object], index: int, source: str, locator: _Locator) -> Rule:
    def fail(key: str | None, reason: str, value: str | None = None) -> PolicyFileError:
        return PolicyFileError(source, locator.rule_line(index, key, value), reason)

    for key in raw:
        if key not in _RULE_KEYS:
            known = ", ".join(sorted(_RULE_KEYS))
            raise fail(key, f"unknown rule key {key!r} (known keys: {known})")

    def names(key: str, vocabulary: frozenset[str], what: str, required: bool) -> frozenset[str]:
        if key not in raw:
            if required:
                raise fail(None, f"rule lacks {key!r}")
            return frozenset()
        value = raw[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise fail(key, f"{key!r} must be a list of strings")
        if required and not value:
            raise fail(key, f"{key!r} must not be empty")
        for name in value:
            if name not in vocabulary:
                raise fail(key, f"unknown {what} {name!r} in {key!r}", name)
        return frozenset(value)

    rule_roles = names("roles", roles.ALL, "role", required=True)
    rule_actions = names("actions", actions.ALL, "action", required=True)
    scopes = names("consent_any", consent.ALL, "consent scope", required=False)
    duties = names("obligations", obligations.ALL, "obligation", required=False)
    distinct = names("distinct_from", DISTINCT_FIELDS, "field", required=False)
    if "case_grant" not in raw:
        raise fail(None, "rule lacks 'case_grant' (true or false)")
    case_grant = raw["case_grant"]
    if not isinstance(case_grant, bool):
        raise fail("case_grant", "'case_grant' must be true or false")
    depositor = raw.get("depositor")
    if depositor is not None and depositor != "self":
        raise fail("depositor", f"'depositor' may only be \"self\" (got {depositor!r})")
    note = raw.get("note", "")
    if not isinstance(note, str):
        raise fail("note", "'note' must be a string")
    return Rule(
        roles=rule_roles,
        actions=rule_actions,
        case_grant=case_grant,
        consent_any=scopes,
        obligations=duties,
        depositor_self=depositor == "self",
        distinct_from=distinct,
        note=note,
        line=locator.rule_line(index, None, None),
    )


class _Locator:
    """Find the line of a key or value in the TOML text (tomllib keeps no positions)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.headers = [i for i, line in enumerate(self.lines) if _HEADER.match(line)]

    def _key_line(self, key: str, start: int, end: int) -> int | None:
        pattern = re.compile(
            rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')\s*="
        )
        for i in range(start, end):
            if pattern.match(self.lines[i]):
                return i
        return None

    def top_key(self, key: str) -> int:
        end = self.headers[0] if self.headers else len(self.lines)
        found = self._key_line(key, 0, end)
        if found is None and key == "rule" and self.headers:
            found = self.headers[0]
        return found + 1 if found is not None else 0

    def rule_line(self, index: int, key: str | None, value: str | None) -> int:
        if index >= len(self.headers):
            return 0  # rules written as an inline array: no per-rule header to point at
        start = self.headers[index]
        end = self.headers[index + 1] if index + 1 < len(self.headers) else len(self.lines)
        if key is None:
            return start + 1
        key_line = self._key_line(key, start + 1, end)
        if key_line is None:
            return start + 1
        if value is not None:
            literal = re.compile(rf"[\"']{re.escape(value)}[\"']")
            for i in range(key_line, end):
                if literal.search(self.lines[i]):
                    return i + 1
        return key_line + 1
