"""The reader's pages over an indexed vault (issue 19 points 5, 7): search results in pages of
20 by POST, snippets, an item's text behind its notice, redaction as the policy says."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.unit.vault.conftest import principal
from tests.unit.vault.search_support import deposit, give_text
from tests.unit.vault.web.web_support import (
    browser,
    entries,
    sign_in,
    signed_in,
    token,
    with_password,
)
from vault import ledger
from vault.accounts import add_user
from vault.cases import create_case, grant
from vault.compose import app_of
from vault.indexing import index_item
from vault.parts import Vault

TEXT = "La detención ocurrió en Quebradahonda; el testigo Quispe Mamani lo vio."


def test_results_come_in_pages_of_twenty_and_the_words_never_reach_a_url(vault: Vault) -> None:
    tina = principal(vault, "tina")
    case = create_case(vault, tina, "Caso").id
    tina = principal(vault, "tina")
    for n in range(23):
        item = deposit(vault, tina, case, consent={"therapy"}, title=f"Testimonio {n:02d}")
        give_text(vault, item, TEXT, language="es")
        assert index_item(vault, item).outcome == "indexed"
    client = signed_in(vault, "tina")
    page = client.get("/search")
    first = client.post("/search", data={"csrf": token(page), "q": "Quebradahonda"})
    assert "23 results" in first.text and "Page 1 of 2" in first.text
    assert first.text.count('<li>\n    <a href="/items/') == 20
    assert "<mark>Quebradahonda</mark>" in first.text
    assert "Previous page" not in first.text and "Next page" in first.text
    # The next page is a POST too: the form carries the words, the URL does not.
    assert re.search(r'<form method="post" action="/search" class="inline">', first.text)
    second = client.post("/search", data={"csrf": token(page), "q": "Quebradahonda", "page": "2"})
    assert "Page 2 of 2" in second.text and second.text.count('<li>\n    <a href="/items/') == 3
    assert "Previous page" in second.text and "Next page" not in second.text
    assert len(entries(vault, ledger.actions.SEARCH)) == 2


def test_the_text_shows_after_the_notice_and_is_withheld_under_redaction(vault: Vault) -> None:
    tina = principal(vault, "tina")
    case = create_case(vault, tina, "Caso").id
    item = deposit(
        vault,
        principal(vault, "tina"),
        case,
        consent={"therapy", "advocacy_anonymised"},
        title="Testimonio de Quispe",
    )
    give_text(vault, item, TEXT, language="es")
    with vault.sessions.begin() as session:
        add_user(session, "ada", "advocate", vault.clock())
    grant(vault, principal(vault, "admin"), case, "ada", "advocate")

    reader = signed_in(vault, "tina")
    page = reader.get(f"/items/{item}")
    assert "Content notice" in page.text and "Quebradahonda" not in page.text
    text = reader.get(f"/items/{item}/text")
    assert "Quispe Mamani lo vio" in text.text
    reads = [e.details["purpose"] for e in entries(vault, ledger.actions.DECRYPTION)]
    assert reads == ["read", "read text"]

    advocate = signed_in(vault, "ada")
    redacted = advocate.get(f"/items/{item}")
    assert redacted.status_code == 200 and "Quispe" not in redacted.text
    assert "[redacted]" in redacted.text
    withheld = advocate.get(f"/items/{item}/text")
    assert "withheld for your role" in withheld.text and "Quispe" not in withheld.text
    # Same refusal as the API for what the policy denies: another therapist finds nothing.
    assert signed_in(vault, "theo").get(f"/items/{item}/text").status_code == 404


def _facet(page: str, field: str) -> dict[str, str]:
    """The choices of one filter on a results page: value -> "count" ("" without one)."""
    block = re.search(rf'<fieldset id="filter-{field}">(.*?)</fieldset>', page, re.S)
    if block is None:
        return {}
    found = re.findall(
        r'name="[a-z]+" value="([^"]+)"(?: checked)?> [^<]*(?:<span class="count">\((\d+)\))?',
        block.group(1),
    )
    return dict(found)


def _checked(page: str, field: str) -> set[str]:
    return set(re.findall(rf'name="{field}" value="([^"]+)" checked', page))


def test_filters_narrow_the_results_and_facets_count_them(vault: Vault) -> None:
    tina = principal(vault, "tina")
    case = create_case(vault, tina, "Caso").id
    tina = principal(vault, "tina")
    made = []
    for n, (kind, language, tags) in enumerate(
        [("testimony", "es", ["torture"])] * 22
        + [("document", "en", ["arbitrary_detention"]), ("document", "es", [])]
    ):
        item = deposit(
            vault,
            tina,
            case,
            consent={"therapy"},
            kind=kind,
            language=language,
            tags=tags,
            title=f"Testimonio {n:02d}",
        )
        give_text(vault, item, TEXT, language=language)
        assert index_item(vault, item).outcome == "indexed"
        made.append(item)
    client = signed_in(vault, "tina")
    csrf = token(client.get("/search"))

    everything = client.post("/search", data={"csrf": csrf, "q": "Quebradahonda"})
    assert "24 results" in everything.text
    assert _facet(everything.text, "kind") == {
        "testimony": "22",
        "document": "2",
        "media": "0",
        "medical_report": "0",
    }
    assert _facet(everything.text, "language") == {"es": "23", "en": "1"}
    assert _facet(everything.text, "case") == {case: "24"}
    assert _facet(everything.text, "tag") == {"torture": "22", "arbitrary_detention": "1"}

    documents = client.post(
        "/search", data={"csrf": csrf, "q": "Quebradahonda", "kind": "document"}
    )
    assert "2 results" in documents.text and _checked(documents.text, "kind") == {"document"}
    shown = set(re.findall(r'<a href="/items/([^"]+)">', documents.text))
    assert shown == set(made[22:])
    assert _facet(documents.text, "language") == {"es": "1", "en": "1"}

    english = client.post(
        "/search",
        data={"csrf": csrf, "q": "", "kind": ["document", "testimony"], "language": "en"},
    )
    assert "1 results" in english.text and f'href="/items/{made[22]}"' in english.text
    assert _checked(english.text, "kind") == {"document", "testimony"}
    assert _checked(english.text, "language") == {"en"}

    # The next page carries the filters in the form, never in a URL.
    tagged = client.post("/search", data={"csrf": csrf, "q": "", "tag": "torture"})
    assert "22 results" in tagged.text and "Page 1 of 2" in tagged.text
    assert '<input type="hidden" name="tag" value="torture">' in tagged.text
    second = client.post("/search", data={"csrf": csrf, "q": "", "tag": "torture", "page": "2"})
    assert "Page 2 of 2" in second.text and second.text.count('<li>\n    <a href="/items/') == 2

    today = vault.clock().date().isoformat()
    tomorrow = (vault.clock() + timedelta(days=1)).date().isoformat()
    dated = client.post("/search", data={"csrf": csrf, "q": "", "date_from": today})
    assert "24 results" in dated.text and f'value="{today}"' in dated.text
    later_on = client.post("/search", data={"csrf": csrf, "q": "", "date_from": tomorrow})
    assert "0 results" in later_on.text
    bad = client.post("/search", data={"csrf": csrf, "q": "", "date_to": "31/12/2020"})
    assert bad.status_code == 422 and "Deposited until" in bad.text

    # Each search is one entry; its filters are sealed with the words.
    assert len(entries(vault, ledger.actions.SEARCH)) == 7


def test_facets_count_only_what_the_reader_may_see_and_filters_never_widen(vault: Vault) -> None:
    tina = principal(vault, "tina")
    case = create_case(vault, tina, "Caso").id
    tina = principal(vault, "tina")
    # In the advocate's case, one item the survivor kept to therapy: hidden from the advocate.
    hidden = deposit(
        vault,
        tina,
        case,
        consent={"therapy"},
        kind="document",
        language="en",
        tags=["torture"],
        title="Solo terapia",
    )
    seen = deposit(vault, tina, case, consent={"therapy", "advocacy_named"}, title="Para abogar")
    for item in (hidden, seen):
        give_text(vault, item, TEXT, language="es")
        assert index_item(vault, item).outcome == "indexed"
    # Another therapist's case, which neither the advocate nor tina's search reaches.
    theo = principal(vault, "theo")
    other = create_case(vault, theo, "Otro caso").id
    theirs = deposit(
        vault,
        principal(vault, "theo"),
        other,
        consent={"therapy", "advocacy_named"},
        kind="medical_report",
        language="en",
    )
    give_text(vault, theirs, TEXT, language="en")
    assert index_item(vault, theirs).outcome == "indexed"
    with vault.sessions.begin() as session:
        add_user(session, "ada", "advocate", vault.clock())
    grant(vault, principal(vault, "admin"), case, "ada", "advocate")

    ada = signed_in(vault, "ada")
    csrf = token(ada.get("/search"))
    page = ada.post("/search", data={"csrf": csrf, "q": ""})
    assert "1 results" in page.text and f'href="/items/{seen}"' in page.text
    assert _facet(page.text, "kind") == {
        "testimony": "1",
        "document": "0",
        "media": "0",
        "medical_report": "0",
    }
    assert _facet(page.text, "language") == {"es": "1"}
    assert _facet(page.text, "case") == {case: "1"}
    assert _facet(page.text, "tag") == {}
    # Asking for the hidden item's kind, language or tag finds nothing.
    for field, value in (("kind", "document"), ("language", "en"), ("tag", "torture")):
        narrowed = ada.post("/search", data={"csrf": csrf, "q": "", field: value})
        assert "0 results" in narrowed.text, field
        assert hidden not in narrowed.text and theirs not in narrowed.text
        assert _facet(narrowed.text, "case") == {}
    # A case the advocate cannot search, named in a forged form: refused as the API refuses
    # it (the same answer as an unknown case), and recorded.
    denied_before = len(entries(vault, ledger.actions.ACCESS_DENIED))
    for forged in (other, "no-such-case"):
        refused = ada.post("/search", data={"csrf": csrf, "q": "", "case": forged})
        assert refused.status_code == 404 and theirs not in refused.text
    assert len(entries(vault, ledger.actions.ACCESS_DENIED)) == denied_before + 2


def test_a_hit_names_its_kind_in_the_readers_language(vault: Vault) -> None:
    tina = principal(vault, "tina")
    case = create_case(vault, tina, "Caso").id
    item = deposit(vault, principal(vault, "tina"), case, consent={"therapy"}, kind="document")
    give_text(vault, item, TEXT, language="es")
    assert index_item(vault, item).outcome == "indexed"
    with_password(vault, "tina")
    for language, shown in (("es", "Documento ·"), ("en", "Document ·")):
        client = browser(app_of(vault), language)
        assert sign_in(client, "tina").status_code == 303
        page = client.get("/search")
        found = client.post("/search", data={"csrf": token(page), "q": "Quebradahonda"})
        assert shown in found.text and "document ·" not in found.text
