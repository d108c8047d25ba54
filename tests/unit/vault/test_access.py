"""Access and consent through the API: grants and revocation, consent versions and withdrawal,
one 404 for hidden and unknown ids, legal hold and crypto-shredding, redaction."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI

import keys
from tests.unit.vault.api_support import BODY, NAME, ROLES, URL, TestClient, deposit
from tests.unit.vault.search_support import give_text
from tests.unit.vault.tokens import token_for
from vault import item_keys, ledger, verify
from vault.accounts import add_user
from vault.compose import app_of
from vault.db import ItemKey
from vault.headers import to_headers
from vault.identity import RENDITION_PREFIX
from vault.indexing import index_item
from vault.parts import Vault
from vault.sweep import sweep

REDACTED_BODY = b"Testimony of [redacted], born [redacted]. " * 50


@pytest.fixture
def app(vault: Vault) -> FastAPI:
    with vault.sessions.begin() as session:
        for name in ("ava", "nora", "audrey", "cleo"):
            add_user(session, name, ROLES[name], vault.clock())
    return app_of(vault)


@pytest.fixture
def as_(app: FastAPI, vault: Vault) -> Iterator[dict[str, TestClient]]:
    clients = {
        name: TestClient(
            app, base_url=URL, headers={"Authorization": f"Bearer {token_for(vault, name, role)}"}
        )
        for name, role in ROLES.items()
    }
    yield clients
    for client in clients.values():
        client.close()


@pytest.fixture
def case_id(as_: dict[str, TestClient]) -> str:
    response = as_["tina"].post("/v1/cases", json={"name": "Case of the river"})
    assert response.status_code == 201
    case: str = response.json()["id"]
    return case


def grant(as_: dict[str, TestClient], case_id: str, user: str, role: str) -> None:
    response = as_["admin"].post(f"/v1/cases/{case_id}/grants", json={"user": user, "role": role})
    assert response.status_code == 204, response.text


def token_of(vault: Vault, account: str) -> str:
    """Return the credential an entry names for the one token issued to `account` (promise 9)."""
    [issued] = [
        e.details["token"]
        for e in entries(vault, ledger.actions.TOKEN_ISSUANCE)
        if e.details["account"] == account
    ]
    return f"token:{issued}"


def entries(vault: Vault, action: str) -> list[ledger.LedgerEntry]:
    with vault.sessions() as session:
        return [e for e in ledger.entries(session) if e.action == action]


def test_revocation_acts_on_the_next_request_whatever_the_token_says(
    as_: dict[str, TestClient], vault: Vault, case_id: str
) -> None:
    item = deposit(as_["tina"], case_id, "legal")
    lena = as_["lena"]
    assert lena.get(f"/v1/items/{item}").status_code == 404
    grant(as_, case_id, "lena", "lawyer")
    assert lena.get(f"/v1/items/{item}/content").content == BODY
    revoked = as_["admin"].delete(f"/v1/cases/{case_id}/grants/lena")
    assert revoked.status_code == 200 and revoked.json() == {"roles": ["lawyer"]}
    # Same token as before: the grant is read from the database per request.
    assert lena.get(f"/v1/items/{item}").status_code == 404
    assert lena.get("/v1/cases").json() == []
    # Each entry also names the token admin acted with (promise 9).
    by_admin = {"grantee": "lena", "role": "lawyer", "credential": token_of(vault, "admin")}
    assert [(e.actor, e.details) for e in entries(vault, ledger.actions.REVOCATION)] == [
        ("admin", by_admin)
    ]
    assert ("admin", by_admin) in [
        (e.actor, e.details) for e in entries(vault, ledger.actions.GRANT)
    ]
    # Nothing left to revoke; and only custodians revoke.
    assert as_["admin"].delete(f"/v1/cases/{case_id}/grants/lena").status_code == 404
    assert as_["tina"].delete(f"/v1/cases/{case_id}/grants/tina").status_code == 403


def test_advocates_see_only_granted_cases(as_: dict[str, TestClient], case_id: str) -> None:
    item = deposit(as_["tina"], case_id, "advocacy_named")
    assert as_["ava"].get(f"/v1/items/{item}").status_code == 404
    grant(as_, case_id, "ava", "advocate")
    assert as_["ava"].get(f"/v1/items/{item}").json()["title"] == f"Testimony of {NAME}"


def test_hidden_and_unknown_ids_get_the_same_404_and_the_probe_is_recorded(
    as_: dict[str, TestClient], vault: Vault, case_id: str
) -> None:
    item = deposit(as_["tina"], case_id, "therapy")
    unknown = "a" * 26
    for path in ("/v1/items/{}", "/v1/items/{}/content", "/v1/items/{}/consent"):
        hidden = as_["theo"].get(path.format(item))
        missing = as_["theo"].get(path.format(unknown))
        assert hidden.status_code == missing.status_code == 404, path
        assert hidden.headers["content-type"] == missing.headers["content-type"]
        assert hidden.json() == {**missing.json(), "detail": f"no item {item}"}
        assert missing.json()["detail"] == f"no item {unknown}"
    for user in ("lena", "audrey", "admin"):
        assert as_[user].get(f"/v1/items/{item}").status_code == 404
    hidden = as_["theo"].get(f"/v1/cases/{case_id}/items")
    missing = as_["theo"].get(f"/v1/cases/{unknown}/items")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == {**missing.json(), "detail": f"no case {case_id}"}
    # Granting to a name that does not exist must not reveal the case to a prober either.
    probe = as_["theo"].post(
        f"/v1/cases/{case_id}/grants", json={"user": "ghost", "role": "lawyer"}
    )
    assert probe.status_code == 404 and probe.json()["detail"] == f"no case {case_id}"
    hidden_case = as_["theo"].post(
        f"/v1/cases/{case_id}/items", headers=to_headers({}), content=b"x"
    )
    assert hidden_case.status_code in (404, 422)  # 422: the body fields are checked first
    probes = [e for e in entries(vault, ledger.actions.ACCESS_DENIED) if e.item_id == item]
    assert {e.actor for e in probes} == {"theo", "lena", "audrey", "admin"}


def test_consent_versions_withdrawal_and_the_form(
    as_: dict[str, TestClient], vault: Vault, case_id: str
) -> None:
    item = deposit(as_["tina"], case_id, "therapy,legal")
    grant(as_, case_id, "lena", "lawyer")
    lena, tina = as_["lena"], as_["tina"]
    assert lena.get(f"/v1/items/{item}").status_code == 200
    form = b"%PDF-1.7 signed consent form of the survivor"
    changed = tina.post(
        f"/v1/items/{item}/consent",
        json={
            "withdraw": ["legal"],
            "grant": ["archive"],
            "basis": "consent_form",
            "form_base64": "JVBERi0xLjcgc2lnbmVkIGNvbnNlbnQgZm9ybSBvZiB0aGUgc3Vydml2b3I=",
        },
    )
    assert changed.status_code == 201, changed.text
    assert (changed.json()["version"], changed.json()["scopes"]) == (2, ["archive", "therapy"])
    # The withdrawal acts on the lawyer's next request.
    assert lena.get(f"/v1/items/{item}").status_code == 404
    assert lena.get(f"/v1/items/{item}/content").status_code == 404
    history = tina.get(f"/v1/items/{item}/consent").json()
    assert [(v["version"], v["scopes"], v["recorded_by"], v["has_form"]) for v in history] == [
        (1, ["legal", "therapy"], "tina", False),
        (2, ["archive", "therapy"], "tina", True),
    ]
    assert tina.get(f"/v1/items/{item}/consent/2/form").content == form
    assert tina.get(f"/v1/items/{item}/consent/1/form").status_code == 404
    [entry] = entries(vault, ledger.actions.CONSENT_CHANGE)
    assert (entry.actor, entry.item_id, entry.details) == (
        "tina",
        item,
        {
            "version": 2,
            "scopes": ["archive", "therapy"],
            "granted": ["archive"],
            "withdrawn": ["legal"],
            "basis": "consent_form",
            "form_sha256": hashlib.sha256(form).hexdigest(),
            "credential": token_of(vault, "tina"),
        },
    )
    # Only those who speak for the survivor change consent; bad scopes are refused.
    by_admin = {"grant": ["legal"], "basis": "depositor_confirmation"}
    assert as_["admin"].post(f"/v1/items/{item}/consent", json=by_admin).status_code == 404
    confirmed = {"basis": "depositor_confirmation"}
    bad = tina.post(f"/v1/items/{item}/consent", json={"grant": ["legl"], **confirmed})
    assert bad.status_code == 422
    both = tina.post(
        f"/v1/items/{item}/consent",
        json={"grant": ["legal"], "withdraw": ["legal"], **confirmed},
    )
    assert both.status_code == 422


def shred_approved(as_: dict[str, TestClient], item: str) -> dict[str, Any]:
    """Ask as `admin` to shred `item`, approve as `cleo`; return the approval."""
    asked = as_["admin"].post(f"/v1/items/{item}/shred", json={"reason": "duplicate"})
    assert asked.status_code == 202, asked.text
    done = as_["cleo"].post(f"/v1/approvals/{asked.json()['id']}/approve")
    assert done.status_code == 200, done.text
    approval: dict[str, Any] = done.json()
    return approval


def test_legal_hold_refuses_shredding_and_verify_reports_a_shredded_item(
    as_: dict[str, TestClient], vault: Vault, case_id: str
) -> None:
    item = deposit(as_["tina"], case_id, "therapy")
    kept = deposit(as_["tina"], case_id, "therapy", body=b"another testimony")
    admin = as_["admin"]
    assert admin.put(f"/v1/items/{item}/hold").json() == {
        "held": True,
        "changed": True,
        "approval": None,
    }
    refused = admin.post(f"/v1/items/{item}/shred", json={"reason": "duplicate"})
    assert refused.status_code == 409 and "legal hold" in refused.json()["detail"]
    assert as_["tina"].get(f"/v1/items/{item}/content").content == BODY  # nothing changed
    assert (
        as_["tina"].post(f"/v1/items/{item}/shred", json={"reason": "duplicate"}).status_code == 403
    )
    assert as_["tina"].put(f"/v1/items/{item}/hold").status_code == 403
    # Lifting the hold is asked by one custodian and done when another approves.
    lift = admin.delete(f"/v1/items/{item}/hold")
    assert lift.status_code == 202 and lift.json()["held"] is True
    approval = lift.json()["approval"]["id"]
    assert admin.post(f"/v1/approvals/{approval}/approve").status_code == 403
    assert as_["cleo"].post(f"/v1/approvals/{approval}/approve").json()["state"] == "done"
    assert admin.delete(f"/v1/items/{item}/hold").json() == {
        "held": False,
        "changed": False,
        "approval": None,
    }
    with vault.sessions() as session:
        wrapped = session.get(ItemKey, item)
        assert wrapped is not None
        identity = item_keys.open_identity(vault.keyring, item, wrapped.wrapped)
    assert identity in keys.age._IDENTITIES
    # One custodian's request shreds nothing (DESIGN.md promise 10).
    asked = admin.post(f"/v1/items/{item}/shred", json={"reason": "other", "note": "asked"})
    assert asked.status_code == 202 and asked.json()["state"] == "pending"
    assert as_["tina"].get(f"/v1/items/{item}/content").content == BODY
    assert admin.post(f"/v1/approvals/{asked.json()['id']}/approve").status_code == 403
    assert as_["lena"].post(f"/v1/approvals/{asked.json()['id']}/approve").status_code == 403
    done = as_["cleo"].post(f"/v1/approvals/{asked.json()['id']}/approve")
    assert done.status_code == 200, done.text
    # No parsed copy of the destroyed key outlives it in this process (the unwrap and the
    # downloads above had put it in the cache).
    assert identity not in keys.age._IDENTITIES
    # The local store keeps locked objects (read-only): unreadable without the key.
    assert done.json()["state"] == "done" and done.json()["outcome"]["locked"] == 1
    assert admin.post(f"/v1/items/{item}/shred", json={"reason": "duplicate"}).status_code == 409
    assert as_["tina"].get(f"/v1/items/{item}/content").status_code == 404
    assert [i["id"] for i in as_["tina"].get(f"/v1/cases/{case_id}/items").json()] == [kept]
    holds = entries(vault, ledger.actions.LEGAL_HOLD)
    assert [(e.actor, e.item_id, e.details) for e in holds] == [
        ("admin", item, {"held": True, "credential": token_of(vault, "admin")}),
        ("cleo", item, {"held": False, "credential": token_of(vault, "cleo")}),
    ]
    [tombstone] = entries(vault, ledger.actions.DELETION)
    assert (tombstone.actor, tombstone.item_id) == ("cleo", item)
    listed = as_["cleo"].get("/v1/approvals", params={"state": "done"}).json()
    assert [(a["kind"], a["requested_by"], a["approvers"]) for a in listed] == [
        ("shred", "admin", ["cleo"]),
        ("lift_hold", "admin", ["cleo"]),
    ]
    assert as_["cleo"].get(f"/v1/approvals/{asked.json()['id']}").json()["note"] == "asked"
    assert as_["lena"].get("/v1/approvals").status_code == 403
    report = verify.verify(vault)
    assert report.ok, report.failures
    assert (report.items, report.shredded) == (2, 1)


def test_a_denied_shred_request_changes_nothing(
    as_: dict[str, TestClient], vault: Vault, case_id: str
) -> None:
    item = deposit(as_["tina"], case_id, "therapy")
    asked = as_["admin"].post(f"/v1/items/{item}/shred", json={"reason": "court_order"})
    approval = asked.json()["id"]
    assert as_["cleo"].post(f"/v1/approvals/{approval}/deny", json={}).status_code == 422
    denied = as_["cleo"].post(f"/v1/approvals/{approval}/deny", json={"reason": "no order seen"})
    assert denied.status_code == 200 and denied.json()["state"] == "denied"
    assert as_["cleo"].post(f"/v1/approvals/{approval}/approve").status_code == 409
    assert as_["tina"].get(f"/v1/items/{item}/content").content == BODY
    assert entries(vault, ledger.actions.DELETION) == []


def test_verify_understands_a_shredded_item_whose_object_was_deleted(
    as_: dict[str, TestClient], vault: Vault, case_id: str
) -> None:
    item = deposit(as_["tina"], case_id, "therapy")
    assert shred_approved(as_, item)["state"] == "done"
    with vault.sessions() as session:
        from vault.db import Item

        name = session.get(Item, item).object_name  # type: ignore[union-attr]
    # What an S3 store without object lock does on shredding: the object is gone too.
    path = vault.store._path(name)  # type: ignore[attr-defined]  # the local adapter's layout
    path.chmod(0o600)
    path.unlink()
    assert not vault.store.exists(name)
    report = verify.verify(vault)
    assert report.ok and report.shredded == 1, report.failures


def test_identities_never_reach_an_anonymised_advocate(
    as_: dict[str, TestClient], vault: Vault, case_id: str
) -> None:
    item = deposit(as_["tina"], case_id, "advocacy_anonymised")
    grant(as_, case_id, "ava", "advocate")
    identity = {"name": NAME, "aliases": ["La Rosa"], "birth_date": "1961-03-02"}
    assert as_["tina"].put(f"/v1/items/{item}/identity", json=identity).status_code == 204
    assert as_["ava"].put(f"/v1/items/{item}/identity", json=identity).status_code == 403
    ava = as_["ava"]
    responses = [
        ava.get(f"/v1/items/{item}"),
        ava.get(f"/v1/cases/{case_id}/items"),
        ava.get(f"/v1/items/{item}/identity"),
        ava.get(f"/v1/items/{item}/consent"),
        ava.get(f"/v1/items/{item}/content"),
        ava.get(f"/v1/items/{item}/consent/1/form"),
    ]
    assert responses[0].json()["title"] == "[redacted]"
    assert responses[0].json()["notes"] == "[redacted]"
    assert responses[2].json() == {
        "aliases": ["[redacted]"],
        "birth_date": "[redacted]",
        "name": "[redacted]",
    }
    assert responses[4].status_code == 404  # no redacted rendition yet: no download at all
    # Search: the item's text (as extraction would store it) is indexed; the advocate finds
    # the item, and neither its title nor its snippet names the survivor.
    give_text(vault, item, BODY.decode())
    assert index_item(vault, item).outcome == "indexed"
    for query in ("testimony", "Ayacucho", NAME):
        found = ava.post("/v1/search", json={"q": query})
        assert found.status_code == 200, found.text
        responses.append(found)
    [hit] = responses[-3].json()["hits"]
    assert hit["item_id"] == item and hit["title"] == "[redacted]"
    assert "<mark>Testimony</mark> of [redacted] [redacted]" in hit["snippet"]
    # Found only through the survivor's name: dropped, and the custody entry says so (a page
    # with redacted hits is recorded once built).
    assert responses[-1].json()["hits"] == [] and responses[-1].json()["total"] == 0
    searches = [e.details for e in entries(vault, ledger.actions.SEARCH) if e.actor == "ava"]
    assert [(d["results"], d["total"]) for d in searches] == [([item], 1), ([item], 1), ([], 0)]
    attached = as_["tina"].put(f"/v1/items/{item}/redacted", content=REDACTED_BODY)
    assert attached.status_code == 201, attached.text
    download = ava.get(f"/v1/items/{item}/content")
    assert download.content == REDACTED_BODY
    # The original file name ("rosa-quispe.pdf") is sealed data: the item id instead.
    assert download.headers["content-disposition"] == (
        f"attachment; filename=\"{item}\"; filename*=UTF-8''{item}"
    )
    responses.append(download)
    for response in responses:
        for secret in (NAME.encode(), b"Rosa", b"Quispe", b"1961", b"La Rosa"):
            assert secret not in response.content, (response.request.url, secret)
    # The depositor still gets everything.
    assert as_["tina"].get(f"/v1/items/{item}/identity").json()["name"] == NAME
    original = as_["tina"].get(f"/v1/items/{item}/content")
    assert original.content == BODY
    assert original.headers["content-disposition"] == (
        "attachment; filename=\"rosa-quispe.pdf\"; filename*=UTF-8''rosa-quispe.pdf"
    )


def test_named_consent_shows_identities_to_a_granted_advocate(
    as_: dict[str, TestClient], case_id: str
) -> None:
    item = deposit(as_["tina"], case_id, "advocacy_named,advocacy_anonymised")
    grant(as_, case_id, "nora", "advocate")
    as_["tina"].put(f"/v1/items/{item}/identity", json={"name": NAME})
    assert as_["nora"].get(f"/v1/items/{item}/identity").json() == {"name": NAME}
    assert as_["nora"].get(f"/v1/items/{item}/content").content == BODY


def test_a_custodian_reads_content_only_under_a_grant_from_another_custodian(
    as_: dict[str, TestClient], vault: Vault, case_id: str
) -> None:
    with vault.sessions.begin() as session:
        add_user(session, "carol", "custodian", vault.clock())
    carol = TestClient(
        as_["admin"].app,
        base_url=URL,
        headers={"Authorization": f"Bearer {token_for(vault, 'carol', 'custodian')}"},
    )
    item = deposit(as_["tina"], case_id, "legal")
    admin = as_["admin"]
    assert admin.get(f"/v1/items/{item}").status_code == 404  # manages, never reads
    selfgrant = admin.post(f"/v1/cases/{case_id}/grants", json={"user": "admin", "role": "lawyer"})
    assert selfgrant.status_code == 403  # separation of duties: never their own grant
    granted = carol.post(f"/v1/cases/{case_id}/grants", json={"user": "admin", "role": "lawyer"})
    assert granted.status_code == 204
    assert admin.get(f"/v1/items/{item}/content").content == BODY
    carol.close()


def test_the_sweep_removes_an_abandoned_rendition_and_keeps_recorded_ones(
    as_: dict[str, TestClient], vault: Vault, case_id: str
) -> None:
    item = deposit(as_["tina"], case_id, "advocacy_anonymised")
    assert as_["tina"].put(f"/v1/items/{item}/redacted", content=REDACTED_BODY).status_code == 201
    # What a crash between a rendition's upload and its commit leaves behind.
    with vault.store.writer(f"{RENDITION_PREFIX}abandoned") as writer:
        writer.write(b"ciphertext")
        writer.commit()
    later = vault.clock() + timedelta(seconds=vault.settings.sweep_grace_seconds + 60)
    vault.clock = lambda: later
    assert sweep(vault) == 1
    assert list(vault.store.names(RENDITION_PREFIX)) != []
    assert not vault.store.exists(f"{RENDITION_PREFIX}abandoned")
    grant(as_, case_id, "ava", "advocate")
    assert as_["ava"].get(f"/v1/items/{item}/content").content == REDACTED_BODY
