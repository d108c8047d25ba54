"""The one list of language tags the vault accepts: BCP 47 (RFC 5646) `language[-Script][-REGION]`.

A language is stored in the clear (DESIGN.md promise 1: structural metadata), so it must never
be free text: a tag such as `es-Maria-Quorv` would put a survivor's name in the database
unsealed. Every subtag comes from a fixed vocabulary in `bcp47.json`: the living languages of
ISO 639-3 (by their two-letter ISO 639-1 code where one exists, as BCP 47 requires), the
scripts of ISO 15924 (private use excluded) and the regions of ISO 3166-1 plus UN M.49 `419`
(Latin America). The API (`vault.deposit`), the CLI (`tvault deposit`, `tvault ingest`) and the
extraction's language detection all check tags here.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

__all__ = ["canonical_language", "known_languages"]

# Codes that language detectors still emit (CLD2 among them) but BCP 47 deprecated in favour
# of another (IANA language subtag registry, "Preferred-Value").
_PREFERRED = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro"}


@cache
def _vocabulary() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    text = resources.files("ingest").joinpath("bcp47.json").read_text(encoding="utf-8")
    data = json.loads(text)

    def codes(key: str) -> frozenset[str]:
        return frozenset(code for line in data[key] for code in line.split())

    return codes("languages"), codes("scripts"), codes("regions")


def known_languages() -> frozenset[str]:
    """Return every primary language subtag the vault accepts (lower case)."""
    return _vocabulary()[0]


def canonical_language(tag: str) -> str | None:
    """Return `tag` in canonical case (`es`, `sr-Latn`, `es-419`, `en-GB`) if every subtag is
    known, else None. BCP 47 tags are case-insensitive; deprecated codes (`iw`) become their
    preferred value (`he`). Never raises.
    """
    languages, scripts, regions = _vocabulary()
    parts = tag.split("-") if isinstance(tag, str) and tag.isascii() else []
    if not parts or len(parts) > 3:
        return None
    language = _PREFERRED.get(parts[0].lower(), parts[0].lower())
    if language not in languages:
        return None
    out = [language]
    rest = parts[1:]
    if rest and len(rest[0]) == 4:
        script = rest.pop(0).title()
        if script not in scripts:
            return None
        out.append(script)
    if rest:
        region = rest.pop(0).upper()
        if region not in regions:
            return None
        out.append(region)
    return None if rest else "-".join(out)
