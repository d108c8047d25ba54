"""C2SP signed notes, checkpoints and verifier keys, against the Go note package's vectors."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.vault.ledger.signers import DigestSigner, FixedSigner
from vault.ledger import note
from vault.ledger.note import Checkpoint, NoteError

VECTOR: dict[str, Any] = json.loads(
    (Path(__file__).parents[3] / "vectors" / "rfc9162" / "signed-note.json").read_text()
)
NAME, PUBLIC = note.parse_verifier_key(VECTOR["verifier_key"])
SIGNATURE = base64.b64decode(VECTOR["signed"].split(" ")[-1])[4:]


def vector_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    # Stands in for Ed25519 verification: only the published signature is valid.
    return (public_key, message, signature) == (PUBLIC, VECTOR["text"].encode(), SIGNATURE)


def test_verifier_key_and_key_id_match_the_go_vector() -> None:
    assert NAME == "PeterNeumann"
    assert note.key_id(NAME, PUBLIC).hex() == VECTOR["key_id"]
    assert note.verifier_key(NAME, PUBLIC) == VECTOR["verifier_key"]
    # The signer key's ID is the same (it encodes the seed, not the public key).
    assert VECTOR["signer_key"].split("+")[3] == VECTOR["key_id"]


def test_signing_gives_the_go_note_byte_for_byte() -> None:
    signer = FixedSigner(PUBLIC, VECTOR["text"].encode(), SIGNATURE)
    assert note.sign(VECTOR["text"], NAME, signer) == VECTOR["signed"]


def test_opening_the_go_note() -> None:
    text, signatures = note.split(VECTOR["signed"])
    assert text == VECTOR["text"]
    assert signatures == [(NAME, bytes.fromhex(VECTOR["key_id"]), SIGNATURE)]
    assert note.open_note(VECTOR["signed"], VECTOR["verifier_key"], vector_verify) == text
    # Another key's signature is ignored, before or after ours.
    other = VECTOR["other_signature_line"]
    for signed in (VECTOR["signed"] + other, f"{text}\n{other}{VECTOR['signed'][len(text) + 1 :]}"):
        assert note.open_note(signed, VECTOR["verifier_key"], vector_verify) == text


def test_notes_without_a_valid_signature_by_the_key_are_refused() -> None:
    text = VECTOR["text"]
    other = VECTOR["other_signature_line"]
    with pytest.raises(NoteError, match="no verifiable signature"):
        note.open_note(f"{text}\n{other}", VECTOR["verifier_key"], vector_verify)
    with pytest.raises(NoteError, match="no verifiable signature"):
        note.open_note(VECTOR["signed"], VECTOR["other_verifier_key"], vector_verify)
    line = VECTOR["signed"][len(text) + 1 :]
    forged = line[:60] + "ABCD" + line[64:]
    with pytest.raises(NoteError, match="invalid signature for key PeterNeumann\\+c74f20a3"):
        note.open_note(f"{text}\n{forged}", VECTOR["verifier_key"], vector_verify)
    altered = VECTOR["signed"].replace("cryptography", "cryptographY")
    with pytest.raises(NoteError, match="invalid signature"):
        note.open_note(altered, VECTOR["verifier_key"], vector_verify)


@pytest.mark.parametrize(
    "bad",
    [
        VECTOR["text"],
        VECTOR["text"] + "\n",
        VECTOR["signed"][:-1],
        "\x01" + VECTOR["signed"],
        VECTOR["signed"].replace("— PeterNeumann", "— Bad Name"),
        VECTOR["signed"] + "Unexpected line.\n",
        VECTOR["signed"].replace("— ", "-- "),
        VECTOR["signed"].replace("x08go", "x08g!"),
    ],
)
def test_malformed_notes_are_refused(bad: str) -> None:
    with pytest.raises(NoteError):
        note.open_note(bad, VECTOR["verifier_key"], vector_verify)


def test_mangled_verifier_keys_are_refused() -> None:
    vkey = VECTOR["verifier_key"]
    for index in range(len(vkey)):
        mangled = vkey[:index] + chr(ord(vkey[index]) + 1) + vkey[index + 1 :]
        with pytest.raises(NoteError):
            note.parse_verifier_key(mangled)
    for bad in (
        vkey[:-4],
        vkey + "AAAA",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ):
        with pytest.raises(NoteError):
            note.parse_verifier_key(bad)


def test_checkpoint_text_round_trips() -> None:
    root = bytes(range(32))
    checkpoint = Checkpoint(origin="vault.example/log", size=20852163, root=root)
    text = checkpoint.text()
    assert text == f"vault.example/log\n20852163\n{base64.b64encode(root).decode()}\n"
    assert note.parse_checkpoint(text) == checkpoint
    signer = DigestSigner()
    signed = note.sign(text, "vault.example/log", signer)
    vkey = note.verifier_key("vault.example/log", signer.public_key_bytes())
    assert note.parse_checkpoint(note.open_note(signed, vkey, signer.verify)) == checkpoint


@pytest.mark.parametrize(
    "bad",
    [
        "log\n01\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "log\n-1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "log\n1\nAAAA\n",
        "log\n1\n",
        "log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nextension\n",
    ],
)
def test_malformed_checkpoints_are_refused(bad: str) -> None:
    with pytest.raises(NoteError):
        note.parse_checkpoint(bad)


@pytest.mark.parametrize("name", ["", "with space", "a+b", "tab\there"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(NoteError):
        note.key_id(name, PUBLIC)
    with pytest.raises(NoteError):
        Checkpoint(origin=name, size=1, root=bytes(32)).text()


def test_real_ed25519_key_reproduces_the_go_note() -> None:
    import keys

    # The Go signer key is base64(0x01 || 32-byte seed) after its name and key ID.
    raw = base64.b64decode(VECTOR["signer_key"].split("+", 4)[4])
    assert raw[:1] == b"\x01"
    signer = keys.LogSigner.from_bytes(raw[1:])
    assert signer.public_key_bytes() == PUBLIC
    assert note.sign(VECTOR["text"], NAME, signer) == VECTOR["signed"]
    text = note.open_note(VECTOR["signed"], VECTOR["verifier_key"], keys.verify_ed25519)
    assert text == VECTOR["text"]
    # The other key's published signature verifies too, with its own verifier key.
    other = f"{VECTOR['text']}\n{VECTOR['other_signature_line']}"
    assert note.open_note(other, VECTOR["other_verifier_key"], keys.verify_ed25519) == text


def test_real_ed25519_checkpoint_round_trip() -> None:
    import keys

    signer = keys.LogSigner.generate()
    while "+" not in note.verifier_key("vault.example/log", signer.public_key_bytes())[-44:]:
        signer = keys.LogSigner.generate()  # make sure a '+' inside the base64 key is handled
    checkpoint = Checkpoint(origin="vault.example/log", size=3, root=bytes(32))
    signed = note.sign(checkpoint.text(), checkpoint.origin, signer)
    vkey = note.verifier_key(checkpoint.origin, signer.public_key_bytes())
    assert note.parse_checkpoint(note.open_note(signed, vkey, keys.verify_ed25519)) == checkpoint
    tampered = signed.replace("\n3\n", "\n4\n")
    with pytest.raises(NoteError, match="invalid signature"):
        note.open_note(tampered, vkey, keys.verify_ed25519)
    other = note.verifier_key(checkpoint.origin, keys.LogSigner.generate().public_key_bytes())
    with pytest.raises(NoteError, match="no verifiable signature"):
        note.open_note(signed, other, keys.verify_ed25519)
