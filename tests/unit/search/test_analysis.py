"""Analysis: folding, stemming per language, digests, and the vocabulary."""

from __future__ import annotations

import re
import zlib

import pytest

from search import IndexFormatError
from search.analysis import (
    Digester,
    fold,
    normalize_language,
    query_terms,
    term,
    tokens,
    words,
)
from search.vocabulary import OutdatedVocabularyError, Vocabulary, pack, unpack


def test_fold_strips_accents() -> None:
    assert fold("detención") == "detencion"
    assert fold("niño") == "nino"
    assert fold("über") == "uber"
    assert fold("plain") == "plain"


@pytest.mark.parametrize(
    ("forms", "language"),
    [
        (["detención", "detenciones", "DETENCION", "detencion"], "es"),
        (["declaración", "declaraciones", "declaracion"], "es"),
        (["policía", "policías", "policia"], "es"),
        (["tortura", "torturas", "torturaron"], "es"),
        (["arrest", "arrests", "arrested", "arresting"], "en"),
        (["torture", "tortured", "tortures"], "en"),
    ],
)
def test_inflections_share_one_term(forms: list[str], language: str) -> None:
    assert len({term(w.lower(), language) for w in forms}) == 1


def test_query_terms_cover_every_language_and_the_unstemmed_form() -> None:
    assert query_terms("Detenciones") >= {term("detenciones", "es"), "detenciones"}


def test_words_and_tokens_lowercase_and_drop_noise() -> None:
    assert words("La DETENCIÓN, ¿dónde? " + "x" * 41) == ["la", "detención", "dónde"]
    assert tokens("Hola, Rosa") == [(0, 4, "hola"), (6, 10, "rosa")]


def test_normalize_language() -> None:
    assert normalize_language("es-AR") == "es"
    assert normalize_language("ENG") == "en"
    assert normalize_language("fr") == "fr"
    assert normalize_language(None) is None
    assert normalize_language("") is None


def test_digests_are_keyed_opaque_and_stable() -> None:
    one, other = Digester(b"a" * 32), Digester(b"b" * 32)
    assert one.digest("detencion") == Digester(b"a" * 32).digest("detencion")
    assert one.digest("detencion") != other.digest("detencion")
    assert one.digest("detencion") != one.digest("detencio")
    assert re.fullmatch(r"[a-z2-7]{16}", one.digest("detencion"))
    assert one.key_check() != other.key_check()
    assert one.key_check() not in {one.digest(""), one.digest("tvault-index-key-check")}


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        Digester(b"short")


def test_vocabulary_expands_prefixes_and_fuzzy_names() -> None:
    vocabulary = Vocabulary()
    for surface in ("tortura", "torturas", "torre", "mamani", "mamany", "quispe"):
        vocabulary.add(surface, term(surface, "es"))
    assert vocabulary.prefix("tortu", 10) == {"tortur"}
    assert vocabulary.prefix("to", 10) == {"tortur", "torr"}
    assert vocabulary.prefix("to", 1) is None  # past the limit
    assert vocabulary.prefix("zz", 10) == set()
    assert vocabulary.fuzzy("mamani", 1, 10) == {"mamani", "mamany"}
    assert vocabulary.fuzzy("mamanii", 1, 10) == {"mamani"}


def test_vocabulary_round_trips_and_rejects_other_bytes() -> None:
    vocabulary = Vocabulary()
    vocabulary.add("detencion", "detencion")
    vocabulary.add("detenciones", "detencion")
    vocabulary.add("quorv", "quorv")  # met only in identity text: not in the anonymised one
    anonymised = Vocabulary()
    anonymised.add("detencion", "detencion")
    anonymised.add("detenciones", "detencion")
    again, again_anonymised = unpack(pack(vocabulary, anonymised))
    assert again.prefix("deten", 10) == {"detencion"}
    assert len(again) == 3
    assert again_anonymised.prefix("quo", 10) == set()
    assert again.prefix("quo", 10) == {"quorv"}
    with pytest.raises(IndexFormatError):
        unpack(b"not a vocabulary")
    with pytest.raises(IndexFormatError):
        unpack(pack(vocabulary, anonymised)[:-4])
    assert [len(v) for v in unpack(pack(Vocabulary(), Vocabulary()))] == [0, 0]


def test_a_vocabulary_of_the_older_format_asks_for_a_reindex() -> None:
    # v1 did not tell identity words apart: it must not be used as the anonymised vocabulary.
    older = b"tvault-vocabulary-v1\n" + zlib.compress(b"quorv\tquorv")
    with pytest.raises(OutdatedVocabularyError, match="tvault reindex"):
        unpack(older)


def test_vocabulary_retains_only_live_terms() -> None:
    vocabulary = Vocabulary()
    vocabulary.add("torre", "torr")
    vocabulary.add("tortura", "tortur")
    vocabulary.dirty = False
    assert vocabulary.retain({"tortur"}) == 1
    assert vocabulary.dirty
    assert vocabulary.prefix("to", 10) == {"tortur"}
    assert vocabulary.analysed_terms() == {"tortur"}


def test_vocabulary_sees_words_added_after_a_search() -> None:
    vocabulary = Vocabulary()
    vocabulary.add("tortura", "tortur")
    assert vocabulary.prefix("tor", 10) == {"tortur"}
    assert vocabulary.fuzzy("tortura", 1, 10) == {"tortur"}
    vocabulary.add("torre", "torr")
    vocabulary.add("tortuga", "tortug")
    assert vocabulary.prefix("tor", 10) == {"tortur", "torr", "tortug"}
    assert vocabulary.fuzzy("tortura", 2, 10) == {"tortur", "tortug"}
    for n in range(2500):  # past the in-place limit: one full sort
        vocabulary.add(f"tx{n:04d}", f"tx{n:04d}")
    assert len(vocabulary.prefix("tx", 5000) or ()) == 2500
    assert vocabulary.prefix("tor", 10) == {"tortur", "torr", "tortug"}


def test_decomposed_accents_are_one_word() -> None:
    import unicodedata

    decomposed = unicodedata.normalize("NFD", "La detención")
    assert words(decomposed) == ["la", "detención"]
    assert words("ﬁscal") == ["fiscal"]  # compatibility ligature
