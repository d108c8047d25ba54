"""What both adapters share: document analysis into digests, the vocabulary, and the planner."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from search import analysis
from search._plan import ANONYMISED, CONTENT, UNDETERMINED, Plan, Planner
from search.errors import ScopeRequiredError
from search.ports import IndexDocument, Query, VocabularyStore, valid_scope
from search.vocabulary import OutdatedVocabularyError, Vocabulary, pack, unpack

_CACHE_LIMIT = 500_000
# Changes read since the last snapshot after which a commit saves a snapshot instead: keeps the
# store's log, and a new process's first read, short.
COMPACT_AFTER = 256


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
    """Analysis state for one index: its key, its vocabularies and the store they are shared in.

    The vocabularies in memory hold every word this process read from the store plus the
    words it indexed itself; the words it indexed and has not yet read back from the store are
    kept apart (`_unsaved`) and appended by `save_vocabulary`. A word leaves `_unsaved` only
    once it is read back, so a change lost with a rolled-back transaction is sent again with
    the next commit: words can be saved twice, never lost.

    Raises `IndexFormatError` if the saved vocabulary cannot be read, and
    `OutdatedVocabularyError` if an older version made it, unless `rebuild` (the index is about
    to be rebuilt: start empty).
    """

    def __init__(self, key: bytes, store: VocabularyStore, *, rebuild: bool = False) -> None:
        if not isinstance(store, VocabularyStore):
            raise TypeError("vocabulary must be a VocabularyStore")
        self.digester = analysis.Digester(key)
        self.store = store
        self.vocabulary = Vocabulary()
        self.anonymised = Vocabulary()
        self._unsaved = (Vocabulary(), Vocabulary())
        self.position = 0
        self._changes = 0  # changes applied since the last snapshot: when to compact
        self._lock = threading.RLock()
        self.planner = Planner(self.digester, self.vocabulary, self.anonymised)
        # lowercased word -> digest, per stemming language: most words of a new document were
        # seen before, so the hot path is one dict lookup per token. Only words met outside
        # identity text are cached (a cached word is known to both vocabularies).
        self._caches: dict[str | None, dict[str, str]] = {}
        try:
            self.sync()
        except OutdatedVocabularyError:
            if not rebuild:
                raise
            # The rebuild's `clear()` replaces the outdated vocabulary with an empty one.
            self.position = store.read(0).position

    def sync(self) -> None:
        """Read the changes other processes (and this one) saved since the last read.

        Raises `IndexFormatError` if a change cannot be read."""
        with self._lock:
            log = self.store.read(self.position)
            changes = [unpack(change) for change in log.changes]
            if log.reset:
                self.vocabulary.clear()
                self.anonymised.clear()
                self._caches.clear()  # a cached word may be one the snapshot dropped
                self._changes = 0
            for full, anonymised in changes:
                self.vocabulary.merge(full)
                self.anonymised.merge(anonymised)
                self._unsaved[0].discard(full)
                self._unsaved[1].discard(anonymised)
            self._changes += len(changes)
            if log.reset:  # words indexed here and not yet saved stay known
                self.vocabulary.merge(self._unsaved[0])
                self.anonymised.merge(self._unsaved[1])
            self.position = log.position

    def plan(self, query: Query) -> Plan:
        """Return the engine plan of `query`; a query with a prefix or fuzzy term first reads
        the words other processes indexed since the last read (one small read of the store).
        Raises as `Planner.plan` does."""
        if "*" in query.text or "~" in query.text:
            self.sync()
        return self.planner.plan(query)

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
        with self._lock:
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
                    if self.vocabulary.add(surface, analysed):
                        self._unsaved[0].add(surface, analysed)
                    if self.anonymised.add(surface, analysed):
                        self._unsaved[1].add(surface, analysed)
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
        if self.vocabulary.add(surface, analysed):
            self._unsaved[0].add(surface, analysed)
        return self.digester.digest(analysed)

    def save_vocabulary(self) -> None:
        """Append the words indexed here that the store does not hold yet, as one change
        (before the engine commits, so a crash in between leaves extra words, never missing
        ones); after `COMPACT_AFTER` changes, save the whole vocabulary as a snapshot instead.
        """
        self.sync()  # reads back this process's earlier changes, so none is sent twice
        with self._lock:
            if self._changes >= COMPACT_AFTER:
                self._snapshot()
                return
            if not len(self._unsaved[0]) and not len(self._unsaved[1]):
                return
            change = pack(*self._unsaved)
        self.store.append(change)

    def _snapshot(self) -> None:
        # Every word in memory, the unsaved ones included. They stay unsaved until the snapshot
        # is read back: if its transaction rolls back, they go with the next change.
        self.store.replace(pack(self.vocabulary, self.anonymised), self.position)
        self._changes = 0

    def prune_vocabulary(self, live: Callable[[str, list[str]], Iterable[str]]) -> int:
        """Drop words no committed document holds any more; `live(field, digests)` returns which
        of `digests` still occur in `field`. Saves the result as a snapshot. Returns how many
        words were forgotten entirely (words that remain only in identity text leave the
        anonymised vocabulary too)."""
        self.sync()
        with self._lock:
            dropped = 0
            for name, vocabulary in ((CONTENT, self.vocabulary), (ANONYMISED, self.anonymised)):
                by_digest = {self.digester.digest(t): t for t in vocabulary.analysed_terms()}
                alive = set(live(name, sorted(by_digest)))
                kept = {t for d, t in by_digest.items() if d in alive}
                gone = vocabulary.retain(kept)
                dropped += gone if vocabulary is self.vocabulary else 0
                # A pruned word must not come back as an unsaved one with the next change.
                self._unsaved[0 if vocabulary is self.vocabulary else 1].retain(kept)
            self._caches.clear()  # cached words may map to dropped terms; re-added on use
            self._snapshot()
        return dropped

    def clear_vocabulary(self) -> None:
        """Forget every word, here and in the store."""
        with self._lock:
            self.vocabulary.clear()
            self.anonymised.clear()
            self._unsaved[0].clear()
            self._unsaved[1].clear()
            self._caches.clear()
            self.store.replace(pack(self.vocabulary, self.anonymised), None)
            self._changes = 0


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
