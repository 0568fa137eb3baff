"""Lead flows: an immediate text and drip follow-ups, as operators define them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator, model_validator

from sendline.adapters.records import Records
from sendline.domain.clock import iso
from sendline.domain.counters import delivery_rate, time_buckets
from sendline.domain.ids import new_id
from sendline.domain.phones import PhoneRejected, normalise_phone
from sendline.domain.templates import template_variables
from sendline.errors import FieldProblem, NotFound
from sendline.services.campaigns import WindowDraft
from sendline.services.catalog import MessageBody, get_template
from sendline.services.settings import current_settings
from sendline.services.validation import FieldValueError

MAX_DRIPS = 20

ACTIVE, PAUSED = "active", "paused"


def _phone(value: str) -> str:
    try:
        return normalise_phone(value).e164
    except PhoneRejected as exc:
        raise ValueError(exc.reason) from None


class DripStep(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delay_minutes: StrictInt = Field(ge=1, le=60 * 24 * 60, description="minutes after the lead arrived")
    message: MessageBody | None = None
    template_id: StrictStr | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DripStep:
        if (self.message is None) == (self.template_id is None):
            raise ValueError("give either message or template_id")
        return self


class FlowDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr = Field(min_length=1, max_length=120)
    from_number: StrictStr
    initial_message: MessageBody | None = None
    initial_template_id: StrictStr | None = None
    drips: list[DripStep] = Field(default_factory=list, max_length=MAX_DRIPS)
    call_number: StrictStr | None = None
    # A reply that is not a keyword (an answer, a question) cancels the lead's remaining drips.
    stop_drips_on_reply: StrictBool = True
    # Narrower hours than the recipients' states allow, in their local time, for every text of the flow.
    send_window: WindowDraft | None = None

    _numbers = field_validator("from_number", "call_number")(lambda v: v if v is None else _phone(v))

    @model_validator(mode="after")
    def _one_source(self) -> FlowDraft:
        if (self.initial_message is None) == (self.initial_template_id is None):
            raise FieldValueError("initial_message", "give either initial_message or initial_template_id")
        return self


def _with_templates(records: Records, draft: FlowDraft) -> FlowDraft:
    """Saved templates' bodies copied in: a later edit of the template leaves the flow as it was
    created (a flow's texts change only when the flow does)."""
    changes: dict[str, Any] = {}
    if draft.initial_template_id:
        changes["initial_message"] = get_template(records, draft.initial_template_id, "initial_template_id")["body"]
    drips = []
    for i, drip in enumerate(draft.drips):
        if drip.template_id:
            body = get_template(records, drip.template_id, f"drips.{i}.template_id")["body"]
            drip = drip.model_copy(update={"message": body})
        drips.append(drip)
    return draft.model_copy(update={**changes, "drips": drips})


def create_flow(records: Records, draft: FlowDraft, now: datetime) -> dict[str, Any]:
    draft = _with_templates(records, draft)
    assert draft.initial_message is not None
    flow = {
        "flow_id": new_id("fl"),
        "name": draft.name.strip(),
        "status": ACTIVE,
        "from_number": draft.from_number,
        "call_number": draft.call_number,
        # `{call_number}` as a text shows it, worked out once rather than on every lead.
        "call_number_display": normalise_phone(draft.call_number).national if draft.call_number else None,
        "initial_message": draft.initial_message,
        "drips": [{"delay_minutes": d.delay_minutes, "message": d.message, "template_id": d.template_id}
                  for d in draft.drips],
        "initial_template_id": draft.initial_template_id,
        "stop_drips_on_reply": draft.stop_drips_on_reply,
        "send_window": draft.send_window.model_dump() if draft.send_window else None,
        "price_per_segment": current_settings(records).prices.price_per_segment,
        "variables": template_variables(" ".join([draft.initial_message, *(d.message or "" for d in draft.drips)])),
        "created_at": iso(now),
        "updated_at": iso(now),
    }
    records.put_flow(flow)
    return flow


def get_flow(records: Records, flow_id: str) -> dict[str, Any]:
    flow = records.get_flow(flow_id)
    if not flow:
        raise NotFound(FieldProblem("flow_id", "no flow with this id"))
    return flow


def _stats(counters: dict[str, int]) -> dict[str, Any]:
    names = ("leads", "sent", "delivered", "undelivered", "failed", "skipped", "cancelled", "unknown",
             "pending_dlr", "pending_drips", "drips_sent", "segments")
    stats: dict[str, Any] = {name: counters.get(name, 0) for name in names}
    stats["cost"] = round(counters.get("cost_micros", 0) / 1_000_000, 4)
    stats["delivery_rate"] = delivery_rate(counters)
    return stats


def list_flows(records: Records) -> list[dict[str, Any]]:
    flows = records.list_flows()
    counters = records.counters((f"FLOW#{f['flow_id']}", "TOTAL") for f in flows)
    return [{**f, "stats": _stats(counters[(f"FLOW#{f['flow_id']}", "TOTAL")])} for f in flows]


def flow_with_stats(records: Records, flow_id: str, now: datetime, hours: int = 24) -> dict[str, Any]:
    """A flow, its totals, and what happened in each of the last `hours` hours."""
    flow = get_flow(records, flow_id)
    scope = f"FLOW#{flow_id}"
    hour_buckets = [time_buckets(now - timedelta(hours=h), records.timezone)[2] for h in reversed(range(hours))]
    counters = records.counters([(scope, "TOTAL"), *((scope, b) for b in hour_buckets)])
    hourly = []
    for bucket in hour_buckets:
        values = counters[(scope, bucket)]
        hourly.append({"hour": bucket[2:], **{k: values.get(k, 0) for k in ("sent", "delivered", "undelivered",
                                                                          "failed", "skipped")}})
    return {**flow, "stats": _stats(counters[(scope, "TOTAL")]), "hourly": hourly}


def pause_flow(records: Records, flow_id: str, now: datetime) -> dict[str, Any]:
    get_flow(records, flow_id)
    return records.set_flow_status(flow_id, PAUSED, now)


def resume_flow(records: Records, flow_id: str, now: datetime) -> dict[str, Any]:
    get_flow(records, flow_id)
    flow = records.set_flow_status(flow_id, ACTIVE, now)
    flow["released_messages"] = records.release_paused(flow_id)
    return flow


def flow_activity(records: Records, flow_id: str, limit: int = 50) -> list[dict[str, Any]]:
    get_flow(records, flow_id)
    return [
        {
            "at": m["updated_at"],
            "lead_id": m["lead_id"],
            "message_id": m["message_id"],
            "step": m["step"],
            "status": m["status"],
            "to": m.get("to_masked"),
            "error_code": m.get("error_code"),
            "skip_reason": m.get("skip_reason"),
        }
        for m in records.flow_activity(flow_id, limit)
    ]
