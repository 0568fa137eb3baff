"""A lead arrives from an integrator: validate, store with its drips, queue the first text (or,
outside the recipient's send window, keep it `scheduled` until the window opens)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, field_validator

from sendline.adapters.queue import SendQueue, SendRequest
from sendline.adapters.records import LeadExists, Records, message_id
from sendline.domain.clock import iso
from sendline.domain.ids import new_id
from sendline.domain.phones import PhoneRejected, mask_phone, normalise_phone
from sendline.domain.status import FINAL, MessageStatus
from sendline.domain.templates import render
from sendline.errors import ConditionFailed, Conflict, FieldProblem, NotFound, ValidationFailed
from sendline.services.api_keys import ApiIdentity
from sendline.services.flows import PAUSED
from sendline.services.send_windows import OUTSIDE_SEND_WINDOW, Windows
from sendline.services.validation import problems_from

logger = Logger(child=True)

MAX_CUSTOM_FIELDS = 50
MAX_FIELD_LENGTH = 500
MAX_FIELD_NAME_LENGTH = 64
# Fields that describe how consent was given, kept with the lead as its consent record.
CONSENT_FIELDS = ("page_url", "opt_in_text", "consent_text", "ip_address", "trusted_form_url", "jornaya_leadid")
OUTSIDE_WINDOW_REASON = "outside the recipient's send window (quiet hours); the text goes out when it opens"


class LeadSubmission(BaseModel):
    """What integrators post. Unknown fields are custom fields, usable as template variables."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)
    flow_id: StrictStr = Field(min_length=1, max_length=64)
    phone: StrictStr | int = Field(union_mode="left_to_right")
    first_name: StrictStr | None = Field(default=None, max_length=100)
    last_name: StrictStr | None = Field(default=None, max_length=100)
    source: StrictStr | None = Field(default=None, max_length=200)

    @field_validator("phone", mode="before")
    @classmethod
    def _no_bool(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("must be a string")
        return value

    def custom_fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


@dataclass(frozen=True)
class RequestOrigin:
    """Where the submission came from, for the consent record."""

    ip: str | None = None
    user_agent: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class SubmitResult:
    lead_id: str
    sent: bool
    tracking_id: str
    drips_queued: int
    duplicate: bool
    reason: str | None = None
    due_at: str | None = None  # when a first text held for the send window goes

    def to_response(self) -> dict[str, Any]:
        body: dict[str, Any] = {"success": True, "lead_id": self.lead_id, "sent": self.sent,
                                "tracking_id": self.tracking_id, "drips_queued": self.drips_queued,
                                "duplicate": self.duplicate}
        if self.reason:
            body["reason"] = self.reason
        if self.due_at:
            body["due_at"] = self.due_at
        return body


def parse_submission(payload: object) -> LeadSubmission:
    if not isinstance(payload, dict):
        raise ValidationFailed(FieldProblem("body", "must be a JSON object"))
    try:
        submission = LeadSubmission.model_validate(payload)
    except ValidationError as exc:
        raise ValidationFailed(problems_from(exc)) from None
    problems = []
    custom = submission.custom_fields()
    if len(custom) > MAX_CUSTOM_FIELDS:
        problems.append(FieldProblem("body", f"at most {MAX_CUSTOM_FIELDS} custom fields"))
    for name, value in custom.items():
        if len(name) > MAX_FIELD_NAME_LENGTH:
            problems.append(FieldProblem(name[:MAX_FIELD_NAME_LENGTH] + "…",
                                         f"field names are at most {MAX_FIELD_NAME_LENGTH} characters"))
        elif value is not None and not isinstance(value, (str, int, float, bool)):
            problems.append(FieldProblem(name, "custom fields must be text, numbers or true/false"))
        elif isinstance(value, str) and len(value) > MAX_FIELD_LENGTH:
            problems.append(FieldProblem(name, f"longer than {MAX_FIELD_LENGTH} characters"))
    if problems:
        raise ValidationFailed(problems)
    return submission


def submit_lead(records: Records, queue: SendQueue, payload: object, identity: ApiIdentity,
                origin: RequestOrigin, now: datetime) -> SubmitResult:
    submission = parse_submission(payload)
    try:
        phone = normalise_phone(submission.phone)
    except PhoneRejected as exc:
        raise ValidationFailed(FieldProblem("phone", exc.reason)) from None
    flow = records.get_flow(submission.flow_id)
    if not flow:
        raise NotFound(FieldProblem("flow_id", "no flow with this id"))

    lead_id = new_id("ld")
    custom = {k: v for k, v in submission.custom_fields().items() if v is not None}
    lead = {
        "lead_id": lead_id,
        "flow_id": flow["flow_id"],
        "phone": phone.e164,
        "first_name": submission.first_name,
        "last_name": submission.last_name,
        "source": submission.source,
        "custom_fields": custom,
        "api_key_id": identity.key_id,
        "created_at": iso(now),
        "consent": {
            "source": submission.source,
            "api_key_id": identity.key_id,
            "api_key_name": identity.name,
            "ip": origin.ip,
            "user_agent": origin.user_agent,
            "submitted_at": iso(now),
            **{k: str(custom[k]) for k in CONSENT_FIELDS if k in custom},
        },
    }
    variables = {**custom, "first_name": submission.first_name, "last_name": submission.last_name,
                 "phone": phone.national, "call_number": flow.get("call_number_display")}
    on_dnc = records.get_dnc(phone.e164) is not None
    # Drips keep their own times; the scheduler holds any that falls outside the window.
    first_opens = None if on_dnc else Windows(records).next_opening(phone.e164, now, flow)
    steps = [(0, flow["initial_message"])] + [(i + 1, d["message"]) for i, d in enumerate(flow["drips"])]
    delays = [0] + [d["delay_minutes"] for d in flow["drips"]]
    messages = []
    for (step, template), delay in zip(steps, delays, strict=True):
        message = {
            "message_id": message_id(lead_id, step),
            "lead_id": lead_id,
            "flow_id": flow["flow_id"],
            "step": step,
            "to": phone.e164,
            "to_masked": mask_phone(phone.e164),
            "from_number": flow["from_number"],
            "price_per_segment": flow.get("price_per_segment"),
            "body": render(template, variables),
            "status": MessageStatus.SCHEDULED.value,
            "due_at": iso(now + timedelta(minutes=delay)),
            "created_at": iso(now),
            "attempts": 0,
        }
        if step == 0 and first_opens:
            message.update(due_at=iso(first_opens), deferred_reason=OUTSIDE_SEND_WINDOW)
        messages.append(message)
    fingerprint = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    try:
        records.create_lead(lead, messages, now, idempotency_key=origin.idempotency_key, request_hash=fingerprint)
    except LeadExists as exc:
        if exc.request_hash and exc.request_hash != fingerprint:
            # Returning the old lead would tell the integrator this different lead was taken.
            raise Conflict(FieldProblem("Idempotency-Key", "was already used for a different request")) from None
        return _replay(records, exc.lead_id)

    if on_dnc:
        _withdraw_all(records, messages, now, reason="dnc")
        return SubmitResult(lead_id, sent=False, tracking_id=message_id(lead_id, 0), drips_queued=0,
                            duplicate=False, reason="phone is on the do-not-contact list")
    drips = len(messages) - 1
    if flow.get("status") == PAUSED:
        return SubmitResult(lead_id, sent=False, tracking_id=message_id(lead_id, 0), drips_queued=drips,
                            duplicate=False, reason="flow is paused; the text goes out when it resumes")
    if first_opens:
        return SubmitResult(lead_id, sent=False, tracking_id=message_id(lead_id, 0), drips_queued=drips,
                            duplicate=False, reason=OUTSIDE_WINDOW_REASON, due_at=iso(first_opens))
    _release_first(records, queue, messages[0], now)
    return SubmitResult(lead_id, sent=True, tracking_id=message_id(lead_id, 0), drips_queued=drips, duplicate=False)


def _release_first(records: Records, queue: SendQueue, message: dict[str, Any], now: datetime) -> None:
    """Queue the first text now. If SQS refuses, the message stays due and the scheduler
    queues it on its next tick: the lead is never lost."""
    try:
        refused = queue.send([SendRequest(message["message_id"])])
    except (BotoCoreError, ClientError):
        logger.warning("sends queue unavailable; the scheduler will queue the first text")
        return
    if refused:
        return
    try:
        records.transition(message, MessageStatus.QUEUED, now, fields={"queued_at": iso(now)})
    except ConditionFailed:
        pass  # a worker claimed it already


def _withdraw_all(records: Records, messages: list[dict[str, Any]], now: datetime, reason: str) -> None:
    for message in messages:
        status = MessageStatus.SKIPPED if message["step"] == 0 else MessageStatus.CANCELLED
        records.transition(message, status, now, fields={"skip_reason": reason})


def _replay(records: Records, lead_id: str) -> SubmitResult:
    """The answer the original submission got, so a retrying integrator sees the same result."""
    _, messages = records.get_lead(lead_id)
    first = next((m for m in messages if int(m["step"]) == 0), None)
    sent = bool(first) and first["status"] not in {MessageStatus.SKIPPED, MessageStatus.CANCELLED}
    drips = sum(1 for m in messages if int(m["step"]) > 0 and m["status"] != MessageStatus.CANCELLED)
    if first and first["status"] == MessageStatus.SCHEDULED and first.get("deferred_reason") == OUTSIDE_SEND_WINDOW:
        return SubmitResult(lead_id, sent=False, tracking_id=message_id(lead_id, 0), drips_queued=drips,
                            duplicate=True, reason=OUTSIDE_WINDOW_REASON, due_at=first.get("due_at"))
    return SubmitResult(lead_id, sent=sent, tracking_id=message_id(lead_id, 0), drips_queued=drips, duplicate=True)


def lead_view(records: Records, lead_id: str) -> dict[str, Any]:
    lead, messages = records.get_lead(lead_id)
    if not lead:
        raise NotFound(FieldProblem("lead_id", "no lead with this id"))
    fields = ("message_id", "step", "body", "status", "provider_sid", "error_code", "error_message", "skip_reason",
              "segments", "price", "from_number", "due_at", "queued_at", "sent_at", "delivered_at", "failed_at",
              "updated_at", "attempts")
    view = {k: v for k, v in lead.items() if k != "api_key_id"}
    view["messages"] = [{f: m.get(f) for f in fields} for m in sorted(messages, key=lambda m: int(m["step"]))]
    view["final"] = all(m["status"] in FINAL for m in messages)
    return view
