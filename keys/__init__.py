"""Cryptography and keys: age v1 sealing, the keyring, signatures, recovery shares."""

from keys.age import (
    CHUNK_SIZE,
    Sealer,
    UnsealError,
    forget_identities,
    generate_identity,
    normalize_recipient,
    open_stream,
    recipient_of,
    seal,
    unseal,
    unseal_bytes,
)
from keys.item_keys import (
    EPOCH_SECRET,
    forget_epoch,
    move_item,
    new_epoch,
    open_item,
    rewrap_item,
    seal_item,
    wrapped_identity,
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
    "EPOCH_SECRET",
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
    "forget_epoch",
    "forget_identities",
    "generate_identity",
    "generate_signing_key",
    "generate_token_key",
    "key_id",
    "move_item",
    "new_epoch",
    "normalize_recipient",
    "open_item",
    "open_stream",
    "public_pem",
    "recipient_of",
    "rewrap_item",
    "seal",
    "seal_item",
    "sign",
    "split_secret",
    "unseal",
    "unseal_bytes",
    "verify_ed25519",
    "verify_signature",
    "wrapped_identity",
]
