"""The RFC 9162 tree: published vectors both ways, and a naive reference for every small size."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from vault.ledger import ProofError
from vault.ledger.tree import (
    MerkleTree,
    hash_children,
    hash_leaf,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[3] / "vectors" / "rfc9162" / "vectors.json").read_text()
)
LEAVES = [bytes.fromhex(leaf) for leaf in VECTORS["leaves"]]
ROOTS = [bytes.fromhex(root) for root in VECTORS["roots"]]
TREE = MerkleTree([hash_leaf(leaf) for leaf in LEAVES])


def proof_of(case: dict[str, Any]) -> list[bytes]:
    return [bytes.fromhex(node) for node in case["proof"]]


def test_leaf_and_node_hashes_match_the_vectors() -> None:
    level0 = [bytes.fromhex(h) for h in VECTORS["node_hashes"][0]]
    assert [hash_leaf(leaf) for leaf in LEAVES] == level0
    level1 = [bytes.fromhex(h) for h in VECTORS["node_hashes"][1]]
    assert [hash_children(level0[i], level0[i + 1]) for i in range(0, 8, 2)] == level1


@pytest.mark.parametrize("size", range(len(ROOTS)))
def test_roots_match_the_vectors(size: int) -> None:
    assert TREE.root(size) == ROOTS[size]
    assert MerkleTree([hash_leaf(leaf) for leaf in LEAVES[:size]]).root() == ROOTS[size]


@pytest.mark.parametrize("case", VECTORS["inclusion"], ids=lambda c: f"{c['index']}-{c['size']}")
def test_inclusion_proofs_match_the_vectors(case: dict[str, Any]) -> None:
    index, size, proof = case["index"], case["size"], proof_of(case)
    assert TREE.inclusion_proof(index, size) == proof
    verify_inclusion(index, size, hash_leaf(LEAVES[index]), proof, ROOTS[size])


@pytest.mark.parametrize(
    "case", VECTORS["consistency"], ids=lambda c: f"{c['old_size']}-{c['new_size']}"
)
def test_consistency_proofs_match_the_vectors(case: dict[str, Any]) -> None:
    old, new, proof = case["old_size"], case["new_size"], proof_of(case)
    assert TREE.consistency_proof(old, new) == proof
    verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)


# A direct transcription of RFC 9162 2.1.1, 2.1.3.1 and 2.1.4.1 over leaf data, for comparison.
def ref_root(data: list[bytes]) -> bytes:
    if not data:
        return hashlib.sha256(b"").digest()
    if len(data) == 1:
        return hash_leaf(data[0])
    k = 1 << ((len(data) - 1).bit_length() - 1)
    return hash_children(ref_root(data[:k]), ref_root(data[k:]))


def ref_path(m: int, data: list[bytes]) -> list[bytes]:
    if len(data) == 1:
        return []
    k = 1 << ((len(data) - 1).bit_length() - 1)
    if m < k:
        return [*ref_path(m, data[:k]), ref_root(data[k:])]
    return [*ref_path(m - k, data[k:]), ref_root(data[:k])]


def ref_subproof(m: int, data: list[bytes], complete: bool) -> list[bytes]:
    if m == len(data):
        return [] if complete else [ref_root(data)]
    k = 1 << ((len(data) - 1).bit_length() - 1)
    if m <= k:
        return [*ref_subproof(m, data[:k], complete), ref_root(data[k:])]
    return [*ref_subproof(m - k, data[k:], False), ref_root(data[:k])]


DATA = [f"entry {i}".encode() for i in range(33)]
BIG = MerkleTree([hash_leaf(d) for d in DATA])


@pytest.mark.parametrize("size", range(1, len(DATA) + 1))
def test_every_small_tree_matches_the_reference(size: int) -> None:
    data = DATA[:size]
    root = ref_root(data)
    assert BIG.root(size) == root
    for index in range(size):
        proof = BIG.inclusion_proof(index, size)
        assert proof == ref_path(index, data)
        verify_inclusion(index, size, hash_leaf(data[index]), proof, root)
        with pytest.raises(ProofError):
            verify_inclusion(index, size, hash_leaf(b"forged"), proof, root)
    for old in range(1, size):
        proof = BIG.consistency_proof(old, size)
        assert proof == ref_subproof(old, data, True)
        verify_consistency(old, size, ref_root(data[:old]), root, proof)
        with pytest.raises(ProofError):
            verify_consistency(old, size, ref_root(DATA[1 : old + 1]), root, proof)


def test_corrupted_inclusion_proofs_fail() -> None:
    index, size = 5, 8
    leaf, root = hash_leaf(LEAVES[index]), ROOTS[size]
    proof = TREE.inclusion_proof(index, size)
    bad = [
        (index - 1, size, leaf, proof, root),
        (index + 1, size, leaf, proof, root),
        (index ^ 2, size, leaf, proof, root),
        (index, size * 2, leaf, proof, root),
        (index, size // 2, leaf, proof, root),
        (index, size, b"WrongLeaf", proof, root),
        (index, size, leaf, proof, ROOTS[0]),
        (index, size, leaf, [*proof, root], root),
        (index, size, leaf, [root, *proof], root),
        (index, size, leaf, proof[:-1], root),
        *[
            (
                index,
                size,
                leaf,
                [p if j != i else bytes([p[0] ^ 8]) + p[1:] for j, p in enumerate(proof)],
                root,
            )
            for i in range(len(proof))
        ],
    ]
    for args in bad:
        with pytest.raises(ProofError):
            verify_inclusion(*args)


def test_corrupted_consistency_proofs_fail() -> None:
    old, new = 6, 8
    proof = TREE.consistency_proof(old, new)
    r1, r2 = ROOTS[old], ROOTS[new]
    bad = [
        (old - 1, new, r1, r2, proof),
        (old + 1, new, r1, r2, proof),
        (old ^ 2, new, r1, r2, proof),
        (old, new * 2, r1, r2, proof),
        (old, new // 2, r1, r2, proof),
        (old, new, b"WrongRoot", r2, proof),
        (old, new, r1, b"WrongRoot", proof),
        (old, new, r2, r1, proof),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*proof, r1]),
        (old, new, r1, r2, [r2, *proof]),
        (old, new, r1, r2, [proof[0], *proof]),
        (old, new, r1, r2, proof[:-1]),
        (new, old, r2, r1, proof),
        (0, 0, r1, r1, [r1]),
        (1, 1, r1, r2, []),
    ]
    for args in bad:
        with pytest.raises(ProofError):
            verify_consistency(*args)


def test_out_of_range_requests_are_refused() -> None:
    for call in (
        lambda: TREE.root(9),
        lambda: TREE.inclusion_proof(8, 8),
        lambda: TREE.inclusion_proof(0, 0),
        lambda: TREE.inclusion_proof(-1, 8),
        lambda: TREE.consistency_proof(5, 4),
        lambda: TREE.consistency_proof(1, 9),
        lambda: TREE.leaf(8),
        lambda: root_from_inclusion_proof(0, 0, b"", []),
    ):
        with pytest.raises(ProofError):
            call()
    assert TREE.consistency_proof(0, 8) == [] == TREE.consistency_proof(8, 8)
    assert MerkleTree([]).root() == ROOTS[0]
