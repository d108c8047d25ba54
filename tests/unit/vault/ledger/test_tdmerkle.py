"""The proof verifiers against transparency-dev/merkle's published probes (RFC 9162 proofs).

The data is read where it was published to (`tests.services.vectors`), never copied: every
file of `testdata/inclusion` and `testdata/consistency` at transparency-dev/merkle commit
`SOURCE_COMMIT`, each a proof with `wantErr`. Both the vault's verifier (`vault.ledger.tree`)
and the outsider's (`tests/ledger_verifier.py`) must accept exactly the proofs it accepts.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import pytest

from tests import ledger_verifier as outsider
from tests.services import vectors
from vault.ledger.errors import ProofError
from vault.ledger.tree import verify_consistency, verify_inclusion

SOURCE_COMMIT: Final = "417fb0c314750d94e53942e9f92e79b6d35915db"
# The one probe where we refuse what the Go verifier accepts: equal sizes, an empty proof and
# two equal 12-byte "roots". A root that is not a 32-byte hash is refused here on purpose (the
# Go code only compares the bytes); every other probe agrees.
STRICTER: Final = frozenset({"consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"})


@pytest.fixture(scope="module")
def testdata() -> Path:
    folder = vectors("tdmerkle")
    commit = (folder / "COMMIT").read_text().strip()
    assert commit == SOURCE_COMMIT, f"tdmerkle is from {commit}, these tests know {SOURCE_COMMIT}"
    return folder / "testdata"


def probes(testdata: Path, kind: str) -> list[tuple[str, dict[str, Any]]]:
    files = sorted((testdata / kind).rglob("*.json"))
    return [(str(f.relative_to(testdata)), json.loads(f.read_text())) for f in files]


def b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def vault_accepts(check: Callable[[], None]) -> bool:
    try:
        check()
    except ProofError:
        return False
    return True


def disagreements(
    cases: list[tuple[str, dict[str, Any]]],
    vault_check: Callable[[dict[str, Any]], bool],
    outsider_check: Callable[[dict[str, Any]], bool],
) -> list[str]:
    wrong = []
    for name, case in cases:
        expected = not case["wantErr"] and name not in STRICTER
        for who, accepted in (("vault", vault_check(case)), ("outsider", outsider_check(case))):
            if accepted != expected:
                wrong.append(f"{who} {'accepts' if accepted else 'refuses'} {name}")
    return wrong


def test_inclusion_probes(testdata: Path) -> None:
    cases = probes(testdata, "inclusion")
    assert len(cases) >= 90, "the inclusion probes are incomplete"

    def args(case: dict[str, Any]) -> tuple[int, int, bytes, list[bytes], bytes]:
        proof = [b64(p) for p in case["proof"] or []]
        return case["leafIdx"], case["treeSize"], b64(case["leafHash"]), proof, b64(case["root"])

    assert (
        disagreements(
            cases,
            lambda c: vault_accepts(lambda: verify_inclusion(*args(c))),
            lambda c: outsider.verify_inclusion(*args(c)),
        )
        == []
    )


def test_consistency_probes(testdata: Path) -> None:
    cases = probes(testdata, "consistency")
    assert len(cases) >= 90, "the consistency probes are incomplete"
    assert {name for name, _ in cases} >= STRICTER

    def args(case: dict[str, Any]) -> tuple[int, int, bytes, bytes, list[bytes]]:
        proof = [b64(p) for p in case["proof"] or []]
        return case["size1"], case["size2"], b64(case["root1"]), b64(case["root2"]), proof

    assert (
        disagreements(
            cases,
            lambda c: vault_accepts(lambda: verify_consistency(*args(c))),
            lambda c: outsider.verify_consistency(*args(c)),
        )
        == []
    )


def test_size_zero_and_short_hashes_are_refused() -> None:
    empty = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    root = bytes(range(32))
    with pytest.raises(ProofError, match="size 0"):
        verify_consistency(0, 5, empty, root, [])
    assert not outsider.verify_consistency(0, 5, empty, root, [])
    for short in (b"", root[:31], root + b"\x00"):
        with pytest.raises(ProofError, match="32-byte"):
            verify_consistency(3, 3, short, short, [])
        with pytest.raises(ProofError, match="32-byte"):
            verify_inclusion(0, 1, short, [], short)
        with pytest.raises(ProofError, match="32-byte"):
            verify_consistency(1, 2, root, root, [short])
        assert not outsider.verify_consistency(3, 3, short, short, [])
        assert not outsider.verify_inclusion(0, 1, short, [], short)


def test_absent_vectors_skip_with_the_reason_or_fail_when_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TVAULT_TEST_VECTORS", str(tmp_path))
    monkeypatch.setenv("TVAULT_TEST_REQUIRE", "postgres")
    with pytest.raises(pytest.skip.Exception, match="tdmerkle/COMMIT"):
        vectors("tdmerkle")
    monkeypatch.setenv("TVAULT_TEST_REQUIRE", "postgres,vectors")
    with pytest.raises(pytest.fail.Exception, match="required by TVAULT_TEST_REQUIRE"):
        vectors("tdmerkle")
