"""Snippets with the matched words marked, made in the application from the decrypted text.

DESIGN.md promise 1: the index holds no text, so snippets are built here, after the access
check, from the item's sealed extracted text that the caller has just decrypted. The same
analysis as indexing decides what matches, so "detencion" marks "detención".
"""

from __future__ import annotations

import bisect
import html

from rapidfuzz.distance import Levenshtein

from search import analysis, query

ELLIPSIS = "…"
CONTEXT_WORDS = 6
MAX_GAP_CHARS = 40


def highlight(text: str, query_text: str, language: str | None, *, max_words: int = 40) -> str:
    """Return an HTML snippet of `text` (about `max_words` words) around the best match of
    `query_text`, matched words in `<mark>`, everything else HTML-escaped.

    `language` is the text's language (it picks the stemmer). Raises `QuerySyntaxError` on a
    query that is not in the query language; returns the opening words if nothing matches.
    """
    if max_words < 1:
        raise ValueError("max_words must be at least 1")
    leaves = query.positive_leaves(query.parse(query_text))
    text = analysis.normalize(text)
    tokens = analysis.tokens(text)
    if not tokens:
        return html.escape(text.strip()[:200])
    marked = _marks(tokens, leaves, analysis.stemming_language(language))
    start, end = _window(marked, len(tokens), max_words)
    out = [ELLIPSIS] if start > 0 else []
    cursor = tokens[start][0] if start > 0 else len(text) - len(text.lstrip())
    for index in range(start, end):
        token_start, token_end, _ = tokens[index]
        out.append(_gap(text[cursor:token_start]))
        piece = html.escape(text[token_start:token_end])
        out.append(f"<mark>{piece}</mark>" if index in marked else piece)
        cursor = token_end
    if end < len(tokens):
        out.append(ELLIPSIS)
    else:
        out.append(_gap(text[cursor:].rstrip()))
    return "".join(out)


def _gap(between: str) -> str:
    """Escape the text between two words, shortening what the tokenizer skipped (over-long
    tokens such as encoded blobs) so a snippet stays a snippet."""
    if len(between) > MAX_GAP_CHARS:
        between = between[: MAX_GAP_CHARS // 2] + ELLIPSIS + between[-MAX_GAP_CHARS // 2 :]
    return html.escape(between)


def _marks(
    tokens: list[tuple[int, int, str]],
    leaves: list[query.Word | query.Phrase | query.Prefix | query.Fuzzy],
    language: str | None,
) -> set[int]:
    cache: dict[str, tuple[str, str]] = {}
    surfaces: list[str] = []
    terms: list[str] = []
    for _, _, word in tokens:
        known = cache.get(word)
        if known is None:
            surface = analysis.fold(word)
            known = cache[word] = (surface, analysis.term(surface, language))
        surfaces.append(known[0])
        terms.append(known[1])

    single: set[str] = set()  # analysed terms that mark wherever they occur
    marked: set[int] = set()
    for leaf in leaves:
        if isinstance(leaf, query.Prefix):
            prefix = analysis.fold(leaf.text.lower())
            single.update(t for s, t in zip(surfaces, terms, strict=True) if s.startswith(prefix))
        elif isinstance(leaf, query.Fuzzy):
            word = leaf.text.lower()
            folded = analysis.fold(word)
            single.update(analysis.query_terms(word))
            single.update(
                t
                for s, t in zip(surfaces, terms, strict=True)
                if Levenshtein.distance(s, folded, score_cutoff=leaf.distance) <= leaf.distance
            )
        else:
            words = analysis.words(leaf.text)
            slop = leaf.slop if isinstance(leaf, query.Phrase) else 0
            if len(words) == 1 or (words and slop > 0):
                for word in words:
                    single.update(analysis.query_terms(word))
            elif words:
                marked.update(_phrase_marks(terms, words))
    marked.update(i for i, t in enumerate(terms) if t in single)
    return marked


def _phrase_marks(terms: list[str], words: list[str]) -> set[int]:
    found: set[int] = set()
    width = len(words)
    for language in (*analysis.LANGUAGES, None):
        sequence = [analysis.term(w, language) for w in words]
        first = sequence[0]
        for i in range(len(terms) - width + 1):
            if terms[i] == first and terms[i : i + width] == sequence:
                found.update(range(i, i + width))
    return found


def _window(marked: set[int], count: int, max_words: int) -> tuple[int, int]:
    """Return the token range of the window holding the most marked tokens."""
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
