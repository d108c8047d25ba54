"""Language detection on a paragraph, and no guess on a few words."""

from __future__ import annotations

from ingest import detect_language
from tests import corpus


def test_spanish_and_english_paragraphs() -> None:
    assert detect_language(corpus.SPANISH) == "es"
    assert detect_language(corpus.ENGLISH) == "en"


def test_one_sentence_is_enough() -> None:
    assert detect_language("El testigo describió la detención y la tortura.") == "es"
    assert detect_language("The witness described the detention and the torture.") == "en"


def test_too_little_text_gives_no_answer() -> None:
    assert detect_language("hola") is None
    assert detect_language("") is None
    assert detect_language("12345 67890 ---- 2024-03-12") is None


def test_other_languages_and_scripts() -> None:
    assert (
        detect_language(
            "A testemunha descreveu a detenção arbitrária e a tortura sofridas no centro "
            "clandestino durante o inverno."
        )
        == "pt"
    )
    assert (
        detect_language(
            "Свидетель описал произвольное задержание и пытки, которым он подвергся зимой."
        )
        == "ru"
    )
    # CLD2 names the script too ("zh-Hant"); the vault keeps the language alone.
    assert (
        detect_language("證人描述了他冬天在秘密中心遭受的任意拘留和酷刑。審訊持續了幾個小時。")
        == "zh"
    )


def test_a_deprecated_code_becomes_the_one_bcp47_lists() -> None:
    # CLD2 says "iw" for Hebrew; the vault's list (ingest.languages) knows it as "he".
    hebrew = "זוהי עדות על המעצר בתחנת המשטרה. הם היכו אותי במשך שלושה ימים ולא נתנו לי מים. "
    assert detect_language(hebrew * 3) == "he"


def test_text_is_read_as_text_not_html() -> None:
    # As HTML, CLD2 would skip "<...>" as a tag and find too little Spanish to answer.
    assert detect_language("<" + corpus.SPANISH[:120] + ">") == "es"


def test_characters_cld2_refuses_change_nothing_and_raise_nothing() -> None:
    # Controls, noncharacters and a lone surrogate (a Java string may hold one): CLD2 raises on
    # each of them as it comes; here they count as spaces.
    refused = (
        "".join(map(chr, range(0x20)))
        + "".join(map(chr, range(0x7F, 0xA0)))
        + "\ufdd0\ufdef\ufffe\uffff\U0001fffe\U0010ffff\ud800\ufeff"
    )
    assert detect_language(corpus.SPANISH[:150] + refused + corpus.SPANISH[150:]) == "es"
    assert detect_language(refused * 100) is None
