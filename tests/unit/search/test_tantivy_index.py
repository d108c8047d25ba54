"""The tantivy adapter: no readable text on disk, persistence, keys, rollback and limits."""

from __future__ import annotations

import itertools
import re
import string
from datetime import UTC, datetime
from pathlib import Path

import pytest
import tantivy

from search import (
    AccessScope,
    IndexDocument,
    IndexFormatError,
    IndexKeyMismatchError,
    MemoryVocabularyStore,
    Query,
    QueryTooBroadError,
)
from search.adapters.tantivy_index import TantivyIndex
from search.analysis import fold, term

KEY = b"\x01" * 32
SCOPE = AccessScope(frozenset({"case-1"}), frozenset({"legal"}))
MARKERS = ("Wankarani", "Tupakatari", "sótano", "Chuquimia")
TEXT = (
    "Me llevaron al sótano de la comisaría. El capitán Wankarani y el sargento Tupakatari "
    "dirigían los interrogatorios. Chuquimia also testified that Wankarani gave the orders."
)
CANARY_KIND = "canarykindqx"


def _doc(item_id: str = "item-1", text: str = TEXT, kind: str = "testimony") -> IndexDocument:
    return IndexDocument(
        item_id,
        "case-1",
        kind,
        "es",
        datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC),
        frozenset({"detention"}),
        frozenset({"legal"}),
        text,
    )


def _ids(index: TantivyIndex, text: str) -> list[str]:
    return [h.item_id for h in index.search(Query(text, SCOPE)).hits]


def _forms(marker: str) -> set[bytes]:
    lowered = marker.lower()
    forms = {marker, lowered, fold(lowered), term(lowered, "es"), term(lowered, "en")}
    return {f.encode() for f in forms} | {f.encode("utf-16-le") for f in forms}


def _all_bytes(path: Path) -> bytes:
    return b"".join(f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file())


def test_the_index_directory_holds_no_readable_text(tmp_path: Path) -> None:
    store = MemoryVocabularyStore()
    index = TantivyIndex(tmp_path, KEY, store)
    index.index([_doc(), _doc("item-2", "Wankarani otra vez", CANARY_KIND)])
    index.commit()
    assert sorted(_ids(index, "wankarani")) == ["item-1", "item-2"]
    index.close()

    raw = _all_bytes(tmp_path).lower()
    # The scan can see what is stored in the clear (structural fields): it is not blind.
    assert CANARY_KIND.encode() in raw
    for marker in MARKERS:
        for form in _forms(marker):
            assert form.lower() not in raw, (marker, form)
    assert b"tvault-vocabulary" not in raw  # the vocabulary goes to its (sealed) store only
    assert store.data is not None and store.data.startswith(b"tvault-vocabulary")


def test_the_engine_api_gives_back_no_text(tmp_path: Path) -> None:
    index = TantivyIndex(tmp_path, KEY, MemoryVocabularyStore())
    index.index([_doc()])
    index.commit()
    index.close()

    engine = tantivy.Index.open(str(tmp_path))
    searcher = engine.searcher()
    found = searcher.search(tantivy.Query.all_query(), 10)
    for _score, address in found.hits:
        stored = searcher.doc(address).to_dict()
        assert "content" not in stored
        assert set(stored) == {"item_id", "case_id", "kind", "language"}
    for field in ("content", "content_anonymised"):
        content_terms = [t for t, _ in searcher.terms_with_prefix(field, "")]
        assert content_terms, f"the {field} field is indexed"
        assert all(re.fullmatch(r"[a-z2-7]{16}", t) for t in content_terms)
        for marker in MARKERS:
            assert searcher.doc_freq(field, term(marker.lower(), "es")) == 0


def test_reopened_index_searches_words_prefixes_and_names(tmp_path: Path) -> None:
    store = MemoryVocabularyStore()
    index = TantivyIndex(tmp_path, KEY, store)
    index.index([_doc()])
    index.commit()
    index.close()

    again = TantivyIndex(tmp_path, KEY, store)
    assert again.count() == 1
    assert _ids(again, "sotano") == ["item-1"]
    assert _ids(again, "interrogat*") == ["item-1"]
    assert _ids(again, "Wankarany~1") == ["item-1"]
    assert _ids(again, '"capitán wankarani"') == ["item-1"]
    again.index([_doc("item-2", "nuevo testimonio")])
    again.commit()
    assert _ids(again, "testimonio") == ["item-2"]
    again.close()


def test_another_key_or_a_foreign_directory_is_refused(tmp_path: Path) -> None:
    TantivyIndex(tmp_path / "ix", KEY, MemoryVocabularyStore()).close()
    with pytest.raises(IndexKeyMismatchError):
        TantivyIndex(tmp_path / "ix", b"\x02" * 32, MemoryVocabularyStore())
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "file").write_bytes(b"x")
    with pytest.raises(IndexFormatError):
        TantivyIndex(tmp_path / "other", KEY, MemoryVocabularyStore())


@pytest.mark.parametrize("older", [1, 2])
def test_an_index_of_the_older_format_is_refused_then_rebuilt(tmp_path: Path, older: int) -> None:
    # Format 1 had no identity-free field: searching it would let names through redaction.
    # Format 2 had no titles, notes nor tags: a media item would silently never be found.
    store = MemoryVocabularyStore()
    index = TantivyIndex(tmp_path, KEY, store)
    index.index([_doc()])
    index.commit()
    index.close()
    meta = tmp_path / "tvault-index.json"
    meta.write_text(meta.read_text("utf-8").replace('"format": 3', f'"format": {older}'), "utf-8")
    with pytest.raises(IndexFormatError, match="tvault reindex"):
        TantivyIndex(tmp_path, KEY, store)
    with pytest.raises(IndexKeyMismatchError):  # rebuilding never overrides another key
        TantivyIndex(tmp_path, b"\x02" * 32, store, rebuild=True)
    rebuilt = TantivyIndex(tmp_path, KEY, store, rebuild=True)
    assert rebuilt.count() == 0
    rebuilt.index([_doc()])
    rebuilt.commit()
    rebuilt.close()
    assert _ids(TantivyIndex(tmp_path, KEY, store), "sotano") == ["item-1"]


def test_rollback_and_clear(tmp_path: Path) -> None:
    store = MemoryVocabularyStore()
    index = TantivyIndex(tmp_path, KEY, store)
    index.index([_doc()])
    index.rollback()
    index.commit()
    assert index.count() == 0
    index.index([_doc()])
    index.commit()
    assert index.count() == 1
    index.clear()
    assert index.count() == 0
    assert _ids(index, "sot*") == []
    assert store.data is not None and b"sotano" not in store.data
    index.close()


def test_naive_dates_are_refused(tmp_path: Path) -> None:
    index = TantivyIndex(tmp_path, KEY, MemoryVocabularyStore())
    naive = IndexDocument("i", "case-1", "k", "es", datetime(2020, 1, 1), text="x")
    with pytest.raises(ValueError, match="time zone"):
        index.index([naive])
    index.close()


def test_a_prefix_that_expands_too_far_is_refused(tmp_path: Path) -> None:
    index = TantivyIndex(tmp_path, KEY, MemoryVocabularyStore())
    many = ("ab" + "".join(p) for p in itertools.product(string.ascii_lowercase, repeat=3))
    index.index([_doc(text=" ".join(itertools.islice(many, 5000)))])
    index.commit()
    with pytest.raises(QueryTooBroadError, match="a prefix term matches more than") as caught:
        index.search(Query("ab*", SCOPE))
    assert "ab*" not in str(caught.value)  # errors never repeat what was typed
    assert _ids(index, "abcd*") == ["item-1"]
    index.close()


def test_a_second_writer_waits_for_the_first_to_commit(tmp_path: Path) -> None:
    from search import IndexBackendError

    first = TantivyIndex(tmp_path, KEY, MemoryVocabularyStore())
    first.index([_doc()])
    second = TantivyIndex(tmp_path, KEY, MemoryVocabularyStore(), lock_timeout=0.2)
    with pytest.raises(IndexBackendError, match="lock"):  # past its wait, a clear refusal
        second.index([_doc("item-2")])
    first.commit()  # lets go of the directory's writer lock
    assert second.count() == 1  # readers are not blocked
    second.index([_doc("item-2")])
    second.commit()
    assert first.count() == 2
    first.close()
    second.close()
