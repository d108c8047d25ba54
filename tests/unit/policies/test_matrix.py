"""The shipped policy against the hand-written matrix, and mutations of it the matrix must catch."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

import policies
from tests.unit.policies.expectations import (
    ALL_CONSENTS,
    KEY_CONSENTS,
    ROLES,
    cells,
    mismatches,
)


def test_matrix_covers_every_role_action_and_consent() -> None:
    seen = list(cells(ALL_CONSENTS))
    assert {cell.role for cell in seen} == set(ROLES) == policies.roles.ALL
    assert {cell.action for cell in seen} == policies.actions.ALL
    assert len(ALL_CONSENTS) == 2**7


def test_default_policy_matches_the_matrix() -> None:
    assert mismatches(policies.default_engine(), ALL_CONSENTS) == []


def test_module_level_decide_uses_the_default_policy() -> None:
    for cell in cells(KEY_CONSENTS):
        module = policies.decide(cell.principal(), cell.action, cell.resource())
        engine = policies.default_engine().decide(cell.principal(), cell.action, cell.resource())
        assert module == engine


def test_empty_rule_set_denies_every_cell() -> None:
    engine = policies.Engine(())
    for cell in cells(KEY_CONSENTS):
        decision = engine.decide(cell.principal(), cell.action, cell.resource())
        assert isinstance(decision, policies.Deny)
        assert not decision
        assert "no rules" in decision.reason


def test_file_with_no_rules_denies_every_cell(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("format = 1\n")
    engine = policies.load(path)
    assert engine.rules == ()
    assert not any(
        engine.decide(c.principal(), c.action, c.resource()) for c in cells(KEY_CONSENTS)
    )


DEFAULT_TEXT = resources.files("policies").joinpath("default.toml").read_text(encoding="utf-8")

# Each weakens (or tightens) one rule; the matrix must notice every one.
MUTATIONS = {
    "lawyers read without legal consent": ('consent_any = ["legal"]\n', ""),
    "lawyers read without a grant": (
        'case_grant = true\nconsent_any = ["legal"]',
        'case_grant = false\nconsent_any = ["legal"]',
    ),
    "therapists read granted cases without therapy consent": ('consent_any = ["therapy"]\n', ""),
    "therapy rule also accepts archive": (
        'consent_any = ["therapy"]',
        'consent_any = ["therapy", "archive"]',
    ),
    "therapists read any case with therapy consent": (
        'case_grant = true\nconsent_any = ["therapy"]',
        'case_grant = false\nconsent_any = ["therapy"]',
    ),
    "therapists change consent of items they cannot see": (
        "# --- lawyer ---",
        '[[rule]]\nroles = ["therapist"]\nactions = ["item.consent_change"]\ncase_grant = true\n'
        "\n# --- lawyer ---",
    ),
    "own-deposit rule loses its depositor condition": (
        'case_grant = false\ndepositor = "self"\n',
        "case_grant = false\n",
    ),
    "deposit without any consent": (
        'consent_any = ["therapy", "archive", "advocacy_anonymised", "advocacy_named", "legal",\n'
        '               "truth_commission", "research"]\n',
        "",
    ),
    "deposit into a case without a grant": (
        'actions = ["item.deposit"]\ncase_grant = true',
        'actions = ["item.deposit"]\ncase_grant = false',
    ),
    "commission exports without truth_commission consent": (
        'consent_any = ["truth_commission"]\n',
        "",
    ),
    "advocates see anonymised items unredacted": ('obligations = ["redact_identities"]\n', ""),
    "advocates read ungranted cases": (
        'case_grant = true\nconsent_any = ["advocacy_named"]',
        'case_grant = false\nconsent_any = ["advocacy_named"]',
    ),
    "everyone reads ledger entries": (
        'actions = ["ledger.proof"]',
        'actions = ["ledger.proof", "ledger.read"]',
    ),
    "requester approves own export": ('distinct_from = ["requester"]\n', ""),
    "custodian grants themselves": ('distinct_from = ["grantee"]\n', ""),
    "custodian reads content": ('"item.hold"]', '"item.hold", "item.download"]'),
    "auditor reads content": (
        'actions = ["ledger.read", "ledger.verify"]',
        'actions = ["ledger.read", "ledger.verify", "item.read"]',
    ),
    "auditor loses verification": (
        'actions = ["ledger.read", "ledger.verify"]',
        'actions = ["ledger.read"]',
    ),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_matrix_catches_a_weakened_policy_file(name: str, tmp_path: Path) -> None:
    old, new = MUTATIONS[name]
    assert DEFAULT_TEXT.count(old) == 1, f"mutation target not unique: {old!r}"
    path = tmp_path / "weakened.toml"
    path.write_text(DEFAULT_TEXT.replace(old, new))
    engine = policies.load(path)
    assert mismatches(engine, KEY_CONSENTS) != [], f"the matrix misses: {name}"
