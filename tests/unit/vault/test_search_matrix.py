"""Every role x granted cases x consent scopes through the vault's search: no item leaks, not
in hits, not in the total, not in a facet count; redaction hides identities and cannot be
used to probe a name."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import pytest

from policies import Allow, Principal, Resource, actions, decide, kinds, obligations
from vault.accounts import add_user
from vault.cases import create_case
from vault.domain import CONSENT_SCOPES, ROLES
from vault.errors import NotFound
from vault.identity import set_identity
from vault.indexing import index_item
from vault.parts import Vault
from vault.provision import create_vault
from vault.searching import SearchRequest, search
from vault.settings import load_settings

from .conftest import FAST_KDF, PASSPHRASE, principal
from .search_support import deposit, give_text

# The module fixture is built once, by the one worker that runs these (tests/README.md).
pytestmark = pytest.mark.xdist_group("search-matrix")

NAME = "Quispe Mamani"
TEXT = "Declaró sobre la detención en la comisaría. {name}, La Flaca, vio los golpes."
CONSENTS = [frozenset({scope}) for scope in CONSENT_SCOPES] + [
    frozenset({"therapy", "legal"}),
    frozenset({"advocacy_named", "advocacy_anonymised"}),
    frozenset({"legal", "advocacy_anonymised"}),
]
CASES = ("A", "B", "C")


@dataclass(frozen=True)
class Stored:
    """An item as the test deposited it."""

    id: str
    case_id: str
    consent: frozenset[str]
    kind: str
    language: str
    tags: frozenset[str]
    year: str


@pytest.fixture(scope="module")
def corpus(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Vault, dict[str, str], list[Stored]]]:
    """Three cases, an item for every consent set in each, every one with identity fields."""
    home = Path(tmp_path_factory.mktemp("matrix")) / "vault"
    vault = create_vault(load_settings(home), PASSPHRASE, "admin", kdf=FAST_KDF)
    with vault.sessions.begin() as session:
        add_user(session, "tina", "therapist", vault.clock())
    tina = principal(vault, "tina")
    cases = {label: create_case(vault, tina, f"Caso {label}").id for label in CASES}
    tina = principal(vault, "tina")
    stored = []
    for number, (label, consent) in enumerate(itertools.product(CASES, CONSENTS)):
        kind = ("testimony", "document", "medical_report")[number % 3]
        language = ("es", "en")[number % 2]
        tags = frozenset({("torture", "arbitrary_detention")[number % 2]})
        item_id = deposit(
            vault, tina, cases[label], consent=consent, kind=kind, language=language, tags=tags
        )
        give_text(vault, item_id, TEXT.format(name=NAME))
        set_identity(vault, tina, item_id, {"name": NAME, "aliases": ["La Flaca"]})
        index_item(vault, item_id)
        year = str(vault.clock().year)
        stored.append(Stored(item_id, cases[label], consent, kind, language, tags, year))
    yield vault, cases, stored
    vault.close()


def _principals(cases: dict[str, str]) -> Iterator[Principal]:
    subsets = [(), ("A",), ("A", "B"), CASES]
    for role in ROLES:
        grant_roles = [role] if role in ("therapist", "lawyer", "advocate", "commission") else []
        for subset, granted in itertools.product(subsets, [*grant_roles, "lawyer"]):
            grants = {cases[c]: frozenset({granted}) for c in subset}
            yield Principal(
                f"{role}-{granted}-{len(subset)}", frozenset({role}), MappingProxyType(grants)
            )
    # The trap of merged scopes: lawyer on A, therapist on B.
    yield Principal(
        "mixed",
        frozenset({"lawyer"}),
        MappingProxyType({cases["A"]: frozenset({"lawyer"}), cases["B"]: frozenset({"therapist"})}),
    )


def _decision(person: Principal, item: Stored) -> Allow | None:
    resource = Resource(
        kind=kinds.ITEM,
        case_id=item.case_id,
        item_id=item.id,
        depositor="tina",
        consent=item.consent,
    )
    decision = decide(person, actions.ITEM_SEARCH, resource)
    return decision if isinstance(decision, Allow) else None


def _by_hand(person: Principal, item: Stored) -> bool:
    """The shipped policy, written out independently of the engine."""
    roles = person.grants.get(item.case_id, frozenset())
    return (
        ("therapist" in roles and "therapy" in item.consent)
        or ("lawyer" in roles and "legal" in item.consent)
        or ("advocate" in roles and bool(item.consent & {"advocacy_named", "advocacy_anonymised"}))
    )


def _facets(items: list[Stored]) -> dict[str, Counter[str]]:
    return {
        "case": Counter(i.case_id for i in items),
        "kind": Counter(i.kind for i in items),
        "language": Counter(i.language for i in items),
        "tag": Counter(t for i in items for t in i.tags),
        "year": Counter(i.year for i in items),
    }


def test_no_item_leaks_for_any_role_grant_and_consent(
    corpus: tuple[Vault, dict[str, str], list[Stored]],
) -> None:
    vault, cases, stored = corpus
    checked = 0
    for person in _principals(cases):
        allowed = {item.id: d for item in stored if (d := _decision(person, item)) is not None}
        assert set(allowed) == {i.id for i in stored if _by_hand(person, i)}, person.subject
        redacted = {i for i, d in allowed.items() if obligations.REDACT_IDENTITIES in d.obligations}
        for text in ("", "detencion", "Quispe", "Quispe OR golpes", "Flaca"):
            found = search(vault, person, SearchRequest(text=text, page_size=100))
            # A name typed into the search never finds an item whose identities are redacted for
            # this principal: the name is all that matched there.
            expected_ids = set(allowed) - (redacted if text in ("Quispe", "Flaca") else set())
            expected = [i for i in stored if i.id in expected_ids]
            where = f"{person.subject} / {text!r}"
            assert {h.item_id for h in found.hits} == expected_ids, where
            assert found.total == len(expected_ids), where
            want = _facets(expected)
            for name, counts in found.facets.items():
                assert dict(counts) == dict(want[name]), f"{where} facet {name}"
            # With one hit per page the engine's own total and facets show: they too are
            # counted inside the scope, and without the identity words of redacted items (the
            # page's check could not hide a leak there).
            for page in (1, 2):
                one = search(vault, person, SearchRequest(text=text, page=page, page_size=1))
                assert one.total == len(expected_ids), f"{where} page {page}"
                for name, counts in one.facets.items():
                    assert dict(counts) == dict(want[name]), f"{where} facet {name} ({page})"
            for hit in found.hits:
                assert hit.redacted == (hit.item_id in redacted), where
                if hit.redacted:
                    assert hit.title == "[redacted]"
                    assert hit.snippet is not None and "Quispe" not in hit.snippet, where
                    assert "Mamani" not in hit.snippet and "[redacted]" in hit.snippet
                else:
                    assert hit.snippet is not None and "Quispe" in hit.snippet, where
            checked += 1
    assert checked > 100


def test_naming_cases_narrows_and_never_widens(
    corpus: tuple[Vault, dict[str, str], list[Stored]],
) -> None:
    vault, cases, stored = corpus
    lawyer = Principal(
        "l", frozenset({"lawyer"}), MappingProxyType({cases["A"]: frozenset({"lawyer"})})
    )
    only_a = search(
        vault, lawyer, SearchRequest(text="", cases=frozenset({cases["A"]}), page_size=100)
    )
    assert only_a.total == sum(
        1 for i in stored if i.case_id == cases["A"] and "legal" in i.consent
    )
    # Naming a case not granted gives nothing of it: it is refused as an unknown case is.
    with pytest.raises(NotFound, match=f"^no case {cases['B']}$"):
        search(vault, lawyer, SearchRequest(text="", cases=frozenset({cases["B"]})))
