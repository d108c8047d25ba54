"""Cryptography and keys: age v1 sealing, the keyring, signatures, recovery shares."""

from keys.age import (
    CHUNK_SIZE,
    Sealer,
    UnsealError,
    forget_identities,
    generate_identity,
    open_stream,
    recipient_of,
    seal,
    unseal,
    unseal_bytes,
)
from keys.keyring import KdfParams, Keyring, KeyringError
from keys.ports import KeyStore
from keys.recovery import MAX_SHARES, RecoveryError, combine_shares, split_secret
from keys.service_keys import LogSigner, generate_token_key, public_pem, verify_ed25519
from keys.signatures import (
    SSHSIG_NAMESPACE,
    SignatureError,
    canonical_json,
    generate_signing_key,
    key_id,
    sign,
    verify_signature,
)

__all__ = [
    "CHUNK_SIZE",
    "MAX_SHARES",
    "SSHSIG_NAMESPACE",
    "KdfParams",
    "KeyStore",
    "Keyring",
    "KeyringError",
    "LogSigner",
    "RecoveryError",
    "Sealer",
    "SignatureError",
    "UnsealError",
    "canonical_json",
    "combine_shares",
    "forget_identities",
    "generate_identity",
    "generate_signing_key",
    "generate_token_key",
    "key_id",
    "open_stream",
    "public_pem",
    "recipient_of",
    "seal",
    "sign",
    "split_secret",
    "unseal",
    "unseal_bytes",
    "verify_ed25519",
    "verify_signature",
]
