"""A legal hold on a whole case (`vault.shred.hold_case`, issue 19 point 6): every item of the
case held through the single hold's path, one `legal hold` entry per item held with the one
reason sealed; items held already and crypto-shredded ones skipped; a refusal holds nothing
and is an `access denied` entry; items deposited later are not held."""

from __future__ import annotations

import json

import pytest

from policies import Deny, Principal, Resource
from tests.unit.vault.cli_support import cli_runner
from tests.unit.vault.conftest import principal
from tests.unit.vault.search_support import deposit
from tests.unit.vault.tokens import token_for
from tests.unit.vault.web.web_support import browser
from vault import access, ledger, shred
from vault.cases import create_case, grant
from vault.compose import app_of
from vault.errors import BadField, Forbidden, NotFound
from vault.parts import Vault

REASON = "Court order 14-2026 of the Huánuco court, for Rosa Quispe's testimony"


def _entries(vault: Vault, action: str) -> list[ledger.LedgerEntry]:
    with vault.sessions() as session:
        return [e for e in ledger.entries(session) if e.action == action]


def _case(vault: Vault, items: int = 3) -> tuple[str, list[str]]:
    case = create_case(vault, principal(vault, "tina"), "Case of the river").id
    ids = [
        deposit(vault, principal(vault, "tina"), case, consent=["legal"], body=f"w{n}".encode())
        for n in range(items)
    ]
    return case, ids


def test_every_item_of_the_case_is_held_with_one_entry_each(vault: Vault) -> None:
    case, ids = _case(vault)
    _, [outside] = _case(vault, 1)
    done = shred.hold_case(vault, principal(vault, "admin"), case, REASON)
    assert sorted(done.held) == sorted(ids) and (done.already, done.shredded) == (0, 0)
    assert all(shred.is_held(vault, item) for item in ids) and not shred.is_held(vault, outside)
    held = _entries(vault, ledger.actions.LEGAL_HOLD)
    assert sorted(e.item_id or "" for e in held) == sorted(ids)
    for entry in held:  # each as a single hold writes it: the reason sealed, never in clear
        assert (entry.actor, entry.case_id, entry.details["held"]) == ("admin", case, True)
        assert entry.sealed_sha256 is not None and "Rosa" not in str(entry.details)
    # Items deposited later are not held; holding the case again holds them, and only them.
    later = deposit(vault, principal(vault, "tina"), case, consent=["legal"], body=b"late")
    assert not shred.is_held(vault, later)
    again = shred.hold_case(vault, principal(vault, "admin"), case, REASON)
    assert again.held == (later,) and again.already == 3
    assert len(_entries(vault, ledger.actions.LEGAL_HOLD)) == 4


def test_items_held_already_and_shredded_ones_are_skipped(vault: Vault) -> None:
    case, [first, second, third] = _case(vault)
    admin = principal(vault, "admin")
    assert shred.set_hold(vault, admin, first, True, "earlier order")
    shred.shred(vault, admin, second)
    before = len(_entries(vault, ledger.actions.LEGAL_HOLD))
    done = shred.hold_case(vault, admin, case, REASON)
    assert (done.held, done.already, done.shredded) == ((third,), 1, 1)
    assert not shred.is_held(vault, second)
    [entry] = _entries(vault, ledger.actions.LEGAL_HOLD)[before:]
    assert entry.item_id == third


def test_a_refused_case_hold_is_recorded_and_holds_nothing(vault: Vault) -> None:
    case, ids = _case(vault)
    grant(vault, principal(vault, "admin"), case, "lena", "lawyer")
    with pytest.raises(Forbidden):  # lena sees the case: told she may not
        shred.hold_case(vault, principal(vault, "lena"), case, REASON)
    with pytest.raises(NotFound):  # theo does not see it: told it does not exist
        shred.hold_case(vault, principal(vault, "theo"), case, REASON)
    with pytest.raises(NotFound):
        shred.hold_case(vault, principal(vault, "admin"), "0" * 26, REASON)
    denied = [
        e
        for e in _entries(vault, ledger.actions.ACCESS_DENIED)
        if e.details["attempted"] == "item.hold"
    ]
    assert [(e.actor, e.case_id) for e in denied] == [
        ("lena", case),
        ("theo", case),
        ("admin", None),
    ]
    assert not any(shred.is_held(vault, item) for item in ids)
    assert _entries(vault, ledger.actions.LEGAL_HOLD) == []


def test_an_item_the_policy_refuses_stops_the_case_hold_before_anything_is_held(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    case, ids = _case(vault)
    refused = sorted(ids)[-1]  # the last in the use case's order: the others come first
    real = access.decide

    def deciding(who: Principal, action: str, resource: Resource) -> object:
        if resource.item_id == refused:
            return Deny("item.hold denied for this item")
        return real(who, action, resource)

    monkeypatch.setattr(access, "decide", deciding)
    # A custodian does not see items' content: the refusal is "not found", as a single hold's.
    with pytest.raises(NotFound):
        shred.hold_case(vault, principal(vault, "admin"), case, REASON)
    [entry] = _entries(vault, ledger.actions.ACCESS_DENIED)
    assert (entry.item_id, entry.details["attempted"]) == (refused, "item.hold")
    assert not any(shred.is_held(vault, item) for item in ids)
    assert _entries(vault, ledger.actions.LEGAL_HOLD) == []


@pytest.mark.parametrize("reason", ["", "   ", "x" * (shred.MAX_HOLD_REASON + 1), "a\x00b"])
def test_a_bad_reason_holds_nothing_and_records_nothing(vault: Vault, reason: str) -> None:
    case, ids = _case(vault)
    with pytest.raises(BadField):
        shred.hold_case(vault, principal(vault, "admin"), case, reason)
    assert not any(shred.is_held(vault, item) for item in ids)
    assert _entries(vault, ledger.actions.LEGAL_HOLD) == []


def test_the_api_and_the_cli_hold_a_case_as_the_page_does(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    case, ids = _case(vault)
    run = cli_runner(vault, monkeypatch)
    refused = run("tina", "cases", "hold", case, "--reason", REASON)
    assert refused.exit_code != 0 and not any(shred.is_held(vault, item) for item in ids)
    done = run("admin", "cases", "hold", case, "--reason", REASON, "--json")
    assert done.exit_code == 0, done.output
    answer = json.loads(done.stdout)
    assert sorted(answer["held"]) == sorted(ids) and answer["already"] == 0
    assert all(shred.is_held(vault, item) for item in ids)
    again = run("admin", "cases", "hold", case, "--reason", REASON)
    assert again.stdout.strip() == (
        f"held 0 item(s) of {case} now; 3 held already; 0 shredded, left alone"
    )
    held = _entries(vault, ledger.actions.LEGAL_HOLD)
    assert len(held) == 3 and all(e.details["credential"].startswith("token:") for e in held)
    assert all(e.sealed_sha256 is not None and "Rosa" not in str(e.details) for e in held)
    api = browser(app_of(vault))
    api.headers["Authorization"] = f"Bearer {token_for(vault, 'admin', 'custodian')}"
    blank = api.post(f"/v1/cases/{case}/holds", json={"reason": ""})
    assert blank.status_code == 422
    assert len(_entries(vault, ledger.actions.LEGAL_HOLD)) == 3
