"""Inbound texts: stored as they came, and an opt-out keyword puts the sender on the DNC list."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sendline.adapters.records import Records
from sendline.domain.clock import iso
from sendline.domain.keywords import KeywordAction, classify
from sendline.domain.phones import PhoneRejected, normalise_phone
from sendline.errors import FieldProblem, ValidationFailed

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def handle_inbound(records: Records, params: Mapping[str, str], now: datetime) -> dict[str, Any]:
    sid = params.get("MessageSid") or params.get("SmsMessageSid") or params.get("SmsSid")
    if not sid:
        raise ValidationFailed(FieldProblem("MessageSid", "is required"))
    try:
        sender = normalise_phone(params.get("From")).e164
    except PhoneRejected as exc:
        raise ValidationFailed(FieldProblem("From", exc.reason)) from None
    action, keyword = classify(params.get("Body", ""))
    taken = "none"
    if action == KeywordAction.OPT_OUT:
        records.add_dnc(sender, "keyword", now, detail=keyword)
        taken = "added_to_dnc"
    record = {"message_sid": sid, "from": sender, "to": params.get("To"), "body": params.get("Body", ""),
              "keyword": keyword, "action": taken, "received_at": iso(now)}
    records.put_inbound(record)
    return record
