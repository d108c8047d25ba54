"""Text analysis shared by every adapter: tokenize, fold, stem, then replace terms by keyed digests.

Why in Python and not in the engine: the index directory lives under the vault directory and
DESIGN.md promise 1 allows nothing readable at rest. An engine's term dictionary of plain words
would be a readable list of survivors' names and words, so the engines only ever see opaque
HMAC-SHA-256 digests of analysed terms, with their positions (phrases still work).

Order of the steps: lowercase, fold accents, then stem. NOTES.md advises stemming before folding
(measured with the engine's older Snowball); with PyStemmer 3 the Spanish stemmer gives the same
stem to folded and accented inflections ("declaración", "declaraciones", "declaracion" ->
"declar"), and folding first is the only order in which a query typed without accents
("policia") always meets the accented text ("policía"): stemming first gives "polic" vs "polici".
"""

from __future__ import annotations

import base64
import hmac
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

import Stemmer  # type: ignore[import-not-found]

# Languages with a stemmer; every query term is analysed in each of them (and unstemmed), OR-ed,
# so a plain query works whatever the survivor's language.
LANGUAGES: tuple[str, ...] = ("es", "en")
_SNOWBALL = {"es": "spanish", "en": "english"}
_ALIASES = {"spa": "es", "eng": "en", "spanish": "es", "english": "en"}

# Tokens longer than this are dropped (the engines' own default is 40 bytes): base64 blobs and
# similar noise would only bloat the vocabulary.
MAX_TOKEN_CHARS = 40
_TOKEN = re.compile(r"\w+")
_DIGEST_BYTES = 10  # 80 bits: collisions need ~2^40 distinct terms; base32 gives 16 chars
_TERM_DOMAIN = b"tvault-index-term\x00"
_CHECK_DOMAIN = b"tvault-index-key-check\x00"
MIN_KEY_BYTES = 16


def normalize_language(language: str | None) -> str | None:
    """Return "es", "en", another lowercase primary subtag, or None (unknown)."""
    if not language:
        return None
    primary = re.split(r"[-_]", language.strip().lower(), maxsplit=1)[0]
    return _ALIASES.get(primary, primary) or None


def fold(token: str) -> str:
    """Strip accents and other combining marks ("detención" -> "detencion")."""
    if token.isascii():
        return token
    decomposed = unicodedata.normalize("NFKD", token)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def normalize(text: str) -> str:
    """Return `text` in Unicode NFKC: decomposed accents (macOS, some PDFs) would otherwise split
    words, since a combining mark is not a word character ("detencio" + "n")."""
    return unicodedata.normalize("NFKC", text)


def tokens(text: str) -> list[tuple[int, int, str]]:
    """Return `(start, end, lowercased token)` for each word of `text`, in order; offsets refer
    to `text` as given, so pass it through `normalize` first."""
    out = []
    for match in _TOKEN.finditer(text):
        word = match.group().lower()
        if len(word) <= MAX_TOKEN_CHARS:
            out.append((match.start(), match.end(), word))
    return out


def words(text: str) -> list[str]:
    """Return the lowercased tokens of `text` (the hot path of indexing)."""
    return [w for w in _TOKEN.findall(normalize(text).lower()) if len(w) <= MAX_TOKEN_CHARS]


@lru_cache(maxsize=8)
def _stemmer(language: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(_SNOWBALL[language])


def term(word: str, language: str | None) -> str:
    """Return the analysed term of one lowercased `word` in `language` (None: fold only)."""
    surface = fold(word)
    if language in _SNOWBALL:
        stemmed: str = _stemmer(language).stemWord(surface)
        return stemmed
    return surface


def terms(surfaces: list[str], language: str | None) -> list[str]:
    """Return `term(w, language)` for each already folded, lowercased word of `surfaces`, with
    one call into the stemmer for the whole list."""
    if language in _SNOWBALL:
        stemmed: list[str] = _stemmer(language).stemWords(surfaces)
        return stemmed
    return surfaces


def query_terms(word: str) -> frozenset[str]:
    """Return the analysed forms of a query `word` in every configured language and unstemmed."""
    lowered = word.lower()
    forms = {term(lowered, None)}
    forms.update(term(lowered, language) for language in LANGUAGES)
    return frozenset(forms)


def stemming_language(language: str | None) -> str | None:
    """Return the language whose stemmer analyses a document in `language`, or None."""
    normalized = normalize_language(language)
    return normalized if normalized in _SNOWBALL else None


class Digester:
    """Turns analysed terms into keyed digests (HMAC-SHA-256, truncated, base32).

    Raises `ValueError` if `key` is shorter than 16 bytes.
    """

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the index key must be at least {MIN_KEY_BYTES} bytes")
        self._key = key
        self._cache: dict[str, str] = {}

    def digest(self, analysed: str) -> str:
        """Return the opaque token the engines index for the analysed term `analysed`."""
        cached = self._cache.get(analysed)
        if cached is None:
            mac = hmac.digest(self._key, _TERM_DOMAIN + analysed.encode(), "sha256")
            cached = base64.b32encode(mac[:_DIGEST_BYTES]).decode("ascii").lower()
            if len(self._cache) > 1_000_000:  # bound memory on huge vocabularies
                self._cache.clear()
            self._cache[analysed] = cached
        return cached

    def digests(self, analysed: Iterable[str]) -> frozenset[str]:
        """Return the digests of every term in `analysed`."""
        return frozenset(self.digest(t) for t in analysed)

    def key_check(self) -> str:
        """Return a value that identifies the key without revealing it (domain-separated MAC)."""
        return hmac.digest(self._key, _CHECK_DOMAIN, "sha256")[:16].hex()
