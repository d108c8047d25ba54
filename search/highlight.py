"""Snippets with the matched words marked, made in the application from the decrypted text.

DESIGN.md promise 1: the index holds no text, so snippets are built here, after the access
check, from the item's sealed extracted text that the caller has just decrypted. The same
analysis as indexing decides what matches, so "detencion" marks "detención".
"""

from __future__ import annotations

import bisect
import html
import re
from itertools import compress, count

from rapidfuzz.distance import Levenshtein

from search import analysis, query

ELLIPSIS = "…"
CONTEXT_WORDS = 6
MAX_GAP_CHARS = 40
# Characters of a text's start split for a snippet that marks nothing, per word shown (words
# and their separators average about 7 characters in Spanish and English).
OPENING_CHARS_PER_WORD = 16
# One C-level split gives separators and words alternately ([sep, word, sep, ..., sep]), so a
# long text (500,000 characters) is not walked token by token in Python.
_SPLIT = re.compile(r"(\w+)")


def highlight(text: str, query_text: str, language: str | None, *, max_words: int = 40) -> str:
    """Return an HTML snippet of `text` (about `max_words` words) around the best match of
    `query_text`, matched words in `<mark>`, everything else HTML-escaped.

    `language` is the text's language (it picks the stemmer). Raises `QuerySyntaxError` on a
    query that is not in the query language; returns the opening words if nothing matches.
    """
    if max_words < 1:
        raise ValueError("max_words must be at least 1")
    return Highlighter(query_text).snippet(text, language, max_words=max_words)


class Highlighter:
    """Snippets of several texts for one query (a page of hits): the query is parsed once and
    each distinct word is analysed once per language across the texts.

    Meant to live for one request: what it remembers (words of decrypted texts) goes with it.
    """

    def __init__(self, query_text: str) -> None:
        """Raises `QuerySyntaxError` on a query that is not in the query language."""
        self._leaves = query.positive_leaves(query.parse(query_text))
        self._plans: dict[str | None, _Plan] = {}

    def snippet(self, text: str, language: str | None, *, max_words: int = 40) -> str:
        """Return the snippet of `text` as `highlight` does."""
        if max_words < 1:
            raise ValueError("max_words must be at least 1")
        normalized = analysis.normalize(text)
        if not self._leaves:
            # Nothing to mark: the opening words. Split only the start of the text; one word
            # more than `max_words` in it proves the text goes on (a word cut by the slice is
            # still a word there), else the whole text is split as below.
            head = _SPLIT.split(normalized[: OPENING_CHARS_PER_WORD * (max_words + 1)])
            if len(head) // 2 > max_words:
                return _render(head, head[1::2], set(), 0, max_words)
        parts = _SPLIT.split(normalized)
        words = parts[1::2]
        if not words:
            return html.escape(parts[0].strip()[:200])
        stem_language = analysis.stemming_language(language)
        plan = self._plans.get(stem_language)
        if plan is None:
            plan = self._plans[stem_language] = _Plan(self._leaves, stem_language)
        marked = plan.marks(words)
        start, end = _window(marked, len(words), max_words)
        return _render(parts, words, marked, start, end)


def _render(parts: list[str], words: list[str], marked: set[int], start: int, end: int) -> str:
    """Return the HTML of words `start` to `end` with the separators between them, marked
    words in `<mark>`, an ellipsis where the text goes on."""
    # parts alternates separators and words: [sep, word, sep, ..., word, sep].
    window = parts[2 * start + 1 : 2 * end]  # word `start`, its separator, ..., word `end - 1`
    if window and max(map(len, window)) > MAX_GAP_CHARS:
        window = [_short(piece) for piece in window]
    run = ELLIPSIS if start > 0 else _short(parts[0].lstrip())
    tail = ELLIPSIS if end < len(words) else _short(parts[2 * end].rstrip())
    out: list[str] = []
    done = 0
    for index in sorted(i for i in marked if start <= i < end):
        at = 2 * (index - start)
        # Escaping is per character, so one call per run of unmarked pieces gives the same text.
        out.append(html.escape(run + "".join(window[done:at])))
        out.append(f"<mark>{html.escape(window[at])}</mark>")
        run, done = "", at + 1
    out.append(html.escape(run + "".join(window[done:]) + tail))
    return "".join(out)


def _short(piece: str) -> str:
    """Shorten runs the tokenizer skips or drops (encoded blobs, long punctuation) so a snippet
    stays a snippet."""
    if len(piece) > MAX_GAP_CHARS:
        return piece[: MAX_GAP_CHARS // 2] + ELLIPSIS + piece[-MAX_GAP_CHARS // 2 :]
    return piece


class _Plan:
    """What marks a word, for one query and one stemming language."""

    def __init__(
        self,
        leaves: list[query.Word | query.Phrase | query.Prefix | query.Fuzzy],
        language: str | None,
    ) -> None:
        self.language = language
        self.single: set[str] = set()  # analysed terms that mark wherever they occur
        self.prefixes: list[str] = []
        self.fuzzy: list[tuple[str, int]] = []
        self.phrases: list[list[str]] = []
        for leaf in leaves:
            if isinstance(leaf, query.Prefix):
                self.prefixes.append(analysis.fold(leaf.text.lower()))
            elif isinstance(leaf, query.Fuzzy):
                lowered = leaf.text.lower()
                self.single.update(analysis.query_terms(lowered))
                self.fuzzy.append((analysis.fold(lowered), leaf.distance))
            else:
                query_words = analysis.words(leaf.text)
                slop = leaf.slop if isinstance(leaf, query.Phrase) else 0
                if len(query_words) == 1 or slop > 0:
                    for word in query_words:
                        self.single.update(analysis.query_terms(word))
                elif query_words:
                    self.phrases.append(query_words)
        # The analysed forms of each phrase in every language, as the index may have them.
        self.sequences = [
            [analysis.term(w, stem) for w in words]
            for words in self.phrases
            for stem in (*analysis.LANGUAGES, None)
        ]
        # word as written -> (analysed term, whether its surface matches a prefix or fuzzy
        # leaf); None for over-long words, which indexing drops too, so they never match.
        self.analysed: dict[str, tuple[str, bool] | None] = {}
        # The words of `analysed` whose term is in `single`: with no prefix or fuzzy leaf,
        # what a text marks is its words met with this set (one C-level intersection per
        # text, not a Python test per distinct word).
        self.matching: set[str] = set()

    def _analyse(self, new: set[str]) -> None:
        """Analyse each word of `new` (as written) into `self.analysed`, in one batch: the
        stemmer is called once for the batch, not once per word."""
        language = self.language
        fold = analysis.fold
        written = [w for w in new if len(w) <= analysis.MAX_TOKEN_CHARS]
        for word in new.difference(written):
            self.analysed[word] = None  # over-long: indexing drops it too
        surfaces = [fold(w.lower()) for w in written]
        terms = analysis.terms(surfaces, language)
        single = self.single
        self.matching.update(w for w, term in zip(written, terms, strict=True) if term in single)
        if self.prefixes or self.fuzzy:
            for word, surface, term in zip(written, surfaces, terms, strict=True):
                self.analysed[word] = (term, self._near(surface))
        else:
            self.analysed.update(
                (word, (term, False)) for word, term in zip(written, terms, strict=True)
            )

    def _near(self, surface: str) -> bool:
        return any(surface.startswith(p) for p in self.prefixes) or any(
            Levenshtein.distance(surface, folded, score_cutoff=distance) <= distance
            for folded, distance in self.fuzzy
        )

    def marks(self, words: list[str]) -> set[int]:
        """Return the positions in `words` to mark."""
        if not (self.single or self.prefixes or self.fuzzy or self.sequences):
            return set()  # nothing can match: no word needs analysing
        analysed = self.analysed
        distinct = set(words)
        new = distinct.difference(analysed)
        if new:
            self._analyse(new)
        if self.prefixes or self.fuzzy:
            # A prefix or fuzzy leaf marks every form of the words it reached in this text.
            single = self.single
            reached = {a[0] for w in distinct if (a := analysed[w]) is not None and a[1]}
            if reached:
                single = single | reached
            matching = {w for w in distinct if (a := analysed[w]) is not None and a[0] in single}
        else:
            matching = distinct & self.matching
        # The positions of the matching words, found in C: a long text has thousands of words.
        marked = set(compress(count(), map(matching.__contains__, words))) if matching else set()
        if self.sequences:
            # Positions as the index sees them: over-long words are not there.
            kept = [(i, a[0]) for i, w in enumerate(words) if (a := analysed[w]) is not None]
            terms = [t for _, t in kept]
            for start, width in _phrase_matches(terms, self.sequences):
                marked.update(kept[j][0] for j in range(start, start + width))
        return marked


def _phrase_matches(terms: list[str], sequences: list[list[str]]) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    present = set(terms)
    for sequence in sequences:
        if not present.issuperset(sequence):
            continue  # a word of the phrase is not in the text at all
        width = len(sequence)
        first = sequence[0]
        for i in [i for i, term in enumerate(terms) if term == first]:
            if terms[i : i + width] == sequence:
                found.append((i, width))
    return found


def _window(marked: set[int], count: int, max_words: int) -> tuple[int, int]:
    """Return the word range of the window holding the most marked words."""
    if not marked:
        return 0, min(count, max_words)
    positions = sorted(marked)
    best_start, best_hits = positions[0], 0
    for i, first in enumerate(positions):
        hits = bisect.bisect_left(positions, first + max_words - CONTEXT_WORDS) - i
        if hits > best_hits:
            best_start, best_hits = first, hits
    start = max(0, best_start - CONTEXT_WORDS)
    end = min(count, start + max_words)
    start = max(0, end - max_words)
    return start, end
