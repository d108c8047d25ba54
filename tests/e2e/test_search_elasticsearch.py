"""The vault's search on Elasticsearch (TVAULT_INDEX=elasticsearch): runs when
`TVAULT_TEST_ES_URL` is set, and is reported as skipped otherwise."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from policies import Principal
from tests.services import unavailable
from tests.unit.vault.conftest import FAST_KDF, PASSPHRASE
from tests.unit.vault.search_support import deposit, give_text
from vault.accounts import add_user, find_user, principal_of
from vault.cases import create_case, grant
from vault.indexing import index_item, reindex
from vault.parts import INDEX_KEY, VOCABULARY_IDENTITY, Vault
from vault.provision import create_vault
from vault.searching import SearchRequest, search
from vault.settings import load_settings

pytestmark = pytest.mark.elasticsearch


@pytest.fixture
def es_url() -> str:
    url = os.environ.get("TVAULT_TEST_ES_URL")
    if not url:
        unavailable("elasticsearch", "TVAULT_TEST_ES_URL is not set")
    return url


@pytest.fixture
def vault(tmp_path: Path, es_url: str) -> Iterator[Vault]:
    from search.adapters.elasticsearch_index import ElasticsearchIndex
    from vault.vocabulary import DatabaseVocabulary

    settings = load_settings(tmp_path / "vault", index="elasticsearch", es_url=es_url)
    made = create_vault(settings, PASSPHRASE, "admin", kdf=FAST_KDF)
    identity = made.keyring.secret(VOCABULARY_IDENTITY).decode("ascii")
    name = f"tvault-test-{uuid.uuid4().hex[:12]}"
    try:
        made.index = ElasticsearchIndex(
            es_url,
            made.keyring.secret(INDEX_KEY),
            DatabaseVocabulary(made.sessions, identity),
            index_name=name,
        )
    except Exception as exc:
        unavailable("elasticsearch", f"cannot use {es_url}: {exc}")
    yield made
    from elasticsearch import Elasticsearch

    made.close()
    with Elasticsearch(es_url) as client:
        client.indices.delete(index=name, ignore_unavailable=True)


def test_search_and_reindex_on_elasticsearch(vault: Vault) -> None:
    with vault.sessions.begin() as session:
        add_user(session, "tina", "therapist", vault.clock())
        add_user(session, "lena", "lawyer", vault.clock())

    def who(name: str) -> Principal:
        with vault.sessions() as session:
            return principal_of(session, find_user(session, name))

    case = create_case(vault, who("tina"), "Caso").id
    grant(vault, who("admin"), case, "lena", "lawyer")
    legal = deposit(vault, who("tina"), case, consent={"legal"})
    therapy = deposit(vault, who("tina"), case, consent={"therapy"})
    for item_id in (legal, therapy):
        give_text(vault, item_id, "Durante la detención recibí golpes eléctricos.")
        index_item(vault, item_id)
    found = search(vault, who("lena"), SearchRequest(text="detencion"))
    assert [h.item_id for h in found.hits] == [legal] and found.total == 1
    assert "<mark>detención</mark>" in (found.hits[0].snippet or "")
    assert reindex(vault) == 2
    again = search(vault, who("lena"), SearchRequest(text="detencion"))
    assert (again.total, [h.item_id for h in again.hits]) == (1, [legal])
