"""`tvault ledger checkpoints` and `tvault ledger entries` (issue 20, point 9): signed sizes and
times for everyone; entries for auditors, and an item's timeline for whoever may see the item."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import keys
from tests.unit.vault.cli_support import Run, cli_runner
from tests.unit.vault.ledger.conftest import allow_tampering
from vault import ledger
from vault.accounts import add_user
from vault.ledger.tables import LedgerRow
from vault.parts import Vault

BODY = b"Testimony recorded at the clinic.\n" * 20


@pytest.fixture
def run(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> Run:
    with vault.sessions.begin() as session:
        add_user(session, "audrey", "auditor", vault.clock())
    return cli_runner(vault, monkeypatch)


def _deposit(run: Run, tmp_path: Path) -> str:
    case = run("tina", "cases", "create", "Case of the river").stdout.strip()
    source = tmp_path / "testimony.txt"
    source.write_bytes(BODY)
    done = run("tina", "deposit", str(source), "--case", case, "--consent", "therapy", "--json")
    assert done.exit_code == 0, done.output
    item: str = json.loads(done.stdout)["id"]
    return item


def test_checkpoints_lists_sizes_and_times(run: Run, vault: Vault, tmp_path: Path) -> None:
    assert run("tina", "ledger", "checkpoints").stdout.strip() == "no checkpoint signed yet"
    _deposit(run, tmp_path)
    first = vault.checkpointer.checkpoint()
    with vault.sessions.begin() as session:
        ledger.append(session, actor="tina", action=ledger.actions.EXPORT)
    second = vault.checkpointer.checkpoint()
    shown = run("tina", "ledger", "checkpoints")
    assert shown.exit_code == 0, shown.output
    sizes = [int(line.split("\t")[0]) for line in shown.stdout.splitlines()]
    assert sizes == [second.size, first.size] and second.size > first.size > 0
    rows = json.loads(run("tina", "ledger", "checkpoints", "--json").stdout)
    assert rows[0]["time"] == second.time.isoformat()


def test_entries_for_auditors_and_an_items_timeline_for_its_depositor(
    run: Run, vault: Vault, tmp_path: Path
) -> None:
    item = _deposit(run, tmp_path)
    every = json.loads(run("audrey", "ledger", "entries", "--json").stdout)
    assert len(every) > 1 and item in {e.get("item") for e in every}
    since = every[1]["seq"]
    later = json.loads(run("audrey", "ledger", "entries", "--since", str(since), "--json").stdout)
    # (each run issues the caller a token: one more entry each time)
    assert [e["seq"] for e in later][: len(every) - 1] == [e["seq"] for e in every[1:]]
    # The depositor sees her item's timeline, and only entries about it.
    timeline = run("tina", "ledger", "entries", "--item", item, "--json")
    assert timeline.exit_code == 0, timeline.output
    about = json.loads(timeline.stdout)
    assert about and all(e.get("item") == item for e in about)
    # The title and file name were sealed at deposit: they appear in no entry shown.
    assert "testimony.txt" not in timeline.stdout
    # Not the whole ledger, and not another's item: refused, and the refusal is an entry.
    assert run("tina", "ledger", "entries").exit_code == 1
    refused = run("theo", "ledger", "entries", "--item", item)
    assert refused.exit_code == 1 and "404" in refused.stderr
    with vault.sessions() as session:
        denied = [e for e in ledger.entries(session) if e.action == ledger.actions.ACCESS_DENIED]
    assert [e.actor for e in denied][-2:] == ["tina", "theo"]
    assert run("tina", "ledger", "entries", "--item", "not-an-id").exit_code == 2


def test_a_depositor_signs_a_checkpoint_that_includes_her_deposit(
    run: Run, vault: Vault, tmp_path: Path
) -> None:
    item = _deposit(run, tmp_path)
    # Without naming an item she may see, signing stays the auditors' (refused, recorded).
    assert run("tina", "ledger", "checkpoint", "--new").exit_code == 1
    assert run("theo", "ledger", "checkpoint", "--new", "--item", item).exit_code == 1
    signed = run("tina", "ledger", "checkpoint", "--new", "--item", item, "--json")
    assert signed.exit_code == 0, signed.output
    size = json.loads(signed.stdout)["size"]
    with vault.sessions() as session:
        deposit_seq = max(e.seq for e in ledger.entries(session) if e.item_id == item)
        denied = [e.actor for e in ledger.entries(session) if e.action == "access denied"]
    assert size > deposit_seq  # the tree covers her deposit's entries
    assert denied[-2:] == ["tina", "theo"]
    proof = run("tina", "ledger", "proof", str(deposit_seq))
    assert proof.exit_code == 0 and f"included in checkpoint {size}" in proof.stdout
    assert run("tina", "ledger", "checkpoint", "--item", item).exit_code == 2


def test_an_auditor_verifies_the_ledger_remotely(run: Run, vault: Vault, tmp_path: Path) -> None:
    _deposit(run, tmp_path)
    signed = vault.checkpointer.checkpoint()
    kept = tmp_path / "kept.note"
    kept.write_text(signed.note)
    done = run("audrey", "verify", "--remote", "--trusted-checkpoint", str(kept), "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["failures"] == [] and report["checkpoints"] == 2
    assert report["entries"] >= signed.size
    # A key that did not sign the log: every checkpoint fails, exit 1.
    stranger = ledger.verifier_key(
        json.loads(run("audrey", "ledger", "key", "--json").stdout)["origin"],
        keys.LogSigner.generate().public_key_bytes(),
    )
    wrong = run("audrey", "verify", "--remote", "--key", stranger)
    assert wrong.exit_code == 1 and "does not verify" in wrong.stdout
    # An entry rewritten in the database breaks the chain the auditor recomputes.
    allow_tampering(vault.sessions.kw["bind"])
    with vault.sessions.begin() as session:
        row = session.get(LedgerRow, 2)
        assert row is not None
        row.entry = bytes(row.entry).replace(b'"actor":"', b'"actor":"x', 1)
    broken = run("audrey", "verify", "--remote")
    assert broken.exit_code == 1 and "entry 3: the hash chain is broken" in broken.stdout
    # Only auditors read every entry.
    assert run("tina", "verify", "--remote").exit_code == 1
