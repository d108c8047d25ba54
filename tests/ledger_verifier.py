"""An outsider's check of the vault's ledger proofs, written without importing `vault`.

Given only the log's verifier key (`tvault ledger key`), it checks a checkpoint's signature
(C2SP signed-note, Ed25519), then an inclusion proof (RFC 9162 2.1.3.2) or a consistency proof
(RFC 9162 2.1.4.2) as the API returns them. Ed25519 comes from `keys` (the only package allowed
to use `cryptography`), so no code of the vault's ledger is trusted here.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

Verify = Callable[[bytes, bytes, bytes], bool]  # (public key, message, signature) -> valid?


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def hashes(*values: bytes) -> bool:
    """Only 32-byte SHA-256 values are hashes; anything else is refused, never compared."""
    return all(len(value) == 32 for value in values)


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    if index >= size or index < 0 or not hashes(leaf, root, *proof):
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


def verify_consistency(m: int, n: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> bool:
    # Every tree extends the empty one: a "proof" from size 0 proves nothing, so it is refused.
    if m <= 0 or m > n or not hashes(root1, root2, *proof):
        return False
    if m == n:
        return not proof and root1 == root2
    if not proof:
        return False
    path = ([root1] if m & (m - 1) == 0 else []) + list(proof)
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
    """Return (name, key ID, public key) of `<name>+<hex id>+<base64(0x01 || key)>`."""
    name, hex_id, b64 = vkey.strip().split("+", 2)
    raw = base64.b64decode(b64, validate=True)
    key_id = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if raw[:1] != b"\x01" or len(raw) != 33 or key_id.hex() != hex_id:
        raise ValueError("bad verifier key")
    return name, key_id, raw[1:]


def open_checkpoint(signed: str, vkey: str, verify: Verify) -> tuple[str, int, bytes]:
    """Return (origin, size, root) of a checkpoint signed by `vkey`'s key; raise ValueError."""
    name, key_id, public = parse_vkey(vkey)
    text, _, sigs = signed.rpartition("\n\n")
    text += "\n"
    good = False
    for line in sigs.splitlines():
        dash, sig_name, b64 = line.split(" ")
        raw = base64.b64decode(b64, validate=True)
        if dash != "\u2014" or sig_name != name or raw[:4] != key_id:
            continue  # signed-note: ignore other keys' signatures
        if not verify(public, text.encode(), raw[4:]):
            raise ValueError("bad signature by the log key")
        good = True
    if not good:
        raise ValueError("no signature by the log key")
    origin, size, root, *rest = text.split("\n")
    if rest != [""] or str(int(size)) != size:
        raise ValueError("not a checkpoint")
    return origin, int(size), base64.b64decode(root, validate=True)


def check_inclusion(response: dict[str, Any], vkey: str, verify: Verify) -> dict[str, Any]:
    """Check an API inclusion proof; return the entry it proves ({} when the server withheld
    it: then the proof starts from `leaf_hash`). Raise ValueError otherwise."""
    _, size, root = open_checkpoint(response["checkpoint"], vkey, verify)
    if response["entry"] is None:
        seq, leaf = response["seq"], base64.b64decode(response["leaf_hash"], validate=True)
    else:
        entry = response["entry"].encode()
        seq, leaf = json.loads(entry)["seq"], leaf_hash(entry)
    proof = [base64.b64decode(h, validate=True) for h in response["hashes"]]
    if seq != response["seq"] or size != response["size"]:
        raise ValueError("proof does not match its entry or checkpoint")
    if not verify_inclusion(seq, size, leaf, proof, root):
        raise ValueError("inclusion proof fails")
    return {} if response["entry"] is None else dict(json.loads(response["entry"]))


def check_consistency(response: dict[str, Any], vkey: str, verify: Verify) -> None:
    """Check an API consistency proof between two signed checkpoints. Raise ValueError."""
    origin1, m, root1 = open_checkpoint(response["old_checkpoint"], vkey, verify)
    origin2, n, root2 = open_checkpoint(response["new_checkpoint"], vkey, verify)
    proof = [base64.b64decode(h, validate=True) for h in response["hashes"]]
    if origin1 != origin2 or (m, n) != (response["old_size"], response["new_size"]):
        raise ValueError("proof does not match its checkpoints")
    if not verify_consistency(m, n, root1, root2, proof):
        raise ValueError("consistency proof fails")
