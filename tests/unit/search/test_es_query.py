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
    assert mappings["_source"] == {"excludes": ["content"]}
    assert mappings["properties"]["content"]["store"] is False
    assert mappings["properties"]["content"]["analyzer"] == "whitespace"
    assert mappings["dynamic"] == "strict"
    assert isinstance(mapping["version"], int)
