"""The reader's pages over an indexed vault (issue 19 points 5, 7): search results in pages of
20 by POST, snippets, an item's text behind its notice, redaction as the policy says."""

from __future__ import annotations

import re

from tests.unit.vault.conftest import principal
from tests.unit.vault.search_support import deposit, give_text
from tests.unit.vault.web.web_support import entries, signed_in, token
from vault import ledger
from vault.accounts import add_user
from vault.cases import create_case, grant
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
