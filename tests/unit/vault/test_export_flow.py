"""Exports built and delivered (issue 18): request -> approval by another custodian -> build
at that moment -> download with Range -> the commission's key opens a BagIt bag the Library of
Congress `bagit` library validates. Revocation, expiry and a build killed mid-way. On SQLite and
PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import bagit
import jsonschema
import pytest
from click.testing import Result
from sqlalchemy import select

import keys
from tests.unit.vault import world_support as worlds
from tests.unit.vault.conftest import principal
from tests.unit.vault.search_support import deposit, give_text
from tests.unit.vault.template_support import copy_vault, template
from vault import approval_kinds, approvals, exports, ledger, recipients
from vault.accounts import add_user
from vault.cases import create_case, grant
from vault.consent import change_consent
from vault.db.approval_tables import Approval
from vault.db.export_tables import Export
from vault.deposit import Deposit
from vault.errors import BadField, Forbidden, NotFound
from vault.export_build import build_pending, claim
from vault.export_verify import verify_export
from vault.grants import revoke
from vault.identity import RenditionUpload, set_identity
from vault.indexing import index_item
from vault.parts import Vault
from vault.ranges import RangeNotSatisfiable
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
def setup(vault: Vault, request: pytest.FixtureRequest) -> Setup:
    """`make_setup`'s world in the test's own vault: made once per process and database, copied
    into each test's vault (world_support.py)."""
    return worlds.enter(request, vault, "export-flow", make_setup)


def make_setup(vault: Vault) -> Setup:
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
    # Nor anywhere else under the vault's home: the build left no plaintext on disk.
    home = Path(vault.settings.home)
    on_disk = [path.read_bytes() for path in home.rglob("*") if path.is_file()]
    assert sealed_at_rest in on_disk  # the scan sees the store's objects
    for stored in on_disk:
        for plaintext in (b"the first testimony", "Lo que vi en el río".encode(), b"Rosa Quispe"):
            assert plaintext not in stored
    whole = fetch(vault, export_id)
    assert whole == sealed_at_rest and len(whole) == shown.size
    # A broken download resumes: the rest from byte N is the file's tail.
    assert fetch(vault, export_id, f"bytes={len(whole) - 1000}-") == whole[-1000:]
    assert fetch(vault, export_id, "bytes=5-9") == whole[5:10]
    with pytest.raises(RangeNotSatisfiable):
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
    # The name the depositor gave is kept as it was, beside the portable one the file bears.
    schema = json.loads((bag_dir / "data" / "metadata.schema.json").read_text())
    plain_meta = json.loads(
        (bag_dir / "data" / "items" / setup.plain / "metadata.json").read_text()
    )
    assert plain_meta["filename"] == HOSTILE
    assert plain_meta["file"]["path"] == f"data/items/{setup.plain}/original/{originals[0].name}"
    for item in (setup.plain, setup.named):
        jsonschema.validate(
            json.loads((bag_dir / "data" / "items" / item / "metadata.json").read_text()), schema
        )
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


def test_after_a_revoked_grant_a_rebuild_waits_for_the_grant_then_a_new_approval(
    vault: Vault, setup: Setup, tmp_path: Path
) -> None:
    export_id = approved(vault, setup.case)
    build_pending(vault)
    revoke(vault, principal(vault, "admin"), setup.case, "truth")
    with pytest.raises(exports.Gone, match=f"the grant of truth on case {setup.case}"):
        fetch(vault, export_id)

    def exports_and_approvals() -> tuple[int, int]:
        with vault.sessions() as session:
            return (
                len(session.scalars(select(Export)).all()),
                len(session.scalars(select(Approval)).all()),
            )

    before = exports_and_approvals()
    # While the grant stays revoked, a rebuild is refused with the reason, the refusal is
    # recorded, and nothing is asked for: no export, no approval, no bag.
    with pytest.raises(Forbidden, match=f"truth holds no commission grant on case {setup.case}"):
        exports.rebuild(vault, principal(vault, "admin"), export_id)
    with vault.sessions() as session:
        refused = list(ledger.entries(session))[-1]
    assert (refused.action, refused.actor) == (ledger.actions.ACCESS_DENIED, "admin")
    # The commission itself no longer sees the case: "not found", as for any unseen case.
    with pytest.raises(NotFound):
        exports.rebuild(vault, principal(vault, "truth"), export_id)
    assert exports_and_approvals() == before
    assert build_pending(vault) == 0
    assert list(vault.store.names(exports.PREFIX)) == []
    # The grant given back, a custodian asks again for the commission; a second one approves.
    grant(vault, principal(vault, "admin"), setup.case, "truth", "commission")
    again = exports.rebuild(vault, principal(vault, "admin"), export_id)
    assert again.id != export_id and again.state == exports.REQUESTED
    assert again.preview is not None and again.preview.items == 2
    assert build_pending(vault) == 0  # nothing is built before approval
    with pytest.raises(Forbidden):
        exports.approve(vault, principal(vault, "admin"), again.id)  # not the one who asked
    exports.approve(vault, principal(vault, "cleo"), again.id)
    assert build_pending(vault) == 1
    sealed = fetch(vault, again.id)
    report = verify_export(
        io.BytesIO(sealed),
        setup.identity,
        name="rebuilt.age",
        log_key=vault.checkpointer.verifier_key(),
    )
    assert report.ok, report.failures
    bag_dir = unpack(sealed, setup.identity, tmp_path / "bag")
    assert {p.name for p in (bag_dir / "data" / "items").iterdir()} == {setup.plain, setup.named}
    assert exports.show(vault, principal(vault, "admin"), export_id).state == exports.REVOKED


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
    assert "filename" not in meta and "filename" in meta["redacted_fields"]
    for path in bag_dir.rglob("*"):
        if path.is_file():
            assert b"Rosa Quispe" not in path.read_bytes(), path


@pytest.fixture
def redacting_vault(
    tmp_path: Path,
    database_url: str | None,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Vault]:
    """A vault opened as a deployment opens it, with `TVAULT_POLICY_FILE` naming a policy file:
    the shipped one, with the commissions' `export.request` rule obliging `redact_identities`."""
    import policies

    shipped = (Path(policies.__file__).parent / "default.toml").read_text("utf-8")
    rule = 'actions = ["export.request"]\ncase_grant = true\nconsent_any = ["truth_commission"]\n'
    assert shipped.count(rule) == 1  # the commissions' rule, as the shipped file words it
    policy = tmp_path / "policy.toml"
    policy.write_text(shipped.replace(rule, rule + 'obligations = ["redact_identities"]\n'))
    made = template(request, "sqlite" if database_url is None else "postgres")
    monkeypatch.setenv("TVAULT_POLICY_FILE", str(policy))
    opened = copy_vault(made, tmp_path / "vault", database_url)
    try:
        assert opened.settings.policy_file == policy
        yield opened
    finally:
        opened.close()
        policies.use(None)


def test_a_policy_file_obliging_redaction_for_commissions_redacts_the_bag(
    redacting_vault: Vault, tmp_path: Path
) -> None:
    vault = redacting_vault
    setup = make_setup(vault)
    tina = principal(vault, "tina")
    original = b"the words of Rosa Quispe, as she said them"
    started = Deposit.start(
        vault,
        tina,
        {"case": setup.case, "kind": "testimony", "title": "Testimonio de Rosa Quispe",
         "filename": "rosa-quispe.pdf", "consent": "truth_commission"},
    )  # fmt: skip
    started.write(original)
    named = started.commit().item_id
    set_identity(vault, tina, named, {"name": "Rosa Quispe", "aliases": ["La Rosa"]})
    give_text(vault, named, "Rosa Quispe contó lo del río")
    upload = RenditionUpload.start(vault, tina, named)
    upload.write(b"the words of [redacted], as she said them")
    upload.commit()
    asked = exports.ExportRequest(case_id=setup.case, purpose=PURPOSE, legal_basis=BASIS)
    export_id = exports.request(vault, principal(vault, "truth"), asked).id
    shown = exports.show(vault, principal(vault, "cleo"), export_id)
    # Only the item with a redacted rendition may go: the others have none.
    assert shown.preview is not None
    assert (shown.preview.items, shown.preview.redacted, shown.preview.no_rendition) == (1, 1, 2)
    exports.approve(vault, principal(vault, "cleo"), export_id)
    assert build_pending(vault) == 1
    sealed = fetch(vault, export_id)
    report = verify_export(
        io.BytesIO(sealed), setup.identity, name="redacted.age",
        log_key=vault.checkpointer.verifier_key(),
    )  # fmt: skip
    assert report.ok, report.failures
    plain = io.BytesIO()
    keys.unseal(io.BytesIO(sealed), plain, setup.identity)
    decrypted = plain.getvalue()
    for secret in (original, b"Rosa Quispe", b"La Rosa", b"rosa-quispe"):
        assert secret not in decrypted, secret  # the whole tar: no file, no header, no name
    bag_dir = unpack(sealed, setup.identity, tmp_path / "bag")
    bagit.Bag(str(bag_dir)).validate()
    assert {p.name for p in (bag_dir / "data" / "items").iterdir()} == {named}
    item_dir = bag_dir / "data" / "items" / named
    [shipped] = list((item_dir / "original").iterdir())
    assert shipped.read_bytes() == b"the words of [redacted], as she said them"
    assert shipped.name == "redacted.pdf"
    meta = json.loads((item_dir / "metadata.json").read_text())
    assert meta["identity"] == {"aliases": "[redacted]", "name": "[redacted]"}
    assert meta["title"] == "[redacted]" and "filename" not in meta
    assert meta["file"]["redacted"] is True and meta["signature"] is None
    assert (item_dir / "text.txt").read_text("utf-8") == "[redacted] [redacted] contó lo del río"
    with (bag_dir / "data" / "uwazi.csv").open(newline="", encoding="utf-8") as rows:
        [row] = list(csv.DictReader(rows))
    assert (row["title"], row["item_id"], row["redacted"]) == ("[redacted]", named, "yes")
    assert row["file"] == f"items/{named}/original/redacted.pdf"


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


def test_the_expiry_follows_the_setting(
    vault: Vault, setup: Setup, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from vault.settings import load_settings

    monkeypatch.setenv("TVAULT_EXPORT_TTL_DAYS", "7")
    assert load_settings(tmp_path / "elsewhere").export_ttl_days == 7  # the setting's name
    vault.settings = vault.settings.model_copy(update={"export_ttl_days": 7})
    export_id = approved(vault, setup.case)
    build_pending(vault)
    built = exports.show(vault, principal(vault, "truth"), export_id)
    assert built.expires_at is not None and built.built_at is not None
    assert built.expires_at - built.built_at == timedelta(days=7)


def test_the_request_s_filters_choose_what_the_bag_holds(
    vault: Vault, setup: Setup, tmp_path: Path
) -> None:
    tina = principal(vault, "tina")
    document = deposit(vault, tina, setup.case, consent=["truth_commission"], kind="document")
    today = vault.clock().date()

    def ask(**filters: object) -> exports.ExportView:
        request = exports.ExportRequest(
            case_id=setup.case,
            purpose=PURPOSE,
            legal_basis=BASIS,
            **filters,  # type: ignore[arg-type]
        )
        return exports.request(vault, principal(vault, "truth"), request)

    before = len(exports.list_exports(vault, principal(vault, "admin")))
    with pytest.raises(exports.Conflict, match="no item"):  # deposited today, not before
        ask(date_to=today - timedelta(days=1))
    with pytest.raises(BadField, match="date_from"):
        ask(date_from=today, date_to=today - timedelta(days=1))
    assert len(exports.list_exports(vault, principal(vault, "admin"))) == before
    asked = ask(kinds=("document",), date_from=today, date_to=today)
    assert asked.preview is not None and asked.preview.by_kind == {"document": 1}
    exports.approve(vault, principal(vault, "cleo"), asked.id)
    build_pending(vault)
    bag_dir = unpack(fetch(vault, asked.id), setup.identity, tmp_path / "bag")
    assert {p.name for p in (bag_dir / "data" / "items").iterdir()} == {document}
    # A search query, run in the index within the case and the commission's consent scope.
    give_text(vault, document, "Acta de la comisaría", language="es")
    for item in (setup.plain, document):
        assert index_item(vault, item).outcome == "indexed"
    searched = ask(query="río")
    assert searched.preview is not None and searched.preview.items == 1
    exports.approve(vault, principal(vault, "cleo"), searched.id)
    build_pending(vault)
    bag_dir = unpack(fetch(vault, searched.id), setup.identity, tmp_path / "searched")
    assert {p.name for p in (bag_dir / "data" / "items").iterdir()} == {setup.plain}


def test_the_preview_counts_redactions_and_items_left_out(
    vault: Vault, setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    import policies
    from policies import Allow, obligations
    from vault.identity import RENDITION_PREFIX

    # A 0-byte rendition is no rendition: refused with its reason, nothing kept.
    empty = RenditionUpload.start(vault, principal(vault, "tina"), setup.plain)
    with pytest.raises(BadField, match="an empty rendition cannot be attached"):
        empty.commit()
    assert list(vault.store.names(RENDITION_PREFIX)) == []
    upload = RenditionUpload.start(vault, principal(vault, "tina"), setup.named)
    upload.write(b"second, with the name blacked out")
    upload.commit()
    real = policies.decide

    def redacting(who: policies.Principal, action: str, resource: policies.Resource) -> object:
        decision = real(who, action, resource)
        if action == "export.request" and resource.kind == "item" and decision:
            return Allow(frozenset({obligations.REDACT_IDENTITIES}))
        return decision

    monkeypatch.setattr(exports, "decide", redacting)
    request = exports.ExportRequest(case_id=setup.case, purpose=PURPOSE, legal_basis=BASIS)
    preview = exports.request(vault, principal(vault, "truth"), request).preview
    assert preview is not None
    # `named` goes in redacted; `plain` has no redacted rendition; `therapy_only` no consent.
    assert (preview.items, preview.redacted, preview.no_rendition) == (1, 1, 1)
    assert (preview.consented, preview.not_consented, preview.shredded) == (2, 1, 0)
    assert preview.bytes == len(b"second, with the name blacked out")


def test_a_consistency_proof_comes_only_from_the_same_commission_s_export(
    vault: Vault, setup: Setup, tmp_path: Path
) -> None:
    with vault.sessions.begin() as session:
        add_user(session, "other", "commission", vault.clock())
    grant(vault, principal(vault, "admin"), setup.case, "other", "commission")
    other_key = keys.generate_identity()[1]
    recipients.add(vault, principal(vault, "admin"), "other", other_key)
    request = exports.ExportRequest(case_id=setup.case, purpose=PURPOSE, legal_basis=BASIS)
    theirs = exports.request(vault, principal(vault, "other"), request)
    exports.approve(vault, principal(vault, "cleo"), theirs.id)
    build_pending(vault)
    b"".join(exports.download(vault, principal(vault, "other"), theirs.id).chunks)
    # `truth` received nothing before: its first export proves no consistency, whatever
    # another commission downloaded.
    first = approved(vault, setup.case)
    build_pending(vault)
    bag_dir = unpack(fetch(vault, first), setup.identity, tmp_path / "first")
    assert not (bag_dir / "data" / "custody" / "consistency.json").exists()
    assert not (bag_dir / "data" / "custody" / "previous-checkpoint.txt").exists()
