"""The RFC 9162 Merkle tree over ledger leaves: roots, inclusion and consistency proofs.

Every complete, aligned subtree hash is computed once when the tree is built (n - 1 node hashes
for n leaves), so a root at any size and any proof cost O(log n) lookups and hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from vault.ledger.errors import ProofError


def hash_leaf(data: bytes) -> bytes:
    """RFC 9162 2.1.1: leaf hash = SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """RFC 9162 2.1.1: node hash = SHA-256(0x01 || left || right).

    The 0x01 prefix keeps node and leaf preimages apart (second-preimage resistance).
    """
    return hashlib.sha256(b"\x01" + left + right).digest()


HASH_SIZE = 32


def _check_hashes(what: str, hashes: Sequence[bytes]) -> None:
    """Refuse anything but 32-byte SHA-256 values: a short or long "hash" is never a node.

    Without this, a proof or root of another length is simply compared (an empty root, or
    bytes that are not a hash, could then match).
    """
    for value in hashes:
        if len(value) != HASH_SIZE:
            raise ProofError(f"{what} must be {HASH_SIZE}-byte hashes, got {len(value)} bytes")


def _split(n: int) -> int:
    """Return the largest power of two smaller than `n` (n > 1), RFC 9162's `k`."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An immutable RFC 9162 tree over `leaf_hashes` (already hashed with `hash_leaf`)."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        # levels[h][i] is the hash of the complete subtree of 2**h leaves starting at i * 2**h.
        self._levels: list[list[bytes]] = [list(leaf_hashes)]
        level = self._levels[0]
        sha256 = hashlib.sha256
        while len(level) > 1:
            level = [
                sha256(b"\x01" + level[i] + level[i + 1]).digest()
                for i in range(0, len(level) - 1, 2)
            ]
            self._levels.append(level)

    @property
    def size(self) -> int:
        """The number of leaves."""
        return len(self._levels[0])

    def leaf(self, index: int) -> bytes:
        """Return the leaf hash at `index`. Raises `ProofError` if out of range."""
        if not 0 <= index < self.size:
            raise ProofError(f"leaf {index} is outside a tree of size {self.size}")
        return self._levels[0][index]

    def root(self, size: int | None = None) -> bytes:
        """Return MTH of the first `size` leaves (default all). Raises `ProofError` if too big."""
        size = self.size if size is None else size
        self._check_size(size)
        if size == 0:
            return hashlib.sha256(b"").digest()
        return self._range(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Return the RFC 9162 2.1.3.1 inclusion proof of leaf `index` in the tree of `size`.

        Raises `ProofError` unless 0 <= index < size <= the tree's size.
        """
        size = self.size if size is None else size
        self._check_size(size)
        if not 0 <= index < size:
            raise ProofError(f"leaf {index} is outside a tree of size {size}")
        return self._path(index, 0, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Return the RFC 9162 2.1.4.1 consistency proof from `old_size` to `new_size`.

        The proof is empty when `old_size` is 0 or equals `new_size`.
        Raises `ProofError` unless 0 <= old_size <= new_size <= the tree's size.
        """
        new_size = self.size if new_size is None else new_size
        self._check_size(new_size)
        if not 0 <= old_size <= new_size:
            raise ProofError(f"no consistency proof from size {old_size} to {new_size}")
        if old_size in (0, new_size):
            return []
        return self._subproof(old_size, 0, new_size, complete=True)

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ProofError(f"size {size} is outside a tree of size {self.size}")

    def _range(self, start: int, stop: int) -> bytes:
        """MTH(D[start:stop]) for the ranges the RFC 9162 recursion produces."""
        n = stop - start
        height = n.bit_length() - 1
        if n == 1 << height and start % n == 0:
            return self._levels[height][start >> height]
        k = _split(n)
        return hash_children(self._range(start, start + k), self._range(start + k, stop))

    def _path(self, m: int, start: int, stop: int) -> list[bytes]:
        # RFC 9162 2.1.3.1 PATH(m, D[start:stop]), m relative to start.
        n = stop - start
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self._path(m, start, start + k), self._range(start + k, stop)]
        return [*self._path(m - k, start + k, stop), self._range(start, start + k)]

    def _subproof(self, m: int, start: int, stop: int, *, complete: bool) -> list[bytes]:
        # RFC 9162 2.1.4.1 SUBPROOF(m, D[start:stop], b).
        n = stop - start
        if m == n:
            return [] if complete else [self._range(start, stop)]
        k = _split(n)
        if m <= k:
            return [
                *self._subproof(m, start, start + k, complete=complete),
                self._range(start + k, stop),
            ]
        return [
            *self._subproof(m - k, start + k, stop, complete=False),
            self._range(start, start + k),
        ]


def root_from_inclusion_proof(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """Return the root an inclusion proof leads to (RFC 9162 2.1.3.2).

    Raises `ProofError` if the index is out of range, the proof has the wrong length, or the
    leaf hash or a proof node is not a 32-byte hash.
    """
    _check_hashes("the leaf hash", [leaf_hash])
    _check_hashes("proof nodes", proof)
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is outside a tree of size {size}")
    fn, sn = index, size - 1
    result = leaf_hash
    for node in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            result = hash_children(node, result)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            result = hash_children(result, node)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return result


def verify_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf `index` is in the tree of `size` with `root`. Raises `ProofError` if not."""
    _check_hashes("the root", [root])
    if root_from_inclusion_proof(index, size, leaf_hash, proof) != root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of `new_size` extends the one of `old_size` (RFC 9162 2.1.4.2).

    Raises `ProofError` if the proof is malformed, a root or node is not a 32-byte hash, either
    root does not match, or `old_size` is 0: every tree extends the empty one, so such a "proof"
    proves nothing and is refused rather than accepted whatever the roots (as the
    transparency-dev/merkle test data expects).
    """
    _check_hashes("roots", [old_root, new_root])
    _check_hashes("proof nodes", proof)
    if not 0 < old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size == new_size:
        if proof or old_root != new_root:
            raise ProofError("equal sizes need an empty proof and equal roots")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    # Step 1: if old_size is an exact power of two, old_root is the first node of the path.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    # Step 3: right-shift both while the lowest bit of fn is set.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for node in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = hash_children(node, fr)
            sr = hash_children(node, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hash_children(sr, node)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root or sr != new_root:
        raise ProofError("consistency proof does not lead to both roots")
