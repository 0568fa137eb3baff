"""Quick send: one text to one number, from a chosen number or a brand's pool, through the same
queue, worker and checks as every other text. Outside the recipient's send window it waits,
`scheduled` until the window's next opening, and the scheduler queues it then."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from sendline.adapters.queue import SendQueue, SendRequest
from sendline.adapters.records import Records, message_id
from sendline.domain.clock import iso
from sendline.domain.ids import new_id
from sendline.domain.pacing import sticky_sender
from sendline.domain.phones import PhoneRejected, mask_phone, normalise_phone
from sendline.domain.status import MessageStatus
from sendline.domain.templates import render
from sendline.errors import ConditionFailed, Conflict, FieldProblem, NotFound, ValidationFailed
from sendline.services import catalog
from sendline.services.send_windows import OUTSIDE_SEND_WINDOW, Windows
from sendline.services.settings import current_settings
from sendline.services.validation import FieldValueError, parse


class QuickSend(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    to: StrictStr
    body: catalog.MessageBody | None = None
    template_id: StrictStr | None = None
    variables: dict[str, StrictStr | int | float | None] = Field(default_factory=dict, max_length=50)
    from_number: StrictStr | None = Field(default=None, alias="from")
    brand_id: StrictStr | None = None
    pool: StrictStr | None = Field(default=None, pattern=catalog.POOL_NAME)

    @model_validator(mode="after")
    def _sources(self) -> QuickSend:
        if (self.body is None) == (self.template_id is None):
            raise FieldValueError("body", "give either body or template_id")
        if (self.from_number is None) == (self.brand_id is None):
            raise FieldValueError("from", "give either from (a sending number) or brand_id (its pool picks the number)")
        return self


class BodyPreview(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: StrictStr = Field(min_length=1, max_length=catalog.MAX_BODY)


def preview_body(body: object) -> dict[str, Any]:
    return catalog.body_facts(parse(BodyPreview, body).body)


def _recipient(raw: str) -> str:
    try:
        return normalise_phone(raw).e164
    except PhoneRejected as exc:
        raise ValidationFailed(FieldProblem("to", exc.reason)) from None


def _sender(records: Records, request: QuickSend, to: str) -> tuple[str, dict[str, Any] | None]:
    if request.from_number:
        number = catalog.get_number(records, request.from_number, field="from")
        if number["status"] != "active":
            raise Conflict(FieldProblem("from", "this number is rested"))
        return number["number"], catalog.get_brand(records, number["brand_id"])
    brand = catalog.get_brand(records, request.brand_id or "")
    pool = request.pool or brand["default_pool"]
    numbers = [n["number"] for n in catalog.pool_numbers(records, brand["brand_id"], pool)]
    if not numbers:
        raise Conflict(FieldProblem("pool", f"pool {pool!r} has no active sending numbers"))
    return sticky_sender(to, numbers), brand


def quick_send(records: Records, queue: SendQueue, body: object, now: datetime) -> dict[str, Any]:
    request = parse(QuickSend, body)
    to = _recipient(request.to)
    if records.get_dnc(to):
        raise Conflict(FieldProblem("to", "is on the do-not-contact list"))
    sender, brand = _sender(records, request, to)
    template = request.body or catalog.get_template(records, request.template_id or "")["body"]
    values = {"call_number": (brand or {}).get("call_number_display"), "phone": normalise_phone(to).national,
              **request.variables}
    text = render(template, values)
    settings = current_settings(records)
    opens = Windows(records, settings).next_opening(to, now)
    send_id = new_id("qs")
    message = {
        "message_id": message_id(send_id, 0),
        "quick_send_id": send_id,
        "brand_id": (brand or {}).get("brand_id"),
        "step": 0,
        "to": to,
        "to_masked": mask_phone(to),
        "from_number": sender,
        "body": text,
        "price_per_segment": settings.prices.price_per_segment,
        "status": MessageStatus.SCHEDULED.value,
        "due_at": iso(opens or now),
        "created_at": iso(now),
        "attempts": 0,
    }
    if opens:
        message["deferred_reason"] = OUTSIDE_SEND_WINDOW
    records.put_message(message, now)
    facts = {"to": message["to_masked"], "from": sender, **catalog.body_facts(text)}
    if opens:
        return {"message_id": message["message_id"], "status": "scheduled", "due_at": message["due_at"],
                "deferred_reason": OUTSIDE_SEND_WINDOW, **facts}
    # If SQS refuses, the message stays due and the scheduler's next tick queues it.
    if not queue.send([SendRequest(message["message_id"])]):
        try:
            records.transition(message, MessageStatus.QUEUED, now, fields={"queued_at": iso(now)})
        except ConditionFailed:
            pass  # a worker has it already
    return {"message_id": message["message_id"], "status": "queued", **facts}


def message_view(records: Records, msg_id: str) -> dict[str, Any]:
    message = records.get_message(msg_id)
    if not message:
        raise NotFound(FieldProblem("message_id", "no message with this id"))
    fields = ("message_id", "campaign_id", "flow_id", "lead_id", "quick_send_id", "creative_id", "to_masked",
              "from_number", "body", "status", "skip_reason", "deferred_reason", "error_code", "error_message",
              "provider_sid", "segments", "price", "queued_at", "sent_at", "delivered_at", "failed_at", "updated_at")
    view = {f: message.get(f) for f in fields if message.get(f) is not None}
    if message.get("status") == MessageStatus.SCHEDULED:
        view["due_at"] = message.get("due_at")  # when a waiting text is due to go
    return view
