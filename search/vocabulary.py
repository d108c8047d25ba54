"""The vocabulary of analysed terms that prefix and fuzzy queries expand against.

The engines hold only digests, so `tort*` and `Mamani~1` are expanded here: every folded
surface form ever indexed maps to the analysed terms it produced. **It holds survivors' words in
plaintext**: it lives in memory and is shared and persisted only through a `VocabularyStore`
(a log of packed changes), which the vault seals with `keys`.

An index keeps two: every word (`full`), and the words met outside identity text
(`anonymised`). A principal under the redaction obligation expands only against the second, so
`Quorv*` typed letter by letter learns nothing from a name that only identity text holds
(DESIGN.md promise 11). `pack` and `unpack` keep both in one blob.
"""

from __future__ import annotations

import bisect
import threading
import zlib

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from search.errors import IndexFormatError
from search.ports import VocabularyLog

_MAGIC = b"tvault-vocabulary-v1\n"
# v2: both vocabularies, one line per surface: surface TAB full terms TAB anonymised terms.
_MAGIC_PAIR = b"tvault-vocabulary-v2\n"


class Vocabulary:
    """Surface form (lowercased, accent-folded word) -> the analysed terms it was indexed as."""

    def __init__(self) -> None:
        self._terms: dict[str, set[str]] = {}
        self._sorted: list[str] | None = []
        self._pending: list[str] = []  # new surfaces not yet in `_sorted`
        self._by_length: dict[int, list[str]] | None = {}  # for fuzzy: only near lengths
        self.dirty = False
        # Indexing adds words while searches expand prefixes: one lock keeps both consistent.
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._terms)

    def add(self, surface: str, analysed: str) -> bool:
        """Record that `surface` was indexed as `analysed`; True if that was new."""
        with self._lock:
            known = self._terms.get(surface)
            if known is None:
                self._terms[surface] = {analysed}
                self._pending.append(surface)
                if self._by_length is not None:
                    self._by_length.setdefault(len(surface), []).append(surface)
                self.dirty = True
                return True
            if analysed not in known:
                known.add(analysed)
                self.dirty = True
                return True
            return False

    def merge(self, other: Vocabulary) -> None:
        """Add every word of `other`."""
        with self._lock, other._lock:
            if not self._terms:  # a load into an empty vocabulary: no per-word bookkeeping
                self._terms = {surface: set(terms) for surface, terms in other._terms.items()}
                self._sorted = self._by_length = None
                self._pending = []
                return
            for surface, terms in other._terms.items():
                for analysed in terms:
                    self.add(surface, analysed)

    def discard(self, other: Vocabulary) -> None:
        """Forget the (surface, term) pairs `other` holds (for bookkeeping of unsaved words:
        it never needs the sorted views)."""
        with self._lock, other._lock:
            for surface, terms in other._terms.items():
                known = self._terms.get(surface)
                if known is not None:
                    known -= terms
                    if not known:
                        del self._terms[surface]
            self._sorted = self._by_length = None
            self._pending = []

    def analysed_terms(self) -> set[str]:
        """Return every analysed term in the vocabulary."""
        with self._lock:
            return set().union(*self._terms.values()) if self._terms else set()

    def retain(self, live: set[str]) -> int:
        """Keep only analysed terms in `live`; drop surfaces left with none. Returns how many
        surfaces were dropped."""
        dropped = 0
        with self._lock:
            for surface in list(self._terms):
                kept = self._terms[surface] & live
                if kept != self._terms[surface]:
                    self.dirty = True
                    if kept:
                        self._terms[surface] = kept
                    else:
                        del self._terms[surface]
                        dropped += 1
            if dropped:
                self._sorted = self._by_length = None
                self._pending = []
        return dropped

    def clear(self) -> None:
        """Forget every term."""
        with self._lock:
            self._terms.clear()
            self._sorted, self._pending, self._by_length = [], [], {}
            self.dirty = True

    def _surfaces(self) -> list[str]:
        # A few new words are inserted in place; many (or a load) re-sort once. A full sort of
        # 300,000 words takes ~70 ms, too long to pay on the first search after each batch.
        if self._sorted is None or len(self._pending) > 2000:
            self._sorted = sorted(self._terms)
        else:
            for surface in self._pending:
                bisect.insort(self._sorted, surface)
        self._pending = []
        return self._sorted

    def _near_lengths(self, length: int, distance: int) -> list[str]:
        if self._by_length is None:
            self._by_length = {}
            for surface in self._terms:
                self._by_length.setdefault(len(surface), []).append(surface)
        near: list[str] = []
        for size in range(max(1, length - distance), length + distance + 1):
            near.extend(self._by_length.get(size, ()))
        return near

    def prefix(self, prefix: str, limit: int) -> set[str] | None:
        """Return the analysed terms of surfaces starting with `prefix`, or None past `limit`."""
        found: set[str] = set()
        with self._lock:
            surfaces = self._surfaces()
            start = bisect.bisect_left(surfaces, prefix)
            for surface in surfaces[start:]:
                if not surface.startswith(prefix):
                    break
                found.update(self._terms[surface])
                if len(found) > limit:
                    return None
        return found

    def fuzzy(self, word: str, distance: int, limit: int) -> set[str] | None:
        """Return the analysed terms of surfaces within Levenshtein `distance` of `word`,
        or None past `limit`."""
        found: set[str] = set()
        with self._lock:
            matches = process.extract(
                word,
                self._near_lengths(len(word), distance),
                scorer=Levenshtein.distance,
                score_cutoff=distance,
                limit=None,
            )
            for surface, _score, _index in matches:
                found.update(self._terms[surface])
                if len(found) > limit:
                    return None
        return found


def pack(full: Vocabulary, anonymised: Vocabulary) -> bytes:
    """Serialize both vocabularies of an index (compressed; plaintext inside: seal it)."""
    with full._lock, anonymised._lock:
        surfaces = full._terms.keys() | anonymised._terms.keys()
        lines = [
            "\t".join(
                (
                    surface,
                    " ".join(sorted(full._terms.get(surface, ()))),
                    " ".join(sorted(anonymised._terms.get(surface, ()))),
                )
            )
            for surface in surfaces
        ]
    return _MAGIC_PAIR + zlib.compress("\n".join(lines).encode("utf-8"), 6)


def unpack(data: bytes) -> tuple[Vocabulary, Vocabulary]:
    """Parse what `pack` made into `(full, anonymised)`.

    Raises `OutdatedVocabularyError` on a vocabulary of an older format (it does not tell
    identity words apart; the index must be rebuilt) and `IndexFormatError` on anything else.
    """
    if data.startswith(_MAGIC):
        raise OutdatedVocabularyError(
            "the saved vocabulary predates identity-free search fields: run `tvault reindex`"
        )
    if not data.startswith(_MAGIC_PAIR):
        raise IndexFormatError("the saved vocabulary has an unknown format")
    full, anonymised = Vocabulary(), Vocabulary()
    try:
        body = zlib.decompress(data[len(_MAGIC_PAIR) :]).decode("utf-8")
    except (zlib.error, UnicodeDecodeError) as exc:
        raise IndexFormatError("the saved vocabulary is damaged") from exc
    for line in body.split("\n") if body else ():
        surface, _, rest = line.partition("\t")
        in_full, _, in_anonymised = rest.partition("\t")
        for vocabulary, analysed in ((full, in_full), (anonymised, in_anonymised)):
            if analysed:
                vocabulary._terms[surface] = set(analysed.split(" "))
    for vocabulary in (full, anonymised):
        vocabulary._sorted = vocabulary._by_length = None
    return full, anonymised


class OutdatedVocabularyError(IndexFormatError):
    """The saved vocabulary was made by an older version: rebuild the index."""


class MemoryVocabularyStore:
    """A `VocabularyStore` that keeps the log in memory: for tests and throw-away indexes."""

    def __init__(self) -> None:
        self.log: list[tuple[int, bytes, bool]] = []  # (position, data, is a snapshot)
        self.position = 0
        self.saves = 0

    def read(self, after: int) -> VocabularyLog:
        """Return the changes after `after` (from the last snapshot if one is among them)."""
        later = [entry for entry in self.log if entry[0] > after]
        snapshots = [n for n, entry in enumerate(self.log) if entry[2]]
        if any(entry[2] for entry in later):
            later = self.log[snapshots[-1] :]
            return VocabularyLog(self.position, tuple(data for _, data, _ in later), reset=True)
        return VocabularyLog(self.position, tuple(data for _, data, _ in later))

    def append(self, change: bytes) -> None:
        """Keep `change` after the others."""
        self.position += 1
        self.log.append((self.position, change, False))
        self.saves += 1

    def replace(self, snapshot: bytes, based_on: int | None) -> None:
        """Keep `snapshot` in place of every change up to `based_on`."""
        self.position += 1
        kept = [e for e in self.log if based_on is not None and e[0] > based_on and not e[2]]
        self.log = [(self.position, snapshot, True), *kept]
        self.saves += 1

    @property
    def data(self) -> bytes | None:
        """The whole vocabulary as one packed blob (None if nothing was saved), for tests."""
        if not self.log:
            return None
        full, anonymised = Vocabulary(), Vocabulary()
        for _position, change, _snapshot in self.log:
            more_full, more_anonymised = unpack(change)
            full.merge(more_full)
            anonymised.merge(more_anonymised)
        return pack(full, anonymised)
