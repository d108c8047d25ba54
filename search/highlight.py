"""Snippets with the matched words marked, made in the application from the decrypted text.

DESIGN.md promise 1: the index holds no text, so snippets are built here, after the access
check, from the item's sealed extracted text that the caller has just decrypted. The same
analysis as indexing decides what matches, so "detencion" marks "detención".
"""

from __future__ import annotations

import bisect
import html
import re

from rapidfuzz.distance import Levenshtein

from search import analysis, query

ELLIPSIS = "…"
CONTEXT_WORDS = 6
MAX_GAP_CHARS = 40
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
    leaves = query.positive_leaves(query.parse(query_text))
    parts = _SPLIT.split(analysis.normalize(text))
    words = parts[1::2]
    if not words:
        return html.escape(parts[0].strip()[:200])
    marked = _marks(words, leaves, analysis.stemming_language(language))
    start, end = _window(marked, len(words), max_words)
    out = [ELLIPSIS] if start > 0 else [_gap(parts[0].lstrip())]
    for index in range(start, end):
        if index > start:
            out.append(_gap(parts[2 * index]))
        piece = _gap(words[index])
        out.append(f"<mark>{piece}</mark>" if index in marked else piece)
    out.append(ELLIPSIS if end < len(words) else _gap(parts[2 * end].rstrip()))
    return "".join(out)


def _gap(piece: str) -> str:
    """Escape `piece`, shortening runs the tokenizer skips or drops (encoded blobs, long
    punctuation) so a snippet stays a snippet."""
    if len(piece) > MAX_GAP_CHARS:
        piece = piece[: MAX_GAP_CHARS // 2] + ELLIPSIS + piece[-MAX_GAP_CHARS // 2 :]
    return html.escape(piece)


def _marks(
    words: list[str],
    leaves: list[query.Word | query.Phrase | query.Prefix | query.Fuzzy],
    language: str | None,
) -> set[int]:
    # Analyse each distinct word once: (folded surface, analysed term). Over-long words are
    # dropped by indexing too, so they never match.
    analysed: dict[str, tuple[str, str]] = {}
    for word in set(words):
        lowered = word.lower()
        if len(lowered) <= analysis.MAX_TOKEN_CHARS:
            surface = analysis.fold(lowered)
            analysed[word] = (surface, analysis.term(surface, language))

    single: set[str] = set()  # analysed terms that mark wherever they occur
    phrases: list[list[str]] = []
    for leaf in leaves:
        if isinstance(leaf, query.Prefix):
            prefix = analysis.fold(leaf.text.lower())
            single.update(t for s, t in analysed.values() if s.startswith(prefix))
        elif isinstance(leaf, query.Fuzzy):
            lowered = leaf.text.lower()
            folded = analysis.fold(lowered)
            single.update(analysis.query_terms(lowered))
            single.update(
                t
                for s, t in analysed.values()
                if Levenshtein.distance(s, folded, score_cutoff=leaf.distance) <= leaf.distance
            )
        else:
            query_words = analysis.words(leaf.text)
            slop = leaf.slop if isinstance(leaf, query.Phrase) else 0
            if len(query_words) == 1 or slop > 0:
                for word in query_words:
                    single.update(analysis.query_terms(word))
            elif query_words:
                phrases.append(query_words)

    matching = {word for word, (_, t) in analysed.items() if t in single}
    marked = {i for i, word in enumerate(words) if word in matching}
    if phrases:
        # Positions as the index sees them: over-long words are not there.
        kept = [(i, analysed[w][1]) for i, w in enumerate(words) if w in analysed]
        terms = [t for _, t in kept]
        for query_words in phrases:
            for start, width in _phrase_matches(terms, query_words):
                marked.update(kept[j][0] for j in range(start, start + width))
    return marked


def _phrase_matches(terms: list[str], words: list[str]) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    width = len(words)
    for language in (*analysis.LANGUAGES, None):
        sequence = [analysis.term(w, language) for w in words]
        first = sequence[0]
        for i in range(len(terms) - width + 1):
            if terms[i] == first and terms[i : i + width] == sequence:
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
