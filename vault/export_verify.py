"""Check an export file offline: decryption, the BagIt bag, every digest, signature and proof.

Needs no vault and no network: the age file, the recipient's identity and, to trust the custody
record independently of the bag, the log's verifier key. The bag is read as a stream (age, then
tar), hashing each file as it passes; only small files (metadata, statements, custody) are
kept, in memory; nothing decrypted is written unless `extract_to` asks for it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Final

import bagit

import keys
from vault.export_bag import BAG_FORMAT
from vault.ledger import note
from vault.ledger.entry import leaf_hash
from vault.ledger.errors import LedgerError
from vault.ledger.tree import verify_consistency, verify_inclusion

__all__ = ["Finding", "Report", "verify_export"]

_KEEP_LIMIT: Final = 16 * 1024 * 1024  # a kept (small) file larger than this is a failure
_READ: Final = 1024 * 1024
_ENTRY: Final = re.compile(r"data/custody/(entries|proofs)/([0-9]{12})\.json")


@dataclass(frozen=True, slots=True)
class Finding:
    """One failure: the file (path inside the bag, or the export file) and what is wrong."""

    where: str
    what: str


@dataclass
class Report:
    """What `verify_export` found. `ok` when there is no failure."""

    file: str
    bag: str | None = None
    checks: list[str] = field(default_factory=list)
    failures: list[Finding] = field(default_factory=list)
    log_key_source: str = ""

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, where: str, what: str) -> None:
        self.failures.append(Finding(where, what))

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "bag": self.bag,
            "ok": self.ok,
            "log_key": self.log_key_source,
            "checks": self.checks,
            "failures": [{"file": f.where, "problem": f.what} for f in self.failures],
        }


@dataclass
class _Seen:
    """A file of the bag: its digests and size, and its bytes when it is a small one."""

    sha256: str
    sha512: str
    size: int
    data: bytes | None


class _Plain(io.RawIOBase):
    """A readable stream over the authenticated plaintext chunks of an age file."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def drain(self) -> int:
        """Read to the end (so the age file's last chunk is authenticated); return the bytes
        that were not zero padding."""
        extra = sum(1 for byte in self._buffer if byte)
        for chunk in self._chunks:
            extra += len(chunk) - chunk.count(0)
        self._buffer = memoryview(b"")
        return extra


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _keep(path: str) -> bool:
    """Whether a file is kept in memory (small, and needed for the checks)."""
    parts = path.split("/")
    if parts[:2] == ["data", "items"]:
        return len(parts) == 4 and parts[3] != "text.txt"
    return True


def _safe_path(name: str) -> PurePosixPath | None:
    path = PurePosixPath(name)
    if path.is_absolute() or any(part in ("", ".", "..") for part in path.parts):
        return None
    return path


def _read_tar(plain: _Plain, report: Report, extract_to: Path | None) -> dict[str, _Seen]:
    """Hash every member of the tar; return them by path inside the bag."""
    seen: dict[str, _Seen] = {}
    with tarfile.open(fileobj=io.BufferedReader(plain, _READ), mode="r|") as tar:
        for member in tar:
            path = _safe_path(member.name)
            if path is not None and member.isdir() and report.bag in (None, path.parts[0]):
                # `tar -c` of an unpacked bag writes its directories too: they carry no data.
                report.bag = path.parts[0]
                continue
            if path is None or len(path.parts) < 2:
                report.fail(member.name, "a name outside the bag's directory")
                continue
            root, inner = path.parts[0], "/".join(path.parts[1:])
            if report.bag is None:
                report.bag = root
            if root != report.bag or not member.isfile():
                report.fail(member.name, "not a regular file of the bag's one directory")
                continue
            if inner in seen:
                report.fail(inner, "appears twice in the tar")
                continue
            seen[inner] = _hash_member(tar, member, inner, extract_to)
    return seen


def _hash_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, inner: str, extract_to: Path | None
) -> _Seen:
    source = tar.extractfile(member)
    assert source is not None  # a regular file
    sha256, sha512 = hashlib.sha256(), hashlib.sha512()
    keep = _keep(inner) and member.size <= _KEEP_LIMIT
    kept = bytearray()
    with contextlib.ExitStack() as stack:
        out = None
        if extract_to is not None:
            target = extract_to / member.name
            target.parent.mkdir(parents=True, exist_ok=True)
            out = stack.enter_context(target.open("xb"))
        while chunk := source.read(_READ):
            sha256.update(chunk)
            sha512.update(chunk)
            if keep:
                kept += chunk
            if out is not None:
                out.write(chunk)
    return _Seen(sha256.hexdigest(), sha512.hexdigest(), member.size, bytes(kept) if keep else None)


def _manifest(
    seen: dict[str, _Seen], name: str, report: Report, which: str, files: set[str]
) -> None:
    """Check one (tag)manifest: every listed file present with that digest; every file of
    `files` listed."""
    manifest = seen.get(name)
    if manifest is None or manifest.data is None:
        report.fail(name, "missing")
        return
    listed: set[str] = set()
    for number, line in enumerate(manifest.data.decode("utf-8", "replace").splitlines(), 1):
        digest, _, path = line.partition("  ")
        if not path:
            digest, _, path = line.partition(" ")
        path = path.strip()
        listed.add(path)
        if path not in seen:
            report.fail(path or f"{name}:{number}", f"listed in {name} but not in the bag")
        elif getattr(seen[path], which) != digest.strip().lower():
            report.fail(path, f"{which.upper()} differs from {name}")
    for path in sorted(files - listed):
        report.fail(path, f"not listed in {name}")


def _check_bag(seen: dict[str, _Seen], report: Report) -> None:
    payload = {path for path in seen if path.startswith("data/")}
    tags = {path for path in seen if not path.startswith(("data/", "tagmanifest-"))}
    bagit_txt = seen.get("bagit.txt")
    if bagit_txt is None or bagit_txt.data is None or b"BagIt-Version: 1.0" not in bagit_txt.data:
        report.fail("bagit.txt", "missing or not BagIt 1.0")
    for algorithm in ("sha256", "sha512"):
        _manifest(seen, f"manifest-{algorithm}.txt", report, algorithm, payload)
        _manifest(seen, f"tagmanifest-{algorithm}.txt", report, algorithm, tags)
    info = seen.get("bag-info.txt")
    fields: dict[str, str] = {}
    if info is not None and info.data is not None:
        for line in info.data.decode("utf-8", "replace").splitlines():
            label, _, value = line.partition(":")
            fields[label.strip()] = value.strip()
    oxum = f"{sum(seen[p].size for p in payload)}.{len(payload)}"
    if fields.get("Payload-Oxum") != oxum:
        report.fail("bag-info.txt", f"Payload-Oxum is not {oxum}, what the payload holds")
    if fields.get("Tvault-Export-Format") != BAG_FORMAT:
        report.fail("bag-info.txt", f"not a {BAG_FORMAT} bag")
    report.checks.append(f"bag: {len(payload)} payload files, manifests and tag manifests")


def _text(seen: dict[str, _Seen], path: str) -> str | None:
    found = seen.get(path)
    return None if found is None or found.data is None else found.data.decode("utf-8", "replace")


def _check_custody(
    seen: dict[str, _Seen],
    report: Report,
    log_key: str | None,
    kept: str | None,
) -> dict[str, list[dict[str, Any]]]:
    """Check checkpoint, inclusion and consistency proofs; return proven entries by item."""
    bag_key = (_text(seen, "data/custody/log-key.txt") or "").strip()
    if log_key is not None:
        report.log_key_source = "the key given with --log-key"
        if bag_key != log_key.strip():
            report.fail("data/custody/log-key.txt", "not the log key given with --log-key")
        key = log_key.strip()
    else:
        report.log_key_source = "the key inside the bag (give --log-key for an independent check)"
        key = bag_key
    signed = _text(seen, "data/custody/checkpoint.txt")
    try:
        head = note.parse_checkpoint(note.open_note(signed or "", key, keys.verify_ed25519))
    except LedgerError as exc:
        report.fail("data/custody/checkpoint.txt", f"checkpoint signature: {exc}")
        return {}
    report.checks.append(f"checkpoint of size {head.size} signed by the log key ({head.origin})")
    names: dict[str, set[str]] = {"entries": set(), "proofs": set()}
    for path in seen:
        match = _ENTRY.fullmatch(path)
        if match:
            names[match.group(1)].add(match.group(2))
    for alone in sorted(names["entries"] ^ names["proofs"]):
        report.fail(f"data/custody/*/{alone}.json", "an entry without its proof, or a proof alone")
    by_item: dict[str, list[dict[str, Any]]] = {}
    for number in sorted(names["entries"] & names["proofs"]):
        where = f"data/custody/entries/{number}.json"
        entry_bytes = seen[where].data or b""
        try:
            proof = json.loads(_text(seen, f"data/custody/proofs/{number}.json") or "")
            entry = json.loads(entry_bytes)
            seq = int(number)
            if entry["seq"] != seq or proof["seq"] != seq or proof["size"] != head.size:
                report.fail(where, "entry, proof and checkpoint disagree on seq or size")
                continue
            hashes = [_b64(h) for h in proof["hashes"]]
            verify_inclusion(seq, head.size, leaf_hash(entry_bytes), hashes, head.root)
        except (ValueError, KeyError, TypeError, LedgerError) as exc:
            report.fail(where, f"inclusion proof: {exc}")
            continue
        if entry.get("item"):
            by_item.setdefault(str(entry["item"]), []).append(entry)
    proven = sum(len(v) for v in by_item.values())
    report.checks.append(f"inclusion proofs of {proven} item entries against the checkpoint")
    _check_consistency(seen, report, key, head, kept)
    return by_item


def _check_consistency(
    seen: dict[str, _Seen], report: Report, key: str, head: note.Checkpoint, kept: str | None
) -> None:
    previous = _text(seen, "data/custody/previous-checkpoint.txt")
    proof_text = _text(seen, "data/custody/consistency.json")
    where = "data/custody/consistency.json"
    if previous is None and proof_text is None:
        if kept is not None:
            report.fail(where, "missing: the bag proves nothing about your previous checkpoint")
        return
    try:
        old = note.parse_checkpoint(note.open_note(previous or "", key, keys.verify_ed25519))
        proof = json.loads(proof_text or "")
        if old.origin != head.origin or (proof["old_size"], proof["new_size"]) != (
            old.size,
            head.size,
        ):
            raise ValueError("not between the two checkpoints")
        hashes = [_b64(h) for h in proof["hashes"]]
        verify_consistency(old.size, head.size, old.root, head.root, hashes)
        report.checks.append(f"the log of size {head.size} extends the earlier {old.size}")
        if kept is not None:
            mine = note.parse_checkpoint(note.open_note(kept, key, keys.verify_ed25519))
            if (mine.size, mine.root) != (old.size, old.root):
                report.fail("data/custody/previous-checkpoint.txt", "not the checkpoint you gave")
    except (ValueError, KeyError, TypeError, LedgerError) as exc:
        report.fail(where, f"consistency proof: {exc}")


def _check_items(
    seen: dict[str, _Seen], report: Report, by_item: dict[str, list[dict[str, Any]]]
) -> None:
    """Per item: its files against metadata and ledger, its signature and statement. Every
    file under data/items/ must be one its item's metadata.json describes, so nothing rides
    along unchecked."""
    count = bound = signed = texts = 0
    described: set[str] = set()
    items = {p.split("/")[2] for p in seen if p.startswith("data/items/") and p.count("/") >= 3}
    for item_dir in sorted(items):
        path = f"data/items/{item_dir}/metadata.json"
        described.add(path)
        count += 1
        try:
            document = json.loads(_text(seen, path) or "")
            item_id, file = document["item_id"], document["file"]
            described.add(file["path"])
            if item_id != item_dir:
                raise ValueError("item_id is not its directory's")
            actual = seen.get(file["path"])
        except (ValueError, KeyError, TypeError) as exc:
            report.fail(path, f"missing or malformed metadata ({exc})")
            continue
        if actual is None or actual.sha256 != file["sha256"] or actual.size != file["size"]:
            report.fail(file["path"], "missing, or not the size and SHA-256 metadata.json says")
            continue
        proven = by_item.get(item_id, [])
        entries = [e for e in proven if e.get("action") == "ingestion"]
        originals = [e for e in entries if e.get("details", {}).get("rendition") is None]
        renditions = [e for e in entries if e.get("details", {}).get("rendition") == "redacted"]
        candidates = renditions if file["redacted"] else originals
        if any(e["details"].get("sha256") == actual.sha256 for e in candidates):
            bound += 1
        else:
            report.fail(file["path"], "no proven ingestion entry records this file's SHA-256")
        texts += _check_text(seen, report, document, proven, described)
        signature = document.get("signature")
        if signature:
            signed += 1
            described.update(
                str(signature.get(k)) for k in ("statement", "signature", "public_key")
            )
            _check_statement(seen, report, signature, file, originals)
    for path in sorted(p for p in seen if p.startswith("data/items/") and p not in described):
        report.fail(path, "not described by its item's metadata.json")
    report.checks.append(
        f"{bound} of {count} item files bound to proven ledger entries, {texts} texts, "
        f"{signed} signatures"
    )


def _check_text(
    seen: dict[str, _Seen],
    report: Report,
    document: dict[str, Any],
    proven: list[dict[str, Any]],
    described: set[str],
) -> int:
    """Bind the extracted text to a proven `metadata extraction` entry's `text_sha256` when
    one records it; a redacted text (identity words blanked) cannot be. Returns 1 if bound."""
    text = document.get("text")
    if not isinstance(text, dict):
        return 0
    path = str(text.get("path"))
    described.add(path)
    actual = seen.get(path)
    if actual is None or actual.size != text.get("size"):
        report.fail(path, "missing, or not the size metadata.json says")
        return 0
    recorded = {
        e["details"]["text_sha256"]
        for e in proven
        if e.get("action") == "metadata extraction" and "text_sha256" in e.get("details", {})
    }
    if document["file"].get("redacted") or not recorded:
        return 0
    if actual.sha256 not in recorded:
        report.fail(path, "no proven extraction entry records this text's SHA-256")
        return 0
    return 1


def _check_statement(
    seen: dict[str, _Seen],
    report: Report,
    signature: dict[str, Any],
    file: dict[str, Any],
    originals: list[dict[str, Any]],
) -> None:
    statement = seen.get(signature["statement"])
    sig, public = _text(seen, signature["signature"]), _text(seen, signature["public_key"])
    if statement is None or statement.data is None or sig is None or public is None:
        report.fail(signature["statement"], "the statement, signature or public key is missing")
        return
    try:
        keys.verify_signature(statement.data, sig, public)
        signed = json.loads(statement.data)["sha256"]
    except (keys.SignatureError, ValueError, KeyError, TypeError):
        report.fail(signature["signature"], "the depositor's signature does not verify")
        return
    # What the depositor signed: the original's digest (for a redacted rendition, the one its
    # proven ingestion entry recorded).
    expected = {e["details"].get("sha256") for e in originals}
    if not file["redacted"]:
        expected = {file["sha256"]}
    if signed not in expected:
        report.fail(signature["statement"], "the signed SHA-256 is not the original's")


def verify_export(
    src: BinaryIO,
    identity: str,
    *,
    name: str,
    log_key: str | None = None,
    previous_checkpoint: str | None = None,
    extract_to: Path | None = None,
) -> Report:
    """Check the export file `src` (called `name` in the report) with `identity`.

    `log_key`: the verifier key the caller trusts (else the bag's own is used, and the report
    says so); `previous_checkpoint`: a signed checkpoint kept from an earlier export;
    `extract_to`: **writes the decrypted bag there** and also validates it with the bagit
    library. Never raises for what it checks: every problem is a `Finding`. Raises
    `ValueError` if `identity` or `log_key` is malformed (a usage error).
    """
    try:
        keys.recipient_of(identity)
    except ValueError as exc:
        # Say both forms we take: a commission holding an ssh key is told only about age keys
        # otherwise, and a .pub file given by mistake is a common slip.
        raise ValueError(
            f"--identity: {exc}; it takes an age identity file or an unencrypted OpenSSH"
            " Ed25519 private key (not the .pub)"
        ) from None
    if log_key is not None:
        try:
            note.parse_verifier_key(log_key)
        except LedgerError as exc:
            raise ValueError(f"--log-key: {exc}") from None
    report = Report(file=name)
    try:
        plain = _Plain(keys.open_stream(src, identity))
        seen = _read_tar(plain, report, extract_to)
        if plain.drain():
            report.fail(name, "data after the end of the tar")
    except keys.UnsealError as exc:
        report.fail(name, f"decryption failed: {exc} (wrong identity, or an altered file)")
        return report
    except tarfile.TarError as exc:
        report.fail(name, f"not a tar inside: {exc}")
        return report
    report.checks.append(f"decrypted and authenticated ({name})")
    if report.bag is None:
        report.fail(name, "an empty tar")
        return report
    _check_bag(seen, report)
    by_item = _check_custody(seen, report, log_key, previous_checkpoint)
    _check_items(seen, report, by_item)
    if extract_to is not None:
        try:
            bagit.Bag(str(extract_to / report.bag)).validate()
            report.checks.append(f"bagit library: {extract_to / report.bag} is valid")
        except bagit.BagError as exc:
            details = getattr(exc, "details", None) or [exc]
            for detail in details:
                report.fail(str(getattr(detail, "path", "") or report.bag), f"bagit: {detail}")
    return report
