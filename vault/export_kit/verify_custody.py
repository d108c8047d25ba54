#!/usr/bin/env python3
"""Check the custody record of a testimony-vault export bag, trusting nothing of the vault.

Needs Python 3.9+ and the `cryptography` package (for Ed25519). Run it from the unpacked bag:

    python3 verify_custody.py [BAG_DIR] [--log-key KEY] [--previous-checkpoint FILE]

It checks: the signed checkpoint (C2SP signed note, Ed25519) against the log's verifier key
(`--log-key`, the key or a file holding it, which you got from the vault yourself; without it,
the key shipped in the bag, which proves less and is said so); every ledger entry in
data/custody/entries/ against its RFC 9162 inclusion proof and that checkpoint; the
consistency proof from the previous export's checkpoint (and from `--previous-checkpoint`, the
one you kept); and that each item's file has the SHA-256 a proven "ingestion" entry recorded.
Run `sha256sum -c manifest-sha256.txt` first: this script reads the digests from that manifest.
Exit status 0 when everything holds, 1 on any failure, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

Checkpoint = tuple[str, int, bytes]  # origin, size, root


def leaf_hash(data: bytes) -> bytes:
    # RFC 9162 2.1.1: 0x00 before a leaf, 0x01 before two children.
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def b64(text: str) -> bytes:
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode() != text:
        raise ValueError("non-canonical base64")
    return raw


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2."""
    if not 0 <= index < size or any(len(h) != 32 for h in [leaf, root, *proof]):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = node_hash(p, r)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(m: int, n: int, root1: bytes, root2: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 2.1.4.2 (a proof from the empty tree proves nothing and is refused)."""
    if not 0 < m <= n or any(len(h) != 32 for h in [root1, root2, *proof]):
        return False
    if m == n:
        return not proof and root1 == root2
    if not proof:
        return False
    path = ([root1] if m & (m - 1) == 0 else []) + proof
    fn, sn = m - 1, n - 1
    while fn % 2 == 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == root1 and sr == root2


def parse_vkey(vkey: str) -> tuple[str, bytes, bytes]:
    """Return (name, key ID, Ed25519 key) of `<name>+<hex key ID>+<base64(0x01 || key)>`."""
    name, hex_id, encoded = vkey.strip().split("+", 2)
    raw = b64(encoded)
    key_id = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if raw[:1] != b"\x01" or len(raw) != 33 or key_id.hex() != hex_id:
        raise ValueError("not an Ed25519 verifier key")
    return name, key_id, raw[1:]


def open_checkpoint(signed: str, vkey: str) -> Checkpoint:
    """Return (origin, size, root) of a checkpoint the key signed (C2SP signed-note)."""
    name, key_id, public = parse_vkey(vkey)
    text, _, block = signed.rpartition("\n\n")
    text += "\n"
    good = False
    for line in block.splitlines():
        dash, sig_name, encoded = line.split(" ")
        raw = b64(encoded)
        if dash != "\u2014" or sig_name != name or raw[:4] != key_id:
            continue  # signed-note: signatures by other keys are ignored
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], text.encode())
        except InvalidSignature:
            raise ValueError("a signature by the log key does not verify") from None
        good = True
    if not good:
        raise ValueError("no signature by the log key")
    origin, size, root, *rest = text.split("\n")
    if rest != [""] or str(int(size)) != size:
        raise ValueError("not a checkpoint")
    return origin, int(size), b64(root)


class Report:
    def __init__(self) -> None:
        self.failures = 0

    def ok(self, message: str) -> None:
        print(f"ok    {message}")

    def fail(self, where: str, message: str) -> None:
        self.failures += 1
        print(f"FAIL  {where}: {message}")


def read_key(value: str) -> str:
    path = Path(value)
    return path.read_text(encoding="utf-8").strip() if path.is_file() else value.strip()


def check_entries(bag: Path, head: Checkpoint, report: Report) -> dict[str, list[dict[str, Any]]]:
    """Check every entry against its inclusion proof; return the proven entries by item."""
    custody = bag / "data" / "custody"
    entries = {p.name for p in (custody / "entries").glob("*.json")}
    proofs = {p.name for p in (custody / "proofs").glob("*.json")}
    for name in sorted(entries ^ proofs):
        report.fail(f"data/custody/*/{name}", "an entry without its proof, or a proof alone")
    by_item: dict[str, list[dict[str, Any]]] = {}
    proven = 0
    for name in sorted(entries & proofs):
        where = f"data/custody/entries/{name}"
        try:
            data = (custody / "entries" / name).read_bytes()
            proof = json.loads((custody / "proofs" / name).read_text(encoding="utf-8"))
            entry = json.loads(data)
            hashes = [b64(h) for h in proof["hashes"]]
            seq = int(name.removesuffix(".json"))
            if entry["seq"] != seq or proof["seq"] != seq or proof["size"] != head[1]:
                report.fail(where, "entry, proof and checkpoint disagree on seq or size")
                continue
            if b64(proof["leaf_hash"]) != leaf_hash(data):
                report.fail(where, "the proof is for another entry")
                continue
            if not verify_inclusion(seq, head[1], leaf_hash(data), hashes, head[2]):
                report.fail(where, "the inclusion proof does not lead to the checkpoint's root")
                continue
        except (ValueError, KeyError, TypeError) as exc:
            report.fail(where, f"malformed ({exc})")
            continue
        proven += 1
        if entry.get("item"):
            by_item.setdefault(entry["item"], []).append(entry)
    report.ok(f"{proven} ledger entries included in the checkpoint of size {head[1]}")
    return by_item


def check_consistency(
    bag: Path, head: Checkpoint, vkey: str, kept: str | None, report: Report
) -> None:
    custody = bag / "data" / "custody"
    previous_file = custody / "previous-checkpoint.txt"
    proof_file = custody / "consistency.json"
    if not previous_file.exists() and not proof_file.exists():
        if kept is not None:
            report.fail("data/custody/consistency.json", "missing: no proof from your checkpoint")
        else:
            report.ok("no earlier export: no consistency proof to check")
        return
    try:
        old = open_checkpoint(previous_file.read_text(encoding="utf-8"), vkey)
        proof = json.loads(proof_file.read_text(encoding="utf-8"))
        hashes = [b64(h) for h in proof["hashes"]]
        if old[0] != head[0] or (proof["old_size"], proof["new_size"]) != (old[1], head[1]):
            report.fail("data/custody/consistency.json", "not between the two checkpoints")
        elif not verify_consistency(old[1], head[1], old[2], head[2], hashes):
            report.fail("data/custody/consistency.json", "the consistency proof fails")
        else:
            report.ok(f"the log of size {head[1]} extends the previous export's ({old[1]})")
        if kept is not None:
            mine = open_checkpoint(kept, vkey)
            if mine[1:] != old[1:]:
                report.fail("data/custody/previous-checkpoint.txt", "not the checkpoint you kept")
            else:
                report.ok("the previous checkpoint is the one you kept")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        report.fail("data/custody/consistency.json", str(exc))


def check_items(bag: Path, by_item: dict[str, list[dict[str, Any]]], report: Report) -> None:
    """Each item's file must have the digest a proven ingestion entry recorded for it."""
    manifest: dict[str, str] = {}
    for line in (bag / "manifest-sha256.txt").read_text(encoding="utf-8").splitlines():
        digest, _, path = line.partition("  ")
        manifest[path] = digest
    checked = 0
    described: set[str] = set()
    for folder in sorted(p for p in (bag / "data" / "items").glob("*") if p.is_dir()):
        meta = folder / "metadata.json"
        where = str(meta.relative_to(bag))
        described.add(where)
        try:
            document = json.loads(meta.read_text(encoding="utf-8"))
            item, file = document["item_id"], document["file"]
            described.add(file["path"])
            for part in (document.get("text") or {}, document.get("signature") or {}):
                described.update(str(v) for k, v in part.items() if k != "size" and k != "key_id")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            report.fail(where, f"missing or malformed ({exc})")
            continue
        digest = manifest.get(file["path"], "")
        if digest != file["sha256"]:
            report.fail(file["path"], "its digest is not the one in manifest-sha256.txt")
            continue
        recorded = [
            e
            for e in by_item.get(item, [])
            if e.get("action") == "ingestion"
            and e.get("details", {}).get("sha256") == digest
            and (e.get("details", {}).get("rendition") == "redacted") == bool(file["redacted"])
        ]
        if not recorded:
            report.fail(file["path"], "no proven ingestion entry records this file's SHA-256")
            continue
        checked += 1
    for found in sorted((bag / "data" / "items").rglob("*")):
        name = str(found.relative_to(bag))
        if found.is_file() and name not in described:
            report.fail(name, "not described by its item's metadata.json")
    report.ok(f"{checked} item files match the digests their ingestion entries recorded")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bag", nargs="?", default=str(Path(__file__).resolve().parent))
    parser.add_argument("--log-key", help="the log's verifier key, or a file holding it")
    parser.add_argument("--previous-checkpoint", help="a checkpoint of an earlier export")
    args = parser.parse_args(argv)
    bag = Path(args.bag)
    custody = bag / "data" / "custody"
    if not (custody / "checkpoint.txt").is_file():
        print(f"{bag} is not an unpacked export bag (no data/custody/checkpoint.txt)")
        return 2
    report = Report()
    if args.log_key:
        vkey = read_key(args.log_key)
        print("log key: the one you gave (--log-key)")
        if (custody / "log-key.txt").read_text(encoding="utf-8").strip() != vkey:
            report.fail("data/custody/log-key.txt", "not the log key you gave")
    else:
        vkey = (custody / "log-key.txt").read_text(encoding="utf-8").strip()
        print("log key: the one in the bag (give --log-key to check against the vault's own)")
    try:
        head = open_checkpoint((custody / "checkpoint.txt").read_text(encoding="utf-8"), vkey)
    except (ValueError, OSError) as exc:
        report.fail("data/custody/checkpoint.txt", str(exc))
        print(f"FAILED: {report.failures} failure(s)")
        return 1
    report.ok(f"checkpoint of size {head[1]} signed by the log key ({head[0]})")
    by_item = check_entries(bag, head, report)
    kept = None
    if args.previous_checkpoint:
        kept = Path(args.previous_checkpoint).read_text(encoding="utf-8")
    check_consistency(bag, head, vkey, kept, report)
    check_items(bag, by_item, report)
    if report.failures:
        print(f"FAILED: {report.failures} failure(s)")
        return 1
    print("OK: the custody record holds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
