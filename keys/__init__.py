"""Cryptography and keys: age v1 sealing, the keyring, signatures, recovery shares."""

__all__: list[str] = []
