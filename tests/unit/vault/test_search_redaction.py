"""DESIGN.md promise 11 through the vault's search: an advocate under the redaction obligation
gets the same hits, totals, facets, order, scores, titles and snippets whether or not identity
fields hold the searched name.

Two vaults are filled alike, except that the survivor of the items allowed only for
anonymised advocacy is "Quorv Mamani" in one and "Zlatk Mamani" in the other (in the identity
fields and in the texts). Items allowed for named advocacy keep "Quorv" in both: the advocate
may find those by name. Hypothesis draws queries and pages; both vaults must answer alike.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies import Principal
from tests.query_strategies import queries
from vault.accounts import add_user
from vault.cases import create_case
from vault.compose import open_vault
from vault.errors import BadField
from vault.identity import set_identity
from vault.indexing import index_item, reindex
from vault.parts import Vault
from vault.provision import create_vault
from vault.search_redaction import identity_words, redact
from vault.searching import SearchRequest, SearchResults, search
from vault.settings import load_settings

from .conftest import FAST_KDF, PASSPHRASE, principal
from .search_support import deposit, give_text

# The module fixture is built once, by the one worker that runs these (tests/README.md).
pytestmark = pytest.mark.xdist_group("search-redaction")

NAMES = ("Quorv", "Zlatk")
WORDS = ("detención", "golpes", "comisaría", "tortura", "police", "torture", "testigo", "quorum")
TEXTS = (
    "{name} Mamani declaró que la policía la llevó a la comisaría, donde recibió golpes "
    "durante la detención; {name} recuerda la tortura y a cada uno de los agentes.",
    "The police held {name} Mamani for three days; {name} described the torture and the "
    "beatings in the station, and the names of the officers who were there.",
    "{name}, {name} Mamani. Testigo de la detención en la comisaría del barrio.",
)
CONSENTS = (
    frozenset({"advocacy_anonymised"}),
    frozenset({"advocacy_named"}),
    frozenset({"advocacy_named", "advocacy_anonymised"}),
    frozenset({"legal", "advocacy_anonymised"}),
)


@dataclasses.dataclass(frozen=True)
class World:
    vault: Vault
    advocate: Principal
    ids: dict[str, int]  # item id -> its place in deposit order (the same in both worlds)
    case: str


def _fill(home: Path, name: str) -> World:
    vault = create_vault(load_settings(home), PASSPHRASE, "admin", kdf=FAST_KDF)
    with vault.sessions.begin() as session:
        add_user(session, "tina", "therapist", vault.clock())
    tina = principal(vault, "tina")
    case = create_case(vault, tina, "Caso").id
    tina = principal(vault, "tina")
    ids = {}
    for number in range(12):
        consent = CONSENTS[number % len(CONSENTS)]
        survivor = "Quorv" if "advocacy_named" in consent else name
        language = (None, "es", "en")[number % 3]
        text = TEXTS[number % len(TEXTS)].format(name=survivor)
        item_id = deposit(
            vault,
            tina,
            case,
            consent=consent,
            language=language,
            kind=("testimony", "document")[number % 2],
            tags=[("torture", "arbitrary_detention")[number % 2]],
            # Titles and notes are searched under the same rule as the text (issue 20).
            title=f"Testimonio de {survivor} Mamani",
            notes=f"{survivor} pidió hablar de la comisaría",
        )
        give_text(vault, item_id, text)
        set_identity(vault, tina, item_id, {"name": f"{survivor} Mamani", "aliases": ["La Flaca"]})
        index_item(vault, item_id)
        ids[item_id] = number
    # An item with no identity fields, where "Quorv" is a plain word (a witness): the same in
    # both worlds, and found by that word in both.
    witness = deposit(vault, tina, case, consent={"advocacy_anonymised"}, language="es")
    give_text(vault, witness, "El testigo Quorv habló del quorum en la comisaría.")
    index_item(vault, witness)
    ids[witness] = len(ids)
    _settle(vault)
    advocate = Principal(
        "ada", frozenset({"advocate"}), MappingProxyType({case: frozenset({"advocate"})})
    )
    return World(vault, advocate, ids, case)


def _settle(vault: Vault) -> None:
    # Let the engine finish merging segments: term statistics count deleted documents until
    # their segment is merged, and merges run in the background, at their own pace.
    assert vault.index is not None
    vault.index.close()


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, World]]:
    """Both vaults as deposits, identity changes and the index stage left them."""
    made = [_fill(Path(tmp_path_factory.mktemp(name)) / "vault", name) for name in NAMES]
    yield made[0], made[1]
    for world in made:
        world.vault.close()


@pytest.fixture(scope="module")
def rebuilt(
    worlds: tuple[World, World], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[World, World]]:
    """Copies of both vaults after `tvault reindex` (identity words come back from the sealed
    identity fields). One segment in deposit order, so that equal scores come in the same
    order in both: after incremental indexing the engine's order of ties follows its
    segments, which merge at their own pace in each vault. Copies: `worlds` stays as the
    index stage left it for the tests that ask for it, whichever runs first."""
    made = []
    for world, name in zip(worlds, NAMES, strict=True):
        world.vault.engine.dispose()  # no connection open while its files are copied
        home = Path(tmp_path_factory.mktemp(f"rebuilt-{name}")) / "vault"
        shutil.copytree(world.vault.settings.home, home)
        copied = open_vault(load_settings(home), PASSPHRASE)
        reindex(copied)
        _settle(copied)
        made.append(dataclasses.replace(world, vault=copied))
    yield made[0], made[1]
    for world in made:
        world.vault.close()


def _seen(world: World, request: SearchRequest) -> object:
    """What the principal sees, with the vault's own ids replaced by their deposit order."""
    try:
        found = search(world.vault, world.advocate, request)
    except BadField as exc:
        return f"refused: {exc}"
    return _comparable(world, found)


def _comparable(world: World, found: SearchResults) -> object:
    hits = [
        (world.ids[h.item_id], h.kind, h.language, h.tags, h.score, h.title, h.snippet, h.redacted)
        for h in found.hits
    ]
    facets = {
        name: {
            ("case" if name == "case" and key == world.case else key): count
            for key, count in counts.items()
        }
        for name, counts in found.facets.items()
    }
    return found.total, found.page, found.page_size, hits, facets


QUERY = queries([*WORDS, *NAMES, "Mamani", "Flaca", "la", "the"], max_leaves=4)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=QUERY, page_size=st.integers(1, 50), page=st.integers(1, 3))
def test_an_advocate_cannot_tell_whose_name_the_redacted_items_hold(
    rebuilt: tuple[World, World], text: str, page_size: int, page: int
) -> None:
    request = SearchRequest(text=text, page=page, page_size=page_size)
    first, second = (_seen(world, request) for world in rebuilt)
    assert first == second


def _unordered(seen: object) -> object:
    if isinstance(seen, str):
        return seen
    total, page, size, hits, facets = seen  # type: ignore[misc]
    return total, page, size, sorted(hits), facets


def test_the_probes_of_the_issue_find_nothing_redacted(worlds: tuple[World, World]) -> None:
    # Straight after deposits, identity changes and the index stage (no rebuild): the same
    # totals, facets, hits and scores on the first and second page of one hit.
    quorv, zlatk = worlds
    for text in ("Quorv", "Quorv OR golpes", "golpes NOT Quorv", "Quo*", "Quorv~1", "Mamani"):
        whole = SearchRequest(text=text, page_size=50)
        assert _unordered(_seen(quorv, whole)) == _unordered(_seen(zlatk, whole)), text
        for page in (1, 2):
            request = SearchRequest(text=text, page=page, page_size=1)
            first, second = _seen(quorv, request), _seen(zlatk, request)
            assert isinstance(first, tuple) and isinstance(second, tuple), text
            assert (first[0], first[4]) == (second[0], second[4]), text  # total, facets
    # Named items are still found by their survivor's name; redacted ones never show it.
    found = search(quorv.vault, quorv.advocate, SearchRequest(text="Quorv Mamani", page_size=50))
    assert found.hits and not any(hit.redacted for hit in found.hits)
    every = search(quorv.vault, quorv.advocate, SearchRequest(text="", page_size=50))
    witness = max(quorv.ids, key=quorv.ids.__getitem__)  # no identity fields: no snippet
    for hit in every.hits:
        if hit.redacted and hit.item_id != witness:
            assert hit.snippet is not None and "[redacted]" in hit.snippet
            assert "Quorv Mamani" not in hit.snippet and "Flaca" not in hit.snippet
        elif hit.redacted:
            assert hit.snippet is None


def test_every_identity_word_is_redacted_but_short_function_words() -> None:
    fields = {
        "name": "Li Wu de la Cruz",
        "aliases": ["El Ñato", "Ana"],
        "birth_date": "1985-03-02",
        "other": 7,  # not text: ignored
    }
    words = identity_words(fields)
    # "Li" and "Wu" are names: redacted, though short; "de", "la", "el" identify no one.
    assert words == {"li", "wu", "cruz", "nato", "ana", "1985", "03", "02"}
    text = "Li y Wu vieron a Ana de la Cruz (el Ñato) el 02 de marzo."
    assert redact(text, words, "[redacted]") == (
        "[redacted] y [redacted] vieron a [redacted] de la [redacted] (el [redacted]) el"
        " [redacted] de marzo."
    )
