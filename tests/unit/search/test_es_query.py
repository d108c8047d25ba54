"""The Elasticsearch query DSL built from a plan: the scope is always a top-level filter."""

from __future__ import annotations

from search import AccessScope, MemoryVocabularyStore, Query
from search._core import Core
from search.adapters.elasticsearch_index import compile_plan, load_mapping

SCOPE = AccessScope(frozenset({"c1", "c2"}), frozenset({"legal"}))


def _dsl(text: str) -> dict[str, object]:
    core = Core(b"k" * 32, MemoryVocabularyStore())
    core.content("tortura torturado Mamani", "es")
    return compile_plan(core.planner.plan(Query(text, SCOPE)))


def test_scope_is_a_filter_of_every_query() -> None:
    part = {
        "bool": {
            "filter": [{"terms": {"case_id": ["c1", "c2"]}}, {"terms": {"consent": ["legal"]}}]
        }
    }
    for text in ("", "tortura", "tortur* OR -Mamani~1", '"golpes eléctricos"', "NOT x"):
        assert part in _dsl(text)["bool"]["filter"]  # type: ignore[index]


def test_scope_parts_stay_apart() -> None:
    core = Core(b"k" * 32, MemoryVocabularyStore())
    scope = (
        AccessScope(frozenset({"A"}), frozenset({"legal"})),
        AccessScope(frozenset({"B"}), frozenset({"therapy"})),
        AccessScope(frozenset(), frozenset({"research"})),  # empty part: dropped
    )
    dsl = compile_plan(core.planner.plan(Query("", scope)))
    assert dsl["bool"]["filter"] == [  # type: ignore[index]
        {
            "bool": {
                "should": [
                    {"bool": {"filter": [{"terms": {"case_id": [c]}}, {"terms": {"consent": [s]}}]}}
                    for c, s in (("A", "legal"), ("B", "therapy"))
                ],
                "minimum_should_match": 1,
            }
        }
    ]


def test_content_is_queried_by_digest_only() -> None:
    text = repr(_dsl('tortura "golpes eléctricos" Mamani~1 tort*')).lower()
    for word in ("tortur", "golpe", "electric", "mamani"):
        assert word not in text


def test_mapping_keeps_content_unstored() -> None:
    mapping = load_mapping()
    mappings = mapping["template"]["mappings"]
    assert mappings["_source"] == {"excludes": ["content", "content_anonymised"]}
    for name in ("content", "content_anonymised"):
        assert mappings["properties"][name]["store"] is False
        assert mappings["properties"][name]["analyzer"] == "whitespace"
    # tantivy leaves one position between the values of a field: phrases agree across engines.
    assert mappings["properties"]["content_anonymised"]["position_increment_gap"] == 1
    assert mappings["properties"]["content"]["position_increment_gap"] == 1  # title, text
    assert mappings["dynamic"] == "strict"
    assert isinstance(mapping["version"], int)


NAMED = AccessScope(frozenset({"c1"}), frozenset({"advocacy_named"}))
ANONYMISED = AccessScope(
    frozenset({"c1"}), frozenset({"advocacy_anonymised"}), redact_identities=True
)
QUERIES = ("", "tortura", "Quorv", "quo*", "Quorb~1", '"tortura Quorv"', "NOT Quorv", "a OR -b")


def _redaction_core() -> Core:
    core = Core(b"k" * 32, MemoryVocabularyStore())
    core.content("tortura torturado Mamani", "es")
    # "quorv" is met only as an identity word: it is in the full vocabulary only.
    core.content("Quorv declaró tortura", "es", frozenset({"quorv"}))
    return core


def _paths(node: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every path of keys from the root of `node` to a key naming a content field."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("content", "content_anonymised"):
                found.append((*path, key))
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for value in node:
            found += _paths(value, path)
    return found


def test_a_redacted_principal_never_queries_the_identity_bearing_field() -> None:
    core = _redaction_core()
    for text in QUERIES:
        dsl = compile_plan(core.planner.plan(Query(text, ANONYMISED)))
        assert all(path[-1] == "content_anonymised" for path in _paths(dsl)), text


def test_beside_a_redacted_part_content_only_filters_and_every_score_is_anonymised() -> None:
    core = _redaction_core()
    for text in QUERIES:
        dsl = compile_plan(core.planner.plan(Query(text, (NAMED, ANONYMISED))))
        for path in _paths(dsl):
            if path[-1] == "content":
                # Only inside a filter context: it decides matches, never scores.
                assert "filter" in path, (text, path)
    # And the score comes from the identity-free field, outside any filter context.
    dsl = compile_plan(core.planner.plan(Query("tortura", (NAMED, ANONYMISED))))
    scoring = [p for p in _paths(dsl) if "filter" not in p and "must_not" not in p]
    assert scoring and all(p[-1] == "content_anonymised" for p in scoring)


def test_a_redacted_principal_expands_prefix_and_fuzzy_without_identity_words() -> None:
    core = _redaction_core()
    quorv = core.digester.digest("quorv")
    plain = SCOPE
    for text in ("quo*", "Quorb~1"):
        assert quorv in repr(compile_plan(core.planner.plan(Query(text, plain)))), text
        redacted = compile_plan(core.planner.plan(Query(text, ANONYMISED)))
        assert quorv not in repr(redacted), text
        if text.endswith("*"):  # (a fuzzy term also looks for the word as typed)
            assert {"match_none": {}} in redacted["bool"]["must"], text  # type: ignore[index]
        # Beside a named part, the identity word finds named items (unscored) only.
        mixed = compile_plan(core.planner.plan(Query(text, (NAMED, ANONYMISED))))
        assert quorv in repr(mixed), text
