"""Language detection of extracted text with Lingua (models ship inside the wheel; no download).

iscc-tika does not run Tika's language detector, and a Tika server's `/language` endpoint would
make the two adapters disagree; this one detector serves both (for the native adapter it runs
in the parser process, see `ingest.adapters._tika_child`). Lingua in low-accuracy
mode (trigram models only) holds ~110 MB for all 75 languages and is right on a paragraph; its
high-accuracy mode needs ~900 MB and only helps on a few words, which we answer with None.
"""

from __future__ import annotations

import functools

from lingua import LanguageDetector, LanguageDetectorBuilder

__all__ = ["detect_language"]

# A paragraph is enough; more text only costs time.
_SAMPLE_CHARS = 4_000
# Below this many letters, any answer is a guess (Lingua calls "hola" Latvian).
_MIN_LETTERS = 20
# Answer None when the best two languages are this close (Lingua's relative distance).
_MIN_DISTANCE = 0.1


@functools.cache
def _detector() -> LanguageDetector:
    """Build the detector once per process; models load lazily on first use."""
    return (
        LanguageDetectorBuilder.from_all_languages()
        .with_low_accuracy_mode()
        .with_minimum_relative_distance(_MIN_DISTANCE)
        .build()
    )


def detect_language(text: str) -> str | None:
    """Return the ISO 639-1 code (`es`, `en`, ...) of `text`, or None when it cannot tell."""
    sample = text[:_SAMPLE_CHARS]
    if sum(ch.isalpha() for ch in sample) < _MIN_LETTERS:
        return None
    language = _detector().detect_language_of(sample)
    if language is None:
        return None
    return language.iso_code_639_1.name.lower()
