"""Sortable, unguessable identifiers: a millisecond timestamp then randomness (ULID layout)."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """e.g. new_id("ld") -> "ld_01jh3k9x2m7q4t8v0c5r6y1n2p"."""
    stamp = _encode(int(time.time() * 1000), 10)
    return f"{prefix}_{stamp}{_encode(secrets.randbits(80), 16)}"
