"""An export checked with stock tools only (age, tar, bagit.py, sha256sum, ssh-keygen, the
proof script in the bag), and by `tvault verify-export`, before and after tampering."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import bagit
import pytest
from click.testing import Result
from typer.testing import CliRunner

import keys
from tests import export_support as support
from tests.services import tool
from vault.cli import app as cli
from vault.export_bag import write_bag

ROOT = "export-7q2k"


def run(*argv: str | Path, cwd: Path | None = None, data: bytes | None = None) -> str:
    """Run a tool; fail the test with its output when it exits non-zero."""
    result = subprocess.run(
        [str(a) for a in argv], cwd=cwd, input=data, capture_output=True, check=False
    )
    assert result.returncode == 0, (argv, result.stdout[-2000:], result.stderr[-2000:])
    return result.stdout.decode(errors="replace")


def bagit_tool() -> str:
    """The LoC validator's command, installed with the `bagit` package (a dependency)."""
    beside = Path(sys.executable).with_name("bagit.py")
    return str(beside) if beside.exists() else tool("bagit.py")


@dataclass
class Export:
    path: Path
    key: Path  # the commission's OpenSSH private key
    log_key: str
    earlier: Path  # the checkpoint the commission kept from its earlier export
    stuff: support.Material


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    base = tmp_path_factory.mktemp("export")
    keygen = tool("ssh-keygen")
    run(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "commission", "-f", base / "commission")
    run(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "therapist", "-f", base / "therapist")
    stuff = support.material(base)
    support.deposit(stuff, "a" * 26, os.urandom(150_000), text="Declaración".encode())
    earlier = stuff.checkpointer.checkpoint().note
    (base / "earlier.txt").write_text(earlier)
    support.deposit(stuff, "b" * 26, b"%PDF-1.7 raw-signed", filename="Acta: 3/4 *final*.pdf")
    support.deposit(stuff, "c" * 26, b"name: Maria Q.", text=None, signed=False)
    support.redact(stuff, "c" * 26, b"name: [redacted]")
    items = []
    for source in stuff.sources:
        item = support.bag_item(stuff, source)
        if source.item_id == "a" * 26:
            # This depositor signs with an SSH key: `ssh-keygen -Y sign` (SSHSIG).
            public = (base / "therapist.pub").read_text().strip()
            statement = support.statement_of(source, public)
            (base / "statement.json").write_bytes(statement)
            run(
                keygen,
                "-Y",
                "sign",
                "-q",
                "-f",
                base / "therapist",
                "-n",
                "testimony-vault",
                base / "statement.json",
            )
            signature = (base / "statement.json.sig").read_text()
            item = support.bag_item(
                stuff, source, statement=statement, signature=signature, public_key=public
            )
        items.append(item)
    _, other = keys.generate_identity()
    recipients = [(base / "commission.pub").read_text(), other]
    with (base / "export.age").open("wb") as out:
        write_bag(out, recipients, items, support.custody(stuff, earlier), support.INFO)
    return Export(
        base / "export.age",
        base / "commission",
        stuff.checkpointer.verifier_key(),
        base / "earlier.txt",
        stuff,
    )


def unpack(export: Export, into: Path) -> Path:
    """`age -d -i ~/.ssh/id_ed25519 export.age | tar -x`."""
    plain = subprocess.run(
        [tool("age"), "-d", "-i", str(export.key), str(export.path)],
        capture_output=True,
        check=True,
    ).stdout
    into.mkdir()
    run("tar", "-x", "-f", "-", "-C", into, data=plain)
    return into / ROOT


def test_stock_tools_check_everything(export: Export, tmp_path: Path) -> None:
    bag = unpack(export, tmp_path / "out")
    run(bagit_tool(), "--validate", bag)
    assert "FAILED" not in run("sha256sum", "-c", "manifest-sha256.txt", cwd=bag)
    run("sha512sum", "-c", "manifest-sha512.txt", cwd=bag)
    # The SSHSIG statement, with ssh-keygen and the public key shipped beside it.
    item = bag / "data" / "items" / ("a" * 26)
    public = (item / "signer.pub").read_text().strip()
    (tmp_path / "signers").write_text(f"depositor {public}\n")
    out = run(
        tool("ssh-keygen"),
        "-Y",
        "verify",
        "-f",
        tmp_path / "signers",
        "-I",
        "depositor",
        "-n",
        "testimony-vault",
        "-s",
        item / "statement.sig",
        data=(item / "statement.json").read_bytes(),
    )
    assert "Good" in out
    signed = json.loads((item / "statement.json").read_text())["sha256"]
    assert signed == json.loads((item / "metadata.json").read_text())["file"]["sha256"]
    # The proof script shipped in the bag, with the log key and the checkpoint kept before.
    out = run(
        sys.executable,
        bag / "verify_custody.py",
        bag,
        "--log-key",
        export.log_key,
        "--previous-checkpoint",
        export.earlier,
    )
    assert "the log of size 7 extends the previous export's (2)" in out
    assert "3 item files match" in out
    assert out.rstrip().endswith("OK: the custody record holds")


def test_readme_raw_ed25519_recipe_works_with_openssl(export: Export, tmp_path: Path) -> None:
    bag = unpack(export, tmp_path / "out")
    item = bag / "data" / "items" / ("b" * 26)
    # The README's recipe for a plain Ed25519 key, step by step.
    key = bytes.fromhex("302a300506032b6570032100")
    key += __import__("base64").b64decode((item / "signer.pub").read_text().split(":")[1])
    (tmp_path / "k.der").write_bytes(key)
    (tmp_path / "s.bin").write_bytes(
        __import__("base64").b64decode((item / "statement.sig").read_text())
    )
    out = run(
        tool("openssl"),
        "pkeyutl",
        "-verify",
        "-pubin",
        "-keyform",
        "DER",
        "-inkey",
        tmp_path / "k.der",
        "-rawin",
        "-in",
        item / "statement.json",
        "-sigfile",
        tmp_path / "s.bin",
    )
    assert "Signature Verified Successfully" in out


NO_VAULT = {"TVAULT_HOME": "/nonexistent-no-vault-here", "TVAULT_URL": "http://192.0.2.1:9"}


def tvault(*argv: str | Path) -> Result:
    """`tvault ARGS` in-process, with no vault directory and an unreachable API."""
    return CliRunner().invoke(cli, [str(a) for a in argv], env=NO_VAULT)


def test_verify_export_passes_offline_and_says_which_log_key(export: Export) -> None:
    result = tvault(
        "verify-export",
        export.path,
        "--identity",
        export.key,
        "--log-key",
        export.log_key,
        "--previous-checkpoint",
        export.earlier,
    )
    assert result.exit_code == 0, result.output
    assert "log key: the key given with --log-key" in result.stdout
    assert "the log of size 7 extends the earlier 2" in result.stdout
    bare = tvault("verify-export", export.path, "--identity", export.key)
    assert bare.exit_code == 0
    assert "the key inside the bag" in bare.stdout


def test_a_flipped_byte_in_the_export_file_is_named(export: Export, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.age"
    data = bytearray(export.path.read_bytes())
    data[len(data) // 2] ^= 0x20
    damaged.write_bytes(data)
    result = tvault("verify-export", damaged, "--identity", export.key)
    assert result.exit_code == 1
    assert "damaged.age: decryption failed" in result.stdout


def _rebag(bag: Path, recipient: Path, out: Path) -> None:
    """Re-seal an unpacked bag as a forger with the commission's public key could."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(bag, arcname=ROOT)
    sealed = subprocess.run(
        [tool("age"), "-R", str(recipient)],
        input=buffer.getvalue(),
        capture_output=True,
        check=True,
    ).stdout
    out.write_bytes(sealed)


def test_a_forged_bag_with_consistent_manifests_is_caught(export: Export, tmp_path: Path) -> None:
    bag = unpack(export, tmp_path / "out")
    original = bag / "data" / "items" / ("c" * 26) / "original" / "testimonio.pdf"
    forgery = b"name: someone else"
    original.write_bytes(forgery)
    # The forger rewrites the metadata and every manifest, so bagit and sha256sum agree...
    meta = original.parent.parent / "metadata.json"
    document = json.loads(meta.read_text())
    document["file"].update(size=len(forgery), sha256=hashlib.sha256(forgery).hexdigest())
    meta.write_text(json.dumps(document))
    (original.parent / "extra.bin").write_bytes(b"rides along, in no metadata")
    bagit.Bag(str(bag)).save(manifests=True)
    run(bagit_tool(), "--validate", bag)
    forged = tmp_path / "forged.age"
    _rebag(bag, export.key.with_suffix(".pub"), forged)
    # ...but the file's digest is in no ledger entry the log signed.
    result = tvault("verify-export", forged, "--identity", export.key, "--log-key", export.log_key)
    assert result.exit_code == 1, result.output
    assert f"data/items/{'c' * 26}/original/testimonio.pdf: no proven ingestion entry" in (
        result.stdout
    )
    script = subprocess.run(
        [sys.executable, str(bag / "verify_custody.py"), str(bag), "--log-key", export.log_key],
        capture_output=True,
        text=True,
        check=False,
    )
    assert script.returncode == 1
    assert "testimonio.pdf: no proven ingestion entry" in script.stdout
    for output in (result.output, script.stdout):
        assert f"data/items/{'c' * 26}/original/extra.bin: not described" in output


def test_a_changed_file_without_new_manifests_is_named(export: Export, tmp_path: Path) -> None:
    bag = unpack(export, tmp_path / "out")
    text = bag / "data" / "items" / ("a" * 26) / "text.txt"
    text.write_bytes(text.read_bytes().upper())
    forged = tmp_path / "changed.age"
    _rebag(bag, export.key.with_suffix(".pub"), forged)
    result = tvault("verify-export", forged, "--identity", export.key)
    assert result.exit_code == 1
    assert f"data/items/{'a' * 26}/text.txt: SHA256 differs from manifest-sha256.txt" in (
        result.stdout
    )


def test_usage_errors_exit_2_without_a_vault(export: Export, tmp_path: Path) -> None:
    (tmp_path / "junk").write_text("not a key")
    assert tvault("verify-export", export.path, "--identity", tmp_path / "junk").exit_code == 2
    bad_key = tvault("verify-export", export.path, "--identity", export.key, "--log-key", "nope")
    assert bad_key.exit_code == 2 and "log-key" in bad_key.output
    assert tvault("verify-export", tmp_path / "missing.age", "-i", export.key).exit_code == 2
    wrong = tmp_path / "wrong"
    run(tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", wrong)
    result = tvault("verify-export", export.path, "--identity", wrong)
    assert result.exit_code == 1 and "no identity matches" in result.stdout
