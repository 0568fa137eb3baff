"""The do-not-contact list: every send path checks it, the worker at the last moment.

Each entry says where it came from (`source`) and when (`added_at`): an opt-out keyword or
phrase, an operator, an integrator's API call, a CSV import, or auto-DNC, which lists a number
whose texts keep failing with the carrier error codes the account settings name (the entry then
carries the `code` and the `message_ids` that caused it).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from sendline.adapters.records import Records
from sendline.domain.clock import iso
from sendline.domain.contacts_csv import spreadsheet_text
from sendline.domain.phones import PhoneRejected, mask_phone, normalise_phone
from sendline.domain.status import MessageStatus
from sendline.errors import FieldProblem, ValidationFailed
from sendline.services.settings import current_settings

logger = Logger(child=True)

MAX_PHONES_PER_REQUEST = 1000
SOURCES = ("keyword", "phrase", "operator", "api", "import", "auto_dnc")
# With a filter that drops entries (source, part of a number), a page reads at most this many
# entries; a page can then hold fewer than `limit`, and `next_cursor` goes on from there.
MAX_EXAMINED_PER_PAGE = 1000
EXPORT_COLUMNS = ("phone", "source", "added_at", "code", "detail")
_FAILED = frozenset({MessageStatus.UNDELIVERED.value, MessageStatus.FAILED.value})
_PHONE_SEPARATORS = re.compile(r"[\s().-]")
_OFFSET_AS_SPACE = re.compile(r" (\d\d:?\d\d)$")


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


# -- the operator's search ----------------------------------------------------------------------
def entry_view(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {"phone": entry["phone"], "source": entry.get("source"), "added_at": entry.get("added_at"),
            "detail": entry.get("detail"), "code": entry.get("code"), "message_ids": entry.get("message_ids") or []}


def search_dnc(records: Records, query: Mapping[str, str | None], limit: int) -> dict[str, Any]:
    """A page of the list, newest first: `source`, `q` (the start of a number with its `+`, or
    digits anywhere in it), `since` and `until` (a date, whole days, or an ISO 8601 time) filter
    it; `cursor` is the previous page's `next_cursor`."""
    source = (query.get("source") or "").strip() or None
    if source is not None and source not in SOURCES:
        raise ValidationFailed(FieldProblem("source", f"must be one of {', '.join(SOURCES)}"))
    since = _moment(query, "since", end_of_day=False)
    until = _moment(query, "until", end_of_day=True)
    if since and until and since > until:
        raise ValidationFailed(FieldProblem("since", "must not be after until"))
    phone, matches = _phone_filter(query.get("q"))

    def keep(entry: Mapping[str, Any]) -> bool:
        return (source is None or entry.get("source") == source) and (matches is None or matches(entry["phone"]))

    if phone is not None:
        # A whole number is one key read, whatever the list's size.
        entry = records.get_dnc(phone)
        found = [entry] if entry and keep(entry) and (since or "") <= entry["added_at"] <= (until or "~") else []
        return {"entries": [entry_view(e) for e in found], "next_cursor": None}
    filtered = source is not None or matches is not None
    try:
        entries, position = records.list_dnc(after=_position(query.get("cursor")), since=since, until=until,
                                             keep=keep if filtered else None, limit=limit,
                                             examine=MAX_EXAMINED_PER_PAGE if filtered else None)
    except ValueError:
        raise ValidationFailed(FieldProblem("cursor", "is not a cursor this listing gave")) from None
    return {"entries": [entry_view(e) for e in entries], "next_cursor": _cursor(position)}


def _moment(query: Mapping[str, str | None], name: str, *, end_of_day: bool) -> str | None:
    raw = (query.get(name) or "").strip()
    if not raw:
        return None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            moment = datetime.combine(day, time.min, UTC)
            return iso(moment + timedelta(days=1) - timedelta(milliseconds=1) if end_of_day else moment)
        # A '+' of the offset that the query string turned into a space is put back.
        moment = datetime.fromisoformat(_OFFSET_AS_SPACE.sub(r"+\1", raw))
    except ValueError:
        raise ValidationFailed(FieldProblem(name, "must be a date (2026-03-01) or an ISO 8601 time "
                                                  "(2026-03-01T14:00:00Z)")) from None
    return iso(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _phone_filter(raw: str | None) -> tuple[str | None, Callable[[str], bool] | None]:
    """(a whole number to read, None) or (None, a test on an entry's E.164 phone, or None)."""
    text = raw or ""
    # An unencoded '+' reaches us as a space: " 1212" was typed "+1212".
    plus = text.strip().startswith("+") or (text.startswith(" ") and text.strip()[:1].isdigit())
    digits = _PHONE_SEPARATORS.sub("", text).lstrip("+")
    if not digits:
        return None, None
    if not digits.isdigit() or len(digits) > 15:
        raise ValidationFailed(FieldProblem("q", "must be digits of a phone number, or its start with '+'"))
    try:
        return normalise_phone(("+" if plus else "") + digits).e164, None
    except PhoneRejected:
        pass
    if plus:
        return None, lambda phone: phone.startswith("+" + digits)
    return None, lambda phone: digits in phone


def _cursor(position: str | None) -> str | None:
    return base64.urlsafe_b64encode(position.encode()).decode().rstrip("=") if position else None


def _position(cursor: str | None) -> str | None:
    """The list position a cursor stands for; one the listing never gave fails there."""
    if not cursor:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ""


# -- export -------------------------------------------------------------------------------------
def export_rows(records: Records) -> Iterator[str]:
    """The whole list as CSV text (EXPORT_COLUMNS), newest first, one line at a time. A cell a
    spreadsheet would run as a formula (a detail starting with '=') is made text."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for entry in records.all_dnc():
        writer.writerow([spreadsheet_text(str(entry.get(column) or "")) for column in EXPORT_COLUMNS])
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    yield out.getvalue()


def export_csv(records: Records) -> str:
    return "".join(export_rows(records))


# -- auto-DNC from delivery failures --------------------------------------------------------------
def record_failure(records: Records, message: Mapping[str, Any], now: datetime) -> bool:
    """Count a message that ended `failed` or `undelivered` against its recipient when the
    carrier's code is one the auto-DNC settings name, and list the number (source `auto_dnc`,
    with the code and the failed messages) once its failures reach the threshold, or at once
    for an immediate code. A failure reported twice for one message counts once. Returns True
    when the number was put on the list."""
    code = str(message.get("error_code") or "")
    if message.get("status") not in _FAILED or not code.isdigit():
        return False
    rules = current_settings(records).auto_dnc
    if not rules.enabled or int(code) not in rules.codes:
        return False
    phone = message["to"]
    strikes = records.add_dnc_strike(phone, message["message_id"], code, now)
    failures = len(strikes["message_ids"])
    if failures < rules.failures_before_dnc and int(code) not in rules.immediate_codes:
        return False
    detail = f"error {code}" + (f" after {failures} failed messages" if failures > 1 else "")
    listed = records.add_dnc(phone, "auto_dnc", now, detail, code=code, message_ids=strikes["message_ids"])
    if listed:
        logger.info("auto-DNC", extra={"to": mask_phone(phone), "error_code": code, "failures": failures})
    return listed
