"""Unguessable identifiers for items, objects, cases and accounts."""

from __future__ import annotations

import base64
import re
import secrets

# What new_id makes: every id a URL or a command takes is checked against it before use.
ID_SHAPE = re.compile(r"[a-z2-7]{26}")


def new_id() -> str:
    """Return 128 random bits as 26 lowercase base32 characters (no padding)."""
    # 128 bits: guessing an item or object name is as hard as guessing a key.
    return base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()
