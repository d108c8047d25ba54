"""The Elasticsearch adapter against a real server (`TVAULT_TEST_ES_URL`): no text comes back."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from search import (
    AccessScope,
    IndexDocument,
    IndexKeyMismatchError,
    MemoryVocabularyStore,
    Query,
)
from tests.services import unavailable

pytestmark = pytest.mark.elasticsearch

KEY = b"\x07" * 32
MARKERS = ("Wankarani", "Tupakatari", "sótano")
TEXT = "Me llevaron al sótano. El capitán Wankarani y Tupakatari dirigían los interrogatorios."


@pytest.fixture
def es_url() -> str:
    url = os.environ.get("TVAULT_TEST_ES_URL")
    if not url:
        unavailable("elasticsearch", "TVAULT_TEST_ES_URL is not set")
    return url


@pytest.fixture
def adapter(es_url: str) -> Iterator[Any]:
    from search.adapters.elasticsearch_index import ElasticsearchIndex

    name = f"tvault-test-{uuid.uuid4().hex[:12]}"
    try:
        index = ElasticsearchIndex(es_url, KEY, MemoryVocabularyStore(), index_name=name)
    except Exception as exc:
        unavailable("elasticsearch", f"cannot use {es_url}: {exc}")
    doc = IndexDocument(
        "item-1",
        "case-1",
        "testimony",
        "es",
        datetime(2020, 1, 2, tzinfo=UTC),
        frozenset(),
        frozenset({"legal"}),
        TEXT,
    )
    index.index([doc])
    index.commit()
    yield index
    index.drop()
    index.close()


def _assert_no_marker(answer: object) -> None:
    body = json.dumps(getattr(answer, "body", answer), ensure_ascii=False).lower()
    for marker in MARKERS:
        assert marker.lower() not in body
    assert "sotano" not in body


def test_text_cannot_be_fetched_back(adapter: Any) -> None:
    client, name = adapter._client, adapter._name
    scope = AccessScope(frozenset({"case-1"}), frozenset({"legal"}))
    assert [h.item_id for h in adapter.search(Query("wankarani", scope)).hits] == ["item-1"]

    document = client.get(index=name, id="item-1", stored_fields="content,item_id")
    assert "content" not in document.get("fields", {})
    _assert_no_marker(document)
    source = client.get(index=name, id="item-1")["_source"]
    assert "content" not in source
    _assert_no_marker(source)
    found = client.search(index=name, query={"match_all": {}}, stored_fields=["*"], source=True)
    for hit in found["hits"]["hits"]:
        assert "content" not in hit.get("_source", {})
        assert "content" not in hit.get("fields", {})
    _assert_no_marker(found)
    vectors = client.termvectors(index=name, id="item-1", fields=["content"])
    _assert_no_marker(vectors)


def test_live_mapping_keeps_content_out_of_source(adapter: Any) -> None:
    mapping = adapter._client.indices.get_mapping(index=adapter._name)[adapter._name]["mappings"]
    assert mapping["_source"]["excludes"] == ["content", "content_anonymised"]
    content = mapping["properties"]["content"]
    assert content.get("store", False) is False
    assert content["analyzer"] == "whitespace"
    assert content["index_options"] == "positions"
    assert content["position_increment_gap"] == 1  # as tantivy, between title and text
    assert mapping["_meta"]["tvault_mapping_version"] == 3


def test_reopening_with_another_key_is_refused(adapter: Any, es_url: str) -> None:
    from search.adapters.elasticsearch_index import ElasticsearchIndex

    with pytest.raises(IndexKeyMismatchError):
        ElasticsearchIndex(es_url, b"\x08" * 32, MemoryVocabularyStore(), index_name=adapter._name)
