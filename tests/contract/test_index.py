"""One contract suite for every Index adapter: same corpus, same queries, same expected hits.

tantivy always runs; Elasticsearch runs when `TVAULT_TEST_ES_URL` is set. Each query has one
expected set of item ids, written out by hand, so both adapters are held to the same answer.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from search import (
    AccessScope,
    Filters,
    Index,
    IndexDocument,
    MemoryVocabularyStore,
    Query,
    QuerySyntaxError,
    Results,
    ScopeRequiredError,
)

KEY = bytes(range(32))
CASES = ("c1", "c2", "c3")
CONSENTS = ("legal", "therapy", "advocacy_named")


def _doc(
    item_id: str,
    case_id: str,
    kind: str,
    language: str | None,
    created: str,
    tags: set[str],
    consent: set[str],
    text: str,
) -> IndexDocument:
    return IndexDocument(
        item_id=item_id,
        case_id=case_id,
        kind=kind,
        language=language,
        created=datetime.fromisoformat(created).replace(tzinfo=UTC),
        tags=frozenset(tags),
        consent=frozenset(consent),
        text=text,
    )


CORPUS = [
    _doc("d01", "c1", "testimony", "es", "2019-05-02T10:00:00", {"detention"}, {"legal", "therapy"},
         "Me detuvieron en la comisaría de Cotahuma. La detención duró tres días y sufrí golpes "
         "eléctricos. Mi nombre es Rosa Mamani."),
    _doc("d02", "c1", "testimony", "es", "2020-01-15T08:30:00", {"torture"}, {"therapy"},
         "Las detenciones masivas comenzaron en marzo. Los policías nos torturaron durante el "
         "interrogatorio."),
    _doc("d03", "c2", "testimony", "en", "2020-07-30T22:00:00", {"torture", "detention"},
         {"legal"},
         "I was arrested at night and tortured with electric shocks. The officer Mamami signed "
         "the report."),
    _doc("d04", "c2", "testimony", "en-GB", "2021-02-11T12:00:00", set(),
         {"advocacy_named", "legal"},
         "The arrests continued for weeks. My brother disappeared after the detention."),
    _doc("d05", "c3", "note", "es", "2021-09-09T09:09:09", {"disappearance"}, {"advocacy_named"},
         "Mi hermano desapareció. Nadie declaró ante el juez. La declaración nunca fue tomada."),
    _doc("d06", "c3", "scan", "en", "2022-03-03T03:03:03", set(), {"therapy", "advocacy_named"},
         "Declarations were taken by the commission. Rosa spoke about the torture she survived."),
    _doc("d07", "c1", "note", None, "2022-12-31T23:59:59", set(), {"legal"},
         "Quispe Quispe 1976 Cotahuma"),
    _doc("d08", "c2", "testimony", "es", "2019-12-31T23:00:00", {"detention"},
         {"legal", "advocacy_named"},
         "El policía declaró que la detención fue legal. Golpes y amenazas."),
]  # fmt: skip
BY_ID = {d.item_id: d for d in CORPUS}
ALL = frozenset(BY_ID)

# query -> the items it must find in a scope that covers everything.
EXPECTED: dict[str, frozenset[str]] = {
    # accent folding, Spanish plural/singular
    "detencion": frozenset({"d01", "d02", "d08"}),
    "detención": frozenset({"d01", "d02", "d08"}),
    "DETENCIONES": frozenset({"d01", "d02", "d08"}),
    "desaparecio": frozenset({"d05"}),
    "policia": frozenset({"d02", "d08"}),
    # English stems
    "arrest": frozenset({"d03", "d04"}),
    "disappear": frozenset({"d04"}),
    # an English query stem meets the Spanish "torturaron" (same stem in both languages)
    "tortured": frozenset({"d02", "d03", "d06"}),
    # phrases
    '"golpes eléctricos"': frozenset({"d01"}),
    '"golpes electricos"': frozenset({"d01"}),
    '"detención duró"': frozenset({"d01"}),
    '"duró detención"': frozenset(),
    '"declaró ante"~1': frozenset({"d05"}),
    # boolean
    "golpes detencion": frozenset({"d01", "d08"}),
    "golpes AND amenazas": frozenset({"d08"}),
    "detencion -masivas": frozenset({"d01", "d08"}),
    "detencion NOT policia": frozenset({"d01"}),
    "arrest OR golpes": frozenset({"d01", "d03", "d04", "d08"}),
    "(arrest OR golpes) lang:es": frozenset({"d01", "d08"}),
    "NOT detencion": frozenset({"d03", "d04", "d05", "d06", "d07"}),
    "-detencion -arrest": frozenset({"d05", "d06", "d07"}),
    # prefix and fuzzy
    "tortur*": frozenset({"d02", "d03", "d06"}),
    "declar*": frozenset({"d05", "d06", "d08"}),
    "Mamani": frozenset({"d01"}),
    "Mamani~1": frozenset({"d01", "d03"}),
    "Mamamy~2": frozenset({"d01", "d03"}),
    "zzqx*": frozenset(),
    # field filters
    "case:c2": frozenset({"d03", "d04", "d08"}),
    "kind:note": frozenset({"d05", "d07"}),
    "language:en": frozenset({"d03", "d04", "d06"}),
    "lang:und": frozenset({"d07"}),
    "tag:detention": frozenset({"d01", "d03", "d08"}),
    "date:2020-01-01..2021-12-31": frozenset({"d02", "d03", "d04", "d05"}),
    "date:..2019-12-31": frozenset({"d01", "d08"}),
    "date:2022-12": frozenset({"d07"}),
    "year:2019": frozenset({"d01", "d08"}),
    "year:2021..2022 Rosa": frozenset({"d06"}),
    "cotahuma case:c1 kind:note": frozenset({"d07"}),
    # numbers, names, nothing, everything
    "1976": frozenset({"d07"}),
    "rosa": frozenset({"d01", "d06"}),
    "nadaqueencontrar": frozenset(),
    "": ALL,
}
MATRIX_QUERIES = ("", "detencion", "tortur*", "Mamani~1", "arrest OR golpes", "NOT detencion")


def _full_scope() -> AccessScope:
    return AccessScope(frozenset(CASES), frozenset(CONSENTS))


def _in_scope(item_id: str, scope: AccessScope) -> bool:
    doc = BY_ID[item_id]
    return doc.case_id in scope.cases and bool(doc.consent & scope.consent_any)


def _facets(ids: frozenset[str]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = {n: Counter() for n in ("case", "kind", "language", "tag")}
    counts["year"] = Counter()
    for item_id in ids:
        doc = BY_ID[item_id]
        counts["case"][doc.case_id] += 1
        counts["kind"][doc.kind] += 1
        counts["language"][(doc.language or "und").split("-")[0]] += 1
        counts["year"][str(doc.created.year)] += 1
        for tag in doc.tags:
            counts["tag"][tag] += 1
    return {name: dict(counter) for name, counter in counts.items()}


def _ids(results: Results) -> frozenset[str]:
    return frozenset(hit.item_id for hit in results.hits)


STORES: dict[int, MemoryVocabularyStore] = {}  # id(adapter) -> its vocabulary store


def _tantivy(tmp: Path) -> Index:
    from search.adapters.tantivy_index import TantivyIndex

    store = MemoryVocabularyStore()
    adapter = TantivyIndex(tmp / "index", KEY, store)
    STORES[id(adapter)] = store
    return adapter


def _elasticsearch() -> Index:
    url = os.environ.get("TVAULT_TEST_ES_URL")
    if not url:
        from tests.services import unavailable

        unavailable("elasticsearch", "TVAULT_TEST_ES_URL is not set")
    from search.adapters.elasticsearch_index import ElasticsearchIndex

    store = MemoryVocabularyStore()
    try:
        adapter = ElasticsearchIndex(
            url, KEY, store, index_name=f"tvault-test-{uuid.uuid4().hex[:12]}"
        )
    except Exception as exc:
        from tests.services import unavailable

        unavailable("elasticsearch", f"cannot use {url}: {exc}")
    STORES[id(adapter)] = store
    return adapter


ADAPTERS = ["tantivy", pytest.param("elasticsearch", marks=pytest.mark.elasticsearch)]


def _adapter(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Index:
    return _tantivy(tmp_path_factory.mktemp(kind)) if kind == "tantivy" else _elasticsearch()


@pytest.fixture(scope="module", params=ADAPTERS)
def index(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Index]:
    adapter = _adapter(request.param, tmp_path_factory)
    adapter.index(CORPUS)
    adapter.commit()
    yield adapter
    if request.param == "elasticsearch":
        adapter.drop()  # type: ignore[attr-defined]
    adapter.close()


def test_counts_every_document(index: Index) -> None:
    assert index.count() == len(CORPUS)


@pytest.mark.parametrize("text", sorted(EXPECTED))
def test_query_finds_the_expected_items(index: Index, text: str) -> None:
    results = index.search(Query(text, _full_scope(), page_size=100))
    assert _ids(results) == EXPECTED[text]
    assert results.total == len(EXPECTED[text])
    assert results.facets == _facets(EXPECTED[text])


@pytest.mark.parametrize(
    ("cases", "consent"),
    [
        (frozenset(c), frozenset(s))
        for c in itertools.chain.from_iterable(
            itertools.combinations(CASES, n) for n in range(len(CASES) + 1)
        )
        for s in itertools.chain.from_iterable(
            itertools.combinations(CONSENTS, n) for n in range(len(CONSENTS) + 1)
        )
    ],
    ids=lambda v: "+".join(sorted(v)) or "none",
)
def test_scope_matrix_never_leaks(
    index: Index, cases: frozenset[str], consent: frozenset[str]
) -> None:
    # Every combination of granted cases x consent scopes: hits, totals and every facet count
    # equal what the scope allows, never more.
    scope = AccessScope(cases, consent)
    for text in MATRIX_QUERIES:
        allowed = frozenset(i for i in EXPECTED[text] if _in_scope(i, scope))
        results = index.search(Query(text, scope, page_size=100))
        assert _ids(results) == allowed, text
        assert results.total == len(allowed), text
        expected_facets = _facets(allowed)
        assert results.facets == expected_facets, text


def test_filters_narrow_within_the_scope(index: Index) -> None:
    scope = AccessScope(frozenset({"c1", "c2"}), frozenset(CONSENTS))
    # a case filter outside the scope finds nothing: filters never widen the scope
    assert index.search(Query("", scope, Filters(cases=frozenset({"c3"})))).total == 0
    filtered = index.search(
        Query(
            "",
            scope,
            Filters(
                kinds=frozenset({"testimony"}),
                languages=frozenset({"es"}),
                tags=frozenset({"detention"}),
                date_from=datetime(2019, 1, 1).date(),
                date_to=datetime(2019, 6, 30).date(),
            ),
        )
    )
    assert _ids(filtered) == {"d01"}


def test_empty_scope_returns_nothing(index: Index) -> None:
    for scope in (
        AccessScope(frozenset(), frozenset(CONSENTS)),
        AccessScope(frozenset(CASES), frozenset()),
        AccessScope(frozenset({"no-such-case"}), frozenset(CONSENTS)),
    ):
        results = index.search(Query("", scope))
        assert results.total == 0
        assert results.hits == []
        assert all(not counts for counts in results.facets.values())


def test_a_query_without_scope_is_refused(index: Index) -> None:
    with pytest.raises(ScopeRequiredError):
        Query("detencion", None)  # type: ignore[arg-type]
    with pytest.raises(ScopeRequiredError):
        index.search(None)  # type: ignore[arg-type]
    forged = Query("detencion", _full_scope())
    object.__setattr__(forged, "scope", None)  # bypass the constructor: the adapter still refuses
    with pytest.raises(ScopeRequiredError):
        index.search(forged)


def test_pages_cover_the_results_once(index: Index) -> None:
    seen: list[str] = []
    for page in (1, 2, 3):
        results = index.search(Query("", _full_scope(), page=page, page_size=3))
        assert results.total == len(CORPUS)
        seen.extend(hit.item_id for hit in results.hits)
    assert sorted(seen) == sorted(ALL)
    assert index.search(Query("", _full_scope(), page=4, page_size=3)).hits == []


def test_ranking_prefers_more_matches(index: Index) -> None:
    hits = index.search(Query("quispe OR cotahuma", _full_scope())).hits
    assert [h.item_id for h in hits] == ["d07", "d01"]
    assert hits[0].score > hits[1].score > 0


def test_hits_carry_structural_metadata(index: Index) -> None:
    (hit,) = index.search(Query("1976", _full_scope())).hits
    assert (hit.item_id, hit.case_id, hit.kind, hit.language) == ("d07", "c1", "note", None)
    (hit,) = index.search(Query("disappear", _full_scope())).hits
    assert (hit.case_id, hit.kind, hit.language) == ("c2", "testimony", "en")


def test_facets_can_be_skipped(index: Index) -> None:
    assert index.search(Query("detencion", _full_scope(), facets=False)).facets == {}


def test_bad_syntax_is_reported_with_its_position(index: Index) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        index.search(Query('detencion "golpes', _full_scope()))
    assert caught.value.position == 10


def test_replace_and_delete(index: Index) -> None:
    scope = _full_scope()
    extra = _doc("d99", "c3", "note", "es", "2023-01-01T00:00:00", set(), {"legal"}, "Torre")
    index.index([extra])
    index.commit()
    assert _ids(index.search(Query("torre", scope))) == {"d99"}
    index.index([_doc("d99", "c3", "note", "es", "2023-01-01T00:00:00", set(), {"legal"}, "Río")])
    index.commit()
    assert _ids(index.search(Query("torre", scope))) == set()
    assert _ids(index.search(Query("rio", scope))) == {"d99"}
    index.delete("d99")
    index.commit()
    assert _ids(index.search(Query("rio", scope))) == set()
    assert index.count() == len(CORPUS)


def test_pruning_forgets_the_words_of_deleted_items(index: Index) -> None:
    from search.vocabulary import unpack

    scope = _full_scope()
    gone = _doc("d98", "c3", "note", "es", "2023-01-01T00:00:00", set(), {"legal"}, "Zanahoriazul")
    index.index([gone])
    index.commit()
    assert _ids(index.search(Query("zanahoriaz*", scope))) == {"d98"}
    index.delete("d98")
    index.commit()
    assert index.prune_vocabulary() >= 1
    saved = STORES[id(index)].data
    assert saved is not None
    vocabulary, _anonymised = unpack(saved)
    assert vocabulary.prefix("zanahoriaz", 10) == set()
    assert vocabulary.prefix("detencion", 10) == {"detencion"}  # live words stay
    assert _ids(index.search(Query("Mamani~1", scope))) == EXPECTED["Mamani~1"]


def test_scope_parts_are_never_merged(index: Index) -> None:
    # A lawyer on c1 who is a therapist on c2: c1 items need `legal`, c2 items `therapy`.
    # Merging the parts would leak d02 (c1, therapy only) and d03/d08 would stay, d04 too.
    scope = (
        AccessScope(frozenset({"c1"}), frozenset({"legal"})),
        AccessScope(frozenset({"c2"}), frozenset({"therapy"})),
    )
    results = index.search(Query("", scope, page_size=100))
    assert _ids(results) == {"d01", "d07"}
    assert results.total == 2
    assert results.facets == _facets(frozenset({"d01", "d07"}))
    assert index.search(Query("", ())).total == 0


def _policy_matrix() -> list[tuple[str, tuple[str, ...]]]:
    from policies import roles

    return [
        (role, granted)
        for role in sorted(roles.ALL)
        for n in range(len(CASES) + 1)
        for granted in itertools.combinations(CASES, n)
    ]


@pytest.mark.parametrize(
    ("role", "granted"), _policy_matrix(), ids=lambda v: v if isinstance(v, str) else "+".join(v)
)
def test_policy_scopes_never_leak(index: Index, role: str, granted: tuple[str, ...]) -> None:
    # Every role x cases granted or not, through the real policy engine: the hits are exactly
    # what the scope's parts allow and never more than `decide` allows item by item; totals and
    # facet counts agree with the hits.
    import policies

    principal = policies.Principal(
        "someone", frozenset({role}), {case: frozenset({role}) for case in granted}
    )
    scope = policies.search_scope(principal, cases=CASES)
    parts = tuple(AccessScope(p.cases, p.consent_any, p.redact_identities) for p in scope.parts)
    allowed_by_decide = {
        d.item_id
        for d in CORPUS
        if policies.decide(
            principal,
            policies.actions.ITEM_SEARCH,
            policies.Resource(
                kind=policies.kinds.ITEM, case_id=d.case_id, item_id=d.item_id, consent=d.consent
            ),
        )
    }
    for text in MATRIX_QUERIES:
        in_parts = frozenset(i for i in EXPECTED[text] if any(_in_scope(i, part) for part in parts))
        results = index.search(Query(text, parts, page_size=100))
        assert _ids(results) == in_parts, text
        assert in_parts <= allowed_by_decide, text
        assert results.total == len(in_parts), text
        assert results.facets == _facets(in_parts), text


def test_pruning_waits_for_pending_changes(index: Index) -> None:
    from search import IndexBackendError

    pending = _doc("d97", "c3", "note", "es", "2023-01-01T00:00:00", set(), {"legal"}, "Pendiente")
    index.index([pending])
    with pytest.raises(IndexBackendError, match="commit"):
        index.prune_vocabulary()
    index.rollback()
    index.prune_vocabulary()
    assert _ids(index.search(Query("pendiente", _full_scope()))) == set()


REDACTION_PROBES = (
    "Quorv",
    "Quorv OR golpes",
    "golpes NOT Quorv",
    "quo*",
    "Quorx~1",
    '"declaró Quorv"',
    '"declaró ante"~1',
    "comisaría",
    '"testimonio de"',
    '"Quorv volvió"',
    "",
)
NAMED_PART = AccessScope(frozenset({"c1"}), frozenset({"advocacy_named"}))
REDACTED_PART = AccessScope(
    frozenset({"c1"}), frozenset({"advocacy_anonymised"}), redact_identities=True
)


def _world(name: str) -> list[IndexDocument]:
    """Redacted survivors called `name`; a named one and a plain mention of "Quorv" fixed."""
    docs = []
    for number, consent in enumerate(
        ({"advocacy_anonymised"}, {"advocacy_named"}, {"advocacy_anonymised"}, {"legal"})
    ):
        survivor = "Quorv" if "advocacy_named" in consent else name
        docs.append(
            IndexDocument(
                item_id=f"r{number}",
                case_id="c1",
                kind="testimony",
                language=(None, "es")[number % 2],
                created=datetime(2022, 3, 1, tzinfo=UTC),
                consent=frozenset(consent),
                text=f"{survivor} Mamani declaró ante el juez sobre los golpes. {survivor}.",
                identity=frozenset({survivor.lower(), "mamani"}),
                # Titles and notes follow the identity rule of the text (promise 11).
                metadata=(f"Testimonio de {survivor} Mamani", f"{survivor} volvió a la comisaría"),
            )
        )
    docs.append(
        IndexDocument(
            item_id="r9",
            case_id="c1",
            kind="note",
            language="es",
            created=datetime(2022, 3, 2, tzinfo=UTC),
            consent=frozenset({"advocacy_anonymised"}),
            text="El testigo Quorv vio los golpes.",
        )
    )
    return docs


@pytest.fixture(scope="module", params=ADAPTERS)
def worlds(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Index, Index]]:
    made = []
    for name in ("Quorv", "Zlatk"):
        adapter = _adapter(request.param, tmp_path_factory)
        adapter.index(_world(name))
        adapter.commit()
        made.append(adapter)
    yield made[0], made[1]
    for adapter in made:
        if request.param == "elasticsearch":
            adapter.drop()  # type: ignore[attr-defined]
        adapter.close()


def test_a_redacted_part_learns_nothing_of_identity_words(worlds: tuple[Index, Index]) -> None:
    # DESIGN.md promise 11: the redacted survivors are "Quorv" in one index and "Zlatk" in the
    # other; a principal under the obligation gets the same answer from both.
    quorv, zlatk = worlds
    for scope in (REDACTED_PART, (NAMED_PART, REDACTED_PART)):
        for text in REDACTION_PROBES:
            for page_size in (1, 2, 50):
                query = Query(text, scope, page_size=page_size)
                assert quorv.search(query) == zlatk.search(query), (text, page_size)
    # The name finds the plain mention, and the named item beside a redacted part, unscored.
    alone = quorv.search(Query("Quorv", REDACTED_PART, page_size=50))
    assert _ids(alone) == {"r9"}
    both = quorv.search(Query("Quorv", (NAMED_PART, REDACTED_PART), page_size=50))
    assert {(h.item_id, h.score > 0) for h in both.hits} == {("r1", False), ("r9", True)}
    # Without the obligation, the redacted survivors are found by name: the worlds differ.
    legal = AccessScope(frozenset({"c1"}), frozenset({"legal"}))
    assert _ids(quorv.search(Query("Quorv", legal))) == {"r3"}
    assert _ids(zlatk.search(Query("Quorv", legal))) == set()


def _titled(
    item_id: str, text: str, *metadata: str, tags: frozenset[str] = frozenset()
) -> IndexDocument:
    return IndexDocument(
        item_id=item_id,
        case_id="c1",
        kind="media" if not text else "testimony",
        language="es",
        created=datetime(2023, 4, 1, tzinfo=UTC),
        consent=frozenset({"legal"}),
        text=text,
        metadata=metadata,
    )


@pytest.mark.parametrize("kind", ADAPTERS)
def test_titles_notes_and_tags_are_searched_beside_the_text(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, kind: str
) -> None:
    adapter = _adapter(kind, tmp_path_factory)
    request.addfinalizer(adapter.close)
    if kind == "elasticsearch":
        request.addfinalizer(adapter.drop)  # type: ignore[attr-defined]
    adapter.index(
        [
            # A video: no text at all, found by its title and notes.
            _titled("m1", "", "Entrevista en Cochabamba", "grabada por la comisión"),
            _titled("t1", "El relato termina aquí", "Audiencia pública", "sin notas"),
        ]
    )
    adapter.commit()
    scope = AccessScope(frozenset({"c1"}), frozenset({"legal"}))

    def found(text: str) -> frozenset[str]:
        return _ids(adapter.search(Query(text, scope, page_size=50)))

    assert found("Cochabamba") == {"m1"}
    assert found("comision") == {"m1"}  # notes, accents folded
    assert found('"entrevista en cochabamba"') == {"m1"}
    assert found("audiencia AND relato") == {"t1"}
    # Each value stands alone: no phrase joins the end of the text to the title.
    assert found('"termina aquí audiencia"') == set()
    assert found('"cochabamba grabada"') == set()
    assert found("") == {"m1", "t1"}
