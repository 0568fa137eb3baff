"""Delivery receipts from the carrier: statuses only move forward, each change counted once."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum

from aws_lambda_powertools import Logger

from sendline.adapters.records import Records
from sendline.domain.clock import iso
from sendline.domain.status import MessageStatus, can_move, from_twilio
from sendline.errors import ConditionFailed, FieldProblem, ValidationFailed
from sendline.services.dnc import record_failure

logger = Logger(child=True)

PROVIDER_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")  # SM…, MM… (Twilio), 34 characters


class ReceiptResult(StrEnum):
    APPLIED = "applied"
    IGNORED = "ignored"  # duplicate, late or out of order: changes nothing
    PARKED = "parked"  # the send is not recorded yet; applied when it is
    UNTRACKED = "untracked"  # a status we do not track (e.g. receiving)


_TIMESTAMP_FIELD = {
    MessageStatus.DELIVERED: "delivered_at",
    MessageStatus.UNDELIVERED: "failed_at",
    MessageStatus.FAILED: "failed_at",
    MessageStatus.SENT: "carrier_sent_at",
}


def apply_delivery_status(records: Records, params: Mapping[str, str], now: datetime,
                          park_unknown: bool = True) -> ReceiptResult:
    sid = params.get("MessageSid") or params.get("SmsSid")
    raw_status = params.get("MessageStatus") or params.get("SmsStatus")
    if not sid:
        raise ValidationFailed(FieldProblem("MessageSid", "is required"))
    if not PROVIDER_SID.fullmatch(sid):
        raise ValidationFailed(FieldProblem("MessageSid", "is not a message sid"))
    if not raw_status:
        raise ValidationFailed(FieldProblem("MessageStatus", "is required"))
    new = from_twilio(raw_status)
    if new is None:
        return ReceiptResult.UNTRACKED
    for _ in range(3):
        message = records.find_by_sid(sid)
        if message is None:
            if park_unknown:
                records.park_early_receipt(sid, raw_status, params, now)
                return ReceiptResult.PARKED
            return ReceiptResult.IGNORED
        if not can_move(message["status"], new):
            return ReceiptResult.IGNORED
        fields = {_TIMESTAMP_FIELD[new]: iso(now), "provider_status": raw_status}
        if params.get("ErrorCode"):
            fields["error_code"] = str(params["ErrorCode"])
        if params.get("RawDlrDoneDate"):
            fields["dlr_done_date"] = params["RawDlrDoneDate"]
        try:
            changed = records.transition(message, new, now, fields=fields)
        except ConditionFailed:
            continue  # another receipt for the same message won the race; look again
        record_failure(records, changed, now)
        return ReceiptResult.APPLIED
    return ReceiptResult.IGNORED


def apply_parked_receipts(records: Records, provider_sid: str, now: datetime) -> None:
    """Receipts that overtook the send's own write, applied now that the sid is known."""
    for params in records.take_early_receipts(provider_sid):
        apply_delivery_status(records, params, now, park_unknown=False)
