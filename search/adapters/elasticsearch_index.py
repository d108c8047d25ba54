"""The production Index adapter: Elasticsearch 8/9 through the official `elasticsearch` client.

The index template and mapping are versioned in `search/es_mapping.json`. The content fields
hold only the digests `search.analysis` made, indexed with positions, excluded from `_source`
and not stored, so nothing on the cluster (not even `_recovery_source`, which keeps excluded
source for a while) holds readable text. `content` takes one value for the text and one for each
metadata value (title, notes, tags); `content_anonymised` (the same without identity words)
one value per run between identity words; both with `position_increment_gap: 1` as tantivy
leaves between values, so both engines find the same phrases.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterable
from importlib import resources
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError

from search import _plan as p
from search._core import Core, check_query, created_utc, hit_language, language_of
from search.errors import IndexBackendError, IndexFormatError, IndexKeyMismatchError
from search.ports import (
    FACET_NAMES,
    Hit,
    Index,
    IndexDocument,
    Query,
    Results,
    VocabularyStore,
)

FACET_SIZE = 1000
BULK_OPERATIONS = 1000
PRUNE_BATCH = 500
_STORED = [p.ITEM_ID, p.CASE_ID, p.KIND, p.LANGUAGE]


def load_mapping() -> dict[str, Any]:
    """Return the versioned index template shipped in `search/es_mapping.json`."""
    text = resources.files("search").joinpath("es_mapping.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


class ElasticsearchIndex:
    """An `Index` in the Elasticsearch index `index_name`, with digests keyed by `key`.

    `client` is an `Elasticsearch` client or a URL. Installs the index template and creates the
    index if missing. Raises `IndexFormatError` if the existing index has another mapping
    version (or the vocabulary another format), `IndexKeyMismatchError` if it was built with
    another key, `IndexBackendError` if the cluster cannot be reached. With `rebuild` (before a
    reindex), an index of another mapping version is deleted and made again instead; a key
    mismatch is still refused.
    """

    def __init__(
        self,
        client: Elasticsearch | str,
        key: bytes,
        vocabulary: VocabularyStore,
        *,
        index_name: str = "tvault-items",
        rebuild: bool = False,
    ) -> None:
        self._core = Core(key, vocabulary, rebuild=rebuild)
        self._rebuild = rebuild
        self._client = Elasticsearch(client) if isinstance(client, str) else client
        self._owns_client = isinstance(client, str)
        self._name = index_name
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._uncommitted = False
        try:
            self._ensure()
        except (ApiError, TransportError) as exc:
            if "compatible-with" in str(exc):
                # elasticsearch-py 9 sends `compatible-with=9`, which 8.x servers refuse; the
                # 8.x client works with 8.x and 9.x servers (the server accepts N-1).
                raise IndexBackendError(
                    "this Elasticsearch server refuses the 9.x client's API version: install "
                    "'elasticsearch>=8.13,<9' to talk to an 8.x server"
                ) from exc
            raise IndexBackendError(f"Elasticsearch index {index_name}: {exc}") from exc

    def _ensure(self) -> None:
        mapping = load_mapping()
        version = int(mapping["version"])
        key_check = self._core.digester.key_check()
        template = mapping["template"]
        self._client.indices.put_index_template(
            name=self._name,
            index_patterns=[self._name],
            version=version,
            # Above catch-all templates: two templates of equal priority matching one index
            # name are refused by Elasticsearch.
            priority=int(mapping["priority"]),
            template=template,
            meta={"description": mapping["description"]},
        )
        if not self._client.indices.exists(index=self._name):
            self._client.indices.create(
                index=self._name,
                mappings={"_meta": {"tvault_mapping_version": version, "key_check": key_check}},
            )
        live = self._client.indices.get_mapping(index=self._name)[self._name]["mappings"]
        meta = live.get("_meta", {})
        if meta.get("key_check") != key_check:
            raise IndexKeyMismatchError(f"index {self._name} was built with another index key")
        if meta.get("tvault_mapping_version") != version:
            if not self._rebuild:
                raise IndexFormatError(
                    f"index {self._name} has mapping version"
                    f" {meta.get('tvault_mapping_version')}, this version needs {version}:"
                    " run `tvault reindex` to rebuild it"
                )
            self._client.indices.delete(index=self._name)
            self._client.indices.create(
                index=self._name,
                mappings={"_meta": {"tvault_mapping_version": version, "key_check": key_check}},
            )

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except (ApiError, TransportError) as exc:
            raise IndexBackendError(f"Elasticsearch {what} on {self._name}: {exc}") from exc

    def index(self, docs: Iterable[IndexDocument]) -> int:
        """Queue `docs` for indexing (sent in bulk batches); visible after `commit`."""
        count = 0
        with self._lock:
            self._uncommitted = True
            for doc in docs:
                created = created_utc(doc)
                analysed = self._core.document(doc)
                self._pending.append({"index": {"_index": self._name, "_id": doc.item_id}})
                self._pending.append(
                    {
                        p.ITEM_ID: doc.item_id,
                        p.CASE_ID: doc.case_id,
                        p.KIND: doc.kind,
                        p.LANGUAGE: language_of(doc),
                        p.TAGS: sorted(doc.tags),
                        p.CONSENT: sorted(doc.consent),
                        p.CREATED: created.isoformat(),
                        p.YEAR: created.year,
                        p.CONTENT: list(analysed.full),
                        p.ANONYMISED: list(analysed.anonymised),
                    }
                )
                count += 1
                if len(self._pending) >= 2 * BULK_OPERATIONS:
                    self._flush()
        return count

    def delete(self, item_id: str) -> None:
        """Queue the removal of `item_id`; effective after `commit`."""
        with self._lock:
            self._pending.append({"delete": {"_index": self._name, "_id": item_id}})
            self._uncommitted = True

    def _flush(self) -> None:
        if not self._pending:
            return
        operations, self._pending = self._pending, []
        answer = self._call("bulk", self._client.bulk, operations=operations)
        if answer.get("errors"):
            failed = []
            for item in answer["items"]:
                for action, result in item.items():
                    missing = action == "delete" and result.get("status") == 404
                    if result.get("error") is not None and not missing:
                        failed.append(
                            f"{action} {result.get('_id')}: {result['error'].get('type')}"
                        )
            if failed:
                raise IndexBackendError("bulk request failed for " + "; ".join(failed[:10]))

    def commit(self) -> None:
        """Save the vocabulary, send queued operations and refresh the index."""
        with self._lock:
            self._core.save_vocabulary()
            self._flush()
            self._call("refresh", self._client.indices.refresh, index=self._name)
            self._uncommitted = False

    def rollback(self) -> None:
        """Drop queued operations not yet sent (sent batches cannot be taken back)."""
        with self._lock:
            self._pending.clear()
            self._uncommitted = False

    def clear(self) -> None:
        """Remove every document and the vocabulary."""
        with self._lock:
            self._pending.clear()
            self._core.clear_vocabulary()
            self._call(
                "delete_by_query",
                self._client.delete_by_query,
                index=self._name,
                query={"match_all": {}},
                refresh=True,
                conflicts="proceed",
            )
            self._uncommitted = False

    def prune_vocabulary(self) -> int:
        """Forget the words no searchable document holds; saves the vocabulary. Raises
        `IndexBackendError` while changes are pending (their words would be lost)."""

        def live(field: str, digests: list[str]) -> list[str]:
            alive: list[str] = []
            for start in range(0, len(digests), PRUNE_BATCH):
                batch = digests[start : start + PRUNE_BATCH]
                searches: list[dict[str, Any]] = []
                for digest in batch:
                    searches.append({"index": self._name})
                    searches.append(
                        {"size": 0, "track_total_hits": 1, "query": {"term": {field: digest}}}
                    )
                answer = self._call("msearch", self._client.msearch, searches=searches)
                for digest, response in zip(batch, answer["responses"], strict=True):
                    if "error" in response:
                        raise IndexBackendError(f"msearch failed: {response['error'].get('type')}")
                    if response["hits"]["total"]["value"] > 0:
                        alive.append(digest)
            return alive

        with self._lock:
            if self._uncommitted:
                raise IndexBackendError("commit or roll back before pruning the vocabulary")
            return self._core.prune_vocabulary(live)

    def count(self) -> int:
        """Return the number of searchable documents."""
        return int(self._call("count", self._client.count, index=self._name)["count"])

    def drop(self) -> None:
        """Delete the index and its template (tests, or moving to a new mapping version)."""
        with contextlib.suppress(NotFoundError):
            self._client.indices.delete(index=self._name)
        with contextlib.suppress(NotFoundError):
            self._client.indices.delete_index_template(name=self._name)

    def close(self) -> None:
        """Close the client if this adapter made it."""
        if self._owns_client:
            self._client.close()

    def search(self, query: Query) -> Results:
        """Run `query` inside its scope (see `Index.search`)."""
        query = check_query(query)
        if not query.parts:
            return Results.empty(query)
        body = compile_plan(self._core.plan(query))
        kwargs: dict[str, Any] = {
            "index": self._name,
            "query": body,
            "from_": query.offset,
            "size": query.page_size,
            "track_total_hits": True,
            "source": _STORED,
        }
        if query.facets:
            kwargs["aggs"] = {
                name: {"terms": {"field": p.FACET_FIELDS[name], "size": FACET_SIZE}}
                for name in FACET_NAMES
            }
        answer = self._call("search", self._client.search, **kwargs)
        hits = []
        for found in answer["hits"]["hits"]:
            source = found["_source"]
            hits.append(
                Hit(
                    item_id=source[p.ITEM_ID],
                    score=float(found["_score"] or 0.0),
                    case_id=source[p.CASE_ID],
                    kind=source[p.KIND],
                    language=hit_language(source.get(p.LANGUAGE)),
                )
            )
        facets: dict[str, dict[str, int]] = {}
        if query.facets:
            for name in FACET_NAMES:
                buckets = answer["aggregations"][name]["buckets"]
                facets[name] = {str(b["key"]): int(b["doc_count"]) for b in buckets}
        total = int(answer["hits"]["total"]["value"])
        return Results(total, hits, facets, query.page, query.page_size)


def compile_plan(plan: p.Plan) -> dict[str, Any]:
    """Return the Elasticsearch query DSL for `plan`."""
    if isinstance(plan, p.Terms):
        digests = sorted(plan.digests)
        if not plan.scored:
            return {"constant_score": {"filter": {"terms": {plan.field: digests}}, "boost": 1.0}}
        if len(digests) == 1:
            return {"term": {plan.field: digests[0]}}
        return _any([{"term": {plan.field: d}} for d in digests])
    if isinstance(plan, p.Phrase):
        phrases = [
            {"match_phrase": {plan.field: {"query": " ".join(words), "slop": plan.slop}}}
            for words in plan.variants
        ]
        return phrases[0] if len(phrases) == 1 else _any(phrases)
    if isinstance(plan, p.Field):
        if not plan.values:
            return {"match_none": {}}
        return {"terms": {plan.field: sorted(plan.values)}}
    if isinstance(plan, p.Created):
        bounds: dict[str, str] = {}
        if plan.start is not None:
            bounds["gte"] = plan.start.isoformat(timespec="milliseconds")
        if plan.end is not None:
            bounds["lte"] = plan.end.isoformat(timespec="milliseconds")
        return {"range": {p.CREATED: bounds}}
    if isinstance(plan, p.All):
        return {"match_all": {}}
    if isinstance(plan, p.Nothing):
        return {"match_none": {}}
    if isinstance(plan, p.Or):
        return _any([compile_plan(c) for c in plan.children])
    clauses: dict[str, Any] = {}
    if plan.must:
        clauses["must"] = [compile_plan(c) for c in plan.must]
    if plan.filter:
        clauses["filter"] = [compile_plan(c) for c in plan.filter]
    if plan.must_not:
        clauses["must_not"] = [compile_plan(c) for c in plan.must_not]
    if plan.should:
        # Beside `must` or `filter`, `should` is optional (minimum_should_match 0): it only
        # adds its score. The planner never makes a `should` without one of them.
        clauses["should"] = [compile_plan(c) for c in plan.should]
        clauses["minimum_should_match"] = 0
    return {"bool": clauses}


def _any(queries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"bool": {"should": queries, "minimum_should_match": 1}}


def _is_an_index(adapter: ElasticsearchIndex) -> Index:
    """Never called: mypy checks here that `ElasticsearchIndex` satisfies the `Index` port."""
    return adapter
