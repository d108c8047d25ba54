"""The export bag writer: BagIt layout, digests, custody proofs, refusals, flat memory."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import tarfile
import tracemalloc
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import keys
from tests import export_support as support
from vault.bag_names import MAX_NAME_BYTES, safe_filename
from vault.export_bag import BagError, BagItem, kit_file, write_bag

ROOT = "export-7q2k"


def _unpack(sealed: bytes, identity: str) -> dict[str, bytes]:
    """Decrypt in memory and read the tar: {path inside the bag: bytes}, in tar order."""
    plain = b"".join(keys.open_stream(io.BytesIO(sealed), identity))
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r:") as tar:
        for member in tar:
            assert member.isfile() and member.name.startswith(ROOT + "/")
            extracted = tar.extractfile(member)
            assert extracted is not None
            files[member.name.removeprefix(ROOT + "/")] = extracted.read()
    return files


@pytest.fixture
def stuff(tmp_path: Path) -> support.Material:
    material = support.material(tmp_path)
    support.deposit(material, "a" * 26, os.urandom(200_000), text="Ella dijo: «sí»".encode())
    support.deposit(material, "b" * 26, b"", text=None, filename="../../etc/passwd", signed=False)
    return material


def _bag(stuff: support.Material, **kwargs: Any) -> tuple[bytes, str, Any]:
    identity, recipient = keys.generate_identity()
    out = io.BytesIO()
    items = kwargs.pop("items", None) or [support.bag_item(stuff, s) for s in stuff.sources]
    summary = write_bag(
        out, [recipient], items, support.custody(stuff), support.INFO, now=support.NOW, **kwargs
    )
    return out.getvalue(), identity, summary


def test_bag_holds_every_file_with_matching_manifests(stuff: support.Material) -> None:
    sealed, identity, summary = _bag(stuff)
    files = _unpack(sealed, identity)
    names = list(files)
    # Payload first (streamed), tag files after it, tag manifests last.
    assert names.index("data/uwazi.csv") < names.index("manifest-sha256.txt")
    assert names[-2:] == ["tagmanifest-sha256.txt", "tagmanifest-sha512.txt"]
    payload = [n for n in names if n.startswith("data/")]
    for algorithm in ("sha256", "sha512"):
        lines = files[f"manifest-{algorithm}.txt"].decode().splitlines()
        listed = dict(reversed(line.split("  ", 1)) for line in lines)
        assert sorted(listed) == sorted(payload)
        for name, digest in listed.items():
            assert hashlib.new(algorithm, files[name]).hexdigest() == digest
        tags = files[f"tagmanifest-{algorithm}.txt"].decode().splitlines()
        tag_listed = dict(reversed(line.split("  ", 1)) for line in tags)
        assert set(tag_listed) == {n for n in names if not n.startswith(("data/", "tagmanifest"))}
        for name, digest in tag_listed.items():
            assert hashlib.new(algorithm, files[name]).hexdigest() == digest
    assert files["bagit.txt"] == b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
    info = dict(line.split(": ", 1) for line in files["bag-info.txt"].decode().splitlines())
    size = sum(len(files[n]) for n in payload)
    assert info["Payload-Oxum"] == f"{size}.{len(payload)}"
    assert info["External-Identifier"] == "export-7q2k"
    assert info["Source-Organization"] == "Archivo de Testimonios"
    assert info["Bagging-Date"] == "2026-12-07"
    assert info["Bag-Size"].endswith("KB")
    assert (summary.payload_bytes, summary.payload_files, summary.items) == (size, len(payload), 2)
    assert summary.sealed_size == len(sealed)
    assert summary.bag_sha256 == hashlib.sha256(files["tagmanifest-sha256.txt"]).hexdigest()
    assert summary.custody_entries == 4


def test_items_come_out_as_deposited_with_valid_metadata(stuff: support.Material) -> None:
    sealed, identity, _ = _bag(stuff)
    files = _unpack(sealed, identity)
    schema = json.loads(files["data/metadata.schema.json"])
    assert schema == json.loads(kit_file("metadata.schema.json"))
    first, second = stuff.sources
    base = f"data/items/{first.item_id}"
    assert files[f"{base}/original/testimonio.pdf"] == first.data
    assert files[f"{base}/text.txt"] == first.text
    document = json.loads(files[f"{base}/metadata.json"])
    jsonschema.validate(document, schema)
    assert document["file"] == {
        "path": f"{base}/original/testimonio.pdf",
        "size": len(first.data),
        "sha256": hashlib.sha256(first.data).hexdigest(),
        "redacted": False,
    }
    keys.verify_signature(
        files[f"{base}/statement.json"],
        files[f"{base}/statement.sig"].decode(),
        files[f"{base}/signer.pub"].decode(),
    )
    statement = json.loads(files[f"{base}/statement.json"])
    assert statement["sha256"] == document["file"]["sha256"]
    # The unsigned, empty item with a hostile name: a safe name, no text, no signature.
    other = json.loads(files[f"data/items/{second.item_id}/metadata.json"])
    jsonschema.validate(other, schema)
    assert other["file"]["path"] == f"data/items/{second.item_id}/original/_._.._etc_passwd"
    assert files[other["file"]["path"]] == b""
    assert other["text"] is None and other["signature"] is None


def test_custody_files_are_the_entries_and_their_proofs(stuff: support.Material) -> None:
    sealed, identity, _ = _bag(stuff)
    files = _unpack(sealed, identity)
    seqs = sorted(seq for seqs in stuff.seqs.values() for seq in seqs)
    assert sorted(n for n in files if n.startswith("data/custody/entries/")) == [
        f"data/custody/entries/{seq:012d}.json" for seq in seqs
    ]
    with stuff.sessions() as session:
        for seq in seqs:
            proof = json.loads(files[f"data/custody/proofs/{seq:012d}.json"])
            real = support.ledger.inclusion(session, seq).to_json()
            assert files[f"data/custody/entries/{seq:012d}.json"] == real["entry"].encode()
            assert proof == {k: real[k] for k in ("seq", "size", "leaf_hash", "hashes")}
    assert files["data/custody/log-key.txt"].decode().strip() == stuff.checkpointer.verifier_key()
    assert "data/custody/consistency.json" not in files


def test_batched_inclusions_are_the_single_ones(stuff: support.Material) -> None:
    signed = stuff.checkpointer.checkpoint()
    seqs = [3, 0, 2]
    with stuff.sessions() as session:
        batched = list(support.ledger.inclusions(session, seqs, signed.size))
        single = [support.ledger.inclusion(session, seq, signed.size) for seq in seqs]
        assert batched == single
        with pytest.raises(support.ledger.ProofError):
            list(support.ledger.inclusions(session, [signed.size]))


def test_consistency_proof_from_a_previous_checkpoint(stuff: support.Material) -> None:
    earlier = stuff.checkpointer.checkpoint().note
    support.deposit(stuff, "c" * 26, b"later deposit")
    identity, recipient = keys.generate_identity()
    out = io.BytesIO()
    items = [support.bag_item(stuff, s) for s in stuff.sources]
    write_bag(out, [recipient], items, support.custody(stuff, earlier), support.INFO)
    files = _unpack(out.getvalue(), identity)
    assert files["data/custody/previous-checkpoint.txt"].decode() == earlier
    proof = json.loads(files["data/custody/consistency.json"])
    assert (proof["old_size"], proof["new_size"]) == (4, 6)


def test_uwazi_csv_has_title_files_and_pipe_separated_values(stuff: support.Material) -> None:
    sealed, identity, _ = _bag(stuff)
    files = _unpack(sealed, identity)
    rows = list(csv.DictReader(io.StringIO(files["data/uwazi.csv"].decode())))
    assert [r["item_id"] for r in rows] == [s.item_id for s in stuff.sources]
    first = rows[0]
    assert first["title"] == "Testimonio aaaa"
    assert first["consent"] == "truth_commission|archive"
    assert first["deposit_date"] == "2026-11-30"
    # Files by name, relative to data/ where the CSV sits; every one is in the bag.
    for name in [first["file"], *first["attachments"].split("|")]:
        assert "data/" + name in files
    assert first["attachments"].split("|")[0].endswith("/text.txt")


def test_readme_speaks_spanish_and_english_and_names_the_bag(stuff: support.Material) -> None:
    sealed, identity, _ = _bag(stuff)
    readme = _unpack(sealed, identity)["README.md"].decode()
    assert "## Español" in readme and "## English" in readme
    assert f"bagit.py --validate {ROOT}" in readme
    assert "$" + "bag" not in readme  # every placeholder filled
    assert 'echo "depositor $(cat signer.pub)"' in readme


def test_ssh_recipient_gets_a_bag_it_opens(stuff: support.Material) -> None:
    # A key file made here the way OpenSSH writes one (the stock tools' test uses ssh-keygen).
    identity, public = _openssh_key(os.urandom(32))
    out = io.BytesIO()
    items = [support.bag_item(stuff, s) for s in stuff.sources]
    write_bag(out, [public], items, support.custody(stuff), support.INFO)
    assert "bagit.txt" in _unpack(out.getvalue(), identity)


def _openssh_key(seed: bytes) -> tuple[str, str]:
    """An unencrypted openssh-key-v1 file and its public line, for an Ed25519 seed."""
    import base64
    import struct

    from keys._primitives import ed25519_public

    def string(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    public = ed25519_public(seed)
    blob = string(b"ssh-ed25519") + string(public)
    private = struct.pack(">II", 7, 7) + blob + string(seed + public) + string(b"c")
    private += bytes(range(1, 8 - len(private) % 8 + 1)) if len(private) % 8 else b""
    body = b"openssh-key-v1\x00" + string(b"none") + string(b"none") + string(b"")
    body += struct.pack(">I", 1) + string(blob) + string(private)
    text = base64.b64encode(body).decode()
    lines = [text[i : i + 70] for i in range(0, len(text), 70)]
    pem = "\n".join(
        ["-----BEGIN OPENSSH PRIVATE KEY-----", *lines, "-----END OPENSSH PRIVATE KEY-----", ""]
    )
    return pem, "ssh-ed25519 " + base64.b64encode(blob).decode()


def _sealed_is_unusable(data: bytes, identity: str) -> bool:
    """An aborted bag has no final age chunk: it never opens, whatever was written."""
    try:
        for _ in keys.open_stream(io.BytesIO(data), identity):
            pass
    except keys.UnsealError:
        return True
    return False


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sha256": "0" * 64}, "no longer has its SHA-256"),
        ({"size": 199_999}, "more than the 199999 bytes"),
        ({"size": 200_001}, "instead of the 200001 announced"),
        ({"metadata": {"colour": "red"}}, "not in the schema"),
        ({"metadata": {"consent": "truth_commission"}}, "wrong type"),
        ({"metadata": {"file": {}}}, "may not set 'file'"),
        ({"item_id": "../x"}, "not a plain identifier"),
        ({"text_size": None, "open_text": None, "signature": None}, "go together"),
    ],
)
def test_an_item_that_does_not_match_stops_the_bag(
    stuff: support.Material, change: dict[str, Any], message: str
) -> None:
    identity, recipient = keys.generate_identity()
    items = [support.bag_item(stuff, stuff.sources[0], **change)]
    out = io.BytesIO()
    with pytest.raises(BagError, match=message) as raised:
        write_bag(out, [recipient], items, support.custody(stuff), support.INFO)
    # The message may reach the ledger: never the original's file name (a sealed field).
    assert "testimonio" not in str(raised.value)
    assert _sealed_is_unusable(out.getvalue(), identity)


def test_text_that_is_not_utf8_stops_the_bag(stuff: support.Material) -> None:
    @contextlib.contextmanager
    def latin1() -> Iterator[Iterable[bytes]]:
        yield [b"ni\xf1o"]

    for size in (None, 4):
        item = support.bag_item(stuff, stuff.sources[0], open_text=latin1, text_size=size)
        with pytest.raises(BagError, match="not UTF-8"):
            write_bag(
                io.BytesIO(),
                [keys.generate_identity()[1]],
                [item],
                support.custody(stuff),
                support.INFO,
            )


def test_no_item_and_bad_recipients_write_nothing(stuff: support.Material) -> None:
    out = io.BytesIO()
    _, recipient = keys.generate_identity()
    with pytest.raises(BagError, match="never an empty bag"):
        write_bag(out, [recipient], iter([]), support.custody(stuff), support.INFO)
    items = [support.bag_item(stuff, s) for s in stuff.sources]
    for bad in ([], ["age1qqqq"], ["ssh-rsa AAAAB3NzaC1yc2E"]):
        with pytest.raises(BagError):
            write_bag(out, bad, items, support.custody(stuff), support.INFO)
    assert out.getvalue() == b""


def test_custody_that_does_not_verify_stops_the_bag(stuff: support.Material) -> None:
    record = support.custody(stuff)
    proof = record.proofs[0]  # type: ignore[index]
    forged = type(proof)(proof.seq, proof.size, proof.entry + b" ", proof.hashes, proof.checkpoint)
    items = [support.bag_item(stuff, s) for s in stuff.sources]
    bad = [
        (type(record)([forged], record.checkpoint, record.log_key), "inclusion proof"),
        (type(record)([], record.checkpoint, _other_key()), "signature"),
        (type(record)([], record.checkpoint, record.log_key, record.checkpoint, None), "together"),
    ]
    for custody, message in bad:
        with pytest.raises(BagError, match=message):
            write_bag(io.BytesIO(), [keys.generate_identity()[1]], items, custody, support.INFO)


def _other_key() -> str:
    from vault.ledger import note

    return note.verifier_key(support.ORIGIN, keys.LogSigner.generate().public_key_bytes())


def test_memory_stays_flat_while_a_large_item_streams(stuff: support.Material) -> None:
    size = 128 * 1024 * 1024
    block = os.urandom(1024 * 1024)

    @contextlib.contextmanager
    def big() -> Iterator[Iterable[bytes]]:
        yield (block for _ in range(size // len(block)))

    digest = hashlib.sha256()
    for _ in range(size // len(block)):
        digest.update(block)
    item = BagItem(
        item_id="d" * 26,
        kind="video",
        filename="video.mp4",
        size=size,
        sha256=digest.hexdigest(),
        open_original=big,
    )

    class Sink(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            return len(data)

    tracemalloc.start()
    try:
        summary = write_bag(
            Sink(), [keys.generate_identity()[1]], [item], support.custody(stuff), support.INFO
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.payload_bytes > size
    assert peak < 8 * 1024 * 1024, peak


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "/absolute/path.pdf",
        "..",
        ".",
        "",
        ".hidden",
        "CON",
        "nul.txt",
        "com1.pdf",
        "a\x00b\nc\rd\x7f.txt",
        "report\u202egnp.exe",  # a right-to-left override hides the real extension
        'what?<>:"|*%.pdf',
        "back\\slash.doc",
        "trailing dots... ",
        "x" * 400 + ".pdf",
        "ñ" * 300,
        "e\u0301" * 120 + ".odt",  # decomposed accents: NFC, then cut on a character
        "\ud800lone surrogate",
    ],
)
def test_safe_filename_gives_one_portable_name(name: str) -> None:
    safe = safe_filename(name)
    assert safe and safe not in (".", "..")
    assert not safe.startswith((".", " "))
    assert not safe.endswith((".", " "))
    assert len(safe.encode("utf-8")) <= MAX_NAME_BYTES
    assert unicodedata.normalize("NFC", safe) == safe
    assert not set(safe) & set('/\\<>:"|?*%\x00\n\r')
    assert all(unicodedata.category(ch)[0] != "C" for ch in safe)
    assert safe.split(".")[0].upper() not in {"CON", "NUL", "COM1"}
    assert safe_filename(safe) == safe  # stable: a safe name stays as it is


def test_safe_filename_keeps_ordinary_names_and_short_extensions() -> None:
    assert safe_filename("Testimonio de María (2).pdf") == "Testimonio de María (2).pdf"
    assert safe_filename("x" * 400 + ".pdf").endswith("x.pdf")
    assert safe_filename("", fallback="original") == "original"
