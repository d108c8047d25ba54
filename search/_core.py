"""What both adapters share: document analysis into digests, the vocabulary, and the planner."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from search import analysis
from search._plan import ANONYMISED, CONTENT, UNDETERMINED, Planner
from search.errors import ScopeRequiredError
from search.ports import IndexDocument, Query, VocabularyStore, valid_scope
from search.vocabulary import OutdatedVocabularyError, Vocabulary, pack, unpack

_CACHE_LIMIT = 500_000


@dataclass(frozen=True, slots=True)
class Analysed:
    """A document's text as the engines index it: digests only, in order.

    `full` holds every word (the `content` field, one value for the text and one for each
    metadata value); `anonymised` holds the runs of words between identity words (the
    `content_anonymised` field, one value per run, so a phrase never joins the words on either
    side of a name, nor the end of a title to the start of the text).
    """

    full: tuple[str, ...] = field(repr=False)
    anonymised: tuple[str, ...] = field(repr=False)


class Core:
    """Analysis state for one index: its key, its vocabularies and where they are kept.

    Raises `IndexFormatError` if the saved vocabulary cannot be read, and
    `OutdatedVocabularyError` if an older version made it, unless `rebuild` (the index is about
    to be rebuilt: start empty).
    """

    def __init__(self, key: bytes, store: VocabularyStore, *, rebuild: bool = False) -> None:
        if not isinstance(store, VocabularyStore):
            raise TypeError("vocabulary must be a VocabularyStore")
        self.digester = analysis.Digester(key)
        self.store = store
        saved = store.load()
        try:
            full, anonymised = unpack(saved) if saved else (Vocabulary(), Vocabulary())
        except OutdatedVocabularyError:
            if not rebuild:
                raise
            full, anonymised = Vocabulary(), Vocabulary()
            full.dirty = True  # the outdated file is replaced on the next commit
        self.vocabulary = full
        self.anonymised = anonymised
        self.planner = Planner(self.digester, full, anonymised)
        # lowercased word -> digest, per stemming language: most words of a new document were
        # seen before, so the hot path is one dict lookup per token. Only words met outside
        # identity text are cached (a cached word is known to both vocabularies).
        self._caches: dict[str | None, dict[str, str]] = {}

    def document(self, document: IndexDocument) -> Analysed:
        """Return the text and metadata values of `document` as digests (see `content`), each
        value apart: a title's words are analysed, and kept out of `anonymised` when they are
        identity words, exactly as the text's are."""
        full: list[str] = []
        anonymised: list[str] = []
        for value in (document.text, *document.metadata):
            analysed = self.content(value, document.language, document.identity)
            full.extend(analysed.full)
            anonymised.extend(analysed.anonymised)
        return Analysed(tuple(full), tuple(anonymised))

    def content(
        self, text: str, language: str | None, identity: frozenset[str] = frozenset()
    ) -> Analysed:
        """Return `text` as digests, recording new words in the vocabularies. Words whose folded
        form is in `identity` go into `full` only, and into the full vocabulary only."""
        stem_language = analysis.stemming_language(language)
        cache = self._caches.get(stem_language)
        if cache is None or len(cache) > _CACHE_LIMIT:
            cache = self._caches[stem_language] = {}
        out: list[str] = []
        runs: list[str] = []
        start = 0
        for word in analysis.words(text):
            if identity and analysis.fold(word) in identity:
                if len(out) > start:
                    runs.append(" ".join(out[start:]))
                out.append(self._identity_word(word, stem_language))
                start = len(out)
                continue
            digest = cache.get(word)
            if digest is None:
                surface = analysis.fold(word)
                analysed = analysis.term(surface, stem_language)
                self.vocabulary.add(surface, analysed)
                self.anonymised.add(surface, analysed)
                digest = cache[word] = self.digester.digest(analysed)
            out.append(digest)
        if not out:
            return Analysed((), ())
        full = " ".join(out)
        if start == 0:
            return Analysed((full,), (full,))
        if len(out) > start:
            runs.append(" ".join(out[start:]))
        return Analysed((full,), tuple(runs))

    def _identity_word(self, word: str, stem_language: str | None) -> str:
        surface = analysis.fold(word)
        analysed = analysis.term(surface, stem_language)
        self.vocabulary.add(surface, analysed)
        return self.digester.digest(analysed)

    def save_vocabulary(self) -> None:
        """Hand the vocabularies to their store if they changed (before the engine commits, so
        a crash in between leaves extra words, never missing ones)."""
        if self.vocabulary.dirty or self.anonymised.dirty:
            self.store.save(pack(self.vocabulary, self.anonymised))
            self.vocabulary.dirty = self.anonymised.dirty = False

    def prune_vocabulary(self, live: Callable[[str, list[str]], Iterable[str]]) -> int:
        """Drop words no committed document holds any more; `live(field, digests)` returns which
        of `digests` still occur in `field`. Returns how many words were forgotten entirely
        (words that remain only in identity text leave the anonymised vocabulary too)."""
        dropped = 0
        for name, vocabulary in ((CONTENT, self.vocabulary), (ANONYMISED, self.anonymised)):
            by_digest = {self.digester.digest(t): t for t in vocabulary.analysed_terms()}
            alive = set(live(name, sorted(by_digest)))
            gone = vocabulary.retain({t for d, t in by_digest.items() if d in alive})
            dropped += gone if vocabulary is self.vocabulary else 0
        self._caches.clear()  # cached words may map to dropped terms; they are re-added on use
        self.save_vocabulary()
        return dropped

    def clear_vocabulary(self) -> None:
        """Forget every word and save the empty vocabularies."""
        self.vocabulary.clear()
        self.anonymised.clear()
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
