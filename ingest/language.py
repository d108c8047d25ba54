"""Language detection of extracted text with CLD2 (`pycld2`: tables compiled in, no download).

iscc-tika does not run Tika's language detector, and a Tika server's `/language` endpoint would
make the two adapters disagree; this one detector serves both (for the native adapter it runs
in the parser process, see `ingest.adapters._tika_child`). CLD2, Chromium's Compact Language
Detector, knows 83 languages by their quadgrams and says whether its answer is reliable; it
takes ~0.1 ms for 4,000 characters, where Lingua, used before, took ~3 ms (as long as half of
Tika's own parse of a typical document: bench/RESULTS.md, "Ingest pipeline"), and it needs no
model memory to speak of (Lingua held ~110 MB in every parser process).
"""

from __future__ import annotations

import re

import pycld2

from ingest.languages import canonical_language

__all__ = ["detect_language"]

# A paragraph is enough; more text only costs time.
_SAMPLE_CHARS = 4_000
# Below this many bytes of letters, any answer is a guess.
_MIN_TEXT_BYTES = 16
# CLD2 accepts only "interchange-valid" UTF-8 and raises on the rest: C0 controls other than
# tab, newlines and form feed, DEL, the C1 controls, and the Unicode noncharacters (U+FDD0-FDEF
# and the last two code points of every plane). Extracted text can hold any of them; as spaces
# they change nothing about the language.
_REFUSED = re.compile(
    "[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufdd0-\ufdef"
    + "".join(chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(17))
    + "]"
)
# A code CLD2 gives for text it cannot place ("un") or for a script it only names ("xx-Qaai").
_UNKNOWN = frozenset({"un", "xx"})


def _detect(sample: str) -> tuple[bool, int, tuple[tuple[str, str, int, float], ...]]:
    # Plain text, not HTML: a "<" in a testimony starts no tag. Lone surrogates (a Java string
    # may hold one) become "?" so the bytes are valid UTF-8.
    result = pycld2.detect(sample.encode("utf-8", "replace"), isPlainText=True)
    return bool(result[0]), int(result[1]), tuple(result[2])


def detect_language(text: str) -> str | None:
    """Return the ISO 639 code (`es`, `en`, ...) of `text`, or None when it cannot tell.

    Never raises for any text: what CLD2 cannot read is an unknown language, not a failure.
    """
    sample = text[:_SAMPLE_CHARS]
    try:
        reliable, text_bytes, details = _detect(sample)
    except pycld2.error:
        # Cleaning first would cost more than CLD2 itself (~0.15 ms a sample): only on refusal.
        try:
            reliable, text_bytes, details = _detect(_REFUSED.sub(" ", sample))
        except pycld2.error:
            return None
    if not reliable or text_bytes < _MIN_TEXT_BYTES:
        return None
    # "zh-Hant" -> "zh": the vault keeps the language, not the script or region. CLD2 still
    # says "iw" for Hebrew: `canonical_language` maps it, and refuses anything off the list.
    code = str(details[0][1]).split("-", 1)[0].lower()
    return None if code in _UNKNOWN else canonical_language(code)
