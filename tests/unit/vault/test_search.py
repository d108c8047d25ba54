"""The search use case and the index stage on a real vault (SQLite and PostgreSQL, tantivy)."""

from __future__ import annotations

import io
import logging
import shutil
import zlib
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

import keys
from policies import Principal
from search import Index, SearchError
from search.vocabulary import Vocabulary, pack
from vault import ledger
from vault.cases import create_case, grant
from vault.compose import ensure_index_secrets, index_directory, make_index
from vault.db import Item, ItemKey
from vault.db.search_tables import VocabularyChange
from vault.errors import BadField, NotFound
from vault.indexing import index_item, index_of, refresh_item, reindex, remove_item
from vault.ledger.tables import LedgerRow
from vault.parts import INDEX_KEY, METADATA_IDENTITY, VOCABULARY_IDENTITY, Vault
from vault.sealing import open_json
from vault.searching import SearchRequest, SearchResults, search

from . import world_support as worlds
from .conftest import FAST_KDF, principal
from .search_support import deposit, give_text

SECRET_NAME = "Quispe"
TEXT_ES = (
    "El 3 de marzo fui detenido por la policía en la plaza. Durante la detención recibí "
    f"golpes eléctricos. Mi vecino {SECRET_NAME} Mamani vio cómo me llevaban."
)
TEXT_EN = "I was arrested at night and tortured in the station; my sister saw the arrest."


def _build_world(vault: Vault) -> dict[str, str]:
    """Two cases by tina; lena (lawyer) granted on the first; three items with texts."""
    tina = principal(vault, "tina")
    first = create_case(vault, tina, "Caso uno").id
    second = create_case(vault, tina, "Caso dos").id
    admin = principal(vault, "admin")
    grant(vault, admin, first, "lena", "lawyer")
    tina = principal(vault, "tina")  # now with her grants on both cases
    items = {
        "legal_es": deposit(vault, tina, first, consent={"legal", "therapy"}, tags={"torture"}),
        "therapy_en": deposit(vault, tina, first, consent={"therapy"}, language="en"),
        "legal_second": deposit(vault, tina, second, consent={"legal"}, language=None),
    }
    give_text(vault, items["legal_es"], TEXT_ES)
    give_text(vault, items["therapy_en"], TEXT_EN)
    give_text(vault, items["legal_second"], TEXT_EN, language="en")
    for item_id in items.values():
        assert index_item(vault, item_id).outcome == "indexed"
    return {"first": first, "second": second, **items}


@pytest.fixture
def world(vault: Vault, request: pytest.FixtureRequest) -> dict[str, str]:
    """The world of `_build_world` in the test's own vault: built once per process and
    database, copied into each test's vault (world_support.py)."""
    return worlds.enter(request, vault, "search", _build_world)


def ask(vault: Vault, who: str | Principal, text: str, **kw: object) -> SearchResults:
    person = principal(vault, who) if isinstance(who, str) else who
    return search(vault, person, SearchRequest(text=text, **kw))  # type: ignore[arg-type]


def test_lawyer_finds_granted_legal_items_with_marked_snippets(
    vault: Vault, world: dict[str, str]
) -> None:
    found = ask(vault, "lena", "detencion")
    assert [h.item_id for h in found.hits] == [world["legal_es"]]
    hit = found.hits[0]
    assert "<mark>detenido</mark>" not in (hit.snippet or "")  # a different stem
    assert "<mark>detención</mark>" in (hit.snippet or "")
    assert hit.title == "Testimonio" and not hit.redacted
    assert found.total == 1
    assert found.facets["case"] == {world["first"]: 1}
    assert found.facets["tag"] == {"torture": 1}
    assert found.facets["language"] == {"es": 1}


def test_scope_keeps_therapy_items_and_ungranted_cases_out(
    vault: Vault, world: dict[str, str]
) -> None:
    # "arrest" is in the therapy-only item of the granted case and in the legal item of a case
    # lena is not granted on: she sees neither, in hits, total or facets.
    found = ask(vault, "lena", "arrest")
    assert found.hits == [] and found.total == 0
    assert all(not counts for counts in found.facets.values())
    # tina, therapist granted on the first case (its creator), finds its therapy items.
    mine = ask(vault, "tina", "arrest")
    assert [h.item_id for h in mine.hits] == [world["therapy_en"]]


def test_everyone_else_finds_nothing(vault: Vault, world: dict[str, str]) -> None:
    for who in ("admin", "theo"):
        found = ask(vault, who, "")
        assert (found.total, found.hits) == (0, [])


def test_detected_language_is_used_when_the_depositor_gave_none(
    vault: Vault, world: dict[str, str]
) -> None:
    admin = principal(vault, "admin")
    grant(vault, admin, world["second"], "lena", "lawyer")
    found = ask(vault, "lena", "tortured", languages=frozenset({"en"}))
    assert [h.item_id for h in found.hits] == [world["legal_second"]]
    assert found.facets["language"] == {"en": 1}


def test_pages(vault: Vault, world: dict[str, str]) -> None:
    tina = principal(vault, "tina")
    extra = [deposit(vault, tina, world["first"], consent={"therapy"}) for _ in range(4)]
    for item_id in extra:
        give_text(vault, item_id, "detención en la comisaría")
        index_item(vault, item_id)
    pages = [ask(vault, "tina", "detencion", page=n, page_size=2) for n in (1, 2, 3, 4)]
    assert [p.total for p in pages] == [5, 5, 5, 5]
    seen = [h.item_id for p in pages for h in p.hits]
    assert sorted(seen) == sorted([*extra, world["legal_es"]])
    assert [len(p.hits) for p in pages] == [2, 2, 1, 0]
    with pytest.raises(BadField):
        ask(vault, "tina", "x", page_size=101)


def test_a_search_is_a_ledger_entry_with_the_query_sealed(
    vault: Vault, world: dict[str, str]
) -> None:
    found = ask(vault, "lena", f"detencion {SECRET_NAME}")
    with vault.sessions() as session:
        last = ledger.size(session) - 1
        entry = ledger.entry(session, last)
        sealed = ledger.sealed_details(session, last)
        rows = session.scalars(select(LedgerRow.entry)).all()
    assert entry.action == ledger.actions.SEARCH and entry.actor == "lena"
    assert entry.details["results"] == [h.item_id for h in found.hits]
    assert entry.details["total"] == found.total
    for canonical in rows:  # the query is nowhere in the clear
        assert SECRET_NAME.encode() not in bytes(canonical)
        assert b"detencion" not in bytes(canonical)
    assert sealed is not None and SECRET_NAME.encode() not in sealed
    identity = vault.keyring.secret(METADATA_IDENTITY).decode("ascii")
    assert open_json(sealed, identity)["query"] == f"detencion {SECRET_NAME}"


def test_an_empty_scope_is_recorded_too(vault: Vault, world: dict[str, str]) -> None:
    ask(vault, "admin", "detencion")
    with vault.sessions() as session:
        entry = ledger.entry(session, ledger.size(session) - 1)
    assert entry.action == ledger.actions.SEARCH and entry.details["results"] == []


def test_query_errors_name_the_position_never_the_text(
    vault: Vault, world: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(BadField) as raised:
        ask(vault, "lena", f'"{SECRET_NAME} unterminated')
    assert "position" in raised.value.detail
    assert SECRET_NAME not in raised.value.detail
    ask(vault, "lena", SECRET_NAME)
    assert SECRET_NAME not in caplog.text


def test_withdrawn_consent_is_not_shown_nor_counted_before_the_index_catches_up(
    vault: Vault, world: dict[str, str]
) -> None:
    with vault.sessions.begin() as session:
        session.execute(
            update(Item).where(Item.id == world["legal_es"]).values(consent=["therapy"])
        )
    found = ask(vault, "lena", "detencion")
    assert found.hits == [] and found.total == 0
    assert found.facets["case"] == {} and found.facets["tag"] == {}
    refresh_item(vault, world["legal_es"])
    assert ask(vault, "lena", "detencion").total == 0
    assert ask(vault, "tina", "detencion").total == 1


def test_a_shredded_item_is_never_shown_and_leaves_the_index(
    vault: Vault, world: dict[str, str]
) -> None:
    with vault.sessions.begin() as session:
        session.execute(delete(ItemKey).where(ItemKey.item_id == world["legal_es"]))
    assert ask(vault, "lena", "detencion").hits == []
    remove_item(vault, world["legal_es"])
    assert index_of(vault).count() == 2
    # Indexing it again removes it rather than indexing anything.
    assert index_item(vault, world["legal_es"]).outcome == "shredded"


def test_index_item_is_idempotent_and_refuses_unknown_items(
    vault: Vault, world: dict[str, str]
) -> None:
    index_item(vault, world["legal_es"])
    index_item(vault, world["legal_es"])
    assert index_of(vault).count() == 3
    assert ask(vault, "lena", "detencion").total == 1
    with pytest.raises(NotFound):
        index_item(vault, "0" * 32)
    tina = principal(vault, "tina")
    bare = deposit(vault, tina, world["first"], consent={"therapy"})
    assert index_item(vault, bare).outcome == "no-text"


Snapshot = list[tuple[int, dict[str, object], list[tuple[float, str, str | None]]]]


def _snapshot(vault: Vault, who: str) -> Snapshot:
    out: Snapshot = []
    for text in ("", "detencion", "arrest OR golpes", "tort*", "Mamany~1", '"golpes electricos"'):
        found = ask(vault, who, text)
        # Equal scores come in the engine's segment order, which a rebuild may change.
        hits = sorted((-round(h.score, 4), h.item_id, h.snippet) for h in found.hits)
        out.append((found.total, dict(found.facets), hits))
    return out


def test_deleting_the_index_and_reindexing_gives_the_same_results(
    vault: Vault, world: dict[str, str]
) -> None:
    before = {who: _snapshot(vault, who) for who in ("lena", "tina")}
    assert before["lena"][4][0] == 1  # the fuzzy name query found something
    index_of(vault).close()
    vault.index = None
    shutil.rmtree(index_directory(vault.settings))
    ticks: list[tuple[int, int]] = []
    assert reindex(vault, progress=lambda done, total: ticks.append((done, total))) == 3
    assert ticks[-1] == (3, 3)
    assert {who: _snapshot(vault, who) for who in ("lena", "tina")} == before
    # And a reindex over an existing index, texts opened by a helper process, the same again.
    assert reindex(vault, workers=1, batch=2) == 3
    assert {who: _snapshot(vault, who) for who in ("lena", "tina")} == before


def test_an_index_of_the_older_format_is_refused_until_reindexed(
    vault: Vault, world: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    # Format 1 (and its vocabulary) had no identity-free field: redaction could not hold.
    before = _snapshot(vault, "lena")
    index_of(vault).close()
    vault.index = None
    directory = index_directory(vault.settings)
    meta = directory / "tantivy" / "tvault-index.json"
    meta.write_text(meta.read_text("utf-8").replace('"format": 3', '"format": 1'), "utf-8")
    with caplog.at_level(logging.ERROR), pytest.raises(SearchError, match="tvault reindex"):
        ask(vault, "lena", "detencion")
    assert "tvault reindex" in caplog.text and "detencion" not in caplog.text
    assert reindex(vault) == 3
    assert _snapshot(vault, "lena") == before


def test_titles_notes_and_tags_are_searched_and_a_media_item_is_found_by_its_title(
    vault: Vault, world: dict[str, str]
) -> None:
    tina = principal(vault, "tina")
    video = deposit(
        vault,
        tina,
        world["first"],
        consent={"legal"},
        kind="media",
        title="Entrevista en Cochabamba",
        notes="Grabada junto al río Rocha",
        tags={"enforced_disappearance"},
    )
    give_text(vault, video, "")  # what extraction records for audio and video
    assert index_item(vault, video).outcome == "indexed"
    for text in ("cochabamba", "rocha", '"entrevista en cochabamba"', "disappearance"):
        found = ask(vault, "lena", text)
        assert [h.item_id for h in found.hits] == [video], text
        assert found.hits[0].title == "Entrevista en Cochabamba"
    # Those who may not see the item do not find it by its title either.
    assert ask(vault, "admin", "cochabamba").total == 0
    # A tag is also a filter, as before; its words do not leak into other items.
    assert [h.item_id for h in ask(vault, "lena", "torture").hits] == [world["legal_es"]]
    # A reindex (texts and titles opened in a helper process) finds the same.
    before = ask(vault, "lena", "cochabamba OR detencion")
    reindex(vault, workers=1)
    after = ask(vault, "lena", "cochabamba OR detencion")
    assert [h.item_id for h in after.hits] == [h.item_id for h in before.hits]
    assert after.total == 2


def _older_vault(vault: Vault, vocabulary: bytes) -> Path:
    """Make `vault` look made before the shared vocabulary: no rows, a sealed file instead."""
    index_of(vault).close()
    vault.index = None
    with vault.sessions.begin() as session:
        session.execute(delete(VocabularyChange))
    identity = vault.keyring.secret(VOCABULARY_IDENTITY).decode("ascii")
    path = index_directory(vault.settings) / "vocabulary.age"
    with open(path, "wb") as out:
        keys.seal(io.BytesIO(vocabulary), out, [keys.recipient_of(identity)])
    return path


def test_an_older_vaults_vocabulary_file_moves_into_the_database(
    vault: Vault, world: dict[str, str]
) -> None:
    words = Vocabulary()
    words.add("quispe", "quisp")
    path = _older_vault(vault, pack(words, words))
    index = index_of(vault)
    assert not path.exists()
    core = index._core  # type: ignore[attr-defined]
    assert core.vocabulary.prefix("quis", 10) == {"quisp"}
    with vault.sessions() as session:
        rows = session.scalars(select(VocabularyChange)).all()
    assert [row.snapshot for row in rows] == [True] and b"quisp" not in rows[0].sealed


def test_an_older_vocabulary_file_of_format_1_asks_for_a_reindex(
    vault: Vault, world: dict[str, str]
) -> None:
    before = _snapshot(vault, "lena")
    _older_vault(vault, b"tvault-vocabulary-v1\n" + zlib.compress(b"quispe\tquisp"))
    with pytest.raises(SearchError, match="tvault reindex"):
        index_of(vault)
    assert reindex(vault) == 3
    assert _snapshot(vault, "lena") == before


def test_the_vocabulary_is_kept_sealed_in_the_database_only(
    vault: Vault, world: dict[str, str]
) -> None:
    index_of(vault).close()
    assert not list(vault.settings.home.rglob("*vocabulary*"))  # no local vocabulary file
    with vault.sessions() as session:
        rows = session.scalars(select(VocabularyChange)).all()
    assert rows
    for row in rows:
        for word in (SECRET_NAME, "mamani", "policia", "detencion", "tortur"):
            assert word.encode() not in row.sealed


def test_the_index_directory_holds_no_readable_text(vault: Vault, world: dict[str, str]) -> None:
    index_of(vault).close()
    for path in index_directory(vault.settings).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for word in (SECRET_NAME, "Mamani", "policía", "detención", "tortured"):
                assert word.encode() not in data, path.name
                assert word.lower().encode() not in data, path.name


def test_the_index_is_opened_once_through_the_composition_roots_opener(vault: Vault) -> None:
    opened: list[bool] = []
    real = vault.open_index

    def counting(*, rebuild: bool = False) -> Index:
        opened.append(rebuild)
        return real(rebuild=rebuild)

    vault.open_index = counting
    assert vault.index is None  # opening the vault left the index closed
    assert index_of(vault) is index_of(vault) is vault.index
    assert opened == [False]


def test_index_secrets_are_made_once(tmp_path: object) -> None:
    from pathlib import Path

    ring = keys.Keyring.create(Path(str(tmp_path)) / "ring", "pass phrase", kdf=FAST_KDF)
    assert not ring.has_secret(INDEX_KEY)
    ensure_index_secrets(ring)
    key, identity = ring.secret(INDEX_KEY), ring.secret(VOCABULARY_IDENTITY)
    ensure_index_secrets(ring)
    assert (ring.secret(INDEX_KEY), ring.secret(VOCABULARY_IDENTITY)) == (key, identity)
    assert len(key) == 32


def test_two_processes_making_the_index_secrets_at_once_keep_one(tmp_path: object) -> None:
    # Both open a vault made before search existed before either has made its secrets.
    from pathlib import Path

    path = Path(str(tmp_path)) / "ring"
    keys.Keyring.create(path, "pass phrase", kdf=FAST_KDF)
    first, second = (keys.Keyring.open(path, "pass phrase") for _ in range(2))
    assert not second.has_secret(INDEX_KEY)
    ensure_index_secrets(first)
    ensure_index_secrets(second)
    kept = keys.Keyring.open(path, "pass phrase")
    for name in (INDEX_KEY, VOCABULARY_IDENTITY):
        assert first.secret(name) == second.secret(name) == kept.secret(name)


def test_elasticsearch_needs_its_url(vault: Vault) -> None:
    settings = vault.settings.model_copy(update={"index": "elasticsearch", "es_url": None})
    with pytest.raises(ValueError, match="TVAULT_ES_URL"):
        make_index(settings, vault.keyring, vault.sessions)


def test_consent_change_and_shredding_reach_the_index(vault: Vault, world: dict[str, str]) -> None:
    from search import AccessScope, Query
    from vault.consent import change_consent
    from vault.shred import shred

    legal = AccessScope(frozenset({world["first"]}), frozenset({"legal"}))
    engine = index_of(vault)
    assert engine.search(Query("", legal)).total == 1
    tina = principal(vault, "tina")
    change_consent(
        vault, tina, world["legal_es"], withdraw=["legal"], basis="depositor_confirmation"
    )
    # The engine itself no longer counts it under `legal`: totals and facets of any page agree.
    assert engine.search(Query("", legal)).total == 0
    assert ask(vault, "lena", "detencion").total == 0
    assert engine.count() == 3
    shred(vault, principal(vault, "admin"), world["therapy_en"])
    assert engine.count() == 2
    assert ask(vault, "tina", "arrest").total == 0


def test_the_index_stage_batches_jobs_and_fails_each_on_its_own(vault: Vault) -> None:
    from vault import jobs
    from vault.db.jobs_tables import Job
    from vault.indexing import IndexStage
    from vault.worker import Worker

    tina = principal(vault, "tina")
    case = create_case(vault, tina, "Caso").id
    tina = principal(vault, "tina")
    good = [deposit(vault, tina, case, consent={"therapy"}) for _ in range(5)]
    for item_id in good:
        give_text(vault, item_id, "detención en la comisaría")
    bare = deposit(vault, tina, case, consent={"therapy"})  # no extracted text
    with vault.sessions.begin() as session:
        for item_id in [*good, bare]:
            jobs.enqueue(session, item_id, jobs.INDEX, now=vault.clock())
    worker = Worker(vault, stages={jobs.INDEX: IndexStage})
    assert worker.run_until_idle() == 1  # one run took every due index job
    with vault.sessions() as session:
        done = [j for i in good for j in jobs.list_jobs(session, item_id=i) if j.kind == jobs.INDEX]
        failed = [j for j in jobs.list_jobs(session, item_id=bare) if j.kind == jobs.INDEX]
        entries = [e for e in ledger.entries(session) if e.action == ledger.actions.INDEXING]
    assert [j.state for j in done] == [jobs.DONE] * 5
    assert index_of(vault).count() == 5
    assert ask(vault, "tina", "detencion").total == 5
    assert [j.state for j in failed] == [jobs.FAILED]
    assert failed[0].last_error == "the item has no extracted text to index"
    assert sorted(e.item_id or "" for e in entries) == sorted(good)
    # Running the jobs again (a retry after a crash) changes nothing but the entries.
    with vault.sessions.begin() as session:
        for job in jobs.list_jobs(session, item_id=good[0]):
            session.execute(update(Job).where(Job.id == job.id).values(state=jobs.QUEUED))
    assert worker.run_until_idle() == 1
    assert index_of(vault).count() == 5
