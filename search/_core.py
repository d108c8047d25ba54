"""What both adapters share: document analysis into digests, the vocabulary, and the planner."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from search import analysis
from search._plan import UNDETERMINED, Planner
from search.errors import ScopeRequiredError
from search.ports import IndexDocument, Query, VocabularyStore, valid_scope
from search.vocabulary import Vocabulary

_CACHE_LIMIT = 500_000


class Core:
    """Analysis state for one index: its key, its vocabulary and where the vocabulary is kept."""

    def __init__(self, key: bytes, store: VocabularyStore) -> None:
        if not isinstance(store, VocabularyStore):
            raise TypeError("vocabulary must be a VocabularyStore")
        self.digester = analysis.Digester(key)
        self.store = store
        saved = store.load()
        self.vocabulary = Vocabulary.from_bytes(saved) if saved else Vocabulary()
        self.planner = Planner(self.digester, self.vocabulary)
        # lowercased word -> digest, per stemming language: most words of a new document were
        # seen before, so the hot path is one dict lookup per token.
        self._caches: dict[str | None, dict[str, str]] = {}

    def content(self, text: str, language: str | None) -> str:
        """Return `text` as space-separated digests, recording new words in the vocabulary."""
        stem_language = analysis.stemming_language(language)
        cache = self._caches.get(stem_language)
        if cache is None or len(cache) > _CACHE_LIMIT:
            cache = self._caches[stem_language] = {}
        out = []
        for word in analysis.words(text):
            digest = cache.get(word)
            if digest is None:
                surface = analysis.fold(word)
                analysed = analysis.term(surface, stem_language)
                self.vocabulary.add(surface, analysed)
                digest = cache[word] = self.digester.digest(analysed)
            out.append(digest)
        return " ".join(out)

    def save_vocabulary(self) -> None:
        """Hand the vocabulary to its store if it changed (before the engine commits, so a
        crash in between leaves extra words, never missing ones)."""
        if self.vocabulary.dirty:
            self.store.save(self.vocabulary.to_bytes())
            self.vocabulary.dirty = False

    def prune_vocabulary(self, live: Callable[[list[str]], Iterable[str]]) -> int:
        """Drop words no committed document holds any more; `live` returns which of the given
        digests still occur. Returns how many words were dropped."""
        by_digest = {self.digester.digest(t): t for t in self.vocabulary.analysed_terms()}
        alive = set(live(sorted(by_digest)))
        dropped = self.vocabulary.retain({t for d, t in by_digest.items() if d in alive})
        self._caches.clear()  # cached words may map to dropped terms; they are re-added on use
        self.save_vocabulary()
        return dropped

    def clear_vocabulary(self) -> None:
        """Forget every word and save the empty vocabulary."""
        self.vocabulary.clear()
        self._caches.clear()
        self.save_vocabulary()


def check_query(query: object) -> Query:
    """Return `query` if it is a `Query` with an `AccessScope`. Raises `ScopeRequiredError`."""
    if not isinstance(query, Query) or not valid_scope(query.scope):
        raise ScopeRequiredError("the index runs only a Query with an AccessScope")
    return query


def created_utc(document: IndexDocument) -> datetime:
    """Return the document's `created` in UTC, to the second. Raises `ValueError` if naive."""
    created = document.created
    if created.tzinfo is None:
        raise ValueError(f"item {document.item_id}: created must carry a time zone")
    return created.astimezone(UTC).replace(microsecond=0)


def language_of(document: IndexDocument) -> str:
    """Return the normalized language code kept in the index."""
    return analysis.normalize_language(document.language) or UNDETERMINED


def hit_language(stored: str | None) -> str | None:
    """Return the language a hit reports (None when not determined)."""
    return None if not stored or stored == UNDETERMINED else stored
