"""The export bag: a BagIt 1.0 bag (RFC 8493), written as a tar stream straight into age.

`write_bag` streams every item through SHA-256, SHA-512 and the age `Sealer` in one pass: the
tar is never whole, in memory or on disk, and no plaintext byte reaches a disk. Memory holds
one chunk per stream, the manifests (two lines per file) and the Uwazi CSV (one row per item).
Layout and verification: docs/export-format.md.

If `write_bag` raises, what it wrote to `dst` is an age file without its final chunk, which no
age implementation opens: the caller discards it.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
import json
import re
import string
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import resources
from typing import IO, Any, BinaryIO, Final, cast

import keys
from vault.bag_names import safe_filename
from vault.ledger import note
from vault.ledger.entry import leaf_hash
from vault.ledger.errors import LedgerError
from vault.ledger.proofs import ConsistencyProof, InclusionProof
from vault.ledger.tree import verify_consistency, verify_inclusion

__all__ = [
    "BAG_FORMAT",
    "TEXT_BUFFER_LIMIT",
    "BagError",
    "BagInfo",
    "BagItem",
    "BagSummary",
    "CustodyRecord",
    "Stream",
    "item_paths",
    "kit_file",
    "safe_filename",
    "write_bag",
]

BAG_FORMAT: Final = "tvault-export/1"
"""The version of this layout, in bag-info.txt (`Tvault-Export-Format`) and every metadata
document (`format`)."""

TEXT_BUFFER_LIMIT: Final = 32 * 1024 * 1024
"""An extracted text of unknown size is held in memory to learn its size (a tar header comes
first); larger ones are refused. `ingest.Limits.max_text_chars` (5 million characters, at most
20 MB of UTF-8) stays under it."""

Stream = Callable[[], AbstractContextManager[Iterable[bytes]]]
"""Opens a plaintext stream: a context manager giving the chunks, closed when the file is
written (or the bag fails)."""

_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_PROGRESS_EVERY: Final = 16 * 1024 * 1024
_BLOCK: Final = 512
# Fields of the metadata document that write_bag fills; the caller's metadata may not set them.
_RESERVED: Final = frozenset({"format", "item_id", "kind", "file", "text", "signature"})
# The caller's metadata fields the schema knows, with the JSON types each may take.
_KNOWN: Final[Mapping[str, tuple[type, ...]]] = {
    "case_id": (str,),
    "title": (str, type(None)),
    "filename": (str,),
    "language": (str, type(None)),
    "created_at": (str,),
    "deposited_by": (str,),
    "consent": (list,),
    "tags": (list,),
    "identity": (dict,),
    "redacted_fields": (list,),
    "custody_entries": (list,),
}


class BagError(ValueError):
    """The bag cannot be written as asked: bad input, or an item that does not match itself."""


@dataclass(frozen=True, slots=True)
class BagItem:
    """One exported item: its original (or redacted rendition) and what describes it.

    `size` and `sha256` are what the vault recorded (of the rendition when `redacted`); the
    stream is checked against both while it is written, so a changed object stops the bag.
    `filename` is made safe again here (`safe_filename`). `text_size`: the extracted text's
    UTF-8 size when known; without it the text is held in memory (`TEXT_BUFFER_LIMIT`).
    `metadata`: the fields of the metadata document (schema `data/metadata.schema.json`)
    other than those `write_bag` fills (format, item_id, kind, file, text, signature).
    `statement`, `signature`, `public_key`: the depositor's signed statement (RFC 8785
    bytes), its signature (raw Ed25519 base64 or armored SSHSIG) and public key; all or none.
    """

    item_id: str
    kind: str
    filename: str
    size: int
    sha256: str
    open_original: Stream
    metadata: Mapping[str, Any] = field(default_factory=dict)
    open_text: Stream | None = None
    text_size: int | None = None
    redacted: bool = False
    statement: bytes | None = None
    signature: str | None = None
    public_key: str | None = None


@dataclass(frozen=True, slots=True)
class CustodyRecord:
    """The custody record: ledger entries with inclusion proofs against one signed checkpoint.

    `proofs`: one `InclusionProof` per exported entry (each with its entry), all of the tree
    `checkpoint` signs; may be a generator (read once). `log_key`: the log's C2SP verifier key.
    `previous_checkpoint` and `consistency`: the checkpoint of this recipient's earlier export
    and the proof that `checkpoint` extends it; both or neither.
    """

    proofs: Iterable[InclusionProof]
    checkpoint: str
    log_key: str
    previous_checkpoint: str | None = None
    consistency: ConsistencyProof | None = None


@dataclass(frozen=True, slots=True)
class BagInfo:
    """bag-info.txt: who made the bag, for which export, when."""

    source_organization: str
    external_identifier: str
    bagging_date: date
    contact_email: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class BagSummary:
    """What `write_bag` wrote. `bag_sha256`: SHA-256 of tagmanifest-sha256.txt, which pins
    every file of the bag (record it in the ledger). `sealed_size`: bytes written to `dst`."""

    name: str
    items: int
    payload_files: int
    payload_bytes: int
    custody_entries: int
    bag_sha256: str
    sealed_size: int


def item_paths(item_id: str, filename: str) -> dict[str, str]:
    """Return the in-bag paths of one item's files (the layout of docs/export-format.md)."""
    base = f"data/items/{item_id}"
    return {
        "original": f"{base}/original/{safe_filename(filename, fallback='original')}",
        "text": f"{base}/text.txt",
        "metadata": f"{base}/metadata.json",
        "statement": f"{base}/statement.json",
        "signature": f"{base}/statement.sig",
        "public_key": f"{base}/signer.pub",
    }


def kit_file(name: str) -> bytes:
    """Return a file the bag ships from `vault/export_kit/` (README, schema, proof script)."""
    return (resources.files("vault") / "export_kit" / name).read_bytes()


class _Counter:
    """Counts the bytes written to the destination (the sealed size)."""

    def __init__(self, dst: BinaryIO | IO[bytes]) -> None:
        self._dst = dst
        self.count = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        written = self._dst.write(data)
        self.count += len(data) if written is None else written
        return len(data) if written is None else written


class _Tar:
    """A ustar/pax stream of regular files, written through a sealer, hashing each file."""

    def __init__(self, sink: keys.Sealer, mtime: int, root: str) -> None:
        self._sink = sink
        self._mtime = mtime
        self._root = root
        self.digests: list[tuple[str, str, str, int]] = []  # (path, sha256, sha512, size)

    def _header(self, path: str, size: int) -> None:
        info = tarfile.TarInfo(f"{self._root}/{path}")
        info.size = size
        info.mtime = self._mtime
        info.mode = 0o644
        info.uname = info.gname = ""
        # PAX: names longer than 100 bytes or not ASCII get an extended header, read by every
        # tar of the last twenty years (POSIX.1-2001).
        self._sink.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict"))

    def _pad(self, size: int) -> None:
        if size % _BLOCK:
            self._sink.write(bytes(_BLOCK - size % _BLOCK))

    def add_bytes(self, path: str, data: bytes) -> None:
        """Add a file held in memory."""
        self._header(path, len(data))
        self._sink.write(data)
        self._pad(len(data))
        self.digests.append(
            (path, hashlib.sha256(data).hexdigest(), hashlib.sha512(data).hexdigest(), len(data))
        )

    def add_stream(
        self,
        path: str,
        size: int,
        chunks: Iterable[bytes],
        tick: Callable[[int], None],
        what: str,
        check: Callable[[bytes], None] | None = None,
    ) -> str:
        """Add a file of `size` bytes from `chunks`; return its SHA-256 (hex).

        Raises `BagError` naming `what` (never `path`: it holds the original's file name,
        which promise 1 keeps out of ledgers and logs) if the chunks are not exactly `size`
        bytes.
        """
        self._header(path, size)
        sha256, sha512 = hashlib.sha256(), hashlib.sha512()
        write = self._sink.write
        done = 0
        for chunk in chunks:
            done += len(chunk)
            if done > size:
                raise BagError(f"{what}: more than the {size} bytes announced")
            if check is not None:
                check(chunk)
            sha256.update(chunk)
            sha512.update(chunk)
            write(chunk)
            tick(len(chunk))
        if done != size:
            raise BagError(f"{what}: {done} bytes instead of the {size} announced")
        self._pad(size)
        digest = sha256.hexdigest()
        self.digests.append((path, digest, sha512.hexdigest(), size))
        return digest

    def close(self) -> None:
        # The end of an archive: two zero blocks (POSIX ustar).
        self._sink.write(bytes(2 * _BLOCK))


class _Progress:
    def __init__(self, report: Callable[[int], None] | None) -> None:
        self._report = report
        self.done = 0
        self._next = _PROGRESS_EVERY

    def __call__(self, n: int) -> None:
        self.done += n
        if self._report is not None and self.done >= self._next:
            self._next = self.done + _PROGRESS_EVERY
            self._report(self.done)

    def flush(self) -> None:
        if self._report is not None:
            self._report(self.done)


def _check_line(value: str, what: str) -> str:
    if not value or any(ch in value for ch in "\r\n") or not value.isprintable():
        raise BagError(f"{what} must be one line of printable text")
    return value


def _check_item(item: BagItem, seen: set[str]) -> None:
    if not _ID.fullmatch(item.item_id):
        raise BagError(f"item id {item.item_id!r} is not a plain identifier")
    if item.item_id in seen:
        raise BagError(f"item {item.item_id} is listed twice")
    seen.add(item.item_id)
    if not _ID.fullmatch(item.kind):
        raise BagError(f"item {item.item_id}: kind {item.kind!r} is not a plain identifier")
    if item.size < 0 or not _HEX64.fullmatch(item.sha256):
        raise BagError(f"item {item.item_id}: a size >= 0 and a hex SHA-256 are required")
    if item.text_size is not None and item.text_size < 0:
        raise BagError(f"item {item.item_id}: a negative text size")
    signed = (item.statement, item.signature, item.public_key)
    if any(part is None for part in signed) and any(part is not None for part in signed):
        raise BagError(f"item {item.item_id}: statement, signature and public key go together")
    for key, value in item.metadata.items():
        if key in _RESERVED:
            raise BagError(f"item {item.item_id}: metadata may not set {key!r}")
        if key not in _KNOWN and not key.startswith("x_"):
            raise BagError(f"item {item.item_id}: metadata field {key!r} is not in the schema")
        if key in _KNOWN and not isinstance(value, _KNOWN[key]):
            raise BagError(f"item {item.item_id}: metadata field {key!r} has the wrong type")


def _checkpoint_of(signed: str, log_key: str, what: str) -> note.Checkpoint:
    """Parse a signed checkpoint and check it against the log key (never ship a bad one)."""
    try:
        return note.parse_checkpoint(note.open_note(signed, log_key, keys.verify_ed25519))
    except LedgerError as exc:
        raise BagError(f"{what}: {exc}") from None


def _proof_json(proof: InclusionProof) -> bytes:
    document = proof.to_json(with_entry=False)
    document.pop("entry")
    document.pop("checkpoint")  # one copy: data/custody/checkpoint.txt
    return json.dumps(document, indent=1).encode() + b"\n"


def _write_custody(tar: _Tar, custody: CustodyRecord) -> int:
    """Add the custody files; return how many entries. Raises `BagError` on a proof that does
    not verify against the checkpoint."""
    head = _checkpoint_of(custody.checkpoint, custody.log_key, "checkpoint")
    tar.add_bytes("data/custody/checkpoint.txt", custody.checkpoint.encode())
    tar.add_bytes("data/custody/log-key.txt", custody.log_key.strip().encode() + b"\n")
    if (custody.previous_checkpoint is None) != (custody.consistency is None):
        raise BagError("a previous checkpoint and its consistency proof go together")
    if custody.previous_checkpoint is not None and custody.consistency is not None:
        old = _checkpoint_of(custody.previous_checkpoint, custody.log_key, "previous checkpoint")
        extends = custody.consistency
        sizes = (extends.old_size, extends.new_size)
        if sizes != (old.size, head.size) or old.origin != head.origin:
            raise BagError("the consistency proof is not between the two checkpoints")
        try:
            verify_consistency(old.size, head.size, old.root, head.root, extends.hashes)
        except LedgerError as exc:
            raise BagError(f"consistency proof: {exc}") from None
        tar.add_bytes("data/custody/previous-checkpoint.txt", custody.previous_checkpoint.encode())
        document = extends.to_json()
        document.pop("old_checkpoint")
        document.pop("new_checkpoint")
        tar.add_bytes("data/custody/consistency.json", json.dumps(document, indent=1).encode())
    count = 0
    seen: set[int] = set()
    for proof in custody.proofs:
        if proof.size != head.size or proof.seq in seen:
            raise BagError(f"ledger entry {proof.seq}: not one proof against the checkpoint")
        seen.add(proof.seq)
        try:
            verify_inclusion(proof.seq, head.size, leaf_hash(proof.entry), proof.hashes, head.root)
        except LedgerError as exc:
            raise BagError(f"ledger entry {proof.seq}: {exc}") from None
        name = f"{proof.seq:012d}.json"
        # The entry's exact canonical bytes: its leaf hash is SHA-256(0x00 || the file).
        tar.add_bytes(f"data/custody/entries/{name}", proof.entry)
        tar.add_bytes(f"data/custody/proofs/{name}", _proof_json(proof))
        count += 1
    return count


class _UtfChecker:
    """Refuses bytes that are not UTF-8 while they stream (extracted texts are UTF-8)."""

    def __init__(self, item_id: str) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._item_id = item_id

    def __call__(self, chunk: bytes) -> None:
        try:
            self._decoder.decode(chunk)
        except UnicodeDecodeError:
            raise BagError(f"item {self._item_id}: the extracted text is not UTF-8") from None

    def finish(self) -> None:
        self(b"")
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise BagError(f"item {self._item_id}: the extracted text is not UTF-8") from None


def _buffered(chunks: Iterable[bytes], item_id: str) -> bytes:
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        if len(buffer) > TEXT_BUFFER_LIMIT:
            raise BagError(f"item {item_id}: extracted text over {TEXT_BUFFER_LIMIT} bytes")
    return bytes(buffer)


def _write_item(tar: _Tar, item: BagItem, tick: Callable[[int], None]) -> dict[str, Any]:
    """Add one item's files; return its row for the Uwazi CSV."""
    paths = item_paths(item.item_id, item.filename)
    with item.open_original() as chunks:
        digest = tar.add_stream(
            paths["original"], item.size, chunks, tick, f"item {item.item_id}: the original"
        )
    if digest != item.sha256:
        raise BagError(f"item {item.item_id}: its stored object no longer has its SHA-256")
    document: dict[str, Any] = {
        "format": BAG_FORMAT,
        "item_id": item.item_id,
        "kind": item.kind,
        "file": {
            "path": paths["original"],
            "size": item.size,
            "sha256": item.sha256,
            "redacted": item.redacted,
        },
        "text": None,
        "signature": None,
    }
    if item.open_text is not None:
        checker = _UtfChecker(item.item_id)
        with item.open_text() as chunks:
            if item.text_size is None:
                text = _buffered(chunks, item.item_id)
                checker(text)
                checker.finish()
                tar.add_bytes(paths["text"], text)
                text_size = len(text)
            else:
                what = f"item {item.item_id}: the extracted text"
                tar.add_stream(paths["text"], item.text_size, chunks, tick, what, checker)
                checker.finish()
                text_size = item.text_size
        document["text"] = {"path": paths["text"], "size": text_size}
    if item.statement is not None and item.signature is not None and item.public_key is not None:
        tar.add_bytes(paths["statement"], item.statement)
        tar.add_bytes(paths["signature"], item.signature.strip().encode() + b"\n")
        tar.add_bytes(paths["public_key"], item.public_key.strip().encode() + b"\n")
        document["signature"] = {
            "statement": paths["statement"],
            "signature": paths["signature"],
            "public_key": paths["public_key"],
            "key_id": keys.key_id(item.public_key),
        }
    document.update(item.metadata)
    encoded = json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    tar.add_bytes(paths["metadata"], encoded.encode("utf-8"))
    return {"document": document, "paths": paths}


# Uwazi CSV import (HURIDOCS): `title` is required; other columns match template property
# names; `|` separates the values of a multi-value property; `file` names the main document
# and `attachments` more files, by their path inside the import zip. Dates as YYYY-MM-DD.
_UWAZI_COLUMNS: Final = (
    "title",
    "file",
    "attachments",
    "item_id",
    "case_id",
    "kind",
    "language",
    "deposit_date",
    "consent",
    "tags",
    "sha256",
    "redacted",
)


def _uwazi_row(row: Mapping[str, Any]) -> list[str]:
    document = row["document"]
    paths = row["paths"]

    def relative(path: str) -> str:
        return path.removeprefix("data/")  # the CSV sits in data/, next to items/

    attachments = [relative(paths["metadata"])]
    if document["text"] is not None:
        attachments.insert(0, relative(paths["text"]))
    created = str(document.get("created_at") or "")[:10]

    def values(name: str) -> str:
        return "|".join(str(v).replace("|", "/") for v in document.get(name) or [])

    title = document.get("title") or document["item_id"]
    return [
        str(title),
        relative(document["file"]["path"]),
        "|".join(attachments),
        document["item_id"],
        str(document.get("case_id") or ""),
        document["kind"],
        str(document.get("language") or ""),
        created,
        values("consent"),
        values("tags"),
        document["file"]["sha256"],
        "yes" if document["file"]["redacted"] else "no",
    ]


def _uwazi_csv(rows: Sequence[Mapping[str, Any]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(_UWAZI_COLUMNS)
    for row in rows:
        writer.writerow(_uwazi_row(row))
    return out.getvalue().encode("utf-8")


def _size_text(size: int) -> str:
    # RFC 8493 2.2.2: Bag-Size is approximate and for people ("260 GB").
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _bag_info(info: BagInfo, payload_bytes: int, payload_files: int) -> bytes:
    lines = [
        ("Source-Organization", _check_line(info.source_organization, "Source-Organization")),
        ("Bagging-Date", info.bagging_date.isoformat()),
        ("External-Identifier", _check_line(info.external_identifier, "External-Identifier")),
        ("Payload-Oxum", f"{payload_bytes}.{payload_files}"),
        ("Bag-Size", _size_text(payload_bytes)),
        ("Bag-Software-Agent", "testimony-vault (tvault)"),
        ("Tvault-Export-Format", BAG_FORMAT),
    ]
    if info.contact_email:
        lines.append(("Contact-Email", _check_line(info.contact_email, "Contact-Email")))
    if info.description:
        lines.append(("Internal-Sender-Description", _check_line(info.description, "description")))
    return "".join(f"{label}: {value}\n" for label, value in lines).encode("utf-8")


def _manifest(digests: Iterable[tuple[str, str, str, int]], which: int) -> bytes:
    # Two spaces, as bagit.py writes them and `sha256sum -c` reads them.
    return "".join(f"{d[which]}  {d[0]}\n" for d in digests).encode("utf-8")


def _readme(info: BagInfo, name: str) -> bytes:
    template = string.Template(kit_file("README.md").decode("utf-8"))
    return template.safe_substitute(
        bag=name, export_id=info.external_identifier, format=BAG_FORMAT
    ).encode("utf-8")


def _peek(items: Iterable[BagItem]) -> Iterator[BagItem]:
    """Return an iterator over `items`; raise `BagError` at once if there is none."""
    iterator = iter(items)
    try:
        first = next(iterator)
    except StopIteration:
        raise BagError("no item to export: an export is never an empty bag") from None
    return itertools.chain([first], iterator)


def write_bag(
    dst: BinaryIO | IO[bytes],
    recipients: Sequence[str],
    items: Iterable[BagItem],
    custody: CustodyRecord,
    info: BagInfo,
    *,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> BagSummary:
    """Write the export bag of `items` and `custody`, sealed with age to `recipients`.

    `recipients`: `age1...` or `ssh-ed25519 AAAA...` keys. `progress(payload_bytes_done)` is
    called every 16 MiB and at the end. Raises `BagError` (before anything is written) on no
    item or a bad recipient, and (after: discard `dst`) on an item whose stream does not give
    its size and SHA-256, malformed metadata, or a custody proof that does not verify; errors
    of the streams and of `dst` propagate the same way.
    """
    moment = now if now is not None else datetime.now(UTC)
    name = safe_filename(_check_line(info.external_identifier, "External-Identifier"))
    try:
        normalized = [keys.normalize_recipient(r) for r in recipients]
    except ValueError as exc:
        raise BagError(f"recipient: {exc}") from None
    if not normalized:
        raise BagError("an export needs at least one recipient")
    pending = _peek(items)  # raises BagError before the sealer writes a byte
    counter = _Counter(dst)
    # The sealer needs only `write`, which the counter forwards.
    sealer = keys.Sealer(cast(BinaryIO, counter), normalized)
    with sealer:
        tar = _Tar(sealer, int(moment.timestamp()), name)
        tick = _Progress(progress)
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for item in pending:
            _check_item(item, seen)
            rows.append(_write_item(tar, item, tick))
        entries = _write_custody(tar, custody)
        tar.add_bytes("data/metadata.schema.json", kit_file("metadata.schema.json"))
        tar.add_bytes("data/uwazi.csv", _uwazi_csv(rows))
        payload = list(tar.digests)
        payload_bytes = sum(size for *_, size in payload)
        tag_start = len(tar.digests)
        tar.add_bytes("manifest-sha256.txt", _manifest(payload, 1))
        tar.add_bytes("manifest-sha512.txt", _manifest(payload, 2))
        tar.add_bytes("bagit.txt", b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
        tar.add_bytes("bag-info.txt", _bag_info(info, payload_bytes, len(payload)))
        tar.add_bytes("README.md", _readme(info, name))
        tar.add_bytes("verify_custody.py", kit_file("verify_custody.py"))
        tags = tar.digests[tag_start:]
        tagmanifest = _manifest(tags, 1)
        tar.add_bytes("tagmanifest-sha256.txt", tagmanifest)
        tar.add_bytes("tagmanifest-sha512.txt", _manifest(tags, 2))
        tar.close()
        tick.flush()
    return BagSummary(
        name=name,
        items=len(rows),
        payload_files=len(payload),
        payload_bytes=payload_bytes,
        custody_entries=entries,
        bag_sha256=hashlib.sha256(tagmanifest).hexdigest(),
        sealed_size=counter.count,
    )
