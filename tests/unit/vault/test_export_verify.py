"""`vault.export_verify`: each kind of damage is found and named by file (in-process)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

import keys
from tests import export_support as support
from vault.export_bag import write_bag
from vault.export_verify import Report, verify_export

ROOT = "export-7q2k"
Files = dict[str, bytes]


@pytest.fixture
def sealed(tmp_path: Path) -> tuple[bytes, str, str, support.Material]:
    stuff = support.material(tmp_path)
    support.deposit(stuff, "a" * 26, b"testimony bytes " * 1000, text=b"texto")
    support.deposit(stuff, "b" * 26, b"second", text=None, signed=False)
    identity, recipient = keys.generate_identity()
    out = io.BytesIO()
    items = [support.bag_item(stuff, s) for s in stuff.sources]
    write_bag(out, [recipient], items, support.custody(stuff), support.INFO)
    return out.getvalue(), identity, recipient, stuff


def _files(sealed: bytes, identity: str) -> Files:
    plain = b"".join(keys.open_stream(io.BytesIO(sealed), identity))
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        return {
            m.name.removeprefix(ROOT + "/"): tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar
        }


def _reseal(files: Files, recipient: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{ROOT}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    keys.seal(io.BytesIO(buffer.getvalue()), out, [recipient])
    return out.getvalue()


def _check(data: bytes, identity: str, **kwargs: str) -> Report:
    return verify_export(io.BytesIO(data), identity, name="export.age", **kwargs)


def _remanifest(files: Files) -> None:
    """Rewrite the manifests to match, as a forger would."""
    for algorithm in ("sha256", "sha512"):
        lines = [
            f"{hashlib.new(algorithm, data).hexdigest()}  {name}\n"
            for name, data in files.items()
            if name.startswith("data/")
        ]
        files[f"manifest-{algorithm}.txt"] = "".join(lines).encode()
    for algorithm in ("sha256", "sha512"):
        lines = [
            f"{hashlib.new(algorithm, data).hexdigest()}  {name}\n"
            for name, data in files.items()
            if not name.startswith(("data/", "tagmanifest"))
        ]
        files[f"tagmanifest-{algorithm}.txt"] = "".join(lines).encode()


def test_a_sound_bag_passes_and_says_what_it_checked(
    sealed: tuple[bytes, str, str, support.Material],
) -> None:
    data, identity, _, stuff = sealed
    report = _check(data, identity, log_key=stuff.checkpointer.verifier_key())
    assert report.ok, report.failures
    assert report.bag == ROOT
    assert report.log_key_source == "the key given with --log-key"
    assert "2 of 2 item files bound to proven ledger entries, 1 texts, 1 signatures" in (
        report.checks
    )


def _seq(stuff: support.Material) -> str:
    return f"{stuff.seqs['a' * 26][0]:012d}"


Change = Callable[[Files, support.Material], None]


def _drop_text(files: Files, _: support.Material) -> None:
    del files[f"data/items/{'a' * 26}/text.txt"]


def _add_file(files: Files, _: support.Material) -> None:
    files["data/extra.txt"] = b"slipped in"


def _alter_statement(files: Files, _: support.Material) -> None:
    name = f"data/items/{'a' * 26}/statement.json"
    files[name] = files[name].replace(b'"size":', b'"size":1')
    _remanifest(files)


def _alter_proof(files: Files, stuff: support.Material) -> None:
    name = f"data/custody/proofs/{_seq(stuff)}.json"
    proof = json.loads(files[name])
    proof["hashes"] = list(reversed(proof["hashes"])) or [proof["leaf_hash"]]
    files[name] = json.dumps(proof).encode()
    _remanifest(files)


def _drop_proof(files: Files, stuff: support.Material) -> None:
    del files[f"data/custody/proofs/{_seq(stuff)}.json"]
    _remanifest(files)


def _smuggle_file(files: Files, _: support.Material) -> None:
    files[f"data/items/{'a' * 26}/original/extra.pdf"] = b"rides along"
    _remanifest(files)


def _alter_text(files: Files, _: support.Material) -> None:
    name = f"data/items/{'a' * 26}/text.txt"
    files[name] = files[name].upper()  # the same size: only the ledger can tell
    _remanifest(files)


def _alter_oxum(files: Files, _: support.Material) -> None:
    files["bag-info.txt"] = files["bag-info.txt"].replace(b"Payload-Oxum: ", b"Payload-Oxum: 1")
    _remanifest(files)


@pytest.mark.parametrize(
    ("change", "where", "what"),
    [
        (_drop_text, "data/items/{a}/text.txt", "listed in manifest-sha256.txt but not"),
        (_add_file, "data/extra.txt", "not listed in manifest-sha256.txt"),
        (_alter_statement, "data/items/{a}/statement.sig", "signature does not verify"),
        (_alter_proof, "data/custody/entries/{seq}.json", "inclusion proof"),
        (_drop_proof, "data/custody/*/{seq}.json", "without its proof"),
        (_alter_oxum, "bag-info.txt", "Payload-Oxum"),
        (_smuggle_file, "data/items/{a}/original/extra.pdf", "not described"),
        (_alter_text, "data/items/{a}/text.txt", "no proven extraction entry"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_damage_is_named_by_file(
    sealed: tuple[bytes, str, str, support.Material], change: Change, where: str, what: str
) -> None:
    data, identity, recipient, stuff = sealed
    files = _files(data, identity)
    change(files, stuff)
    report = _check(_reseal(files, recipient), identity)
    assert not report.ok
    place = where.format(a="a" * 26, seq=_seq(stuff))
    assert any(f.where == place and what in f.what for f in report.failures), report.failures


def test_another_log_key_fails_the_checkpoint(
    sealed: tuple[bytes, str, str, support.Material],
) -> None:
    data, identity, _, _ = sealed
    from vault.ledger import note

    other = note.verifier_key(support.ORIGIN, keys.LogSigner.generate().public_key_bytes())
    report = _check(data, identity, log_key=other)
    places = {f.where for f in report.failures}
    # Nothing is proven without the checkpoint, so no item file is bound to the ledger either.
    assert places == {
        "data/custody/log-key.txt",
        "data/custody/checkpoint.txt",
        *(f"data/items/{c * 26}/original/testimonio.pdf" for c in "ab"),
    }


def test_a_kept_checkpoint_the_bag_does_not_extend_is_a_failure(
    sealed: tuple[bytes, str, str, support.Material],
) -> None:
    data, identity, _, stuff = sealed
    kept = stuff.checkpointer.checkpoint().note
    report = _check(data, identity, previous_checkpoint=kept)
    assert [f.where for f in report.failures] == ["data/custody/consistency.json"]


def test_malformed_identity_or_log_key_is_a_usage_error(
    sealed: tuple[bytes, str, str, support.Material],
) -> None:
    data, identity, _, _ = sealed
    with pytest.raises(ValueError, match=r"--identity: .*OpenSSH Ed25519 private key"):
        _check(data, "AGE-SECRET-KEY-1NOPE")
    with pytest.raises(ValueError, match="log-key"):
        _check(data, identity, log_key="name+00000000+AAAA")


def test_a_truncated_file_fails_decryption(
    sealed: tuple[bytes, str, str, support.Material],
) -> None:
    data, identity, _, _ = sealed
    report = _check(data[:-100], identity)
    assert [f.where for f in report.failures] == ["export.age"]
    assert "decryption failed" in report.failures[0].what


def test_hostile_members_are_refused_and_never_extracted_outside(
    sealed: tuple[bytes, str, str, support.Material], tmp_path: Path
) -> None:
    _, identity, recipient, _ = sealed
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in ((f"{ROOT}/bagit.txt", b"x"), ("../escape.txt", b"out")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo(f"{ROOT}/data/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    out = io.BytesIO()
    keys.seal(io.BytesIO(buffer.getvalue()), out, [recipient])
    target = tmp_path / "extract"
    target.mkdir()
    report = verify_export(io.BytesIO(out.getvalue()), identity, name="x.age", extract_to=target)
    places = {f.where: f.what for f in report.failures}
    assert "outside" in places["../escape.txt"]
    assert "not a regular file" in places[f"{ROOT}/data/link"]
    assert not (tmp_path / "escape.txt").exists()
    assert sorted(p.name for p in target.rglob("*")) == sorted([ROOT, "bagit.txt"])


def test_a_bag_repacked_with_directory_entries_still_verifies(
    sealed: tuple[bytes, str, str, support.Material], tmp_path: Path
) -> None:
    # `tar -c DIR` after `age -d ... | tar -x` writes one entry per directory before its
    # files: a commission that re-archives its bag that way must still be able to check it.
    data, identity, recipient, stuff = sealed
    files = _files(data, identity)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        made: set[str] = set()
        for name, body in files.items():
            parts = [ROOT, *name.split("/")[:-1]]
            for depth in range(1, len(parts) + 1):
                folder = "/".join(parts[:depth])
                if folder not in made:
                    made.add(folder)
                    directory = tarfile.TarInfo(folder)
                    directory.type, directory.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(directory)
            info = tarfile.TarInfo(f"{ROOT}/{name}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    out = io.BytesIO()
    keys.seal(io.BytesIO(buffer.getvalue()), out, [recipient])
    target = tmp_path / "extract"
    report = verify_export(
        io.BytesIO(out.getvalue()),
        identity,
        name="export.age",
        log_key=stuff.checkpointer.verifier_key(),
        extract_to=target,
    )
    assert report.ok, report.failures
    assert (target / ROOT / "bagit.txt").read_bytes() == files["bagit.txt"]
