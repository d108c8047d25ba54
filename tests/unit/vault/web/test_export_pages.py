"""The commission's pages (issue 19 point 6): ask for an export by a form (purpose and legal
basis sealed, never in a URL), follow its state, download it once built, as through the API."""

from __future__ import annotations

import hashlib

import keys
from tests.unit.vault.conftest import principal
from tests.unit.vault.search_support import deposit, give_text
from tests.unit.vault.web.web_support import entries, signed_in, token
from vault import exports, ledger, recipients
from vault.accounts import add_user
from vault.cases import create_case, grant
from vault.export_build import build_pending
from vault.indexing import index_item
from vault.parts import Vault

PURPOSE = "Esclarecer la desaparición de Rosa Quispe"
BASIS = "Ley 1448 de 2011, artículo 147"


def test_a_commission_asks_a_custodian_approves_and_the_commission_downloads(
    vault: Vault,
) -> None:
    with vault.sessions.begin() as session:
        add_user(session, "truth", "commission", vault.clock())
    case = create_case(vault, principal(vault, "tina"), "Case of the river").id
    deposit(vault, principal(vault, "tina"), case, consent=["truth_commission"], body=b"words")
    grant(vault, principal(vault, "admin"), case, "truth", "commission")
    _identity, recipient = keys.generate_identity()
    recipients.add(vault, principal(vault, "admin"), "truth", recipient)

    truth = signed_in(vault, "truth")
    form = truth.get("/exports/new")
    assert form.status_code == 200 and f'value="{case}"' in form.text
    blank = truth.post("/exports", data={"csrf": token(form), "case": case, "purpose": " "})
    assert blank.status_code == 422 and "Purpose" in blank.text
    assert exports.list_exports(vault, principal(vault, "admin")) == []
    asked = truth.post(
        "/exports",
        data={"csrf": token(form), "case": case, "purpose": PURPOSE, "legal_basis": BASIS},
    )
    assert asked.status_code == 303 and PURPOSE not in asked.headers["location"]
    export_id = asked.headers["location"].rsplit("/", 1)[1]
    page = truth.get(f"/exports/{export_id}")
    assert PURPOSE in page.text and "waiting for a custodian" in page.text
    assert "/download" not in page.text
    assert export_id in truth.get("/exports").text and PURPOSE not in truth.get("/exports").text
    assert entries(vault, ledger.actions.APPROVAL_REQUEST)
    with vault.sessions() as session:  # sealed: in no entry's clear details
        assert not [e for e in ledger.entries(session) if PURPOSE in str(e.details)]

    # The custodian decides in the approvals queue, the commission's request among the rest.
    admin = signed_in(vault, "admin")
    view = exports.show(vault, principal(vault, "admin"), export_id)
    approval = admin.get(f"/approvals/{view.approval_id}")
    assert "Export to a commission" in approval.text
    assert (
        admin.post(
            f"/approvals/{view.approval_id}/approve", data={"csrf": token(approval)}
        ).status_code
        == 303
    )
    assert build_pending(vault) == 1

    ready = truth.get(f"/exports/{export_id}")
    assert "ready to download" in ready.text and f"/exports/{export_id}/download" in ready.text
    got = truth.get(f"/exports/{export_id}/download")
    assert got.status_code == 200 and got.headers["content-disposition"].endswith('.tar.age"')
    built = exports.show(vault, principal(vault, "truth"), export_id)
    assert hashlib.sha256(got.content).hexdigest() == built.sha256
    assert exports.show(vault, principal(vault, "truth"), export_id).downloads == 1
    # Someone with no part in it sees nothing.
    assert signed_in(vault, "tina").get(f"/exports/{export_id}").status_code in (403, 404)


def test_the_form_sends_filters_and_an_ended_export_is_asked_for_again(vault: Vault) -> None:
    with vault.sessions.begin() as session:
        add_user(session, "truth", "commission", vault.clock())
    tina = principal(vault, "tina")
    case = create_case(vault, tina, "Case of the river").id
    tina = principal(vault, "tina")
    items = {}
    for name, kind, text in (
        ("testimony", "testimony", "Lo detuvieron en Quebradahonda."),
        ("document", "document", "Acta de Quebradahonda."),
        ("other", "document", "Otra cosa."),
    ):
        items[name] = deposit(vault, tina, case, consent=["truth_commission"], kind=kind)
        give_text(vault, items[name], text, language="es")
        assert index_item(vault, items[name]).outcome == "indexed"
    grant(vault, principal(vault, "admin"), case, "truth", "commission")
    _identity, recipient = keys.generate_identity()
    recipients.add(vault, principal(vault, "admin"), "truth", recipient)

    truth = signed_in(vault, "truth")
    form = truth.get("/exports/new")
    assert 'name="kinds" value="document"' in form.text and 'name="query"' in form.text
    fields = {"csrf": token(form), "case": case, "purpose": PURPOSE, "legal_basis": BASIS}
    today = vault.clock().date()
    backwards = truth.post(
        "/exports",
        data={**fields, "date_from": today.isoformat(), "date_to": "2020-01-01"},
    )
    assert backwards.status_code == 422 and "Deposited from" in backwards.text
    assert exports.list_exports(vault, principal(vault, "admin")) == []
    asked = truth.post(
        "/exports",
        data={
            **fields,
            "kinds": "document",
            "query": "Quebradahonda",
            "date_from": today.isoformat(),
        },
    )
    assert asked.status_code == 303 and "Quebradahonda" not in asked.headers["location"]
    export_id = asked.headers["location"].rsplit("/", 1)[1]
    view = exports.detail(vault, principal(vault, "admin"), export_id)
    assert view.kinds == ("document",) and view.query == "Quebradahonda"
    assert view.date_from == today and view.preview is not None and view.preview.items == 1
    page = truth.get(f"/exports/{export_id}")
    assert "<dt>Items it would hold</dt><dd>1 (" in page.text
    assert "<dd>Document</dd>" in page.text and "<dd>Quebradahonda</dd>" in page.text
    assert "Ask for it again" not in page.text  # still waiting: nothing to ask again
    with vault.sessions() as session:  # the words are sealed, like the purpose
        assert not [e for e in ledger.entries(session) if "Quebradahonda" in str(e.details)]

    exports.deny(vault, principal(vault, "admin"), export_id, "Not this way")
    denied = truth.get(f"/exports/{export_id}")
    assert "denied" in denied.text and "Ask for it again" in denied.text
    forged = truth.post(f"/exports/{export_id}/rebuild", data={"csrf": "forged"})
    assert forged.status_code == 403
    again = truth.post(f"/exports/{export_id}/rebuild", data={"csrf": token(denied)})
    assert again.status_code == 303
    new_id = again.headers["location"].rsplit("/", 1)[1]
    assert new_id != export_id
    anew = exports.detail(vault, principal(vault, "admin"), new_id)
    assert anew.state == exports.REQUESTED and anew.approval_id != view.approval_id
    assert (anew.kinds, anew.query, anew.date_from) == (view.kinds, view.query, view.date_from)
    # A live export is not asked for again: the use case refuses it, as through the API.
    twice = truth.post(f"/exports/{new_id}/rebuild", data={"csrf": token(denied)})
    assert twice.status_code == 409
    # Someone with no part in it cannot ask for it again.
    tina_web = signed_in(vault, "tina")
    refused = tina_web.post(
        f"/exports/{export_id}/rebuild", data={"csrf": token(tina_web.get("/"))}
    )
    assert refused.status_code in (403, 404)
    assert len(exports.list_exports(vault, principal(vault, "admin"))) == 2
