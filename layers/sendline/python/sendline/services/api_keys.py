"""Integrator API keys: stored as SHA-256 hashes, never in the clear."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sendline.adapters.records import Records
from sendline.domain.clock import utcnow
from sendline.errors import FieldProblem, Unauthorized, ValidationFailed


@dataclass(frozen=True)
class ApiIdentity:
    key_id: str
    name: str


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def key_id_for(raw_key: str) -> str:
    return "key_" + hash_key(raw_key)[:16]


def register_api_key(raw_key: str, name: str, records: Records | None = None) -> str:
    """Store a key (idempotent: the same key keeps its id). Returns the key id."""
    if records is None:
        from sendline import runtime

        records = runtime.records()
    key_id = key_id_for(raw_key)
    records.put_api_key(hash_key(raw_key), key_id, name, hint=f"{raw_key[:7]}…{raw_key[-4:]}", now=utcnow())
    return key_id


def issue_api_key(records: Records, name: object) -> dict[str, Any]:
    """A new integrator key; the raw key is shown once, in this answer, and never stored."""
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise ValidationFailed(FieldProblem("name", "must be text of 1 to 100 characters"))
    raw_key = "sk_live_" + secrets.token_urlsafe(32)
    key_id = register_api_key(raw_key, name.strip(), records)
    return {"success": True, "key_id": key_id, "name": name.strip(), "api_key": raw_key}


def list_api_keys(records: Records) -> list[dict[str, Any]]:
    return records.list_api_keys()


def authenticate(records: Records, raw_key: str | None) -> ApiIdentity:
    if not raw_key:
        raise Unauthorized(FieldProblem("api_key", "missing: send it in the X-API-Key header or ?api_key="))
    item = records.get_api_key(hash_key(raw_key.strip()))
    if not item:
        raise Unauthorized(FieldProblem("api_key", "not a valid API key"))
    return ApiIdentity(key_id=item["key_id"], name=item["name"])
