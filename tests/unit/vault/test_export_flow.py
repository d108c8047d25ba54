"""Exports built and delivered (issue 18): request -> approval by another custodian -> build
at that moment -> download with Range -> the commission's key opens a BagIt bag the Library of
Congress `bagit` library validates. Revocation, expiry and a build killed mid-way. On SQLite and
PostgreSQL."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import bagit
import pytest
from click.testing import Result

import keys
from tests.unit.vault.conftest import principal
from tests.unit.vault.search_support import deposit, give_text
from vault import approval_kinds, approvals, exports, ledger, recipients
from vault.accounts import add_user
from vault.cases import create_case, grant
from vault.consent import change_consent
from vault.deposit import Deposit
from vault.errors import NotFound
from vault.export_build import build_pending, claim
from vault.grants import revoke
from vault.identity import RenditionUpload, set_identity
from vault.parts import Vault
from vault.sweep import sweep

PURPOSE = "Esclarecer los hechos del río"
BASIS = "Decreto 588 de 2017"
# A name no tar or file system takes as it is: a path, a colon, a control character.
HOSTILE = "../../etc/pass:wd?\x07 testimonio.pdf"


@dataclass(frozen=True)
class Setup:
    case: str
    plain: str  # consent truth_commission, a hostile file name, an extracted text
    named: str  # consent truth_commission, identity fields recorded
    therapy_only: str
    identity: str


@pytest.fixture
def setup(vault: Vault) -> Setup:
    with vault.sessions.begin() as session:
        add_user(session, "cleo", "custodian", vault.clock())
        add_user(session, "truth", "commission", vault.clock())
    case = create_case(vault, principal(vault, "tina"), "Case of the river").id
    tina = principal(vault, "tina")
    started = Deposit.start(
        vault,
        tina,
        {"case": case, "kind": "testimony", "title": "T1", "filename": HOSTILE,
         "consent": "truth_commission"},
    )  # fmt: skip
    started.write(b"the first testimony")
    plain = started.commit().item_id
    give_text(vault, plain, "Lo que vi en el río")
    named = deposit(vault, tina, case, consent=["truth_commission", "therapy"], body=b"second")
    set_identity(vault, tina, named, {"name": "Rosa Quispe", "aliases": ["La Rosa"]})
    therapy_only = deposit(vault, tina, case, consent=["therapy"], body=b"not for them")
    grant(vault, principal(vault, "admin"), case, "truth", "commission")
    identity, recipient = keys.generate_identity()
    recipients.add(vault, principal(vault, "admin"), "truth", recipient)
    return Setup(case, plain, named, therapy_only, identity)


def approved(vault: Vault, case: str) -> str:
    request = exports.ExportRequest(case_id=case, purpose=PURPOSE, legal_basis=BASIS)
    asked = exports.request(vault, principal(vault, "truth"), request)
    exports.approve(vault, principal(vault, "cleo"), asked.id)
    return asked.id


def fetch(vault: Vault, export_id: str, range_header: str | None = None) -> bytes:
    got = exports.download(vault, principal(vault, "truth"), export_id, range_header)
    return b"".join(got.chunks)


def unpack(sealed: bytes, identity: str, where: Path) -> Path:
    """Open the age file with the commission's identity and unpack the tar (test files only)."""
    plain = io.BytesIO()
    keys.unseal(io.BytesIO(sealed), plain, identity)
    with tarfile.open(fileobj=io.BytesIO(plain.getvalue()), mode="r:") as tar:
        [root] = {name.split("/")[0] for name in tar.getnames()}
        tar.extractall(where, filter="data")
    return where / root


def steps(vault: Vault, export_id: str) -> list[str]:
    with vault.sessions() as session:
        return [
            str(e.details["step"])
            for e in ledger.entries(session)
            if e.action == ledger.actions.EXPORT and e.details.get("export") == export_id
        ]


def test_an_approved_export_is_built_then_downloaded_and_validates(
    vault: Vault, setup: Setup, tmp_path: Path, run_verify: Callable[..., Result]
) -> None:
    export_id = approved(vault, setup.case)
    assert build_pending(vault) == 1
    shown = exports.show(vault, principal(vault, "truth"), export_id)
    assert (shown.state, shown.items) == (exports.READY, 2)
    assert shown.expires_at is not None and shown.built_at is not None
    assert shown.expires_at - shown.built_at == timedelta(days=30)
    [name] = list(vault.store.names(exports.PREFIX))
    with vault.store.open(name) as stored:
        sealed_at_rest = stored.read()
    assert sealed_at_rest.startswith(b"age-encryption.org/v1\n")
    for plaintext in (b"the first testimony", b"second", b"Rosa Quispe", PURPOSE.encode()):
        assert plaintext not in sealed_at_rest
    whole = fetch(vault, export_id)
    assert whole == sealed_at_rest and len(whole) == shown.size
    # A broken download resumes: the rest from byte N is the file's tail.
    assert fetch(vault, export_id, f"bytes={len(whole) - 1000}-") == whole[-1000:]
    assert fetch(vault, export_id, "bytes=5-9") == whole[5:10]
    with pytest.raises(exports.RangeNotSatisfiable):
        fetch(vault, export_id, f"bytes={len(whole)}-")
    # Only the commission it is for downloads it; the refusal is recorded.
    with pytest.raises(NotFound):
        exports.download(vault, principal(vault, "tina"), export_id)
    bag_dir = unpack(whole, setup.identity, tmp_path / "bag")
    bag = bagit.Bag(str(bag_dir))
    bag.validate()  # every manifest and tagmanifest, Payload-Oxum, as `bagit.py --validate`
    assert bag.info["External-Identifier"] == f"tvault-export-{export_id}"
    items = {p.name for p in (bag_dir / "data" / "items").iterdir()}
    assert items == {setup.plain, setup.named}  # never the therapy-only one
    originals = list((bag_dir / "data" / "items" / setup.plain / "original").iterdir())
    assert [p.read_bytes() for p in originals] == [b"the first testimony"]
    assert "/" not in originals[0].name and "\x07" not in originals[0].name
    text = (bag_dir / "data" / "items" / setup.plain / "text.txt").read_text("utf-8")
    assert text == "Lo que vi en el río"
    meta = json.loads((bag_dir / "data" / "items" / setup.named / "metadata.json").read_text())
    assert meta["identity"] == {"aliases": "La Rosa", "name": "Rosa Quispe"}  # policy: named
    assert meta["consent"] == ["therapy", "truth_commission"] and meta["custody_entries"]
    # The custody record: every ledger entry about an exported item before the build.
    shipped = {int(p.stem) for p in (bag_dir / "data" / "custody" / "entries").iterdir()}
    with vault.sessions() as session:
        about = {
            e.seq
            for e in ledger.entries(session)
            if e.item_id in (setup.plain, setup.named) and e.action != ledger.actions.EXPORT
        }
    assert shipped == about and len(shipped) == 3  # two deposits, one identity recording
    assert (bag_dir / "data" / "custody" / "checkpoint.txt").exists()
    assert not (bag_dir / "data" / "custody" / "consistency.json").exists()  # a first export
    assert steps(vault, export_id) == ["built", "packed", "packed", "download"] + ["download"] * 2
    # A second export to the same commission proves its ledger extends the first one's.
    second = approved(vault, setup.case)
    build_pending(vault)
    again = unpack(fetch(vault, second), setup.identity, tmp_path / "second")
    bagit.Bag(str(again)).validate()
    assert (again / "data" / "custody" / "consistency.json").exists()
    assert (again / "data" / "custody" / "previous-checkpoint.txt").read_text() == (
        bag_dir / "data" / "custody" / "checkpoint.txt"
    ).read_text()
    # `tvault verify` finds nothing wrong with exports in the vault (their objects are
    # referenced). Its one finding is the text `give_text` planted without a ledger entry.
    checked = run_verify()
    failures = [line for line in checked.output.splitlines() if line.startswith("  ")]
    assert len(failures) == 1, checked.output
    assert f"{setup.plain}: extracted text without its ledger entry" in failures[0]
    assert "exports/" not in checked.output and "unreferenced" not in checked.output


def test_withdrawn_consent_revokes_a_built_export_and_a_rebuild_leaves_the_item_out(
    vault: Vault, setup: Setup, tmp_path: Path
) -> None:
    export_id = approved(vault, setup.case)
    build_pending(vault)
    change_consent(
        vault,
        principal(vault, "tina"),
        setup.named,
        withdraw=["truth_commission"],
        basis="depositor_confirmation",
    )
    with pytest.raises(exports.Gone, match=f"consent for item {setup.named}.*withdrawn"):
        fetch(vault, export_id)
    assert list(vault.store.names(exports.PREFIX)) == []  # the sealed bag is gone too
    shown = exports.show(vault, principal(vault, "truth"), export_id)
    assert shown.state == exports.REVOKED and shown.reason and setup.named in shown.reason
    assert steps(vault, export_id)[-1] == "revoked"
    again = exports.rebuild(vault, principal(vault, "truth"), export_id)
    assert again.preview is not None and again.preview.items == 1
    exports.approve(vault, principal(vault, "admin"), again.id)
    build_pending(vault)
    bag_dir = unpack(fetch(vault, again.id), setup.identity, tmp_path / "bag")
    assert {p.name for p in (bag_dir / "data" / "items").iterdir()} == {setup.plain}


def test_a_revoked_grant_revokes_the_export_and_the_download_says_why(
    vault: Vault, setup: Setup
) -> None:
    export_id = approved(vault, setup.case)
    build_pending(vault)
    revoke(vault, principal(vault, "admin"), setup.case, "truth")
    with pytest.raises(exports.Gone, match=f"revoked: the grant of truth on case {setup.case}"):
        fetch(vault, export_id)
    with vault.sessions() as session:
        refused = list(ledger.entries(session))[-1]
    assert (refused.action, refused.actor) == (ledger.actions.ACCESS_DENIED, "truth")
    shown = exports.show(vault, principal(vault, "admin"), export_id)
    assert shown.state == exports.REVOKED
    assert shown.reason == f"the grant of truth on case {setup.case} was revoked"
    assert list(vault.store.names(exports.PREFIX)) == []


def test_an_export_expires_and_the_sweep_removes_it(vault: Vault, setup: Setup) -> None:
    export_id = approved(vault, setup.case)
    build_pending(vault)
    built = exports.show(vault, principal(vault, "truth"), export_id)
    assert built.expires_at is not None
    later = built.expires_at + timedelta(seconds=1)
    vault.clock = lambda: later
    assert sweep(vault) == 1
    assert exports.show(vault, principal(vault, "truth"), export_id).state == exports.EXPIRED
    assert list(vault.store.names(exports.PREFIX)) == []
    with pytest.raises(exports.Gone, match="expired"):
        fetch(vault, export_id)
    assert steps(vault, export_id)[-1] == "expired"


def test_a_build_killed_midway_is_taken_over_after_its_lease(vault: Vault, setup: Setup) -> None:
    export_id = approved(vault, setup.case)
    assert claim(vault, "dead-builder") == export_id  # ... and that builder dies here
    assert build_pending(vault, "second") == 0  # its lease still runs
    start = vault.clock()
    vault.clock = lambda: start + timedelta(seconds=vault.settings.export_lease_seconds + 1)
    assert build_pending(vault, "second") == 1
    assert exports.show(vault, principal(vault, "truth"), export_id).state == exports.READY
    assert len(list(vault.store.names(exports.PREFIX))) == 1


def test_consent_withdrawn_before_the_build_leaves_nothing_to_export(
    vault: Vault, setup: Setup
) -> None:
    export_id = approved(vault, setup.case)
    tina = principal(vault, "tina")
    for item in (setup.plain, setup.named):
        change_consent(
            vault, tina, item, withdraw=["truth_commission"], basis="depositor_confirmation"
        )
        change_consent(vault, tina, item, grant=["archive"], basis="depositor_confirmation")
    build_pending(vault)
    shown = exports.show(vault, principal(vault, "truth"), export_id)
    assert shown.state == exports.FAILED and "no empty bag" in (shown.reason or "")
    assert list(vault.store.names(exports.PREFIX)) == []  # no empty bag


def test_under_redaction_the_bag_holds_the_rendition_and_hides_the_identity(
    vault: Vault, setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import policies
    from policies import Allow, obligations

    upload = RenditionUpload.start(vault, principal(vault, "tina"), setup.named)
    upload.write(b"second, with the name blacked out")
    upload.commit()
    real = policies.decide

    def redacting(who: policies.Principal, action: str, resource: policies.Resource) -> object:
        # A policy file that obliges redaction for commissions (none ships that way).
        decision = real(who, action, resource)
        if action == "export.request" and resource.kind == "item" and decision:
            return Allow(frozenset({obligations.REDACT_IDENTITIES}))
        return decision

    monkeypatch.setattr(exports, "decide", redacting)
    export_id = approved(vault, setup.case)
    build_pending(vault)
    bag_dir = unpack(fetch(vault, export_id), setup.identity, tmp_path / "bag")
    bagit.Bag(str(bag_dir)).validate()
    item_dir = bag_dir / "data" / "items" / setup.named
    [original] = list((item_dir / "original").iterdir())
    assert original.read_bytes() == b"second, with the name blacked out"
    meta = json.loads((item_dir / "metadata.json").read_text())
    assert meta["identity"] == {"aliases": "[redacted]", "name": "[redacted]"}
    assert meta["file"]["redacted"] is True and meta["signature"] is None
    for path in bag_dir.rglob("*"):
        if path.is_file():
            assert b"Rosa Quispe" not in path.read_bytes(), path


def test_the_sweep_removes_a_bag_whose_build_died_before_its_row(vault: Vault) -> None:
    with vault.store.writer(f"{exports.PREFIX}orphan") as writer:
        writer.write(b"age-encryption.org/v1\n...")
        writer.commit()
    assert sweep(vault) == 0  # young: it may be a build still committing
    start = vault.clock()
    vault.clock = lambda: start + timedelta(seconds=vault.settings.sweep_grace_seconds + 60)
    assert sweep(vault) == 1
    assert list(vault.store.names(exports.PREFIX)) == []


def test_status_shows_an_export_expired_before_the_sweep_comes(vault: Vault, setup: Setup) -> None:
    export_id = approved(vault, setup.case)
    build_pending(vault)
    built = exports.show(vault, principal(vault, "truth"), export_id)
    assert built.expires_at is not None
    later = built.expires_at + timedelta(seconds=1)
    vault.clock = lambda: later
    assert exports.show(vault, principal(vault, "truth"), export_id).state == exports.EXPIRED
    assert list(vault.store.names(exports.PREFIX)) == []


def test_a_shredded_item_revokes_the_export(vault: Vault, setup: Setup) -> None:
    export_id = approved(vault, setup.case)
    build_pending(vault)
    asked = approval_kinds.request_shred(
        vault, principal(vault, "admin"), setup.plain, "other", "x"
    )
    approvals.approve(vault, principal(vault, "cleo"), asked.id)
    with pytest.raises(exports.Gone, match=f"item {setup.plain} was crypto-shredded"):
        fetch(vault, export_id)
