"""The independent verifier (tests/ledger_verifier.py) against published vectors and the vault."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

import keys
from tests import ledger_verifier as outsider
from tests.unit.vault.ledger.signers import MemoryStore
from vault import ledger
from vault.ledger import actions, checkpoints

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[3] / "vectors" / "rfc9162" / "vectors.json").read_text()
)
NOTE: dict[str, Any] = json.loads(
    (Path(__file__).parents[3] / "vectors" / "rfc9162" / "signed-note.json").read_text()
)
LEAVES = [bytes.fromhex(leaf) for leaf in VECTORS["leaves"]]
ROOTS = [bytes.fromhex(root) for root in VECTORS["roots"]]
ORIGIN = "vault.test/log"


@pytest.mark.parametrize("case", VECTORS["inclusion"], ids=lambda c: f"{c['index']}-{c['size']}")
def test_outsider_accepts_published_inclusion_proofs(case: dict[str, Any]) -> None:
    index, size = case["index"], case["size"]
    proof = [bytes.fromhex(h) for h in case["proof"]]
    leaf = outsider.leaf_hash(LEAVES[index])
    assert outsider.verify_inclusion(index, size, leaf, proof, ROOTS[size])
    assert not outsider.verify_inclusion(index, size, outsider.leaf_hash(b"x"), proof, ROOTS[size])
    assert not outsider.verify_inclusion(index, size * 2, leaf, proof, ROOTS[size])
    assert not outsider.verify_inclusion(index, size, leaf, [*proof, ROOTS[size]], ROOTS[size])


@pytest.mark.parametrize(
    "case", VECTORS["consistency"], ids=lambda c: f"{c['old_size']}-{c['new_size']}"
)
def test_outsider_accepts_published_consistency_proofs(case: dict[str, Any]) -> None:
    m, n = case["old_size"], case["new_size"]
    proof = [bytes.fromhex(h) for h in case["proof"]]
    assert outsider.verify_consistency(m, n, ROOTS[m], ROOTS[n], proof)
    if proof:
        assert not outsider.verify_consistency(m, n, ROOTS[n], ROOTS[m], proof)
        assert not outsider.verify_consistency(m, n, ROOTS[m], ROOTS[n], proof[:-1])
        assert not outsider.verify_consistency(m - 1, n, ROOTS[m - 1], ROOTS[n], proof)


def test_outsider_reads_the_go_verifier_key() -> None:
    name, key_id, public = outsider.parse_vkey(NOTE["verifier_key"])
    assert (name, key_id.hex(), len(public)) == ("PeterNeumann", "c74f20a3", 32)


def wire(value: dict[str, Any]) -> dict[str, Any]:
    # What a client gets: the API's JSON, serialised and parsed again.
    result: dict[str, Any] = json.loads(json.dumps(value))
    return result


def test_outsider_verifies_the_vaults_proofs(sessions: sessionmaker[Session]) -> None:
    signer, store = keys.LogSigner.generate(), MemoryStore()
    vkey = ledger.verifier_key(ORIGIN, signer.public_key_bytes())
    for count in (5, 8):
        with sessions.begin() as session:
            for n in range(count):
                ledger.append(session, actor="u1", action=actions.SEARCH, details={"n": n})
        with sessions.begin() as session:
            checkpoints.create(session, signer=signer, store=store, origin=ORIGIN)
    with sessions() as session:
        proofs = [wire(ledger.inclusion(session, seq).to_json()) for seq in range(13)]
        old_proof = wire(ledger.inclusion(session, 2, size=5).to_json())
        consistency = wire(ledger.consistency(session, 5, 13).to_json())
    for seq, proof in enumerate(proofs):
        entry = outsider.check_inclusion(proof, vkey, keys.verify_ed25519)
        assert entry["seq"] == seq
    outsider.check_inclusion(old_proof, vkey, keys.verify_ed25519)
    outsider.check_consistency(consistency, vkey, keys.verify_ed25519)

    stranger = ledger.verifier_key(ORIGIN, keys.LogSigner.generate().public_key_bytes())
    forged_entry = dict(proofs[3], entry=proofs[3]["entry"].replace('"n":3', '"n":4'))
    swapped = dict(proofs[3], checkpoint=old_proof["checkpoint"])
    other_seq = dict(proofs[3], seq=4)
    bad_hash = dict(proofs[3], hashes=[proofs[4]["hashes"][0], *proofs[3]["hashes"][1:]])
    for bad, key in [
        (proofs[3], stranger),
        (forged_entry, vkey),
        (swapped, vkey),
        (other_seq, vkey),
        (bad_hash, vkey),
    ]:
        with pytest.raises(ValueError):
            outsider.check_inclusion(bad, key, keys.verify_ed25519)
    forged_note = dict(
        consistency, new_checkpoint=consistency["new_checkpoint"].replace("13", "14")
    )
    reversed_sizes = dict(
        consistency,
        old_checkpoint=consistency["new_checkpoint"],
        new_checkpoint=consistency["old_checkpoint"],
        old_size=13,
        new_size=5,
    )
    for bad, key in [
        (consistency, stranger),
        (forged_note, vkey),
        (reversed_sizes, vkey),
        (dict(consistency, hashes=consistency["hashes"][:-1]), vkey),
    ]:
        with pytest.raises(ValueError):
            outsider.check_consistency(bad, key, keys.verify_ed25519)
