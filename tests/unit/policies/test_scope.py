"""Search scopes: never wider than `decide`, as wide as an index filter can express."""

from __future__ import annotations

import pytest

import policies
from policies import Allow, Principal, Resource, Scope
from tests.unit.policies.expectations import ALL_CONSENTS

CASES = ("case-1", "case-2", "case-3")

PRINCIPALS = {
    "lawyer on 1": Principal("lena", frozenset({"lawyer"}), {"case-1": frozenset({"lawyer"})}),
    "lawyer on 1, therapist on 2": Principal(
        "lena",
        frozenset({"lawyer", "therapist"}),
        {"case-1": frozenset({"lawyer"}), "case-2": frozenset({"therapist"})},
    ),
    "lawyer and therapist on 1": Principal(
        "lena", frozenset({"lawyer"}), {"case-1": frozenset({"lawyer", "therapist"})}
    ),
    "advocate": Principal(
        "ava",
        frozenset({"advocate"}),
        {c: frozenset({"advocate"}) for c in ("case-1", "case-2", "case-3")},
    ),
    "advocate, ungranted": Principal("ava", frozenset({"advocate"}), {}),
    "advocate, lawyer on 3": Principal(
        "ava", frozenset({"advocate"}), {"case-3": frozenset({"lawyer"})}
    ),
    "custodian": Principal("cleo", frozenset({"custodian"}), {}),
    "custodian, lawyer on 2": Principal(
        "cleo", frozenset({"custodian"}), {"case-2": frozenset({"lawyer"})}
    ),
    "auditor": Principal("ada", frozenset({"auditor"}), {}),
    "commission on 1": Principal(
        "carl", frozenset({"commission"}), {"case-1": frozenset({"commission"})}
    ),
    "nobody": Principal("nemo", frozenset(), {}),
}


def matches(scope: Scope, case_id: str, consent: frozenset[str]) -> list[bool]:
    """The redaction flags of the parts that let an item of `case_id` with `consent` through."""
    return [
        part.redact_identities
        for part in scope.parts
        if case_id in part.cases and part.consent_any & consent
    ]


@pytest.mark.parametrize("name", sorted(PRINCIPALS))
@pytest.mark.parametrize("purpose", ["item.search", "item.read", "export.request"])
def test_scope_agrees_with_decide_item_by_item(name: str, purpose: str) -> None:
    principal = PRINCIPALS[name]
    scope = policies.search_scope(principal, purpose, CASES)
    for case_id in CASES:
        for consent in ALL_CONSENTS:
            # Someone else's deposit: own-deposit rules cannot be an index filter.
            item = Resource("item", case_id, "item-1", depositor="someone", consent=consent)
            decision = policies.decide(principal, purpose, item)
            flags = matches(scope, case_id, consent)
            # Sound: whatever the scope lets through, decide allows (the filter never leaks).
            # Complete: whatever decide allows, the scope lets through.
            assert bool(flags) == bool(decision), (case_id, sorted(consent), decision)
            if isinstance(decision, Allow):
                # Some matching part carries exactly the obligation decide gives.
                redact = "redact_identities" in decision.obligations
                assert redact == all(flags), (case_id, sorted(consent))


def test_mixed_grants_stay_in_separate_parts() -> None:
    scope = policies.search_scope(PRINCIPALS["lawyer on 1, therapist on 2"], "item.search")
    parts = {(tuple(sorted(p.cases)), tuple(sorted(p.consent_any))) for p in scope.parts}
    assert parts == {(("case-1",), ("legal",)), (("case-2",), ("therapy",))}
    assert scope.cases == {"case-1", "case-2"}


def test_two_roles_on_one_case_merge_into_one_part() -> None:
    scope = policies.search_scope(PRINCIPALS["lawyer and therapist on 1"], "item.search")
    assert len(scope.parts) == 1
    assert scope.parts[0].consent_any == {"legal", "therapy"}


def test_advocates_reach_only_granted_cases() -> None:
    assert policies.search_scope(PRINCIPALS["advocate, ungranted"], "item.search", CASES).is_empty
    advocate = PRINCIPALS["advocate"]
    scope = policies.search_scope(advocate, "item.search", ["case-2"])
    assert scope.cases == {"case-2"}
    assert scope.redact_identities
    assert {(p.redact_identities, tuple(sorted(p.consent_any))) for p in scope.parts} == {
        (False, ("advocacy_named",)),
        (True, ("advocacy_anonymised",)),
    }


def test_cases_narrow_granted_scopes_too() -> None:
    lawyer = PRINCIPALS["lawyer on 1"]
    assert policies.search_scope(lawyer, "item.search", ["case-2"]).is_empty
    assert policies.search_scope(lawyer, "item.search", ["case-1"]).cases == {"case-1"}


@pytest.mark.parametrize("name", ["custodian", "auditor", "nobody"])
def test_roles_without_content_get_the_empty_scope(name: str) -> None:
    scope = policies.search_scope(PRINCIPALS[name], "item.search", CASES)
    assert scope.is_empty
    assert scope.parts == ()
    assert not scope.redact_identities


@pytest.mark.parametrize("purpose", ["item.shred", "key.manage", "nonsense", ""])
def test_a_purpose_that_is_not_an_item_reading_action_gets_the_empty_scope(purpose: str) -> None:
    custodian = PRINCIPALS["custodian"]
    lawyer = PRINCIPALS["lawyer on 1"]
    assert policies.search_scope(custodian, purpose, CASES).is_empty
    if purpose != "item.shred":
        assert policies.search_scope(lawyer, purpose, CASES).is_empty


def test_empty_rule_set_gives_the_empty_scope() -> None:
    engine = policies.Engine(())
    for principal in PRINCIPALS.values():
        assert engine.search_scope(principal, "item.search", CASES).is_empty


def test_a_scope_part_without_cases_or_consent_matches_nothing() -> None:
    part = policies.ScopePart(frozenset(), frozenset({"legal"}), False)
    assert Scope((part,)).is_empty
    part = policies.ScopePart(frozenset({"case-1"}), frozenset(), False)
    assert Scope((part,)).is_empty
    assert Scope().is_empty


@pytest.mark.parametrize("name", sorted(PRINCIPALS))
def test_a_single_filter_is_offered_only_when_it_is_exact(name: str) -> None:
    scope = policies.search_scope(PRINCIPALS[name], "item.search", CASES)
    single = scope.single_filter()
    if single is None:
        return
    cases, scopes = single
    for case_id in CASES:
        for consent in ALL_CONSENTS:
            in_filter = case_id in cases and bool(scopes & consent)
            assert in_filter == bool(matches(scope, case_id, consent)), (case_id, consent)


def test_single_filter_merges_the_advocate_parts_and_refuses_mixed_grants() -> None:
    advocate = policies.search_scope(PRINCIPALS["advocate"], "item.search", CASES)
    assert advocate.single_filter() == (
        frozenset(CASES),
        frozenset({"advocacy_named", "advocacy_anonymised"}),
    )
    mixed = policies.search_scope(PRINCIPALS["lawyer on 1, therapist on 2"], "item.search", CASES)
    assert mixed.single_filter() is None
    assert Scope().single_filter() == (frozenset(), frozenset())
