"""The vocabulary shared through a `VocabularyStore`: several index objects (as several processes
would) on one tantivy directory and one store see each other's words without reopening; a change
lost with its transaction is sent again; a prune or a compaction reaches every reader."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from search import AccessScope, IndexDocument, MemoryVocabularyStore, Query, _core
from search._core import COMPACT_AFTER
from search.adapters.tantivy_index import TantivyIndex

KEY = b"\x05" * 32
SCOPE = AccessScope(frozenset({"case-1"}), frozenset({"legal"}))


def _doc(item_id: str, text: str) -> IndexDocument:
    created = datetime(2021, 5, 6, tzinfo=UTC)
    return IndexDocument(
        item_id, "case-1", "testimony", "es", created, frozenset(), frozenset({"legal"}), text
    )


def _ids(index: TantivyIndex, text: str) -> list[str]:
    return sorted(h.item_id for h in index.search(Query(text, SCOPE)).hits)


class LosingStore(MemoryVocabularyStore):
    """Drops the next append (or snapshot), as a transaction that rolled back after the engine
    committed."""

    lose_next = False
    lose_snapshot = False

    def append(self, change: bytes) -> None:
        if self.lose_next:
            self.lose_next = False
            return
        super().append(change)

    def replace(self, snapshot: bytes, based_on: int | None) -> None:
        if self.lose_snapshot:
            self.lose_snapshot = False
            return
        super().replace(snapshot, based_on)


def test_each_index_finds_the_words_the_others_indexed(tmp_path: Path) -> None:
    store = MemoryVocabularyStore()
    server, worker = (TantivyIndex(tmp_path, KEY, store) for _ in range(2))
    try:
        worker.index([_doc("w", "El capitán Mamani ordenó la tortura")])
        worker.commit()
        server.index([_doc("s", "Declaró que Mamany lo torturaron en el sótano")])
        server.commit()
        for index in (server, worker):
            assert _ids(index, "Mamani~1") == ["s", "w"]
            assert _ids(index, "tortur*") == ["s", "w"]
            assert _ids(index, "sota*") == ["s"]
    finally:
        server.close()
        worker.close()


def test_a_lost_change_is_sent_again_with_the_next_commit(tmp_path: Path) -> None:
    store = LosingStore()
    writer = TantivyIndex(tmp_path, KEY, store)
    writer.index([_doc("a", "Quispe declaró")])
    store.lose_next = True
    writer.commit()
    reader = TantivyIndex(tmp_path, KEY, store)
    assert _ids(reader, "Quisp*") == []  # the words never reached the store
    writer.index([_doc("b", "otro testimonio")])
    writer.commit()
    assert _ids(reader, "Quisp*") == ["a"]
    assert _ids(reader, "testimo*") == ["b"]
    writer.close()
    reader.close()


def test_a_lost_snapshot_leaves_its_words_to_the_next_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_core, "COMPACT_AFTER", 2)
    store = LosingStore()
    writer = TantivyIndex(tmp_path, KEY, store)
    for n, text in enumerate(("uno", "dos")):
        writer.index([_doc(f"i{n}", text)])
        writer.commit()
    writer.index([_doc("q", "Quispe declaró")])
    store.lose_snapshot = True  # the compaction's transaction rolls back
    writer.commit()
    writer.index([_doc("c", "cuatro")])
    writer.commit()  # an ordinary change again: it carries the lost words too
    assert not any(entry[2] for entry in store.log)
    reader = TantivyIndex(tmp_path, KEY, store)
    assert _ids(reader, "Quisp*") == ["q"]
    assert _ids(reader, "cuat*") == ["c"]
    writer.close()
    reader.close()


def test_a_prune_in_one_process_reaches_the_others(tmp_path: Path) -> None:
    store = MemoryVocabularyStore()
    one, other = (TantivyIndex(tmp_path, KEY, store) for _ in range(2))
    one.index([_doc("a", "Huarachi declaró"), _doc("b", "Condori declaró")])
    one.commit()
    assert _ids(other, "Huarach*") == ["a"]
    one.delete("a")
    one.commit()
    assert one.prune_vocabulary() >= 1
    # The other reads the snapshot: the removed item's words are gone from its memory too.
    other._core.sync()
    assert other._core.vocabulary.prefix("huarach", 10) == set()
    assert other._core.vocabulary.prefix("condor", 10) == {"condori"}
    assert _ids(other, "Condor*") == ["b"]
    one.close()
    other.close()


def test_many_commits_are_compacted_into_a_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A smaller threshold than the product's (`COMPACT_AFTER` commits of a tantivy index take
    # seconds); the same path: a snapshot after that many changes.
    assert COMPACT_AFTER > 24
    monkeypatch.setattr(_core, "COMPACT_AFTER", 24)
    store = MemoryVocabularyStore()
    index = TantivyIndex(tmp_path, KEY, store)
    for n in range(24 + 5):
        index.index([_doc(f"i{n}", f"palabra{n:04d}x")])
        index.commit()
    index.index([_doc("last", "Mamani")])
    index.commit()
    assert sum(1 for entry in store.log if entry[2]) == 1  # one snapshot
    assert len(store.log) < 10  # and the few changes after it
    fresh = TantivyIndex(tmp_path, KEY, store)
    assert len(fresh.search(Query("palabra*", SCOPE, page_size=100)).hits) == 24 + 5
    assert _ids(fresh, "Mamany~1") == ["last"]  # a change after the snapshot
    index.close()
    fresh.close()
