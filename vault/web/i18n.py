"""The page languages (Spanish and English) and their Babel/gettext catalogs.

The catalogs are the `.po` files under `vault/web/locale/`, compiled in memory when first used
(`babel.messages`): no compiled `.mo` file is kept in git or downloaded. docs/web.md says how
to extract new strings and update both catalogs.
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path
from typing import Final

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES: Final = ("es", "en")
# Spanish first: most people who deposit and read testimonies here speak it.
DEFAULT: Final = "es"
LOCALE_DIR: Final = Path(__file__).parent / "locale"
NAMES: Final = {"es": "Español", "en": "English"}


def catalog_path(language: str) -> Path:
    """Return the `.po` file of `language`."""
    return LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"


@functools.cache
def translations(language: str) -> gettext.GNUTranslations:
    """Return the compiled catalog of `language` (one of `LANGUAGES`)."""
    with catalog_path(language).open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def choose(account: str | None, cookie: str | None, accept_language: str | None) -> str:
    """Return the page language: the account's, then the browser's cookie (the switch of a
    signed-out visitor), then the first of `Accept-Language` we speak, then `DEFAULT`."""
    for candidate in (account, cookie):
        if candidate in LANGUAGES:
            return candidate
    for tag, _ in _ranked(accept_language or ""):
        primary = tag.split("-")[0].lower()
        if primary in LANGUAGES:
            return primary
    return DEFAULT


def _ranked(header: str) -> list[tuple[str, float]]:
    # RFC 9110 12.5.4: `tag;q=weight`, highest weight first; malformed parts are skipped.
    ranked: list[tuple[str, float]] = []
    for part in header.split(",")[:32]:
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and weight > 0:
            ranked.append((tag, weight))
    return sorted(ranked, key=lambda pair: -pair[1])
