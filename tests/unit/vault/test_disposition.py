"""`vault.api.disposition`: download file names that cannot climb directories nor mislead."""

from __future__ import annotations

import pytest

from vault.api.disposition import MAX_BYTES, attachment, safe_filename


@pytest.mark.parametrize(
    ("given", "safe"),
    [
        ("declaración.pdf", "declaración.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ana\\testimonio.docx", "testimonio.docx"),
        ("a\r\nSet-Cookie: x=1.txt", "aSet-Cookie: x=1.txt"),
        ("evil\u202egpj.exe", "evilgpj.exe"),  # no right-to-left override
        ("..hidden", "hidden"),
        ("name. ", "name"),
        ("/", ""),
        ("\x00\x01", ""),
        ("tab\there.txt", "tabhere.txt"),
    ],
)
def test_safe_filename(given: str, safe: str) -> None:
    assert safe_filename(given) == safe


def test_a_long_name_is_cut_on_a_character_boundary() -> None:
    cut = safe_filename("é" * 300)
    assert len(cut.encode("utf-8")) <= MAX_BYTES and set(cut) == {"é"}


def test_attachment_gives_an_ascii_name_and_the_exact_utf8_name() -> None:
    assert attachment('Declaración "final" 100%.pdf', "item1") == (
        'attachment; filename="Declaraci_n _final_ 100_.pdf"; '
        "filename*=UTF-8''Declaraci%C3%B3n%20%22final%22%20100%25.pdf"
    )
    # Nothing to show (not allowed, none recorded, or nothing left once cleaned): the item id.
    assert attachment(None, "item1") == "attachment; filename=\"item1\"; filename*=UTF-8''item1"
    assert attachment("../", "item1") == "attachment; filename=\"item1\"; filename*=UTF-8''item1"
    header = attachment("a\r\nb\x7f.txt", "item1")
    assert all(ord(c) >= 0x20 and ord(c) != 0x7F for c in header)
