"""The vault's log-signing (Ed25519) and token-signing (ES256) keys."""

from __future__ import annotations

import pytest

import keys

# RFC 8032 7.1, TEST 2: a known-answer vector for pure Ed25519.
RFC8032_SEED = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
RFC8032_PUBLIC = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
RFC8032_SIGNATURE = bytes.fromhex(
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
)


def test_log_signer_matches_rfc8032_vector() -> None:
    signer = keys.LogSigner.from_bytes(RFC8032_SEED)
    assert signer.public_key_bytes() == RFC8032_PUBLIC
    assert signer.sign(b"\x72") == RFC8032_SIGNATURE
    assert signer.seed() == RFC8032_SEED
    assert keys.verify_ed25519(RFC8032_PUBLIC, b"\x72", RFC8032_SIGNATURE)
    assert not keys.verify_ed25519(RFC8032_PUBLIC, b"\x73", RFC8032_SIGNATURE)


def test_generated_signer_round_trips_and_rejects_alteration() -> None:
    signer = keys.LogSigner.generate()
    again = keys.LogSigner.from_bytes(signer.seed())
    signature = again.sign(b"checkpoint")
    assert keys.verify_ed25519(signer.public_key_bytes(), b"checkpoint", signature)
    assert not keys.verify_ed25519(signer.public_key_bytes(), b"checkpoinT", signature)
    assert not keys.verify_ed25519(b"short", b"checkpoint", signature)
    assert not keys.verify_ed25519(signer.public_key_bytes(), b"checkpoint", signature[:-1])
    assert signer.seed().hex() not in repr(signer)


def test_log_signer_refuses_bad_seed() -> None:
    with pytest.raises(ValueError):
        keys.LogSigner.from_bytes(b"\x00" * 31)


def test_token_key_is_p256_and_separate_each_time() -> None:
    private = keys.generate_token_key()
    assert private.startswith("-----BEGIN PRIVATE KEY-----")
    public = keys.public_pem(private)
    assert public.startswith("-----BEGIN PUBLIC KEY-----")
    assert keys.public_pem(keys.generate_token_key()) != public


def test_token_key_round_trips_through_joserfc() -> None:
    # An independent JOSE library signs and verifies ES256 with the keys we produce.
    from joserfc import jwt
    from joserfc.jwk import ECKey

    private = keys.generate_token_key()
    token = jwt.encode({"alg": "ES256"}, {"sub": "therapist"}, ECKey.import_key(private))
    claims = jwt.decode(token, ECKey.import_key(keys.public_pem(private)), algorithms=["ES256"])
    assert claims.claims["sub"] == "therapist"


def test_public_pem_refuses_other_keys() -> None:
    with pytest.raises(ValueError):
        keys.public_pem("not a pem")
