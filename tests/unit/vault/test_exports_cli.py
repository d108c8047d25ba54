"""`tvault users recipients ...` and `tvault export request|status|list|approve|deny` against the
real API app, in-process (issue 18): exit codes, one-line errors, nothing changed on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

import keys
from tests.unit.vault.cli_support import Run, cli_runner
from tests.unit.vault.conftest import principal
from tests.unit.vault.search_support import deposit
from vault.accounts import add_user
from vault.cases import create_case, grant
from vault.db.export_tables import CommissionRecipient, Export
from vault.parts import Vault


@pytest.fixture
def run(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> Run:
    return cli_runner(vault, monkeypatch)


@pytest.fixture
def case(vault: Vault) -> str:
    with vault.sessions.begin() as session:
        add_user(session, "cleo", "custodian", vault.clock())
        add_user(session, "truth", "commission", vault.clock())
    case_id = create_case(vault, principal(vault, "tina"), "Case of the river").id
    deposit(vault, principal(vault, "tina"), case_id, consent=["truth_commission"], body=b"t")
    grant(vault, principal(vault, "admin"), case_id, "truth", "commission")
    return case_id


def rows(vault: Vault, table: type) -> int:
    with vault.sessions() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


@pytest.fixture
def database_url() -> None:
    """The CLI is the same on either database; the domain tests run on both."""
    return None


def test_recipients_then_a_request_approved_by_another_custodian(
    vault: Vault, case: str, run: Run, tmp_path: Path
) -> None:
    bad = run("admin", "users", "recipients", "add", "truth", "ssh-rsa AAAAB3NzaC1yc2E")
    assert bad.exit_code == 1
    assert "unsupported key type 'ssh-rsa'" in bad.stderr and "Traceback" not in bad.output
    assert rows(vault, CommissionRecipient) == 0
    unread = run("admin", "users", "recipients", "add", "truth", f"@{tmp_path / 'none.pub'}")
    assert unread.exit_code == 2, unread.output
    assert "cannot read the key file" in unread.stderr and "Traceback" not in unread.output
    assert rows(vault, CommissionRecipient) == 0
    # A request before any key is registered is refused, and nothing is stored.
    early = run("truth", "export", "request", case, "--purpose", "p", "--legal-basis", "b")
    assert early.exit_code == 1 and "no recipient keys" in early.stderr
    assert rows(vault, Export) == 0
    recipient = keys.generate_identity()[1]
    added = run("admin", "users", "recipients", "add", "truth", recipient)
    assert added.exit_code == 0, added.output
    listed = run("truth", "users", "recipients", "list", "truth", "--json")
    assert [r["recipient"] for r in json.loads(listed.stdout)] == [recipient]
    asked = run(
        "truth", "export", "request", case, "--purpose", "truth", "--legal-basis", "mandate"
    )
    assert asked.exit_code == 0, asked.output
    export_id = asked.stdout.strip()
    assert "would hold: 1 item(s)" in asked.stderr
    assert "tvault export approve" in asked.stderr
    status = run("admin", "export", "status", export_id)
    assert "requested" in status.stdout and "purpose: truth" in status.stdout
    refused = run("truth", "export", "approve", export_id)
    assert refused.exit_code == 1 and "403" in refused.stderr
    done = run("admin", "export", "approve", export_id, "--json")
    assert done.exit_code == 0 and json.loads(done.stdout)["state"] == "queued"
    listed = run("truth", "export", "list", "--json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [export_id]
    # Not built yet: the download says so and writes nothing.
    (tmp_path / "out").mkdir()
    early_get = run("truth", "export", "download", export_id, "-o", str(tmp_path / "out" / "x.age"))
    assert early_get.exit_code == 1 and "nothing to download yet" in early_get.stderr
    assert list((tmp_path / "out").iterdir()) == []
    usage = run("truth", "export", "status", "../items")
    assert usage.exit_code == 2
    bad_date = run(
        "truth", "export", "request", case, "--purpose", "p", "--legal-basis", "b", "--from", "x"
    )
    assert bad_date.exit_code == 2 and "--from" in bad_date.stderr
    # An empty purpose or legal basis is named with the rule, as a blank one is.
    for words in (("--purpose", "", "--legal-basis", "b"), ("--purpose", "p", "--legal-basis", "")):
        empty = run("truth", "export", "request", case, *words)
        field = "purpose" if words[1] == "" else "legal_basis"
        assert empty.exit_code == 1 and f"{field}: 1 to" in empty.stderr, empty.stderr


def test_an_empty_kept_checkpoint_is_named_as_the_file_given(run: Run, tmp_path: Path) -> None:
    export = tmp_path / "export.age"
    export.write_bytes(b"not looked at: the options are checked first")
    identity = tmp_path / "identity.txt"
    identity.write_text(keys.generate_identity()[0])
    kept = tmp_path / "kept-checkpoint.txt"
    kept.write_text("")
    result = run(
        "admin",
        "verify-export",
        str(export),
        "--identity",
        str(identity),
        "--previous-checkpoint",
        str(kept),
    )
    assert result.exit_code == 2, result.output
    assert f"--previous-checkpoint {kept}: the file is empty" in result.stderr
    assert "consistency" not in result.output and "Traceback" not in result.output


def test_the_export_routes_are_in_the_openapi_document_with_range_on_download(
    vault: Vault,
) -> None:
    from vault.compose import app_of

    spec = app_of(vault).openapi()["paths"]
    wanted = {
        ("post", "/v1/exports"),
        ("get", "/v1/exports"),
        ("get", "/v1/exports/{export_id}"),
        ("post", "/v1/exports/{export_id}/approve"),
        ("post", "/v1/exports/{export_id}/deny"),
        ("post", "/v1/exports/{export_id}/rebuild"),
        ("get", "/v1/exports/{export_id}/download"),
        ("post", "/v1/users/{name}/recipients"),
        ("get", "/v1/users/{name}/recipients"),
        ("delete", "/v1/users/{name}/recipients/{key_id}"),
    }
    assert wanted <= {(method, path) for path, ops in spec.items() for method in ops}
    download = spec["/v1/exports/{export_id}/download"]["get"]
    assert {p["name"] for p in download["parameters"] if p["in"] == "header"} == {"Range"}
    # What a client resuming a download must expect, documented where it looks.
    assert {"200", "206", "410", "416"} <= set(download["responses"])
    assert "application/octet-stream" in download["responses"]["206"]["content"]
    assert "Content-Range" in download["responses"]["206"]["headers"]
    assert "Content-Range" in download["responses"]["416"]["headers"]
    assert "Repr-Digest" in download["responses"]["200"]["headers"]


def test_a_custodian_denies_with_a_reason_and_nothing_is_built(
    vault: Vault, case: str, run: Run
) -> None:
    recipient = keys.generate_identity()[1]
    assert run("admin", "users", "recipients", "add", "truth", recipient).exit_code == 0
    asked = run("truth", "export", "request", case, "--purpose", "p", "--legal-basis", "b")
    export_id = asked.stdout.strip()
    no_reason = run("admin", "export", "deny", export_id)
    assert no_reason.exit_code == 2 and "--reason" in no_reason.stderr
    denied = run("admin", "export", "deny", export_id, "--reason", "outside the mandate", "--json")
    assert denied.exit_code == 0, denied.output
    assert json.loads(denied.stdout)["state"] == "denied"
    status = run("truth", "export", "status", export_id, "--json")
    assert json.loads(status.stdout)["state"] == "denied"
    assert list(vault.store.names("exports/")) == []
    again = run("admin", "export", "approve", export_id)
    assert again.exit_code == 1 and "no longer pending" in again.stderr
