"""Issue 16 points 1 and 2: the ledger shows entries only to those allowed to read them; consent
changes only by those who see the item, on a recorded basis; a hidden item and a missing one get
the same answer on every item route."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

import keys
from tests import ledger_verifier as outsider
from tests.unit.vault import world_support as worlds
from tests.unit.vault.api_support import ROLES, URL, TestClient
from tests.unit.vault.conftest import principal
from tests.unit.vault.tokens import token_for
from vault import ledger
from vault.accounts import add_user
from vault.cases import create_case, grant
from vault.compose import app_of
from vault.deposit import Deposit
from vault.grants import revoke
from vault.ledger.entry import leaf_hash
from vault.parts import Vault
from vault.shred import shred

BODY = b"Testimony of Rosa Quispe, born 1961 in Ayacucho. " * 40
FORM = b"%PDF-1.7 consent form signed by the survivor"
MISSING = "a" * 26


def deposit(vault: Vault, case_id: str, consent: str, user: str = "tina") -> str:
    fields = {"case": case_id, "kind": "testimony", "title": "Testimony", "consent": consent}
    job = Deposit.start(vault, principal(vault, user), fields, len(BODY))
    job.write(BODY)
    return job.commit().item_id


@dataclass
class World:
    """A case of tina's with items of several consents, and clients for every role."""

    case_id: str
    legal: str  # legal only: hidden from theo (therapist granted on the case)
    therapy: str  # therapy: visible to theo
    shredded: str  # legal only, shredded: hidden from theo
    app: FastAPI
    clients: dict[str, TestClient]


def _build_world(vault: Vault) -> tuple[str, str, str, str, dict[str, str]]:
    """The world's rows, objects and tokens: built once per process (world_support.py)."""
    with vault.sessions.begin() as session:
        for name in ("ava", "nora", "audrey", "cleo"):
            add_user(session, name, ROLES[name], vault.clock())
    case_id = create_case(vault, principal(vault, "tina"), "Case of the river").id
    admin = principal(vault, "admin")
    grant(vault, admin, case_id, "theo", "therapist")
    grant(vault, admin, case_id, "lena", "lawyer")
    legal = deposit(vault, case_id, "legal")
    therapy = deposit(vault, case_id, "therapy,legal")
    shredded = deposit(vault, case_id, "legal")
    shred(vault, admin, shredded)
    tokens = {name: token_for(vault, name, role) for name, role in ROLES.items()}
    return case_id, legal, therapy, shredded, tokens


@pytest.fixture
def world(vault: Vault, request: pytest.FixtureRequest) -> Iterator[World]:
    case_id, legal, therapy, shredded, tokens = worlds.enter(
        request, vault, "access-leaks", _build_world
    )
    app: FastAPI = app_of(vault)
    clients = {
        name: TestClient(app, base_url=URL, headers={"Authorization": f"Bearer {tokens[name]}"})
        for name in ROLES
    }
    yield World(case_id, legal, therapy, shredded, app, clients)
    for client in clients.values():
        client.close()


# --- point 1: the ledger ------------------------------------------------------------------


def test_walking_every_seq_as_a_revoked_lawyer_yields_no_entry_content(
    world: World, vault: Vault
) -> None:
    lena, audrey = world.clients["lena"], world.clients["audrey"]
    # While granted, the lawyer reads and downloads: entries about her, her case, its items.
    assert lena.get(f"/v1/items/{world.legal}").status_code == 200
    assert lena.get(f"/v1/items/{world.legal}/content").status_code == 200
    assert lena.post("/v1/search", json={"q": "Ayacucho"}).status_code == 200
    revoke(vault, principal(vault, "admin"), world.case_id, "lena")
    assert lena.get(f"/v1/items/{world.legal}").status_code == 404
    size = vault.checkpointer.checkpoint(now=vault.clock()).size
    assert size > 10
    secrets = {world.case_id, world.legal, world.therapy, world.shredded, "tina", "theo"}
    vkey = lena.get("/v1/ledger/key").json()["verifier_key"]
    assert vkey
    for seq in range(size):
        response = lena.get("/v1/ledger/proof/inclusion", params={"seq": seq})
        assert response.status_code == 200, response.text
        proof = response.json()
        assert proof["entry"] is None, seq
        for secret in secrets:
            assert secret not in response.text, (seq, secret)
        # The proof itself is whole: it verifies from the leaf hash, and the auditor's entry
        # hashes to that leaf.
        assert outsider.check_inclusion(proof, vkey, keys.verify_ed25519) == {}
        full = audrey.get("/v1/ledger/proof/inclusion", params={"seq": seq}).json()
        assert full["hashes"] == proof["hashes"] and full["checkpoint"] == proof["checkpoint"]
        digest = base64.b64encode(leaf_hash(full["entry"].encode())).decode()
        assert proof["leaf_hash"] == full["leaf_hash"] == digest
    # Withholding an entry is not a refusal: walking the ledger adds nothing to it.
    with vault.sessions() as session:
        assert ledger.size(session) == size
    assert lena.get("/v1/ledger/entries").status_code == 403


def test_a_proof_carries_the_entry_for_those_who_see_its_item(world: World, vault: Vault) -> None:
    theo = world.clients["theo"]
    assert theo.get(f"/v1/items/{world.therapy}").status_code == 200
    size = vault.checkpointer.checkpoint(now=vault.clock()).size
    shown: dict[str | None, set[str]] = {}
    for seq in range(size):
        proof = theo.get("/v1/ledger/proof/inclusion", params={"seq": seq}).json()
        if proof["entry"] is not None:
            entry = json.loads(proof["entry"])
            shown.setdefault(entry["item"], set()).add(entry["action"])
    # Only entries about the one item theo may see (its deposit, his read), nothing else.
    assert set(shown) == {world.therapy}
    assert {"ingestion", "decryption"} <= shown[world.therapy]


# --- point 2: consent, identity and renditions need sight, and consent a basis -------------


def test_a_therapist_cannot_widen_consent_on_an_item_it_cannot_see(
    world: World, vault: Vault
) -> None:
    theo = world.clients["theo"]
    form = base64.b64encode(FORM).decode()
    for body in (
        {"grant": ["therapy"], "basis": "consent_form", "form_base64": form},
        {"grant": ["therapy"], "basis": "depositor_confirmation"},
        {"grant": ["therapy"]},
    ):
        hidden = theo.post(f"/v1/items/{world.legal}/consent", json=body)
        missing = theo.post(f"/v1/items/{MISSING}/consent", json=body)
        assert hidden.status_code == missing.status_code, (body, hidden.text)
        assert hidden.json()["detail"].replace(world.legal, MISSING) == missing.json()["detail"]
    assert theo.get(f"/v1/items/{world.legal}").status_code == 404
    assert theo.get(f"/v1/items/{world.legal}/content").status_code == 404
    identity = theo.put(f"/v1/items/{world.legal}/identity", json={"name": "Rosa Quispe"})
    assert identity.status_code == 404
    rendition = theo.put(f"/v1/items/{world.legal}/redacted", content=b"[redacted]")
    assert rendition.status_code == 404
    with vault.sessions() as session:
        changes = [e for e in ledger.entries(session) if e.action == ledger.actions.CONSENT_CHANGE]
    assert changes == []


def test_a_consent_change_needs_a_basis_and_the_ledger_names_it(world: World, vault: Vault) -> None:
    tina, theo = world.clients["tina"], world.clients["theo"]

    def change(client: TestClient, **body: object) -> httpx.Response:
        return client.post(f"/v1/items/{world.therapy}/consent", json=body)

    bare = change(tina, grant=["archive"])
    assert bare.status_code == 422 and "basis" in bare.json()["detail"]
    assert change(tina, grant=["archive"], basis="consent_form").status_code == 422  # no form
    # Only the depositing therapist may confirm without a form; the refusal is recorded.
    by_theo = change(theo, grant=["archive"], basis="depositor_confirmation")
    assert by_theo.status_code == 403, by_theo.text
    confirmed = change(
        tina, grant=["archive"], basis="depositor_confirmation", note="Rosa asked on the phone"
    )
    assert confirmed.status_code == 201, confirmed.text
    form = base64.b64encode(FORM).decode()
    with_form = change(theo, grant=["research"], basis="consent_form", form_base64=form)
    assert with_form.status_code == 201, with_form.text
    with vault.sessions() as session:
        refused = [
            e.details["attempted"]
            for e in ledger.entries(session)
            if e.action == ledger.actions.ACCESS_DENIED and e.actor == "theo"
        ]
    assert refused == ["item.consent_change"]
    with vault.sessions() as session:
        changes = [
            (e.actor, e.details, ledger.sealed_details(session, e.seq))
            for e in ledger.entries(session)
            if e.action == ledger.actions.CONSENT_CHANGE
        ]
    (tina_actor, tina_details, tina_sealed), (theo_actor, theo_details, theo_sealed) = changes
    assert (tina_actor, tina_details["basis"], tina_details["granted"]) == (
        "tina",
        "depositor_confirmation",
        ["archive"],
    )
    # The free-text note is sealed, never in the clear.
    assert tina_sealed is not None and b"Rosa" not in tina_sealed
    assert "Rosa" not in json.dumps(tina_details)
    assert (theo_actor, theo_details["basis"], theo_details["granted"]) == (
        "theo",
        "consent_form",
        ["research"],
    )
    assert theo_details["form_sha256"] == hashlib.sha256(FORM).hexdigest()
    assert theo_sealed is None


# --- point 2: the matrix of every item route x (hidden, missing) ---------------------------

# Bodies that get past each route's own validation, so the item check is what answers. A new
# route not listed here is still compared (hidden == missing) with an empty JSON body.
BODIES: dict[tuple[str, str], dict[str, object]] = {
    ("POST", "/v1/items/{item_id}/consent"): {
        "json": {
            "grant": ["therapy"],
            "basis": "consent_form",
            "form_base64": base64.b64encode(FORM).decode(),
        }
    },
    ("PUT", "/v1/items/{item_id}/identity"): {"json": {"name": "Rosa Quispe"}},
    ("POST", "/v1/items/{item_id}/shred"): {"json": {"reason": "duplicate"}},
    ("PUT", "/v1/items/{item_id}/redacted"): {"content": b"[redacted] testimony"},
    ("POST", "/v1/items/{item_id}/signatures"): {
        "json": {"statement": base64.b64encode(b"{}").decode(), "signature": "c2ln"}
    },
}


def item_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) of the app whose path names an item id, from its OpenAPI document
    (which lists every route the app serves but the documentation's own)."""
    return sorted(
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if "{item_id}" in path
        for method in operations
    )


def test_every_item_route_answers_a_hidden_item_as_a_missing_one(
    world: World, vault: Vault
) -> None:
    routes = item_routes(world.app)
    assert len(routes) >= 14, routes
    revoke(vault, principal(vault, "admin"), world.case_id, "lena")
    actors = ("theo", "lena", "ava")  # granted therapist, revoked lawyer, ungranted advocate
    not_found = 0
    for method, path in routes:
        for actor in actors:
            client = world.clients[actor]
            for hidden_id in (world.legal, world.shredded):
                answers = []
                for item_id in (hidden_id, MISSING):
                    url = path.replace("{item_id}", item_id)
                    url = re.sub(r"\{\w+\}", "1", url)
                    with vault.sessions() as session:
                        before = ledger.size(session)
                    response = client.request(method, url, **BODIES.get((method, path), {}))  # type: ignore[arg-type]
                    with vault.sessions() as session:
                        grew = ledger.size(session) - before
                    body = response.text.replace(item_id, "ID")
                    answers.append(
                        (response.status_code, body, response.headers["content-type"], grew)
                    )
                hidden, missing = answers
                assert hidden == missing, (method, path, actor, hidden_id, hidden, missing)
                not_found += hidden[0] == 404
    # The item check is what answered, not a validation error (each probe is one ledger event).
    assert not_found == len(routes) * len(actors) * 2


# Case routes: a case the caller may not see is answered like an unknown case id.
CASE_BODIES: dict[tuple[str, str], dict[str, object]] = {
    ("POST", "/v1/cases/{case_id}/grants"): {"json": {"user": "lena", "role": "lawyer"}},
}


def test_every_case_route_answers_a_hidden_case_as_a_missing_one(
    world: World, vault: Vault
) -> None:
    routes = sorted(
        (method.upper(), path)
        for path, operations in world.app.openapi()["paths"].items()
        if "{case_id}" in path
        for method in operations
    )
    assert len(routes) >= 5, routes
    missing_case = "b" * 26
    for method, path in routes:
        for actor in ("lena", "ava", "nora"):  # not granted on the case
            client = world.clients[actor]
            if actor == "lena":
                revoke(vault, principal(vault, "admin"), world.case_id, "lena")
            answers = []
            for case_id in (world.case_id, missing_case):
                url = path.replace("{case_id}", case_id).replace("{user}", "tina")
                with vault.sessions() as session:
                    before = ledger.size(session)
                options = CASE_BODIES.get((method, path), {})
                response = client.request(method, url, **options)  # type: ignore[arg-type]
                with vault.sessions() as session:
                    grew = ledger.size(session) - before
                body = response.text.replace(case_id, "ID")
                answers.append((response.status_code, body, grew))
            hidden, missing = answers
            assert hidden == missing, (method, path, actor, hidden, missing)
            if actor == "lena":
                grant(vault, principal(vault, "admin"), world.case_id, "lena", "lawyer")


def test_a_probe_with_any_text_as_id_is_recorded_without_that_text(
    world: World, vault: Vault
) -> None:
    probe = world.clients["theo"].get("/v1/items/Rosa Quispe")
    assert probe.status_code == 404 and probe.json()["detail"] == "no item Rosa Quispe"
    with vault.sessions() as session:
        last = ledger.entry(session, ledger.size(session) - 1)
    assert (last.action, last.actor, last.item_id) == (ledger.actions.ACCESS_DENIED, "theo", None)
    assert b"Rosa" not in last.canonical and last.details["reason"] == "no such item"
