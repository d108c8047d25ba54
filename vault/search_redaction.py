"""Which words of a text are identity text: one rule for the index and for snippets.

Under `redact_identities` (DESIGN.md promise 11) the survivor's identity must not reach the
principal by any channel. The index keeps the words of an item's identity fields out of the
field such a principal searches (`search.IndexDocument.identity`), and a snippet shown to them
has the same words replaced by "[redacted]" (`vault.searching.present`). Both use the word set
made here, so what the engine may match and what the page may show agree.

Every word of the identity fields counts, with one exception: words of one or two letters that
are common Spanish or English function words ("de", "la", "y", "of"), which sit inside names
("Ana de la Cruz") and would otherwise blank every sentence. They identify no one on their own;
any other short word ("Li", "Wu") is redacted like a long one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from search import analysis

_WORD = re.compile(r"(\w+)")
# Folded, lowercased; only words shorter than three letters are looked up here.
KEPT_SHORT_WORDS = frozenset(
    {
        *"aeiouy",
        *("al", "da", "de", "di", "do", "du", "el", "en", "la", "le", "lo"),
        *("mi", "ni", "no", "se", "si", "su", "te", "tu", "un", "ya"),
        *("an", "as", "at", "by", "in", "is", "it", "of", "on", "or", "to"),
    }
)


def identity_words(fields: Mapping[str, object]) -> frozenset[str]:
    """Return the folded, lowercased words of identity `fields` (strings, or lists of strings;
    anything else is ignored) that are redacted wherever they occur in the item's text."""
    values: list[str] = []
    for value in fields.values():
        if isinstance(value, str):
            values.append(value)
        elif isinstance(value, list):
            values.extend(v for v in value if isinstance(v, str))
    words = {
        analysis.fold(word.lower())
        for value in values
        for word in _WORD.findall(analysis.normalize(value))
    }
    return frozenset(w for w in words if len(w) >= 3 or w not in KEPT_SHORT_WORDS)


def redact(text: str, words: frozenset[str], replacement: str) -> str:
    """Return `text` with every word whose folded form is in `words` replaced by
    `replacement` (tokens as `search.analysis` makes them, so the index and the page agree)."""
    parts = _WORD.split(analysis.normalize(text))
    for index in range(1, len(parts), 2):
        if analysis.fold(parts[index].lower()) in words:
            parts[index] = replacement
    return "".join(parts)
