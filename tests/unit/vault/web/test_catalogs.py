"""Every string of the web pages has a translation in both catalogs (issue 19 point 8)."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from vault.web import i18n

ROOT = Path(__file__).resolve().parents[4]
# The same reading as babel.cfg (docs/web.md "Translations"), with the `N_` marker.
METHODS = [("vault/web/**.py", "python"), ("vault/web/templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def _extracted() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), METHODS, keywords=KEYWORDS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_babel_cfg_reads_what_this_test_reads() -> None:
    config = (ROOT / "babel.cfg").read_text()
    assert (
        "[python: vault/web/**.py]" in config and "[jinja2: vault/web/templates/**.html]" in config
    )


def test_the_extraction_finds_the_strings_of_templates_and_code() -> None:
    messages = _extracted()
    assert "Quick exit" in messages  # a template
    assert "Wrong account name or password. Nothing was changed." in messages  # N_ in code
    assert len(messages) > 100


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_every_string_has_a_translation_in_the_catalog(language: str) -> None:
    with i18n.catalog_path(language).open("rb") as po:
        catalog = read_po(po, locale=language)
    untranslated = sorted(
        message
        for message in _extracted()
        if catalog.get(message) is None
        or not catalog.get(message).string
        or catalog.get(message).fuzzy
    )
    assert untranslated == [], f"{language}: no translation for {untranslated}"


def test_placeholders_survive_translation() -> None:
    spanish = i18n.translations("es")
    for message in _extracted():
        if "%(" in message:
            names = sorted(part.split(")")[0] for part in message.split("%(")[1:])
            translated = spanish.gettext(message)
            assert sorted(p.split(")")[0] for p in translated.split("%(")[1:]) == names, message
