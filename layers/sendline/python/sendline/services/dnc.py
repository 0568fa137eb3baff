"""The do-not-contact list: every send path checks it, the worker at the last moment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sendline.adapters.records import Records
from sendline.domain.phones import PhoneRejected, normalise_phone
from sendline.errors import FieldProblem, ValidationFailed

MAX_PHONES_PER_REQUEST = 1000


def add_to_dnc(records: Records, body: object, source: str, now: datetime) -> dict[str, Any]:
    """Add `{"phones": [...]}` (or `{"phone": ...}`); bad entries are reported one by one and
    never stop the rest."""
    phones = body.get("phones", body.get("phone")) if isinstance(body, dict) else None
    if isinstance(phones, (str, int)):
        phones = [phones]
    if not isinstance(phones, list) or not phones:
        raise ValidationFailed(FieldProblem("phones", "must be a non-empty list of phone numbers"))
    if len(phones) > MAX_PHONES_PER_REQUEST:
        raise ValidationFailed(FieldProblem("phones", f"at most {MAX_PHONES_PER_REQUEST} numbers per request"))
    added, already, rejected = [], [], []
    for index, raw in enumerate(phones):
        try:
            phone = normalise_phone(raw).e164
        except PhoneRejected as exc:
            rejected.append({"field": f"phones[{index}]", "reason": exc.reason})
            continue
        (added if records.add_dnc(phone, source, now) else already).append(phone)
    return {"success": True, "added": len(added), "already_listed": len(already), "rejected": rejected,
            "phones": added + already}


def check_dnc(records: Records, raw_phone: object) -> dict[str, Any]:
    try:
        phone = normalise_phone(raw_phone).e164
    except PhoneRejected as exc:
        raise ValidationFailed(FieldProblem("phone", exc.reason)) from None
    entry = records.get_dnc(phone)
    return {"success": True, "phone": phone, "dnc": entry is not None,
            "source": entry.get("source") if entry else None, "added_at": entry.get("added_at") if entry else None}


def remove_from_dnc(records: Records, raw_phone: object) -> dict[str, Any]:
    try:
        phone = normalise_phone(raw_phone).e164
    except PhoneRejected as exc:
        raise ValidationFailed(FieldProblem("phone", exc.reason)) from None
    return {"success": True, "phone": phone, "removed": records.remove_dnc(phone)}
