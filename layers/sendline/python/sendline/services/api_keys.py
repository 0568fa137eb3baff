"""Integrator API keys: stored as SHA-256 hashes, never in the clear.

Every integrator request authenticates its key, so lookups are remembered per execution
environment (`KeyLookups`): a key that exists for `FOUND_TTL_S` (60 s), one that does not for
`UNKNOWN_TTL_S` (10 s: a key issued a moment ago works within seconds, while a client retrying a
wrong key does not read the table on every request). Both kinds are bounded (least recently used
first out), in separate lists, so a flood of made-up keys cannot push real ones out.

Revoking a key keeps its record, marked `revoked_at`, so its history (leads, rate-limit windows)
still names it. The execution environment that revokes forgets the key at once; every other warm
one refuses it once its remembered lookup is `FOUND_TTL_S` old, so a revoked key stops working
everywhere within 60 s.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from sendline.adapters.records import Records
from sendline.domain.clock import utcnow
from sendline.errors import FieldProblem, NotFound, Unauthorized, ValidationFailed

FOUND_TTL_S = 60
UNKNOWN_TTL_S = 10
MAX_REMEMBERED = 1000  # of each kind, found and unknown
_KEY_ID = re.compile(r"key_[0-9a-f]{16}")


@dataclass(frozen=True)
class ApiIdentity:
    key_id: str
    name: str


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def key_id_for(raw_key: str) -> str:
    return "key_" + hash_key(raw_key)[:16]


class KeyLookups:
    """Key records by key hash (never the raw key), remembered for a while; see the module's
    notes. Times are the `now` each call is given."""

    def __init__(self, records: Records, *, found_ttl_s: float = FOUND_TTL_S,
                 unknown_ttl_s: float = UNKNOWN_TTL_S, max_entries: int = MAX_REMEMBERED):
        self._records = records
        self._ttl = {True: found_ttl_s, False: unknown_ttl_s}
        self._max_entries = max_entries
        # found -> {key hash: (remembered until, the key's record or None)}
        self._remembered: dict[bool, OrderedDict[str, tuple[float, dict[str, Any] | None]]] = {
            True: OrderedDict(), False: OrderedDict()}
        self._lock = threading.Lock()

    def find(self, key_hash: str, now: datetime) -> dict[str, Any] | None:
        moment = now.timestamp()
        with self._lock:
            for entries in self._remembered.values():
                hit = entries.get(key_hash)
                if hit is None:
                    continue
                if moment < hit[0]:
                    entries.move_to_end(key_hash)
                    return hit[1]
                del entries[key_hash]
        item = self._records.get_api_key(key_hash)
        found = item is not None
        with self._lock:
            entries = self._remembered[found]
            entries[key_hash] = (moment + self._ttl[found], item)
            entries.move_to_end(key_hash)
            while len(entries) > self._max_entries:
                entries.popitem(last=False)
        return item

    def forget(self, key_hash: str) -> None:
        with self._lock:
            for entries in self._remembered.values():
                entries.pop(key_hash, None)

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._remembered.values())


# One per records object, so per execution environment (runtime.records() is built once), and
# a test that builds new records starts with nothing remembered.
_lookups: WeakKeyDictionary[Records, KeyLookups] = WeakKeyDictionary()
_lookups_lock = threading.Lock()


def key_lookups(records: Records) -> KeyLookups:
    with _lookups_lock:
        lookups = _lookups.get(records)
        if lookups is None:
            lookups = _lookups[records] = KeyLookups(records)
        return lookups


def register_api_key(raw_key: str, name: str, records: Records | None = None) -> str:
    """Store a key (idempotent: the same key keeps its id; a revoked key stays revoked).
    Returns the key id."""
    if records is None:
        from sendline import runtime

        records = runtime.records()
    key_id = key_id_for(raw_key)
    records.put_api_key(hash_key(raw_key), key_id, name, hint=f"{raw_key[:7]}…{raw_key[-4:]}", now=utcnow())
    key_lookups(records).forget(hash_key(raw_key))
    return key_id


def issue_api_key(records: Records, name: object) -> dict[str, Any]:
    """A new integrator key; the raw key is shown once, in this answer, and never stored."""
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise ValidationFailed(FieldProblem("name", "must be text of 1 to 100 characters"))
    raw_key = "sk_live_" + secrets.token_urlsafe(32)
    key_id = register_api_key(raw_key, name.strip(), records)
    return {"success": True, "key_id": key_id, "name": name.strip(), "api_key": raw_key}


def key_view(item: dict[str, Any]) -> dict[str, Any]:
    """A key as operators see it: never the key itself, only its first and last characters."""
    return {"key_id": item["key_id"], "name": item["name"], "hint": item.get("hint"),
            "created_at": item.get("created_at"), "status": "revoked" if item.get("revoked_at") else "active",
            "revoked_at": item.get("revoked_at")}


def list_api_keys(records: Records) -> list[dict[str, Any]]:
    return [key_view(item) for item in records.list_api_keys()]


def revoke_api_key(records: Records, key_id: str, now: datetime) -> dict[str, Any]:
    """Mark a key revoked, keeping its record. Revoking a revoked key changes nothing and answers
    the same (DELETE is idempotent): `revoked_at` stays the first revocation's time."""
    found = records.find_api_key(key_id) if _KEY_ID.fullmatch(key_id) else None
    if found is None:
        raise NotFound(FieldProblem("key_id", "no API key with this id"))
    key_hash, item = found
    if not item.get("revoked_at"):
        item = records.revoke_api_key(key_hash, now)
    key_lookups(records).forget(key_hash)
    return {"success": True, **key_view(item)}


def authenticate(records: Records, raw_key: str | None, now: datetime) -> ApiIdentity:
    if not raw_key or not raw_key.strip():
        raise Unauthorized(FieldProblem("api_key", "missing: send it in the X-API-Key header or ?api_key="))
    item = key_lookups(records).find(hash_key(raw_key.strip()), now)
    if not item:
        raise Unauthorized(FieldProblem("api_key", "not a valid API key"))
    if item.get("revoked_at"):
        raise Unauthorized(FieldProblem("api_key", "revoked: ask the operator for a new key"))
    return ApiIdentity(key_id=item["key_id"], name=item["name"])
