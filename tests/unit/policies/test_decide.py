"""Decisions: Allow/Deny values, fail-closed requests, separation of duties, the second person."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, cast

import pytest

import policies
from policies import Allow, Deny, Principal, Resource, actions, consent, kinds, roles
from tests.unit.policies.expectations import ALL_CONSENTS

CASE = "case-1"


def person(subject: str, *account: str, **grants: tuple[str, ...]) -> Principal:
    by_case: Mapping[str, frozenset[str]] = {
        case.replace("_", "-"): frozenset(r) for case, r in grants.items()
    }
    return Principal(subject, frozenset(account), MappingProxyType(dict(by_case)))


def item(*scopes: str, depositor: str = "dora", case_id: str | None = CASE) -> Resource:
    return Resource(kinds.ITEM, case_id, "item-1", depositor=depositor, consent=frozenset(scopes))


def test_allow_is_truthy_and_deny_is_falsy_with_a_reason() -> None:
    assert Allow()
    assert Allow(frozenset({"redact_identities"}))
    assert not Deny("because")
    assert Deny("because").reason == "because"


def test_the_public_surface_is_sorted_and_complete() -> None:
    assert policies.__all__ == sorted(policies.__all__)
    for name in policies.__all__:
        assert hasattr(policies, name)


def test_vocabularies_are_the_ones_design_names() -> None:
    # Written out again here so that a renamed constant cannot pass unnoticed.
    named_actions = {
        "item.deposit", "item.read", "item.download", "item.status", "item.search",
        "item.consent_change", "item.shred", "item.sign", "item.hold", "case.create",
        "case.list", "case.read", "case.grant", "case.revoke", "user.manage", "key.manage",
        "job.manage", "ledger.read", "ledger.proof", "ledger.verify", "export.request",
        "export.approve", "export.download", "approval.list", "approval.approve",
        "approval.deny",
    }  # fmt: skip
    assert named_actions == policies.actions.ALL
    assert actions.ITEM_DEPOSIT == "item.deposit"
    assert actions.EXPORT_DOWNLOAD == "export.download"
    named_roles = {"custodian", "therapist", "lawyer", "advocate", "commission", "auditor"}
    assert named_roles == roles.ALL
    named_scopes = {
        "therapy", "archive", "advocacy_anonymised", "advocacy_named", "legal",
        "truth_commission", "research",
    }  # fmt: skip
    assert named_scopes == consent.ALL
    assert policies.obligations.REDACT_IDENTITIES == "redact_identities"
    assert set(actions.RESOURCE_KINDS) == actions.ALL
    assert all(k <= kinds.ALL for k in actions.RESOURCE_KINDS.values())


LAWYER = person("lena", "lawyer", case_1=("lawyer",))


@pytest.mark.parametrize(
    ("action", "resource", "words"),
    [
        ("item.delete", item("legal"), "unknown action"),
        ("", item("legal"), "unknown action"),
        ("ITEM.READ", item("legal"), "unknown action"),
        ("item.read", Resource(kinds.CASE, CASE, consent=frozenset({"legal"})), "kind item"),
        ("item.read", Resource("thing", CASE), "kind item"),
        ("item.read", item("legal", case_id=None), "names no case"),
        ("item.read", item(), "consent includes none of legal"),
        ("item.read", item("therapy", "research"), "consent includes none of legal"),
        ("item.read", item("legal", case_id="case-2"), "no lawyer grant on case case-2"),
        ("key.manage", Resource(kinds.KEY), "no rule allows it"),
    ],
)
def test_refusals_say_why(action: str, resource: Resource, words: str) -> None:
    decision = policies.decide(LAWYER, action, resource)
    assert isinstance(decision, Deny)
    assert words in decision.reason


def test_the_same_request_with_its_condition_met_is_allowed() -> None:
    # The counterpart of the refusals above: they fail for the stated reason, not any other.
    assert policies.decide(LAWYER, "item.read", item("legal")) == Allow()


@pytest.mark.parametrize(
    "principal",
    [
        Principal("", frozenset({"lawyer"}), {CASE: frozenset({"lawyer"})}),
        cast(Any, None),
        cast(Any, "lena"),
        Principal("lena", frozenset({"lawyer"}), cast(Any, None)),
        Principal("lena", cast(Any, None), {CASE: frozenset({"lawyer"})}),
        Principal(cast(Any, 42), frozenset({"lawyer"}), {CASE: frozenset({"lawyer"})}),
    ],
)
def test_a_malformed_principal_is_denied_never_raised(principal: Principal) -> None:
    assert not policies.decide(principal, "item.read", item("legal"))
    assert policies.search_scope(principal, "item.search", [CASE]).is_empty


@pytest.mark.parametrize(
    "resource",
    [cast(Any, None), cast(Any, {"kind": "item"}), Resource(cast(Any, None), CASE)],
)
def test_a_malformed_resource_is_denied_never_raised(resource: Resource) -> None:
    decision = policies.decide(LAWYER, "item.read", resource)
    assert isinstance(decision, Deny)
    assert decision.reason


def test_grants_given_as_plain_sets_still_work() -> None:
    principal = Principal("lena", frozenset({"lawyer"}), {CASE: cast(Any, {"lawyer"})})
    assert policies.decide(principal, "item.read", item("legal"))


def test_account_role_alone_never_opens_content() -> None:
    lawyer_without_grant = person("lena", "lawyer")
    therapist_without_grant = person("tom", "therapist")
    for scopes in ALL_CONSENTS:
        resource = item(*scopes)
        for action in ("item.read", "item.download", "item.status", "item.search"):
            assert not policies.decide(lawyer_without_grant, action, resource)
            assert not policies.decide(therapist_without_grant, action, resource)


class TestSeparationOfDuties:
    custodian = person("cleo", "custodian")

    def test_custodian_never_reads_content_or_metadata_without_a_grant(self) -> None:
        for scopes in ALL_CONSENTS:
            for action in (
                "item.read", "item.download", "item.status", "item.search", "item.sign",
                "item.consent_change", "item.deposit", "export.request",
            ):  # fmt: skip
                assert not policies.decide(self.custodian, action, item(*scopes)), action

    def test_custodian_role_granted_on_the_case_opens_nothing_more(self) -> None:
        custodian = person("cleo", "custodian", case_1=("custodian",))
        for scopes in ALL_CONSENTS:
            assert not policies.decide(custodian, "item.download", item(*scopes))

    def test_custodian_granted_a_content_role_reads_under_that_roles_consent(self) -> None:
        custodian = person("cleo", "custodian", case_1=("lawyer",))
        assert policies.decide(custodian, "item.download", item("legal"))
        assert not policies.decide(custodian, "item.download", item("therapy"))
        assert not policies.decide(custodian, "item.download", item("legal", case_id="case-2"))

    def test_custodian_manages_without_reading(self) -> None:
        for action, kind in [
            ("user.manage", kinds.USER),
            ("key.manage", kinds.KEY),
            ("job.manage", kinds.JOB),
            ("case.create", kinds.CASE),
            ("case.revoke", kinds.CASE),
        ]:
            assert policies.decide(self.custodian, action, Resource(kind, CASE)), action
        assert policies.decide(self.custodian, "item.shred", item())

    def test_custodian_never_grants_themselves(self) -> None:
        other = Resource(kinds.CASE, CASE, grantee="tom")
        self_grant = Resource(kinds.CASE, CASE, grantee="cleo")
        unnamed = Resource(kinds.CASE, CASE)
        assert policies.decide(self.custodian, "case.grant", other)
        decision = policies.decide(self.custodian, "case.grant", self_grant)
        assert isinstance(decision, Deny)
        assert "grantee" in decision.reason
        assert not policies.decide(self.custodian, "case.grant", unnamed)

    def test_auditor_reads_the_ledger_and_never_content(self) -> None:
        auditor = person("ada", "auditor")
        assert policies.decide(auditor, "ledger.read", Resource(kinds.LEDGER))
        assert policies.decide(auditor, "ledger.verify", Resource(kinds.LEDGER))
        for scopes in ALL_CONSENTS:
            assert not policies.decide(auditor, "item.read", item(*scopes))
            assert not policies.decide(auditor, "item.download", item(*scopes))


class TestExportSecondPerson:
    def export(self, requester: str | None) -> Resource:
        return Resource(kinds.EXPORT, CASE, "export-1", requester=requester)

    def test_a_second_custodian_approves(self) -> None:
        approver = person("cleo", "custodian")
        assert policies.decide(approver, "export.approve", self.export("carl")) == Allow()

    def test_the_requester_may_not_approve_their_own_export(self) -> None:
        requester = person("carl", "custodian", "commission", case_1=("commission",))
        decision = policies.decide(requester, "export.approve", self.export("carl"))
        assert isinstance(decision, Deny)
        assert "second person" in decision.reason

    def test_an_export_naming_no_requester_is_refused(self) -> None:
        decision = policies.decide(person("cleo", "custodian"), "export.approve", self.export(None))
        assert isinstance(decision, Deny)
        assert "names no requester" in decision.reason

    def test_a_commission_does_not_approve(self) -> None:
        commission = person("carl", "commission", case_1=("commission",))
        assert not policies.decide(commission, "export.approve", self.export("someone"))

    def test_commission_exports_only_granted_cases_and_truth_commission_items(self) -> None:
        commission = person("carl", "commission", case_1=("commission",))
        assert policies.decide(commission, "export.request", Resource(kinds.CASE, CASE))
        assert not policies.decide(commission, "export.request", Resource(kinds.CASE, "case-2"))
        assert policies.decide(commission, "export.request", item("truth_commission"))
        assert not policies.decide(commission, "export.request", item("legal", "archive"))
        assert policies.decide(commission, "export.download", self.export("carl"))
        assert not policies.decide(
            commission, "export.download", Resource(kinds.EXPORT, "case-2", requester="carl")
        )


class TestObligations:
    advocate = person("ava", "advocate", case_1=("advocate",))

    def test_anonymised_consent_obliges_redaction(self) -> None:
        decision = policies.decide(self.advocate, "item.read", item("advocacy_anonymised"))
        assert decision == Allow(frozenset({"redact_identities"}))

    def test_named_consent_lifts_redaction_even_with_anonymised_too(self) -> None:
        for scopes in (("advocacy_named",), ("advocacy_named", "advocacy_anonymised")):
            assert policies.decide(self.advocate, "item.search", item(*scopes)) == Allow()

    def test_a_download_under_anonymised_consent_carries_redaction(self) -> None:
        # The vault then serves the depositor's redacted rendition, never the original.
        decision = policies.decide(self.advocate, "item.download", item("advocacy_anonymised"))
        assert decision == Allow(frozenset({"redact_identities"}))
        assert policies.decide(self.advocate, "item.download", item("advocacy_named")) == Allow()

    def test_advocates_need_a_grant_on_the_case(self) -> None:
        for scopes in (("advocacy_named",), ("advocacy_anonymised",)):
            assert not policies.decide(self.advocate, "item.read", item(*scopes, case_id="case-9"))

    def test_no_advocacy_consent_no_access(self) -> None:
        for scopes in ALL_CONSENTS:
            if scopes & {"advocacy_named", "advocacy_anonymised"}:
                continue
            assert not policies.decide(self.advocate, "item.read", item(*scopes))

    def test_other_roles_carry_no_obligation(self) -> None:
        lawyer = policies.decide(LAWYER, "item.read", item("legal", "advocacy_anonymised"))
        assert lawyer == Allow(frozenset())


def test_therapist_reads_own_deposits_anywhere_and_others_only_when_granted() -> None:
    therapist = person("tom", "therapist", case_1=("therapist",))
    own_elsewhere = item("legal", depositor="tom", case_id="case-9")
    assert policies.decide(therapist, "item.download", own_elsewhere)
    assert policies.decide(therapist, "item.consent_change", own_elsewhere)
    assert policies.decide(therapist, "item.download", item("therapy"))
    assert not policies.decide(therapist, "item.download", item("legal"))
    assert not policies.decide(therapist, "item.download", item("therapy", case_id="case-9"))
    assert not policies.decide(therapist, "item.deposit", item("therapy", case_id="case-9"))
    assert policies.decide(therapist, "item.deposit", item("therapy"))
    assert not policies.decide(therapist, "item.deposit", item())


class TestCaseLevelQuestions:
    """`item.search` and `export.request` about a case: may the principal act in it at all."""

    case = Resource(kinds.CASE, CASE)
    other_case = Resource(kinds.CASE, "case-2")

    def test_granted_roles_may_search_their_cases_only(self) -> None:
        assert policies.decide(LAWYER, "item.search", self.case)
        assert not policies.decide(LAWYER, "item.search", self.other_case)
        therapist = person("tom", "therapist", case_1=("therapist",))
        assert policies.decide(therapist, "item.search", self.case)
        assert not policies.decide(therapist, "item.search", self.other_case)

    def test_advocates_search_only_granted_cases(self) -> None:
        advocate = person("ava", "advocate", case_1=("advocate",))
        assert policies.decide(advocate, "item.search", self.case)
        assert not policies.decide(advocate, "item.search", self.other_case)

    def test_roles_without_content_may_not_search(self) -> None:
        for principal in (person("cleo", "custodian"), person("ada", "auditor")):
            assert not policies.decide(principal, "item.search", self.case)

    def test_a_case_question_never_opens_an_item(self) -> None:
        # The case-level Allow must not stand in for the per-item consent check.
        assert not policies.decide(LAWYER, "item.read", Resource(kinds.CASE, CASE))
        assert not policies.decide(LAWYER, "item.search", item("therapy"))
